"""What every predictor shares: construction from a config and weights, input handling,
chunking, the test-time resize and same-size batching."""

import os
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from detectron2.data import transforms as T

from ..data.pixel_limit import config_pixel_limit
from ..data.transforms import build_test_resize
from .backends import build_runner
from .config_files import build_predictor_config
from .images import CHANNEL_ORDERS, as_image_list, to_rgb

__all__ = ["Predictor", "LoadedImage"]

LoadedImage = Tuple[np.ndarray, Optional[str]]
"""``(rgb, source)``: an ``(H, W, 3)`` uint8 RGB image and its path (None for arrays)."""


class Predictor:
    """Base of the predictors: ``predictor(image)`` -> one result, ``predictor([images])`` ->
    a list of results.

    Args:
        config: a config file, or a name relative to the project's configs folder, ``.yaml``
            optional (:func:`~fasttcm.api.config_files.get_config_file`).
        weights: the trained weights (required: weights that leave any model tensor missing
            or mis-shaped are refused).
        device: where the model runs ("cpu", "cuda", "cuda:1", ...).
        opts: config overrides, ``[KEY, VALUE, ...]`` (e.g. ``["TEST.TEXT.MASK_THRESH",
            0.2]``).
        backend: who runs the network (:mod:`fasttcm.api.backends`): "torch" (default), or
            another registered backend (e.g. "onnxruntime", whose weights are an export's
            ``manifest.json``).
        channel_order: channel order of numpy array inputs, ``"RGB"`` (default) or ``"BGR"``
            (``cv2.imread``); a call may override it.
        batch_size: at most this many images are held and run at once; images of the same
            size after the test resize go through the network together.
        max_pixels: pixel limit of image files (None: the config's ``INPUT.MAX_IMAGE_PIXELS``,
            else the reader's default).

    Raises:
        FileNotFoundError: the config or the weights file does not exist.
        ValueError: the config builds a model this predictor does not serve, or a bad argument.
        fasttcm.engine.IncompleteWeightsError: the weights leave the model partly random.
    """

    architectures: Tuple[str, ...] = ()
    """``MODEL.META_ARCHITECTURE`` values this predictor serves."""

    default_max_pixels = None
    """Pixel limit of files when ``INPUT.MAX_IMAGE_PIXELS`` is 0 (None: the reader's)."""

    def __init__(
        self,
        config: Union[str, os.PathLike],
        weights: Optional[Union[str, os.PathLike]],
        *,
        device: str = "cpu",
        opts: Optional[Sequence[Any]] = None,
        backend: str = "torch",
        channel_order: str = "RGB",
        batch_size: int = 4,
        max_pixels=None,
    ):
        if channel_order not in CHANNEL_ORDERS:
            raise ValueError(
                f"channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}"
            )
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.cfg = build_predictor_config(config, weights, device=device, opts=opts)
        architecture = self.cfg.MODEL.META_ARCHITECTURE
        if architecture not in self.architectures:
            raise ValueError(
                f"{type(self).__name__}: config {config!s} builds {architecture}, this predictor "
                f"serves {', '.join(self.architectures)}" + self._other_predictor_hint(architecture)
            )
        if self.cfg.INPUT.FORMAT not in CHANNEL_ORDERS:
            raise ValueError(
                f"config {config!s}: INPUT.FORMAT must be RGB or BGR, got {self.cfg.INPUT.FORMAT}"
            )
        self.backend = backend
        self.channel_order = channel_order
        self.batch_size = int(batch_size)
        self.max_pixels = max_pixels if max_pixels is not None else self._config_pixel_limit()
        self.runner = build_runner(backend, self.cfg, weights)

    # --------------------------------------------------------------------------------- hooks
    def _predict(self, images: List[LoadedImage]) -> List[Any]:
        """Results for at most ``batch_size`` loaded images."""
        raise NotImplementedError

    def _runs_alone(self, rgb: np.ndarray) -> bool:
        """Whether this image is predicted on its own rather than held with up to
        ``batch_size - 1`` others (bounds memory for very large images)."""
        return False

    def _config_pixel_limit(self):
        return config_pixel_limit(self.cfg.INPUT.MAX_IMAGE_PIXELS, self.default_max_pixels)

    # ------------------------------------------------------------------------------- calling
    def __call__(self, inputs, channel_order: Optional[str] = None):
        """Predict on one image or a list of images.

        Args:
            inputs: a path, a numpy array ``(H, W, 3)`` uint8, a PIL image, or a list/tuple of
                them (:mod:`fasttcm.api.images`).
            channel_order: channel order of numpy arrays, ``"RGB"`` or ``"BGR"`` (default: the
                predictor's, ``"RGB"`` unless constructed otherwise).

        Returns:
            one result for one image, a list of results (same order) for a list.
        """
        order = channel_order or self.channel_order
        items, single = as_image_list(inputs)
        results: List[Any] = []
        chunk: List[LoadedImage] = []
        for index, item in enumerate(items):
            loaded = to_rgb(item, order, max_pixels=self.max_pixels, name=f"image {index}")
            if self._runs_alone(loaded[0]):  # e.g. a large scene cut into patches
                results.extend(self._predict(chunk) if chunk else [])
                chunk = []
                results.extend(self._predict([loaded]))
                continue
            chunk.append(loaded)
            if len(chunk) == self.batch_size:
                results.extend(self._predict(chunk))
                chunk = []
        if chunk:
            results.extend(self._predict(chunk))
        return results[0] if single else results

    # ------------------------------------------------------------------------------- helpers
    def _test_resize(self) -> T.Augmentation:
        """The test mappers' resize: shorter side to ``INPUT.MIN_SIZE_TEST``, longer side at
        most ``INPUT.MAX_SIZE_TEST``, pixels resized by ``INPUT.RESIZE_BACKEND``."""
        if not hasattr(self, "_resize"):
            self._resize = build_test_resize(self.cfg)
        return self._resize

    def network_input(self, rgb: np.ndarray, resize: bool = True) -> torch.Tensor:
        """``(3, h, w)`` uint8 tensor of an RGB image as the test mapper makes it: channels in
        ``INPUT.FORMAT`` order, resized by the test resize (unless `resize` is False)."""
        image = rgb[:, :, ::-1] if self.cfg.INPUT.FORMAT == "BGR" else rgb
        if resize:
            image = self._test_resize().get_transform(image).apply_image(image)
        return torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))

    def same_size_batches(self, tensors: Sequence[torch.Tensor]) -> Iterator[List[int]]:
        """Indices of `tensors` grouped by shape, in order of first appearance, each group at
        most ``batch_size`` long: the batches that go through the network as one tensor."""
        groups: Dict[Tuple[int, ...], List[int]] = {}
        for index, tensor in enumerate(tensors):
            groups.setdefault(tuple(tensor.shape), []).append(index)
        for indices in groups.values():
            for start in range(0, len(indices), self.batch_size):
                yield indices[start : start + self.batch_size]

    @staticmethod
    def _other_predictor_hint(architecture: str) -> str:
        hints = {
            "FastTCMTextDetector": "TextDetector",
            "FastTCMTextSpotter": "TextSpotter (or TextDetector / TextRecognizer for its parts)",
            "FastTCMTextRecognizer": "TextRecognizer",
            "FastTCMRotatedRCNN": "OrientedDetector",
        }
        return f"; use fasttcm.{hints[architecture]}" if architecture in hints else ""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.cfg.MODEL.META_ARCHITECTURE}, backend={self.backend!r}, "
            f"device={self.cfg.MODEL.DEVICE!r})"
        )
