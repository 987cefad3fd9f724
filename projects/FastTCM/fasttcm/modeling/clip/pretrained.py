"""open_clip pretrained names (``"RN50-quickgelu:openai"``, ``"ViT-B-16:openai"``) as CLIP weights.

``MODEL.FASTTCM.CLIP_WEIGHTS`` and ``MODEL.RECOGNIZER.CLIP_WEIGHTS`` take a local file or an
open_clip ``MODEL:TAG`` name. A name resolves through open_clip's own registry
(``open_clip.pretrained.get_pretrained_cfg``) and cache:

* a tag with a download URL (every OpenAI tag): ``<cache>/<file name of the URL>``, open_clip's
  own cache layout (``~/.cache/clip`` by default), verified against the SHA-256 prefix the URL
  carries (OpenAI and open_clip release URLs) as open_clip does;
* a tag published on the Hugging Face hub only: the hub's cache
  (``huggingface_hub.try_to_load_from_cache``) for ``open_clip_pytorch_model.bin``.

Only when the file is not cached is it downloaded, through open_clip
(``open_clip.pretrained.download_pretrained_from_url`` / ``hf_hub_download``). Without a network
the error names the file that is expected, where to put it, and where to get it; a local path in
``CLIP_WEIGHTS`` always works instead. Local paths are returned unchanged: an existing file always
wins over a name.
"""

import hashlib
import logging
import os
import re
from typing import Optional, Tuple

__all__ = ["resolve_clip_weights", "CLIPWeightsUnavailableError"]

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^(?P<model>[A-Za-z0-9][\w.\-/@]*):(?P<tag>[\w.\-]+)$")
_HF_WEIGHTS = "open_clip_pytorch_model.bin"  # torch.save state dict (read weights-only)


class CLIPWeightsUnavailableError(FileNotFoundError):
    """A pretrained name whose file is neither cached nor downloadable (offline)."""


def _split(value: str) -> Optional[Tuple[str, str]]:
    match = _NAME.match(value)
    return (match.group("model"), match.group("tag")) if match else None


def default_cache_dir() -> str:
    """open_clip's default cache of URL downloads."""
    return os.path.expanduser("~/.cache/clip")


def _sha256_prefix(url: str) -> str:
    """The SHA-256 (prefix) open_clip checks for this URL ('' when the URL carries none)."""
    name = os.path.basename(url)
    if "openaipublic" in url:
        return url.split("/")[-2]
    if "mlfoundations" in url:
        return os.path.splitext(name)[0].split("-")[-1]
    return ""


def _verified(path: str, expected: str) -> bool:
    if not os.path.isfile(path):
        return False
    if not expected:
        return True
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest().startswith(expected)


def _offline_error(value: str, expected: str, source: str, cause: BaseException):
    return CLIPWeightsUnavailableError(
        f"CLIP weights {value!r}: open_clip's file is not cached and could not be downloaded "
        f"({type(cause).__name__}: {str(cause)[:200]}). Expected file: {expected}. Put the file "
        f"there (download it from {source} on a machine with a network), or set CLIP_WEIGHTS to "
        "the local path of a CLIP checkpoint (OpenAI .pt or open_clip state dict)"
    )


def _resolve_url(value: str, url: str, cache_dir: str) -> str:
    from open_clip import pretrained

    target = os.path.join(cache_dir, os.path.basename(url))
    expected = _sha256_prefix(url)
    if _verified(target, expected):
        return target
    if os.path.exists(target):
        logger.warning(f"{target} does not match the SHA-256 {expected!r} of {url}; downloading")
    logger.info(f"Downloading the CLIP weights {value!r} from {url} to {cache_dir}")
    try:
        return pretrained.download_pretrained_from_url(url, cache_dir=cache_dir)
    except Exception as e:  # noqa: BLE001 - urllib, socket and SSL errors all mean "unavailable"
        raise _offline_error(value, target, url, e) from e


def _resolve_hf(value: str, hub: str, cache_dir: Optional[str]) -> str:
    from huggingface_hub import try_to_load_from_cache
    from open_clip import pretrained

    repo_id, filename = hub.rstrip("/"), _HF_WEIGHTS
    if not hub.endswith("/"):
        repo_id, filename = os.path.split(hub)
    cached = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir)
    if isinstance(cached, str) and os.path.isfile(cached):
        return cached
    source = f"https://huggingface.co/{repo_id}/resolve/main/{filename}"
    logger.info(f"Downloading the CLIP weights {value!r} from {source}")
    try:
        return pretrained.hf_hub_download(repo_id=repo_id, filename=filename, cache_dir=cache_dir)
    except Exception as e:  # noqa: BLE001 - hub, HTTP and offline-mode errors
        where = f"the Hugging Face cache of {repo_id} ({filename})"
        raise _offline_error(value, where, source, e) from e


def resolve_clip_weights(value: str, cache_dir: Optional[str] = None) -> str:
    """A local path for `value`: the path itself, or the cached file of a pretrained name.

    Args:
        value: a local file path, or an open_clip pretrained name ``MODEL:TAG``.
        cache_dir: open_clip's cache folder of URL downloads (default ``~/.cache/clip``) and
            the Hugging Face cache folder (default: the hub's own).

    Returns:
        `value` unchanged when it is an existing path or not a known pretrained name; otherwise
        the path of the cached (downloaded when missing) weights file.

    Raises:
        CLIPWeightsUnavailableError: a pretrained name whose file is not cached and cannot be
            downloaded; the message names the expected file, where to put it and its source.
        ValueError: a known open_clip model with an unknown tag (the message lists the tags).
    """
    if not value or os.path.exists(value):
        return value
    parts = _split(value)
    if parts is None:
        return value
    from open_clip import pretrained

    cfg = pretrained.get_pretrained_cfg(*parts)
    if not cfg:
        tags = pretrained.list_pretrained_tags_by_model(parts[0])
        if tags:
            raise ValueError(
                f"CLIP weights {value!r}: open_clip has no pretrained tag {parts[1]!r} for "
                f"{parts[0]!r}; known tags: {tags}"
            )
        return value  # not a pretrained name: the reader reports the missing file
    if cfg.get("file"):
        return cfg["file"]
    if cfg.get("url"):
        return _resolve_url(value, cfg["url"], cache_dir or default_cache_dir())
    if cfg.get("hf_hub"):
        return _resolve_hf(value, cfg["hf_hub"], cache_dir)
    raise ValueError(f"CLIP weights {value!r}: open_clip's registry gives no source for it")
