"""Every detectron2 subpackage a user starts from imports in the project's environment.

``detectron2.export`` is left out: detectron2 0.6 imports ``caffe2`` there, which torch no longer
ships (the project's ONNX path does not use it).
"""

import subprocess
import sys

import pytest

SUBPACKAGES = [
    "checkpoint",
    "config",
    "data",
    "data.transforms",
    "engine",
    "evaluation",
    "layers",
    "model_zoo",
    "modeling",
    "projects",
    "solver",
    "structures",
    "utils.visualizer",
]


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_subpackage_imports_in_a_fresh_interpreter(name):
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", f"import detectron2.{name}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_model_zoo_config_files_resolve():
    """detectron2.model_zoo needs pkg_resources (the install pins setuptools < 81)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # setuptools warns that pkg_resources is deprecated
        from detectron2 import model_zoo

    path = model_zoo.get_config_file("COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml")
    assert path.endswith("faster_rcnn_R_50_FPN_1x.yaml")
    with open(path, encoding="utf-8") as f:
        assert "_BASE_" in f.read()
