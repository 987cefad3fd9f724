"""The onnxruntime backend behind the predictors: load an export folder as a model-like object.

:func:`load_onnx_model` returns an object called like the PyTorch meta-architecture in eval mode
(``model(batched_inputs) -> results``), so the code that prepares inputs and reads results is
the same for both backends. :class:`OnnxPredictor` is ``FastTCMPredictor`` (one BGR image in,
the model's output dict out) over such a model.
"""

import logging
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ..data.transforms import make_test_resize
from ..engine.predictor import predict_image
from .dota_model import OnnxRotatedRCNN
from .manifest import read_manifest
from .text_models import OnnxTextDetector, OnnxTextRecognizer, OnnxTextSpotter

__all__ = ["OnnxPredictor", "config_differences", "load_onnx_model"]

logger = logging.getLogger(__name__)

_TEXT_BACKENDS = {
    "detector": OnnxTextDetector,
    "spotter": OnnxTextSpotter,
    "recognizer": OnnxTextRecognizer,
}


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def config_differences(cfg, manifest: Dict[str, Any]) -> List[str]:
    """The ``TEST.*`` keys (and INPUT.FORMAT) of `cfg` whose values differ from the exporting
    config's, as "KEY: exported X, config Y" lines. Post-processing runs with the exported
    values, so a changed threshold needs a new export."""

    def flatten(node, prefix):
        if isinstance(node, dict):
            for key, value in node.items():
                yield from flatten(value, f"{prefix}.{key}")
        else:
            yield prefix, node

    exported = dict(flatten(manifest.get("test_config", {}), "TEST"))
    current = dict(flatten(_plain(cfg.TEST), "TEST"))
    lines = [
        f"{key}: exported {exported.get(key)!r}, config {current.get(key)!r}"
        for key in sorted(set(exported) | set(current))
        if exported.get(key) != current.get(key)
    ]
    if cfg.INPUT.FORMAT != manifest["input"]["format"]:
        lines.append(
            f"INPUT.FORMAT: exported {manifest['input']['format']!r}, config {cfg.INPUT.FORMAT!r}"
        )
    return lines


def load_onnx_model(
    directory: str,
    *,
    cfg=None,
    threads: Optional[int] = None,
    providers: Optional[Sequence[str]] = None,
):
    """The onnxruntime backend of an export folder, called like the PyTorch model in eval mode.

    Args:
        directory: a folder written by ``tools/export_model.py --format onnx``.
        cfg: the model's config. Optional for the text tasks (the manifest holds their settings;
            when given, its META_ARCHITECTURE must match and differing TEST keys are warned
            about); required for "dota", whose RPN and ROI heads it builds (their weights are in
            the folder).
        threads: intra-op threads of every onnxruntime session (None: onnxruntime's default).
        providers: onnxruntime execution providers (default: CPU).

    Returns:
        :class:`OnnxTextDetector`, :class:`OnnxTextSpotter`, :class:`OnnxTextRecognizer` or
        :class:`OnnxRotatedRCNN`.

    Raises:
        ValueError: `cfg` names another meta-architecture; "dota" without `cfg`.
    """
    manifest = read_manifest(directory)
    task = manifest["task"]
    if cfg is not None:
        if cfg.MODEL.META_ARCHITECTURE != manifest["meta_architecture"]:
            raise ValueError(
                f"{directory}: exported from a {manifest['meta_architecture']}; the config builds "
                f"a {cfg.MODEL.META_ARCHITECTURE} (MODEL.META_ARCHITECTURE)"
            )
        for line in config_differences(cfg, manifest):
            logger.warning(f"{directory}: the ONNX backend uses the exported setting; {line}")
    if task in _TEXT_BACKENDS:
        return _TEXT_BACKENDS[task](
            directory, threads=threads, providers=providers, manifest=manifest
        )
    if cfg is None:
        raise ValueError(
            f"{directory}: the DOTA export runs its rotated R-CNN heads in PyTorch; give the "
            "config that builds them"
        )
    return OnnxRotatedRCNN(directory, cfg, threads=threads, providers=providers, manifest=manifest)


class OnnxPredictor:
    """``FastTCMPredictor`` on onnxruntime: one (H, W, 3) uint8 BGR image in, the model's output
    dict (original-image pixels) out.

    The test-time resize (shorter side INPUT.MIN_SIZE_TEST, longer side at most MAX_SIZE_TEST,
    pixels resized by INPUT.RESIZE_BACKEND) and the channel order come from `cfg` when given,
    else from the export manifest (its ``input`` section; "pil" when it names no
    ``resize_backend``).

    Args:
        directory, cfg, threads, providers: see :func:`load_onnx_model`.
    """

    def __init__(
        self,
        directory: str,
        *,
        cfg=None,
        threads: Optional[int] = None,
        providers: Optional[Sequence[str]] = None,
    ):
        self.manifest = read_manifest(directory)
        self.model = load_onnx_model(directory, cfg=cfg, threads=threads, providers=providers)
        settings = self.manifest["input"]
        if cfg is not None:
            min_size, max_size = cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST
            backend = cfg.INPUT.RESIZE_BACKEND
            self.input_format = cfg.INPUT.FORMAT
        else:
            min_size, max_size = settings["min_size_test"], settings["max_size_test"]
            backend = settings.get("resize_backend", "pil")
            self.input_format = settings["format"]
        self.aug = make_test_resize(min_size, max_size, backend)
        if self.input_format not in ("RGB", "BGR"):
            raise ValueError(f"INPUT.FORMAT must be RGB or BGR, got {self.input_format!r}")

    def __call__(self, original_image: np.ndarray) -> dict:
        """As ``FastTCMPredictor.__call__``."""
        return predict_image(self.model, self.aug, self.input_format, original_image)
