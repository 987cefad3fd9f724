"""Data pipeline of the scene-text recognizer: read a word crop, augment (training), resize.

Input dicts come from :mod:`fasttcm.data.datasets.str_lmdb` (``"lmdb_path"`` + ``"image_key"``)
or name an image file (``"file_name"``); both carry ``"text"`` and ``"image_id"``. A dict that also
has ``"word_polygon"`` (:mod:`fasttcm.data.datasets.text_word_crops`: a word of a scene image)
is first cut from its scene: in training its sides move outwards by random multiples of the
word's height drawn from ``INPUT.STR_WORD_CROP.JITTER`` and it is rectified in a layout drawn
from ``INPUT.STR_WORD_CROP.LAYOUTS``, as the text spotter cuts crops
(:mod:`fasttcm.structures.rectification.rectify`); at test time it is rectified as annotated. The
crop is sampled at the recognizer's input size. The output::

    {"image": (3, H, W) uint8 Tensor in INPUT.FORMAT order, (H, W) = MODEL.RECOGNIZER.IMAGE_SIZE,
     "text": str, "image_id": ..., "height": h, "width": w}  # h, w: the stored or cut crop

Crops are squashed to (H, W) with PIL's bicubic resize, as the official ``T.Resize`` on a PIL
image (antialiased when shrinking). Training crops first go through :class:`WordCropRandAugment`
(docs/recognizer.md, "Augmentation"). A crop that cannot be decoded or is empty is never a
crash: in training the mapper returns None and counts it (the train loader's
:class:`~fasttcm.data.retry_dataset.RetryingMapDataset` draws another sample and reports the
skips); at test time it yields a blank image with ``"image_error"`` set, which the evaluator
scores as a miss and reports. The test loader batches crops (``batched_inference``).
"""

import logging
import os
from typing import Callable, Dict, Optional, Sequence, Tuple

import cv2
import lmdb
import numpy as np
import torch
from PIL import Image

from detectron2.config import configurable
from detectron2.utils.logger import log_every_n_seconds

from ..structures.rectification.crop_jitter import jitter_side_polygons
from ..structures.rectification.rectify import LAYOUTS, rectify_polygons
from .build import register_mapper
from .converters.str_lmdb import decode_image_bytes

__all__ = ["WordCropRandAugment", "STRDatasetMapper"]

logger = logging.getLogger(__name__)


def _affine(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    return cv2.warpAffine(
        image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def _blend(image: np.ndarray, other, factor: float) -> np.ndarray:
    """PIL ImageEnhance: other + factor * (image - other), clipped to uint8."""
    out = other + factor * (image.astype(np.float32) - other)
    return np.clip(out, 0, 255).astype(np.uint8)


def _gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _auto_contrast(image, level, sign):
    lo = image.min(axis=(0, 1), keepdims=True).astype(np.float32)
    hi = image.max(axis=(0, 1), keepdims=True).astype(np.float32)
    scale = np.where(hi > lo, 255.0 / np.maximum(hi - lo, 1e-6), 1.0)
    return np.clip((image - np.where(hi > lo, lo, 0.0)) * scale, 0, 255).astype(np.uint8)


def _equalize(image, level, sign):
    return np.stack(
        [cv2.equalizeHist(np.ascontiguousarray(image[..., c])) for c in range(3)], axis=-1
    )


def _invert(image, level, sign):
    return 255 - image


def _rotate(image, level, sign, max_degrees):
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), sign * level * max_degrees, 1.0)
    return _affine(image, matrix)


def _posterize(image, level, sign):
    bits = 4 - int(level * 4)  # timm PosterizeIncreasing
    return image & np.uint8((0xFF << (8 - bits)) & 0xFF) if bits < 8 else image


def _solarize(image, level, sign):
    threshold = 256 - int(level * 256)  # timm SolarizeIncreasing
    return np.where(image >= threshold, 255 - image, image).astype(np.uint8)


