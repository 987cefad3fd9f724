"""Polygon-aware training augmentations for scene text and the test-time resize (detectron2
``Augmentation`` subclasses).

Coordinates are absolute pixels of the image being transformed; polygons are (N, 2) float arrays
(x, y). The augmentations only produce detectron2/fvcore ``Transform`` objects, so polygons follow
the image through ``Transform.apply_coords`` exactly.
"""

from typing import Sequence, Tuple, Union

import cv2
import numpy as np
from fvcore.transforms.transform import CropTransform, NoOpTransform, TransformList
from PIL import Image

from detectron2.data.transforms import Augmentation, ResizeShortestEdge, ResizeTransform

__all__ = [
    "RESIZE_BACKENDS",
    "Cv2ResizeShortestEdge",
    "Cv2ResizeTransform",
    "RandomScale",
    "TextInstanceAwareCrop",
    "build_test_resize",
    "make_test_resize",
]

# PIL resampling filter (detectron2's ``interp`` convention) -> the cv2 interpolation flag
_PIL_TO_CV2_INTERP = {
    Image.NEAREST: cv2.INTER_NEAREST,
    Image.BILINEAR: cv2.INTER_LINEAR,
    Image.BICUBIC: cv2.INTER_CUBIC,
    Image.LANCZOS: cv2.INTER_LANCZOS4,
}
# dtypes cv2.resize interpolates (every dtype works with INTER_NEAREST)
_CV2_INTERP_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)


class Cv2ResizeTransform(ResizeTransform):
    """detectron2's ``ResizeTransform`` with the pixels resized by ``cv2.resize``, as mmcv's
    ``imresize`` (cv2 backend) does in the official MMOCR test pipeline.

    Frames and shapes: an image of (h, w) rows x columns, shaped (h, w) or (h, w, C) with C up
    to cv2's 512 (1, 3 and 4 included), becomes (new_h, new_w) or (new_h, new_w, C) of the same
    dtype.
    Coordinates are those of detectron2's continuous frame (pixel (i, j) is the square
    [j, j+1) x [i, i+1)); ``apply_coords`` is detectron2's: x * new_w / w, y * new_h / h. cv2's
    INTER_LINEAR samples the source at (j' + 0.5) * w / new_w - 0.5, i.e. in that same frame, with
    two taps per axis (no antialiasing on downscale, unlike PIL's bilinear filter).

    ``interp`` keeps detectron2's convention, a PIL filter: ``Image.BILINEAR`` (default) ->
    ``cv2.INTER_LINEAR``, ``Image.NEAREST`` (what ``apply_segmentation`` passes) ->
    ``cv2.INTER_NEAREST``, ``Image.BICUBIC`` -> ``cv2.INTER_CUBIC``, ``Image.LANCZOS`` ->
    ``cv2.INTER_LANCZOS4``.

    dtypes: uint8, uint16, int16, float32 and float64 go to cv2 as they are; float16 is
    interpolated in float32 and cast back; other dtypes (bool, int32, ...) only with
    nearest-neighbour sampling.
    """

    def apply_image(self, img: np.ndarray, interp=None) -> np.ndarray:
        """
        Args:
            img: (h, w) or (h, w, C) array.
            interp: a PIL filter overriding ``self.interp``.

        Returns:
            (new_h, new_w) or (new_h, new_w, C) array of ``img``'s dtype.
        """
        if img.shape[:2] != (self.h, self.w):
            raise ValueError(
                f"Cv2ResizeTransform: image of shape {img.shape}, expected "
                f"({self.h}, {self.w}, ...)"
            )
        if img.ndim not in (2, 3):
            raise ValueError(f"Cv2ResizeTransform: expected (h, w) or (h, w, C), got {img.shape}")
        method = interp if interp is not None else self.interp
        if method not in _PIL_TO_CV2_INTERP:
            raise ValueError(
                f"Cv2ResizeTransform: no cv2 equivalent of the PIL filter {method!r} "
                "(NEAREST, BILINEAR, BICUBIC and LANCZOS have one)"
            )
        flag = _PIL_TO_CV2_INTERP[method]
        dtype = img.dtype
        src = np.ascontiguousarray(img)
        if flag != cv2.INTER_NEAREST and dtype not in _CV2_INTERP_DTYPES:
            if dtype != np.float16:
                raise TypeError(
                    f"Cv2ResizeTransform: cv2 interpolates uint8, uint16, int16 and float "
                    f"images, not {dtype} (use nearest-neighbour sampling)"
                )
            src = src.astype(np.float32)
        out = cv2.resize(src, (self.new_w, self.new_h), interpolation=flag)
        if img.ndim == 3 and out.ndim == 2:  # cv2 drops a single channel axis
            out = out[:, :, None]
        return out.astype(dtype, copy=False)

    def inverse(self) -> "Cv2ResizeTransform":
        return Cv2ResizeTransform(self.new_h, self.new_w, self.h, self.w, self.interp)


class Cv2ResizeShortestEdge(ResizeShortestEdge):
    """detectron2's ``ResizeShortestEdge`` (same arguments, same sampled sizes and output shape)
    whose transforms are :class:`Cv2ResizeTransform`: the image (h, w) becomes
    ``ResizeShortestEdge.get_output_shape(h, w, short, max_size)``, resized by cv2."""

    def get_transform(self, image):
        transform = super().get_transform(image)
        if isinstance(transform, ResizeTransform):
            t = transform
            return Cv2ResizeTransform(t.h, t.w, t.new_h, t.new_w, t.interp)
        return transform  # NoOpTransform (a short edge length of 0)


RESIZE_BACKENDS = {"pil": ResizeShortestEdge, "cv2": Cv2ResizeShortestEdge}
"""``INPUT.RESIZE_BACKEND`` -> the test resize augmentation: "pil" (detectron2, PIL bilinear on
uint8) or "cv2" (cv2.resize INTER_LINEAR, as the official MMOCR pipeline)."""


def make_test_resize(
    short_edge_length: Union[int, Sequence[int]], max_size: int, backend: str = "pil"
) -> ResizeShortestEdge:
    """The test-time resize: shorter side to `short_edge_length` (an int, or lengths one of which
    is drawn), longer side at most `max_size`, pixels resized by `backend` (a key of
    :data:`RESIZE_BACKENDS`).

    Raises:
        ValueError: `backend` is not a key of :data:`RESIZE_BACKENDS`.
    """
    if backend not in RESIZE_BACKENDS:
        raise ValueError(
            f"INPUT.RESIZE_BACKEND must be one of {sorted(RESIZE_BACKENDS)}, got {backend!r}"
        )
    return RESIZE_BACKENDS[backend](short_edge_length, max_size, "choice")


def build_test_resize(cfg) -> ResizeShortestEdge:
    """The test-time resize of the text (detector, spotter) and DOTA test mappers and of the
    predictors: ``INPUT.MIN_SIZE_TEST``, ``INPUT.MAX_SIZE_TEST``, ``INPUT.RESIZE_BACKEND``
    (:func:`make_test_resize`)."""
    i = cfg.INPUT
    return make_test_resize(i.MIN_SIZE_TEST, i.MAX_SIZE_TEST, i.RESIZE_BACKEND)


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
