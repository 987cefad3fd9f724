"""``DOTADatasetMapper``: DOTA-style dataset dicts (XYWHA boxes) -> rotated R-CNN inputs.

Boxes are detectron2 XYWHA_ABS (cx, cy, w, h, angle in degrees, counter-clockwise) throughout;
detectron2's transforms move them with ``apply_rotated_box`` (flips, resizes, 90-degree rotations).
"""

import copy

import numpy as np
import torch
from fvcore.transforms.transform import VFlipTransform

from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T
from detectron2.structures import BoxMode

from .build import register_mapper
from .image_mapper import ImageDatasetMapper
from .pixel_limit import AERIAL_MAX_IMAGE_PIXELS
from .transforms import build_test_resize

__all__ = ["DOTADatasetMapper"]


def _vflip_rotated_box(transform: VFlipTransform, boxes: np.ndarray) -> np.ndarray:
    """Vertical flip of (N, 5) XYWHA boxes: cy -> H - cy, angle -> -angle (detectron2 convention).

    detectron2 v0.6 registers ``apply_rotated_box`` for horizontal flips but not for vertical
    ones; this is the mirror image of its ``HFlip_rotated_box``.
    """
    boxes = np.array(boxes, dtype=np.float64, copy=True)
    boxes[:, 1] = transform.height - boxes[:, 1]
    boxes[:, 4] = -boxes[:, 4]
    return boxes


if not hasattr(VFlipTransform, "apply_rotated_box"):  # adds a missing method, changes nothing else
    VFlipTransform.register_type("rotated_box", _vflip_rotated_box)


@register_mapper("dota")
class DOTADatasetMapper(ImageDatasetMapper):
    """Read a (patch) image, apply flips/resizing to image and rotated boxes, build ``Instances``
    with ``gt_boxes`` (RotatedBoxes) and ``gt_classes`` (training).

    Arguments: those of :class:`~fasttcm.data.image_mapper.ImageDatasetMapper`; the augmentations
    also move the rotated boxes, and ``max_image_pixels=0`` stands for
    :data:`~fasttcm.data.pixel_limit.AERIAL_MAX_IMAGE_PIXELS` (aerial scenes).
    """

    default_max_pixels = AERIAL_MAX_IMAGE_PIXELS

    @classmethod
    def from_config(cls, cfg, is_train: bool = True):
        if is_train:
            augs = [
                T.ResizeShortestEdge(
                    cfg.INPUT.MIN_SIZE_TRAIN,
                    cfg.INPUT.MAX_SIZE_TRAIN,
                    cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING,
                )
            ]
            if cfg.INPUT.RANDOM_FLIP != "none":
                augs.append(T.RandomFlip(horizontal=True, vertical=False))
                augs.append(T.RandomFlip(horizontal=False, vertical=True))
        else:
            augs = [build_test_resize(cfg)]
        return {
            "is_train": is_train,
            "augmentations": augs,
            "image_format": cfg.INPUT.FORMAT,
            "max_image_pixels": cfg.INPUT.MAX_IMAGE_PIXELS,
        }

    def __call__(self, dataset_dict):
        dataset_dict = copy.deepcopy(dataset_dict)
        image = self._read_image(dataset_dict)
        aug_input = T.AugInput(image)
        transforms = self.augmentations(aug_input)
        image = aug_input.image
        dataset_dict["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        annos = dataset_dict.pop("annotations", None)
        if not self.is_train:
            return dataset_dict
        out = []
        for anno in annos or []:
            if anno.get("bbox_mode") != BoxMode.XYWHA_ABS:
                raise ValueError(
                    f"{dataset_dict['file_name']}: DOTA annotations must be "
                    f"XYWHA_ABS, got {anno.get('bbox_mode')}"
                )
            anno = dict(anno)
            anno.pop("segmentation", None)
            anno["bbox"] = transforms.apply_rotated_box(
                np.asarray([anno["bbox"]], dtype=np.float64)
            )[0]
            out.append(anno)
        instances = utils.annotations_to_instances_rotated(out, image.shape[:2])
        dataset_dict["instances"] = instances[instances.gt_boxes.nonempty()]
        return dataset_dict
