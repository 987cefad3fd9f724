"""``backend="onnxruntime"``: the predictors on a folder written by ``tools/export_model.py
--format onnx``.

Pass the export's ``manifest.json`` as the weights::

    from fasttcm import TextSpotter
    spotter = TextSpotter("TextSpotting/fasttcm_cr50_fpn_spotter_ic15", "export/manifest.json",
                          backend="onnxruntime")

The runner serves the seam of :mod:`fasttcm.api.backends` with the exported graphs
(:mod:`fasttcm.deploy`); resizing, DB post-processing, crop rectification and patch merging stay
the predictors' own, shared with the PyTorch backend. onnxruntime intra-op threads:
``FASTTCM_NUM_THREADS`` (the project's thread override; unset: onnxruntime's default).
"""

import os
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

from ..deploy.predictor import load_onnx_model
from ..deploy.text_models import pad_pixels
from ..utils.threads import ENV_NUM_THREADS
from .backends import register_backend, rotated_detections

__all__ = ["OnnxRuntimeRunner"]


class OnnxRuntimeRunner:
    """The runner of :mod:`fasttcm.api.backends` over an ONNX export folder.

    Args:
        cfg: the predictor's frozen config (its META_ARCHITECTURE must be the exported one).
        directory: the export folder.
        threads: intra-op threads of the sessions (None: ``FASTTCM_NUM_THREADS`` or
            onnxruntime's default).
    """

    def __init__(self, cfg, directory: str, threads=None):
        if threads is None and os.environ.get(ENV_NUM_THREADS):
            threads = int(os.environ[ENV_NUM_THREADS])
        self.model = load_onnx_model(directory, cfg=cfg, threads=threads)
        self.manifest = self.model.manifest
        self.meta_architecture = cfg.MODEL.META_ARCHITECTURE
        recognizer = self.manifest.get("recognizer")
        self.recognizer_input_size = (
            tuple(int(s) for s in recognizer["input_size"]) if recognizer else None
        )

    def _need(self, section: str, method: str):
        if section not in self.manifest:
            raise ValueError(
                f"onnxruntime backend: the {self.manifest['task']!r} export has no {section} "
                f"graph for {method}()"
            )

    @torch.no_grad()
    def maps(self, images: torch.Tensor, all_maps: bool = False) -> Dict[str, np.ndarray]:
        """DB maps of a (B, 3, H, W) uint8 batch, cropped back to (B, H, W)."""
        self._need("detector", "maps")
        detector = self.model
        batch, _ = pad_pixels(list(images), detector.pixel_mean, detector.size_divisibility)
        maps = detector.maps(batch)
        height, width = images.shape[-2:]
        out = {"prob": maps["prob"][:, 0, :height, :width]}
        if all_maps:
            out["thresh"] = maps["thresh"][:, 0, :height, :width]
            prob, thresh = torch.from_numpy(out["prob"]), torch.from_numpy(out["thresh"])
            out["binary"] = torch.sigmoid(detector.k * (prob - thresh)).numpy()
        return out

    @torch.no_grad()
    def read(self, crops: torch.Tensor) -> Tuple[List[str], np.ndarray]:
        """Strings and confidences of (M, 3, h, w) float32 RGB 0-255 crops."""
        self._need("recognizer", "read")
        if len(crops) == 0:
            return [], np.zeros(0, dtype=np.float32)
        texts, scores = self.model.recognizer.recognize(crops.float().cpu())
        return list(texts), scores.float().numpy()

    @torch.no_grad()
    def detect_rotated(
        self, images: torch.Tensor, output_sizes: Sequence[Tuple[int, int]]
    ) -> List[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Rotated boxes (XYWHA, degrees, counter-clockwise) in the pixels of `output_sizes`."""
        self._need("dota", "detect_rotated")
        return rotated_detections(self.model, images, output_sizes)


@register_backend("onnxruntime")
def build_onnxruntime_runner(cfg, weights) -> OnnxRuntimeRunner:
    """`weights`: the export's ``manifest.json`` (or its folder)."""
    path = os.fspath(weights or cfg.MODEL.WEIGHTS)
    directory = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(path) and os.path.basename(path) != "manifest.json":
        raise ValueError(
            f"onnxruntime backend: weights {path!r} must be the manifest.json of an ONNX export "
            "(tools/export_model.py --format onnx)"
        )
    return OnnxRuntimeRunner(cfg, directory)
