"""CLIP weights by open_clip pretrained name (modeling.clip.pretrained): cache hits and the offline
error, never touching the network (sockets are blocked and the downloads patched to fail)."""

import hashlib
import socket
import urllib.error

import pytest
import torch
from open_clip import pretrained
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

from fasttcm.modeling.clip.pretrained import CLIPWeightsUnavailableError, resolve_clip_weights
from fasttcm.modeling.clip.weights import read_clip_state_dict
from tests.common import QUICK_DETECTOR, build_quick_model

NAME = "RN50-quickgelu:openai"


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    """No socket may connect; downloads fail like an offline machine; HOME is a fresh folder."""

    def refuse(*args, **kwargs):
        raise OSError("network access is disabled in the tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)

    def offline_url(url, cache_dir=None):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    def offline_hub(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    monkeypatch.setattr(pretrained, "download_pretrained_from_url", offline_url)
    monkeypatch.setattr(pretrained, "hf_hub_download", offline_hub)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def _tiny_clip_file(path):
    """A tiny open_clip RN state dict with the quick detector's widths."""
    torch.manual_seed(0)
    clip = CLIP(
        64,
        CLIPVisionCfg(layers=(1, 1, 1, 1), width=8, image_size=224, head_width=32),
        CLIPTextCfg(width=32, heads=2, layers=2),
        quick_gelu=True,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(clip.state_dict(), path)
    return clip.state_dict()


def test_cached_file_is_used_without_download(monkeypatch, tmp_path):
    cached = tmp_path / "home" / ".cache" / "clip" / "RN50.pt"  # open_clip's cache layout
    clip_state = _tiny_clip_file(cached)
    sha256 = hashlib.sha256(cached.read_bytes()).hexdigest()
    # the registry entry, with the URL carrying the planted file's checksum as OpenAI's URLs do
    entry = dict(
        pretrained.get_pretrained_cfg("RN50-quickgelu", "openai"),
        url=f"https://openaipublic.azureedge.net/clip/models/{sha256}/RN50.pt",
    )
    monkeypatch.setitem(pretrained._PRETRAINED["RN50-quickgelu"], "openai", entry)

    assert resolve_clip_weights(NAME) == str(cached)
    state = read_clip_state_dict(NAME)
    torch.testing.assert_close(state["visual.conv1.weight"], clip_state["visual.conv1.weight"])

    model = build_quick_model(QUICK_DETECTOR, "MODEL.FASTTCM.CLIP_WEIGHTS", NAME)
    visual = model.backbone.bottom_up.visual
    torch.testing.assert_close(visual.conv1.weight, clip_state["visual.conv1.weight"])


def test_offline_without_cache_names_the_expected_file_and_where_to_get_it(tmp_path):
    with pytest.raises(CLIPWeightsUnavailableError) as info:
        read_clip_state_dict(NAME)
    message = str(info.value)
    assert str(tmp_path / "home" / ".cache" / "clip" / "RN50.pt") in message
    assert pretrained.get_pretrained_url("RN50-quickgelu", "openai") in message
    assert "CLIP_WEIGHTS" in message and "name resolution" in message
    assert isinstance(info.value, FileNotFoundError)


def test_a_cached_file_with_the_wrong_checksum_is_not_trusted(tmp_path):
    stale = tmp_path / "home" / ".cache" / "clip" / "RN50.pt"
    _tiny_clip_file(stale)  # not the file OpenAI's URL names: a download is attempted (offline)
    with pytest.raises(CLIPWeightsUnavailableError, match="RN50.pt"):
        resolve_clip_weights(NAME)


def test_hub_only_tag_offline_names_the_hub_file(tmp_path):
    name = "ViT-B-16:datacomp_xl_s13b_b90k"
    with pytest.raises(CLIPWeightsUnavailableError) as info:
        resolve_clip_weights(name, cache_dir=str(tmp_path / "hub"))
    message = str(info.value)
    assert "laion/CLIP-ViT-B-16-DataComp.XL-s13B-b90K" in message
    assert "open_clip_pytorch_model.bin" in message and "huggingface.co" in message


def test_paths_win_over_names_and_unknown_tags_are_named(tmp_path):
    odd = tmp_path / "RN50-quickgelu:openai"
    odd.write_bytes(b"x")
    assert resolve_clip_weights(str(odd)) == str(odd)
    assert resolve_clip_weights("no/such/file.pt") == "no/such/file.pt"
    assert resolve_clip_weights("NotAModel:v1") == "NotAModel:v1"
    with pytest.raises(ValueError, match="'openai'"):
        resolve_clip_weights("RN50:no_such_tag")
    with pytest.raises(FileNotFoundError, match="NotAModel:v1"):
        read_clip_state_dict("NotAModel:v1")
