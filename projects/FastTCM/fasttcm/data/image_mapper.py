"""What the text and DOTA mappers share: the image read under the pixel limit, the augmentations."""

import logging
from typing import List, Optional

import numpy as np

from detectron2.config import configurable
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T

from .image_io import read_image
from .pixel_limit import Limit, config_pixel_limit

__all__ = ["ImageDatasetMapper"]


class ImageDatasetMapper:
    """Base of the detection mappers: their settings, the image read and the log of the setup.

    Subclasses provide ``from_config`` (the keyword arguments of ``__init__``) and ``__call__``.

    Attributes:
        default_max_pixels: the pixel limit ``max_image_pixels=0`` stands for (None:
            :func:`fasttcm.data.pixel_limit.get_max_image_pixels` at each read).
    """

    default_max_pixels: Optional[Limit] = None

    @configurable
    def __init__(
        self,
        is_train: bool,
        *,
        augmentations: List[T.Augmentation],
        image_format: str,
        max_image_pixels: int = 0,
    ):
        """
        Args:
            is_train: training mode (keeps and transforms the annotations).
            augmentations: applied in order to the image and its annotations.
            image_format: detectron2 image format ("RGB" for CLIP backbones).
            max_image_pixels: largest width * height read (``INPUT.MAX_IMAGE_PIXELS``); a larger
                image raises :class:`~fasttcm.data.image_io.ImageTooLargeError` naming the file.
                0: :attr:`default_max_pixels`.
        """
        self.is_train = is_train
        self.augmentations = T.AugmentationList(augmentations)
        self.image_format = image_format
        self.max_pixels = config_pixel_limit(max_image_pixels, self.default_max_pixels)
        self._log_augmentations(augmentations)

    def _log_augmentations(self, augmentations: List[T.Augmentation]) -> None:
        """Log the augmentations, through the logger of the subclass's module."""
        logging.getLogger(type(self).__module__).info(
            f"[{type(self).__name__}] augmentations: {augmentations}"
        )

    def _read_image(self, dataset_dict: dict) -> np.ndarray:
        """The image of `dataset_dict` ("file_name"), checked against its "height" and "width"."""
        image = read_image(dataset_dict["file_name"], self.image_format, max_pixels=self.max_pixels)
        utils.check_image_size(dataset_dict, image)
        return image