def _solarize_add(image, level, sign):
    add = int(level * 110)
    return np.where(image < 128, np.minimum(image.astype(np.int16) + add, 255), image).astype(
        np.uint8
    )


def _color(image, level, sign):
    return _blend(image, _gray(image)[..., None], 1.0 + sign * level * 0.9)


def _contrast(image, level, sign):
    return _blend(image, float(_gray(image).mean()), 1.0 + sign * level * 0.9)


def _brightness(image, level, sign):
    return _blend(image, 0.0, 1.0 + sign * level * 0.9)


def _shear(image, level, sign, max_shear, axis):
    h, w = image.shape[:2]
    s = sign * level * max_shear
    if axis == 0:  # x' = x + s (y - cy): shear about the centre line
        matrix = np.float32([[1, s, -s * h / 2.0], [0, 1, 0]])
    else:
        matrix = np.float32([[1, 0, 0], [s, 1, -s * w / 2.0]])
    return _affine(image, matrix)


def _translate(image, level, sign, max_fraction, axis):
    h, w = image.shape[:2]
    shift = sign * level * max_fraction * (w if axis == 0 else h)
    matrix = np.float32([[1, 0, shift if axis == 0 else 0], [0, 1, shift if axis == 1 else 0]])
    return _affine(image, matrix)


def _gaussian_blur(image, level, sign):
    sigma = level * 2.0
    return cv2.GaussianBlur(image, (0, 0), sigma) if sigma > 0.1 else image


def _poisson_noise(image, level, sign):
    lam = level * 40.0
    noise = np.random.poisson(lam, image.shape).astype(np.float32) - lam
    return np.clip(image + noise, 0, 255).astype(np.uint8)


_LMDB_ENVS: Dict[Tuple[int, str], lmdb.Environment] = {}


def _open_lmdb(path: str) -> lmdb.Environment:
    """A read-only LMDB environment, opened once per process and shared by every mapper in it.

    LMDB forbids opening one environment twice in a process, and a handle must not cross a fork,
    so the cache is keyed by process id (data-loader workers open their own).
    """
    key = (os.getpid(), path)
    if key not in _LMDB_ENVS:
        _LMDB_ENVS[key] = lmdb.open(path, readonly=True, lock=False, readahead=False, meminit=False)
    return _LMDB_ENVS[key]


class WordCropRandAugment:
    """RandAugment for word crops (PARSeq's ``rand_augment_transform``; docs/recognizer.md).

    `num_ops` distinct ops are drawn per crop; each is applied with probability 0.5, at strength
    ``magnitude / 10`` of its range and a random sign. The pool is timm's "increasing" set
    without Sharpness, plus Gaussian blur and Poisson noise. Geometric ops keep the crop size and
    replicate the border.
    """

    def __init__(
        self,
        *,
        num_ops: int = 3,
        magnitude: float = 5.0,
        max_rotation: float = 30.0,
        max_shear: Sequence[float] = (0.9, 0.2),
        max_translate: Sequence[float] = (0.1, 0.3),
        op_prob: float = 0.5,
    ):
        """
        Args:
            num_ops: ops drawn per crop (n).
            magnitude: m in [0, 10].
            max_rotation: rotation in degrees at m = 10.
            max_shear: (x, y) shear factors at m = 10.
            max_translate: (x, y) translation as a fraction of the crop width / height at m = 10.
            op_prob: probability of applying each drawn op.
        """
        if not 0 <= magnitude <= 10:
            raise ValueError(f"WordCropRandAugment: magnitude must be in [0, 10], got {magnitude}")
        self.ops: Dict[str, Callable] = {
            "auto_contrast": _auto_contrast,
            "equalize": _equalize,
            "invert": _invert,
            "rotate": lambda im, lv, sg: _rotate(im, lv, sg, max_rotation),
            "posterize": _posterize,
            "solarize": _solarize,
            "solarize_add": _solarize_add,
            "color": _color,
            "contrast": _contrast,
            "brightness": _brightness,
            "shear_x": lambda im, lv, sg: _shear(im, lv, sg, max_shear[0], 0),
            "shear_y": lambda im, lv, sg: _shear(im, lv, sg, max_shear[1], 1),
            "translate_x": lambda im, lv, sg: _translate(im, lv, sg, max_translate[0], 0),
            "translate_y": lambda im, lv, sg: _translate(im, lv, sg, max_translate[1], 1),
            "gaussian_blur": _gaussian_blur,
            "poisson_noise": _poisson_noise,
        }
        if not 0 <= num_ops <= len(self.ops):
            raise ValueError(
                f"WordCropRandAugment: num_ops must be in [0, {len(self.ops)}], got {num_ops}"
            )
        self.names = sorted(self.ops)
        self.num_ops = num_ops
        self.level = magnitude / 10.0
        self.op_prob = op_prob

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """(h, w, 3) uint8 RGB -> augmented, same shape (numpy global RNG, seeded per worker)."""
        for index in np.random.choice(len(self.names), self.num_ops, replace=False):
            if np.random.random() < self.op_prob:
                sign = 1.0 if np.random.random() < 0.5 else -1.0
                image = self.ops[self.names[index]](image, self.level, sign)
        return np.ascontiguousarray(image)


