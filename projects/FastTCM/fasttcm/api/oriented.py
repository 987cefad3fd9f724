"""``OrientedDetector``: oriented objects (DOTA classes) in aerial images.

An image runs whole (resized like the DOTA test mapper) unless its longer side exceeds
``tile_above`` times the patch size ``min(INPUT.MIN_SIZE_TEST, INPUT.MAX_SIZE_TEST)``: then it
is cut like the DOTA split into square patches of that size overlapping by ``tile_gap`` pixels
(default: the single-scale split's 200 per 1024), the part of a patch beyond the image filled with
the split's padding colour; the patches run in batches of ``batch_size`` at their own
resolution, and their detections are moved back to the image and merged by class-wise rotated
NMS at ``TEST.DOTA.MERGE_NMS_THRESH`` (:mod:`fasttcm.evaluation.dota_merge`), as the DOTA
evaluation does.
"""

from typing import List, Tuple

import numpy as np
import torch

from detectron2.data import MetadataCatalog

from ..data.dota_patch_names import format_patch_name
from ..data.dota_split import SplitConfig, window_origins
from ..data.pixel_limit import AERIAL_MAX_IMAGE_PIXELS
from ..evaluation.dota_merge import merge_patch_detections
from ..utils.geometry import xywha_to_poly
from .base import LoadedImage, Predictor
from .results import OrientedInstance, OrientedResult

__all__ = ["OrientedDetector"]

TILE_MODES = ("auto", "always", "never")
Detections = Tuple[np.ndarray, np.ndarray, np.ndarray]  # (N, 5) XYWHA, (N,) scores, (N,) classes


