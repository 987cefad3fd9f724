#!/usr/bin/env python
"""FastTCM-D2: FastTCM-CR50 (CLIP ResNet-50 + TCM) for detectron2.

Install with `make install` (see README): it builds detectron2 0.6 first, then installs this package
in editable mode. `pip install -e .` alone works once torch and detectron2 are present.
"""

from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent


def read_version():
    for line in (ROOT / "projects/FastTCM/fasttcm/__init__.py").read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=")[1].strip().strip("\"'")
    raise RuntimeError("__version__ not found in projects/FastTCM/fasttcm/__init__.py")


def read_requirements(name):
    reqs = []
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            reqs.append(line)
    return reqs


setup(
    name="fasttcm-d2",
    version=read_version(),
    description="FastTCM-CR50 scene-text detection, spotting and oriented detection for detectron2",
    long_description=(ROOT / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # detectron2 project convention: CamelCase folder holding snake_case packages.
    # The YAML configs ship inside the package as `fasttcm/configs/` (data only, no code), so the
    # predictor API finds configs by name after a regular `pip install .` as in a checkout.
    package_dir={
        "fasttcm": "projects/FastTCM/fasttcm",
        "fasttcm.configs": "projects/FastTCM/configs",
        "fasttcm_ops": "projects/FastTCM/fasttcm_ops",
    },
    packages=["fasttcm", "fasttcm.configs", "fasttcm_ops"]
    + [
        "fasttcm." + str(p.relative_to(ROOT / "projects/FastTCM/fasttcm")).replace("/", ".")
        for p in sorted((ROOT / "projects/FastTCM/fasttcm").rglob("*"))
        if p.is_dir() and (p / "__init__.py").exists()
    ],
    package_data={
        "fasttcm": ["structures/charsets/*.txt"],
        "fasttcm.configs": ["*.yaml", "*/*.yaml"],
    },
    install_requires=read_requirements("requirements.txt") + ["detectron2>=0.6"],
    extras_require={
        "dev": read_requirements("requirements-dev.txt"),
        "onnx": read_requirements("requirements-onnx.txt"),  # ONNX export + onnxruntime backend
    },
)
