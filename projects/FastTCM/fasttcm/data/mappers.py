"""Dataset mappers: dataset dicts -> model inputs.

``TextDatasetMapper`` serves the text detector, the spotter and their evaluation. Polygons are
absolute pixel coordinates (x, y) of the image as the model sees it after augmentation; "height"
and "width" keep the original size so that predictions are rescaled back to it.
"""

import copy
import logging
from typing import List, Optional

import numpy as np
import torch

from detectron2.config import configurable
from detectron2.data import transforms as T
from detectron2.structures import Instances

from ..structures.text import DONT_CARE_TEXT
from .build import register_mapper
from .db_targets import make_db_targets
from .db_targets_official import make_db_targets_official
from .image_mapper import ImageDatasetMapper
from .transforms import RandomScale, TextInstanceAwareCrop, build_test_resize, polygons_to_boxes

__all__ = [
    "DB_TARGET_IMPLEMENTATIONS",
    "TextDatasetMapper",
    "build_text_train_augmentations",
    "build_text_test_augmentations",
    "db_target_kwargs",
]

# INPUT.DB_TARGETS_IMPL -> the function that makes the DB target maps of one image
DB_TARGET_IMPLEMENTATIONS = {
    "official": make_db_targets_official,  # MMOCR 0.4 DBNetTargets, as TCM-DBNet trains
    "shapely": make_db_targets,  # the project's exact pixel-centre raster
}

logger = logging.getLogger(__name__)


def build_text_train_augmentations(cfg) -> List[T.Augmentation]:
    """Training augmentation of docs/model.md, "Training recipe": rotation, rescale,
    instance-aware crop, colour jitter. No flip: mirrored text is not text a recognizer can
    read."""
    a = cfg.INPUT.TEXT_AUG
    augs: List[T.Augmentation] = []
    if a.ROTATION > 0:
        augs.append(T.RandomRotation([-a.ROTATION, a.ROTATION], expand=True))
    lo, hi = a.SCALE_RANGE
    if (lo, hi) != (1.0, 1.0):
        augs.append(RandomScale((lo, hi)))
    augs.append(TextInstanceAwareCrop(a.CROP_SIZE, min_crop_side_ratio=a.CROP_MIN_RATIO))
    if a.BRIGHTNESS > 0:
        augs.append(T.RandomBrightness(1.0 - a.BRIGHTNESS, 1.0 + a.BRIGHTNESS))
    if a.SATURATION > 0:
        augs.append(T.RandomSaturation(1.0 - a.SATURATION, 1.0 + a.SATURATION))
    return augs


def build_text_test_augmentations(cfg) -> List[T.Augmentation]:
    """Test-time resize: shorter side to INPUT.MIN_SIZE_TEST, longer side at most MAX_SIZE_TEST,
    pixels resized by INPUT.RESIZE_BACKEND (:func:`~fasttcm.data.transforms.build_test_resize`)."""
    return [build_test_resize(cfg)]


def _annotation_polygon(anno, file_name) -> np.ndarray:
    seg = anno.get("segmentation")
    if not seg or len(seg[0]) < 6 or len(seg[0]) % 2:
        raise ValueError(f"{file_name}: annotation without a valid polygon: {anno}")
    return np.asarray(seg[0], dtype=np.float64).reshape(-1, 2)


def db_target_kwargs(cfg) -> dict:
    """The keyword arguments of the DB target makers (:data:`DB_TARGET_IMPLEMENTATIONS`) that
    ``MODEL.DB_HEAD`` sets: shrink ratio, threshold-map range and minimum text size."""
    h = cfg.MODEL.DB_HEAD
    return dict(
        shrink_ratio=h.SHRINK_RATIO,
        thresh_min=h.THRESH_MIN,
        thresh_max=h.THRESH_MAX,
        min_text_size=h.MIN_TEXT_SIZE,
    )