class OrientedDetector(Predictor):
    """Rotated boxes of objects in aerial images (rotated R-CNN on FastTCM-CR50).

    Example::

        from fasttcm import OrientedDetector
        detector = OrientedDetector("DOTA/fasttcm_cr50_fpn_rrcnn_1x_dota10_ss", "model_final.pth")
        for obj in detector("P0006.png"): print(obj.class_name, obj.score, obj.rbox)

    Args:
        config, weights, and the other arguments of :class:`~fasttcm.api.base.Predictor`
        (files are read with the aerial pixel limit unless ``INPUT.MAX_IMAGE_PIXELS`` is set).
        tile: "auto" (the module docstring's rule), "always" or "never".
        tile_gap: overlap of neighbouring patches in pixels (None: the DOTA split's ratio).
        tile_above: "auto" tiles images whose longer side exceeds this many patch sizes.

    Returns (a call):
        an :class:`~fasttcm.api.results.OrientedResult` per image: :class:`OrientedInstance`
        items with ``rbox`` (XYWHA: original-image pixels, degrees, counter-clockwise), its 4
        corners ``polygon``, ``score``, ``class_id`` and ``class_name``, by decreasing score.
    """

    architectures = ("FastTCMRotatedRCNN",)
    default_max_pixels = AERIAL_MAX_IMAGE_PIXELS

    def __init__(
        self,
        config,
        weights,
        *,
        tile: str = "auto",
        tile_gap=None,
        tile_above: float = 1.5,
        **kwargs,
    ):
        super().__init__(config, weights, **kwargs)
        if tile not in TILE_MODES:
            raise ValueError(f"tile must be one of {TILE_MODES}, got {tile!r}")
        self.tile = tile
        self.tile_size = int(min(self.cfg.INPUT.MIN_SIZE_TEST, self.cfg.INPUT.MAX_SIZE_TEST))
        if tile_gap is None:
            tile_gap = SplitConfig.gap * self.tile_size // SplitConfig.patch_size
        if not 0 <= int(tile_gap) < self.tile_size:
            raise ValueError(
                f"tile_gap must be in [0, {self.tile_size}) for patches of {self.tile_size}, "
                f"got {tile_gap}"
            )
        self.tile_gap = int(tile_gap)
        self.tile_above = float(tile_above)
        self.class_names = self._class_names()

    def _class_names(self) -> List[str]:
        """The class names the model was built with (its prompts come from the same metadata)."""
        num_classes = int(self.cfg.MODEL.ROI_HEADS.NUM_CLASSES)
        for dataset in list(self.cfg.DATASETS.TRAIN) + list(self.cfg.DATASETS.TEST):
            names = MetadataCatalog.get(dataset).get("thing_classes", None)
            if names and len(names) == num_classes:
                return [str(n) for n in names]
        return [str(k) for k in range(num_classes)]

    def uses_tiles(self, height: int, width: int) -> bool:
        """Whether an image of this size is cut into patches."""
        if self.tile == "never":
            return False
        return self.tile == "always" or max(height, width) > self.tile_above * self.tile_size

    def _runs_alone(self, rgb: np.ndarray) -> bool:
        return self.uses_tiles(*rgb.shape[:2])  # one large scene at a time, its patches batched

    # ----------------------------------------------------------------------------------------
    def _run(self, inputs: List[torch.Tensor], sizes: List[Tuple[int, int]]) -> List[Detections]:
        outputs: List[Detections] = [None] * len(inputs)
        for batch in self.same_size_batches(inputs):
            images = torch.stack([inputs[i] for i in batch])
            for index, out in zip(
                batch, self.runner.detect_rotated(images, [sizes[i] for i in batch])
            ):
                outputs[index] = out
        return outputs

    def _patches(self, rgb: np.ndarray):
        """Patch origins and ``(3, s, s)`` network inputs of a tiled image."""
        height, width = rgb.shape[:2]
        size = self.tile_size
        fill = np.asarray(SplitConfig.padding_value[::-1], dtype=np.uint8)  # BGR -> RGB
        origins = [
            (x, y)
            for y in window_origins(height, size, self.tile_gap)
            for x in window_origins(width, size, self.tile_gap)
        ]
        tensors = []
        for x0, y0 in origins:
            view = rgb[y0 : y0 + size, x0 : x0 + size]
            patch = np.empty((size, size, 3), dtype=np.uint8)
            patch[...] = fill
            patch[: view.shape[0], : view.shape[1]] = view
            tensors.append(self.network_input(patch))
        return origins, tensors

    def _tiled(self, rgb: np.ndarray) -> Tuple[Detections, int]:
        origins, tensors = self._patches(rgb)
        size = (self.tile_size, self.tile_size)
        names, boxes, scores, classes = [], [], [], []
        for (x0, y0), (b, s, c) in zip(origins, self._run(tensors, [size] * len(tensors))):
            names += [format_patch_name("image", 1.0, x0, y0)] * len(s)
            boxes.append(b)
            scores.append(s)
            classes.append(c)
        merged = merge_patch_detections(
            names,
            np.concatenate(boxes),
            np.concatenate(scores),
            np.concatenate(classes),
            nms_thresh=float(self.cfg.TEST.DOTA.MERGE_NMS_THRESH),
        )
        return (merged.boxes, merged.scores, merged.classes), len(origins)

    def _predict(self, images: List[LoadedImage]) -> List[OrientedResult]:
        tiled = [self.uses_tiles(*rgb.shape[:2]) for rgb, _ in images]
        whole = [i for i, t in enumerate(tiled) if not t]
        detections = dict(
            zip(
                whole,
                self._run(
                    [self.network_input(images[i][0]) for i in whole],
                    [images[i][0].shape[:2] for i in whole],
                ),
            )
        )
        patches = {i: 1 for i in whole}
        for i in (i for i, t in enumerate(tiled) if t):
            detections[i], patches[i] = self._tiled(images[i][0])
        return [
            self._result(detections[i], rgb, source, patches[i])
            for i, (rgb, source) in enumerate(images)
        ]

    def _result(self, detections: Detections, rgb, source, num_patches: int) -> OrientedResult:
        boxes, scores, classes = detections
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
        order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
        corners = xywha_to_poly(boxes).reshape(-1, 4, 2)
        instances = [
            OrientedInstance(
                polygon=[(float(x), float(y)) for x, y in corners[i]],
                score=float(scores[i]),
                class_id=int(classes[i]),
                class_name=self.class_names[int(classes[i])],
                rbox=tuple(float(v) for v in boxes[i]),
            )
            for i in order
        ]
        result = OrientedResult(
            instances,
            (int(rgb.shape[0]), int(rgb.shape[1])),
            list(self.class_names),
            source,
            num_patches,
        )
        return result._attach_image(None if source else rgb)
