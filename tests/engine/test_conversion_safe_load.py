"""engine.conversion.safe_load: other frameworks' files read without running their code."""

import argparse
import os

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from fasttcm.engine.conversion import ConversionError
from fasttcm.engine.conversion.safe_load import (
    InertRecord,
    is_inert_global,
    plain_data,
    read_checkpoint,
)


def test_plain_weights_file_needs_no_stand_in(tmp_path):
    path = tmp_path / "plain.pth"
    torch.save({"state_dict": {"w": torch.arange(3.0)}, "epoch": 2}, path)
    loaded, stand_ins = read_checkpoint(str(path))
    assert stand_ins == [] and torch.equal(loaded["state_dict"]["w"], torch.arange(3.0))


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_mmcv_meta_with_numpy_values_reads_through_stand_ins(tmp_path, zip_format):
    path = tmp_path / "mmcv.pth"
    meta = {"hook_msgs": {"best_score": np.float64(0.888)}, "curve": np.arange(3)}
    torch.save(
        {"meta": meta, "state_dict": {"w": torch.ones(2)}},
        path,
        _use_new_zipfile_serialization=zip_format,
    )
    loaded, stand_ins = read_checkpoint(str(path))
    assert any("scalar" in name for name in stand_ins)
    assert torch.equal(loaded["state_dict"]["w"], torch.ones(2))
    assert isinstance(loaded["meta"]["hook_msgs"]["best_score"], InertRecord)


def test_omegaconf_and_namespace_hyper_parameters_become_plain_data(tmp_path):
    path = tmp_path / "hparams.pth"
    hparams = {
        "img_size": OmegaConf.create([224, 224]),
        "nested": OmegaConf.create({"lr": 8.4e-5, "charset": "abc", "none": None, "flag": False}),
        "args": argparse.Namespace(batch_size=128, name="vl4str"),
    }
    torch.save({"hyper_parameters": hparams}, path)
    loaded, stand_ins = read_checkpoint(str(path))
    assert "omegaconf.listconfig.ListConfig" in stand_ins and "argparse.Namespace" in stand_ins
    assert plain_data(loaded["hyper_parameters"]) == {
        "img_size": [224, 224],
        "nested": {"lr": 8.4e-5, "charset": "abc", "none": None, "flag": False},
        "args": {"batch_size": 128, "name": "vl4str"},
    }


def test_functions_and_unknown_classes_are_refused_before_anything_runs(tmp_path):
    path = tmp_path / "system.pth"
    torch.save({"state_dict": {"w": torch.ones(1)}, "hook": os.system}, path)
    with pytest.raises(ConversionError, match=r"refused.*system") as info:
        read_checkpoint(str(path))
    assert "system.pth" in str(info.value)
    assert not is_inert_global("builtins.eval") and not is_inert_global("posix.system")
    assert is_inert_global("omegaconf.nodes.AnyNode") and is_inert_global("builtins.int")


def test_unreadable_files_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.pth"):
        read_checkpoint(str(tmp_path / "absent.pth"))
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(b"PK\x03\x04 truncated zip")
    with pytest.raises(ConversionError, match="broken.ckpt"):
        read_checkpoint(str(broken))
