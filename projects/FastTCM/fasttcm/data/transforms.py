"""Polygon-aware training augmentations for scene text (detectron2 ``Augmentation`` subclasses).

Coordinates are absolute pixels of the image being transformed; polygons are (N, 2) float arrays
(x, y). The augmentations only produce detectron2/fvcore ``Transform`` objects, so polygons follow
the image through ``Transform.apply_coords`` exactly.
"""

from typing import Sequence, Tuple

import numpy as np
from fvcore.transforms.transform import CropTransform, NoOpTransform, TransformList

from detectron2.data.transforms import Augmentation, ResizeTransform

__all__ = ["RandomScale", "TextInstanceAwareCrop"]


class RandomScale(Augmentation):
    """Rescale the image by a factor drawn uniformly from ``scale_range`` (ImgAug ``scale``)."""

    def __init__(self, scale_range: Tuple[float, float], max_side: int = 4096):
        """
        Args:
            scale_range: (min, max) scale factor.
            max_side: the scaled image's longer side is capped at this many pixels (memory bound).
        """
        super().__init__()
        lo, hi = float(scale_range[0]), float(scale_range[1])
        if not 0 < lo <= hi:
            raise ValueError(f"RandomScale: invalid scale_range {scale_range}")
        self._init(locals())

    def get_transform(self, image):
        h, w = image.shape[:2]
        scale = np.random.uniform(self.scale_range[0], self.scale_range[1])
        scale = min(scale, self.max_side / max(h, w))
        new_h, new_w = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
        if (new_h, new_w) == (h, w):
            return NoOpTransform()
        return ResizeTransform(h, w, new_h, new_w)


def _free_intervals(occupied: np.ndarray) -> np.ndarray:
    """Indices of the False entries of a 1-D occupancy array."""
    return np.flatnonzero(~occupied)


class TextInstanceAwareCrop(Augmentation):
    """Random crop whose borders avoid cutting text (the EastRandomCrop idea of DBNet/MMOCR).

    Text boxes are projected onto the x and y axes; crop borders are drawn only from rows and
    columns that no text box covers, so every instance is either fully inside or fully outside
    the crop whenever such borders exist. After ``max_tries`` failed draws (e.g. the whole image is
    covered by text) the crop is the full image. The crop is then resized so that its longer side
    equals ``crop_size`` (the batch is padded later by ``ImageList``).
    """

    def __init__(self, crop_size: int, min_crop_side_ratio: float = 0.1, max_tries: int = 50):
        """
        Args:
            crop_size: longer side of the output, in pixels.
            min_crop_side_ratio: the crop's sides are at least this fraction of the image's.
            max_tries: attempts before falling back to the full image.
        """
        super().__init__()
        if crop_size <= 0 or not 0 < min_crop_side_ratio <= 1:
            raise ValueError(
                "TextInstanceAwareCrop: crop_size > 0 and 0 < min_crop_side_ratio <= 1"
            )
        self._init(locals())

    def _draw_crop(self, h: int, w: int, boxes: np.ndarray):
        occ_x = np.zeros(w, dtype=bool)
        occ_y = np.zeros(h, dtype=bool)
        if len(boxes):
            b = np.round(boxes).astype(np.int64)
            x0 = np.clip(b[:, 0], 0, w - 1)
            x1 = np.clip(b[:, 2], 0, w - 1)
            y0 = np.clip(b[:, 1], 0, h - 1)
            y1 = np.clip(b[:, 3], 0, h - 1)
            # occupancy through a difference array: vectorized over boxes
            dx = np.zeros(w + 1, dtype=np.int64)
            np.add.at(dx, x0, 1)
            np.add.at(dx, x1 + 1, -1)
            occ_x = np.cumsum(dx[:-1]) > 0
            dy = np.zeros(h + 1, dtype=np.int64)
            np.add.at(dy, y0, 1)
            np.add.at(dy, y1 + 1, -1)
            occ_y = np.cumsum(dy[:-1]) > 0
        free_x, free_y = _free_intervals(occ_x), _free_intervals(occ_y)
        if len(free_x) < 2 or len(free_y) < 2:
            return 0, 0, w, h
        min_w, min_h = self.min_crop_side_ratio * w, self.min_crop_side_ratio * h
        for _ in range(self.max_tries):
            xs = np.sort(np.random.choice(free_x, 2))
            ys = np.sort(np.random.choice(free_y, 2))
            cw, ch = xs[1] - xs[0] + 1, ys[1] - ys[0] + 1
            if cw < min_w or ch < min_h:
                continue
            if len(boxes):
                inside = (
                    (boxes[:, 0] >= xs[0])
                    & (boxes[:, 2] <= xs[1])
                    & (boxes[:, 1] >= ys[0])
                    & (boxes[:, 3] <= ys[1])
                )
                if not inside.any():
                    continue
            return int(xs[0]), int(ys[0]), int(cw), int(ch)
        return 0, 0, w, h

    def get_transform(self, image, boxes):
        """
        Args:
            image: (H, W, C) array.
            boxes: (N, 4) XYXY absolute boxes of the text instances (don't-care regions included,
                so that they are not cut either).
        """
        h, w = image.shape[:2]
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        x0, y0, cw, ch = self._draw_crop(h, w, boxes)
        crop = CropTransform(x0, y0, cw, ch)
        scale = self.crop_size / max(cw, ch)
        new_w, new_h = max(1, int(round(cw * scale))), max(1, int(round(ch * scale)))
        return TransformList([crop, ResizeTransform(ch, cw, new_h, new_w)])


def polygons_to_boxes(polygons: Sequence[np.ndarray]) -> np.ndarray:
    """(N, 4) XYXY bounds of a list of (K_i, 2) polygons."""
    if not len(polygons):
        return np.zeros((0, 4), dtype=np.float64)
    return np.stack([np.concatenate([p.min(axis=0), p.max(axis=0)]) for p in polygons])
