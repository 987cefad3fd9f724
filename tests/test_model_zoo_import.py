"""detectron2.model_zoo works in the project's environment (it needs pkg_resources)."""

import warnings


def test_model_zoo_config_files_resolve():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # setuptools warns that pkg_resources is deprecated
        from detectron2 import model_zoo

    path = model_zoo.get_config_file("COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml")
    assert path.endswith("faster_rcnn_R_50_FPN_1x.yaml")
    with open(path, encoding="utf-8") as f:
        assert "_BASE_" in f.read()