@register_mapper("text")
class TextDatasetMapper(ImageDatasetMapper):
    """Read the image, augment image and polygons together, build DB targets (training).

    Output dict (in addition to the input's "file_name", "image_id", "height", "width"):

    * "image": uint8 Tensor (3, H, W) in ``INPUT.FORMAT`` channel order.
    * "instances": :class:`Instances` of size (H, W) with ``gt_polygons`` (list of (K_i, 2)
      float32 arrays), ``gt_texts`` (list of str) and ``gt_ignore`` (bool Tensor (N,)); instances
      that fell outside the augmented image are dropped, partly outside ones become don't-care.
    * "db_targets" (training only): float32 Tensors (H, W) "shrink_map", "shrink_mask",
      "thresh_map", "thresh_mask" (DBNet targets, shrink ratio r), made by the implementation
      ``INPUT.DB_TARGETS_IMPL`` names in :data:`DB_TARGET_IMPLEMENTATIONS`.
    """

    @configurable
    def __init__(
        self,
        is_train: bool,
        *,
        db_target_kwargs: Optional[dict] = None,
        db_targets_impl: str = "official",
        **kwargs,
    ):
        """
        Args:
            is_train: training mode (builds targets, keeps annotations).
            db_target_kwargs: keyword arguments of the DB target maker; None = no DB targets.
            db_targets_impl: key of :data:`DB_TARGET_IMPLEMENTATIONS` ("official" or "shapely").
            kwargs: ``augmentations`` (applied in order to image and polygons), ``image_format``
                and ``max_image_pixels`` (0: the reader's limit,
                :func:`~fasttcm.data.pixel_limit.get_max_image_pixels`) of
                :class:`~fasttcm.data.image_mapper.ImageDatasetMapper`.
        """
        if db_targets_impl not in DB_TARGET_IMPLEMENTATIONS:
            raise ValueError(
                f"mappers.TextDatasetMapper: INPUT.DB_TARGETS_IMPL {db_targets_impl!r} is not one "
                f"of {sorted(DB_TARGET_IMPLEMENTATIONS)}."
            )
        self.db_target_kwargs = db_target_kwargs
        self.make_db_targets = DB_TARGET_IMPLEMENTATIONS[db_targets_impl]
        super().__init__(is_train, **kwargs)

    def _log_augmentations(self, augmentations: List[T.Augmentation]) -> None:
        mode = "training" if self.is_train else "inference"
        logger.info(f"[TextDatasetMapper] augmentations used in {mode}: {augmentations}")

    @classmethod
    def from_config(cls, cfg, is_train: bool = True):
        if is_train and cfg.INPUT.TEXT_AUG.ENABLED:
            augs = build_text_train_augmentations(cfg)
        elif is_train:
            augs = [TextInstanceAwareCrop(cfg.INPUT.TEXT_AUG.CROP_SIZE, min_crop_side_ratio=1.0)]
        else:
            augs = build_text_test_augmentations(cfg)
        db_kwargs = db_target_kwargs(cfg) if is_train and cfg.INPUT.DB_TARGETS else None
        return {
            "is_train": is_train,
            "augmentations": augs,
            "image_format": cfg.INPUT.FORMAT,
            "db_target_kwargs": db_kwargs,
            "db_targets_impl": cfg.INPUT.DB_TARGETS_IMPL,
            "max_image_pixels": cfg.INPUT.MAX_IMAGE_PIXELS,
        }

    def __call__(self, dataset_dict):
        dataset_dict = copy.deepcopy(dataset_dict)
        file_name = dataset_dict["file_name"]
        image = self._read_image(dataset_dict)

        annos = dataset_dict.pop("annotations", None)
        if not self.is_train:
            aug_input = T.AugInput(image)
            self.augmentations(aug_input)
            dataset_dict["image"] = _to_chw_tensor(aug_input.image)
            return dataset_dict

        annos = annos or []
        polygons = [_annotation_polygon(a, file_name) for a in annos]
        ignore = [bool(a.get("ignore", False)) or a.get("text") == DONT_CARE_TEXT for a in annos]
        texts = [a.get("text", "") for a in annos]

        aug_input = T.AugInput(image, boxes=polygons_to_boxes(polygons))
        transforms = self.augmentations(aug_input)
        image = aug_input.image
        h, w = image.shape[:2]

        kept_polys, kept_ignore, kept_texts = [], [], []
        for poly, ign, text in zip(polygons, ignore, texts):
            p = transforms.apply_coords(poly.copy())
            inside = (p[:, 0] >= 0) & (p[:, 0] <= w) & (p[:, 1] >= 0) & (p[:, 1] <= h)
            if not inside.any():
                continue  # the instance left the image
            if not inside.all():
                ign = True  # cut by the border: don't care, never a target for a wrong shape
                p[:, 0] = np.clip(p[:, 0], 0, w)
                p[:, 1] = np.clip(p[:, 1], 0, h)
            kept_polys.append(p.astype(np.float32))
            kept_ignore.append(ign)
            kept_texts.append(text)

        dataset_dict["image"] = _to_chw_tensor(image)
        inst = Instances((h, w))
        inst.gt_polygons = kept_polys
        inst.gt_texts = kept_texts
        inst.gt_ignore = torch.tensor(kept_ignore, dtype=torch.bool)
        dataset_dict["instances"] = inst
        if self.db_target_kwargs is not None:
            targets = self.make_db_targets(kept_polys, kept_ignore, h, w, **self.db_target_kwargs)
            dataset_dict["db_targets"] = {k: torch.as_tensor(v) for k, v in targets.items()}
        return dataset_dict


def _to_chw_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
