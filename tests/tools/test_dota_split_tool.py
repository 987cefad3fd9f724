"""tools/dota_split.py writes a config's ``output`` only inside --root."""

import json
import os

import cv2
import numpy as np
import pytest


@pytest.fixture(scope="module")
def tool(load_tool):
    return load_tool("dota_split")


@pytest.fixture
def scene(tmp_path):
    """One labelled 300 x 500 scene under src/ and an empty dataset root."""
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    (src / "labelTxt").mkdir()
    cv2.imwrite(str(src / "images" / "S0001.png"), np.zeros((300, 500, 3), np.uint8))
    (src / "labelTxt" / "S0001.txt").write_text("10 10 50 10 50 30 10 30 plane 0\n")
    (tmp_path / "root").mkdir()
    return tmp_path


def _config(tmp_path, output):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"patch_size": 256, "gap": 56, "output": output}))
    return path


def _main(tool, scene, config):
    args = ["--config", str(config), "--root", str(scene / "root"), "--src", str(scene / "src")]
    return tool.main(args)


def test_output_inside_root_is_written(tool, scene, capsys):
    code = _main(tool, scene, _config(scene, "ss256/trainval"))
    assert code == 0, capsys.readouterr().err
    out = scene / "root" / "dota10_split" / "ss256" / "trainval"
    assert len(os.listdir(out / "images")) == 6 and len(os.listdir(out / "labelTxt")) == 6


@pytest.mark.parametrize(
    "output, target",
    [
        ("../../escaped", "escaped"),
        ("ss256/../../../escaped", "escaped"),
        ("{tmp}/escaped", "escaped"),
        ("link/inside_link", "outside/inside_link"),
    ],
)
def test_output_leaving_root_is_an_error_naming_config_and_key(tool, scene, capsys, output, target):
    (scene / "outside").mkdir()
    (scene / "root" / "dota10_split").mkdir()
    os.symlink(scene / "outside", scene / "root" / "dota10_split" / "link")
    output = output.format(tmp=scene)
    config = _config(scene, output)
    assert _main(tool, scene, config) == 1
    err = capsys.readouterr().err
    assert f"{config}: key 'output' = {output!r} resolves to" in err
    assert f"outside the dataset root {scene / 'root'}" in err
    assert not (scene / target).exists()  # nothing was written there
    assert os.listdir(scene / "outside") == []


def test_empty_output_without_out_is_an_error(tool, scene, capsys):
    config = _config(scene, "")
    assert _main(tool, scene, config) == 1
    assert f"{config}: key 'output' is empty" in capsys.readouterr().err