@register_mapper("str")
class STRDatasetMapper:
    """Map an STR dataset dict to the recognizer's input (see the module docstring)."""

    batched_inference = True  # test loaders batch TEST.STR.BATCH_SIZE crops (data/build.py)

    @configurable
    def __init__(
        self,
        is_train: bool = True,
        *,
        image_size: Tuple[int, int],
        image_format: str = "RGB",
        augmentation: Optional[WordCropRandAugment] = None,
        word_crop_jitter: Tuple[float, float] = (0.0, 0.0),
        word_crop_layouts: Sequence[str] = ("annotated",),
    ):
        """
        Args:
            is_train: training mode (augmentation, None for unreadable crops).
            image_size: (H, W) the crops are resized to.
            image_format: "RGB" or "BGR" channel order of the output.
            augmentation: applied to training crops before resizing.
            word_crop_jitter: (low, high) range of the side offsets of words cut from scenes in
                training, in units of the word's height (positive = outwards).
            word_crop_layouts: rectification layouts a training word cut from a scene is drawn
                from (uniformly); "annotated" follows its polygon, "rectangle" warps its
                minimum-area rectangle (curved words stay curved, as in a spotter's box crops).
        """
        if image_format not in ("RGB", "BGR"):
            raise ValueError(
                f"STRDatasetMapper: image_format must be RGB or BGR, got {image_format!r}"
            )
        low, high = (float(v) for v in word_crop_jitter)
        if low > high:
            raise ValueError(
                f"STRDatasetMapper: word_crop_jitter must be (low, high) with low <= high, got "
                f"{tuple(word_crop_jitter)}"
            )
        unknown = [layout for layout in word_crop_layouts if layout not in LAYOUTS]
        if not word_crop_layouts or unknown:
            raise ValueError(
                f"STRDatasetMapper: word_crop_layouts must name layouts among {LAYOUTS}, got "
                f"{tuple(word_crop_layouts)}"
            )
        self.word_crop_jitter = (low, high)
        self.word_crop_layouts = tuple(word_crop_layouts)
        self.is_train = is_train
        self.image_size = tuple(int(v) for v in image_size)
        self.image_format = image_format
        self.augmentation = augmentation if is_train else None
        self.num_unreadable = 0

    @classmethod
    def from_config(cls, cfg, is_train: bool = True):
        aug_cfg = cfg.INPUT.STR_AUG
        augmentation = None
        if is_train and aug_cfg.ENABLED:
            augmentation = WordCropRandAugment(
                num_ops=aug_cfg.NUM_OPS,
                magnitude=aug_cfg.MAGNITUDE,
                max_rotation=aug_cfg.MAX_ROTATION,
                max_shear=tuple(aug_cfg.MAX_SHEAR),
                max_translate=tuple(aug_cfg.MAX_TRANSLATE),
            )
        return {
            "is_train": is_train,
            "image_size": tuple(cfg.MODEL.RECOGNIZER.IMAGE_SIZE),
            "image_format": cfg.INPUT.FORMAT,
            "augmentation": augmentation,
            "word_crop_jitter": tuple(cfg.INPUT.STR_WORD_CROP.JITTER),
            "word_crop_layouts": tuple(cfg.INPUT.STR_WORD_CROP.LAYOUTS),
        }

    def read_bytes(self, dataset_dict: Dict) -> bytes:
        """The encoded image of a dataset dict (LMDB entry or image file); b"" when absent."""
        if "lmdb_path" in dataset_dict:
            with _open_lmdb(dataset_dict["lmdb_path"]).begin(write=False) as txn:
                data = txn.get(dataset_dict["image_key"].encode())
            return bytes(data) if data is not None else b""
        try:
            with open(dataset_dict["file_name"], "rb") as f:
                return f.read()
        except OSError:
            return b""

    def cut_word(self, scene: np.ndarray, polygon) -> Optional[np.ndarray]:
        """The rectified crop of a word of a scene image (see the module docstring).

        Args:
            scene: (H_s, W_s, 3) uint8 RGB scene image.
            polygon: (K, 2) word polygon (x, y) in absolute pixels of `scene`, annotated layout.

        Returns:
            (h, w, 3) uint8 RGB crop, (h, w) = ``image_size``; None for a polygon that cannot be
            rectified (fewer than 3 vertices, non-finite, or no area).
        """
        polygon = np.asarray(polygon, dtype=np.float64)
        if polygon.ndim != 2 or polygon.shape[1] != 2 or len(polygon) < 3:
            return None
        layout = "annotated"
        if self.is_train:
            # np.random: detectron2 seeds it per data-loader worker
            rng = np.random.default_rng(np.random.randint(2**31 - 1))
            if self.word_crop_jitter != (0.0, 0.0):
                polygon = jitter_side_polygons([polygon], *self.word_crop_jitter, rng)[0][0]
            layout = self.word_crop_layouts[int(rng.integers(len(self.word_crop_layouts)))]
        image = torch.from_numpy(np.ascontiguousarray(scene.transpose(2, 0, 1)))
        cut = rectify_polygons(image[None], [polygon], [0], self.image_size, layout=layout)
        if cut.num_skipped:
            return None
        return cut.crops[0].round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()

    def __call__(self, dataset_dict: Dict) -> Optional[Dict]:
        image = decode_image_bytes(self.read_bytes(dataset_dict), "RGB")
        if image is not None and "word_polygon" in dataset_dict:
            image = self.cut_word(image, dataset_dict["word_polygon"])
        height, width = self.image_size
        out = {"text": dataset_dict.get("text", ""), "image_id": dataset_dict.get("image_id")}
        if image is None:
            self.num_unreadable += 1
            where = dataset_dict.get("lmdb_path", dataset_dict.get("file_name"))
            log_every_n_seconds(
                logging.WARNING,
                f"STRDatasetMapper: {self.num_unreadable} crop(s) missing, undecodable or empty "
                f"so far, e.g. {dataset_dict.get('image_key', '')} in {where}",
                n=30,
                name=__name__,
            )
            if self.is_train:
                return None
            out.update(
                image=torch.zeros(3, height, width, dtype=torch.uint8),
                height=0,
                width=0,
                image_error="unreadable",
            )
            return out
        out.update(height=image.shape[0], width=image.shape[1])
        if self.augmentation is not None:
            image = self.augmentation(image)
        image = np.asarray(Image.fromarray(image).resize((width, height), Image.BICUBIC))
        if self.image_format == "BGR":
            image = image[..., ::-1]
        out["image"] = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        return out
