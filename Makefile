# FastTCM-D2 entry points. `make test` and `make demo` bootstrap .venv from the package registries
# when it is missing or out of date; a second run with nothing changed is a no-op.
SHELL      := /bin/bash
PYTHON     ?= python3
VENV       := .venv
VPY        := $(VENV)/bin/python
STAMP      := $(VENV)/.fasttcm-installed
# Extra arguments for pytest, e.g. `make test PYTEST_ARGS="-k rotated -x"`.
PYTEST_ARGS ?=

.PHONY: install lint test test-slow demo dota-demo spotting-demo benchmark clean-venv

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt requirements-onnx.txt setup.py dev/build_detectron2.py dev/d2_ops_hook/*
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	@# setuptools < 81: detectron2.model_zoo imports pkg_resources, which setuptools 81 removed.
	$(VPY) -m pip install --disable-pip-version-check -q --upgrade "pip>=23.2" "setuptools>=64,<81" wheel
	@# torch first: detectron2's sdist metadata step imports it.
	$(VPY) -m pip install --disable-pip-version-check -q torch==2.14.1 torchvision==0.29.1
	@# requirements-onnx.txt: the optional .[onnx] extra, installed so the ONNX tests run.
	$(VPY) -m pip install --disable-pip-version-check -q -r requirements.txt -r requirements-dev.txt -r requirements-onnx.txt
	$(VPY) dev/build_detectron2.py
	$(VPY) -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	$(VPY) -c "import detectron2.modeling, detectron2.layers, fasttcm; print('[install] detectron2', __import__('detectron2').__version__, '+ fasttcm', fasttcm.__version__)"
	@touch $(STAMP)

# ruff (ruff.toml: 100 columns, pyflakes, import order) and the formatter's check.
lint: $(STAMP)
	$(VPY) -m ruff check .
	$(VPY) -m ruff format --check .

test: lint
	$(VPY) -m pytest $(PYTEST_ARGS)

# Long runs (training to a target, full benchmarks) live behind the `slow` marker; CI skips them.
test-slow: $(STAMP)
	$(VPY) -m pytest -m slow $(PYTEST_ARGS)

demo: $(STAMP)
	$(VPY) tools/run_demo.py --task text

# Oriented detection on generated aerial images (synthetic DOTA-v1.0 classes), on the CPU.
dota-demo: $(STAMP)
	$(VPY) tools/run_demo.py --task dota

# Text spotting on generated scenes: detector + recognizer trained apart, joined, fine-tuned jointly (CPU).
spotting-demo: $(STAMP)
	$(VPY) tools/run_demo.py --task spotting

benchmark: $(STAMP)
	$(VPY) tools/benchmark.py --task ops --task backbone

clean-venv:
	rm -rf $(VENV)
