"""The seam between the predictors and what runs the network: backends and their runners.

A predictor does everything around the network itself, the same for every backend: reading and
resizing images, batching, the DB post-processing (contours -> polygons,
:class:`~fasttcm.modeling.text_heads.postprocess.DBPostprocessor`), rectifying word crops,
filtering, patch merging for large aerial scenes, and the results. The network runs in a
*runner*, built by a backend factory registered under a name (``backend="torch"``)::

    @register_backend("mine")
    def build_my_runner(cfg, weights):  # frozen config, weights file(s) as the user gave them
        return MyRunner(...)

A runner offers the methods of the tasks it serves; every array it returns is on the CPU:

``maps(images, all_maps=False) -> {"prob": (B, H, W) float32, ...}`` (text detectors, spotters)
    `images`: ``(B, 3, H, W)`` uint8 tensor, one size, pixel values 0-255 in the config's
    ``INPUT.FORMAT`` channel order, already resized by the test resize (any H, W: the runner
    normalises, pads to its size divisibility with zeros after normalisation, and crops the maps
    back). ``"prob"``: the DB probability map at the input's resolution; ``"thresh"`` and
    ``"binary"`` are added with ``all_maps=True``.
``read(crops) -> (texts, scores)`` (spotters and recognizers)
    `crops`: ``(M, 3, h, w)`` float32 RGB 0-255 at :attr:`recognizer_input_size`; returns M
    strings over the recognizer's charset and an ``(M,)`` float32 array of confidences (product
    of the per-character maximum probabilities, EOS included).
``detect_rotated(images, output_sizes) -> [(boxes, scores, classes), ...]`` (rotated R-CNN)
    `images` as for ``maps``; per image the ``(N, 5)`` XYWHA boxes (degrees, counter-clockwise)
    in the pixels of ``output_sizes[i] = (height, width)``, ``(N,)`` scores and int64 classes.

Attributes: ``meta_architecture`` (the config's), ``recognizer_input_size`` (``(h, w)`` for
spotters and recognizers, else None).
"""

from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import torch

from ..engine.predictor import FastTCMPredictor

__all__ = ["register_backend", "build_runner", "available_backends", "TorchRunner"]

_BACKENDS: Dict[str, Callable] = {}


def register_backend(name: str):
    """Decorator: register ``factory(cfg, weights) -> runner`` as backend `name`."""

    def decorator(factory: Callable) -> Callable:
        if name in _BACKENDS:
            raise KeyError(f"a predictor backend named {name!r} is already registered")
        _BACKENDS[name] = factory
        return factory

    return decorator


def available_backends() -> List[str]:
    """The registered backend names."""
    return sorted(_BACKENDS)


def build_runner(backend: str, cfg, weights):
    """The runner of `backend` for a frozen config and the user's weights.

    Raises:
        ValueError: no backend of that name is registered.
    """
    if backend not in _BACKENDS:
        raise ValueError(
            f"unknown predictor backend {backend!r}; registered: {available_backends()} "
            "(another backend registers itself with fasttcm.api.register_backend)"
        )
    return _BACKENDS[backend](cfg, weights)


class TorchRunner:
    """The PyTorch model of a config in eval mode, its weights loaded strictly.

    Built through :class:`~fasttcm.engine.predictor.FastTCMPredictor`: ``MODEL.WEIGHTS`` is read
    without running code, and weights that leave any parameter or buffer missing or mis-shaped
    are refused (:class:`~fasttcm.engine.checkpoint.IncompleteWeightsError`). Each method runs
    the same modules as the model's own ``inference``.
    """

    def __init__(self, cfg):
        self.model = FastTCMPredictor(cfg).model
        self.meta_architecture = cfg.MODEL.META_ARCHITECTURE
        recognizer = getattr(self.model, "recognizer", None)
        self.recognizer_input_size = (
            tuple(int(s) for s in recognizer.input_size) if recognizer is not None else None
        )

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def maps(self, images: torch.Tensor, all_maps: bool = False) -> Dict[str, np.ndarray]:
        """DB maps of a batch (module docstring): the detector's normalisation and padding
        (``preprocess_image``), backbone and DB head."""
        model = self.model
        padded = model.preprocess_image([{"image": image} for image in images])
        features, _ = model.extract_features(padded.tensor)
        maps, _ = model.text_head(features, return_all_maps=all_maps)
        height, width = images.shape[-2:]
        return {
            name: value[:, 0, :height, :width].float().cpu().numpy() for name, value in maps.items()
        }

    @torch.no_grad()
    def read(self, crops: torch.Tensor) -> Tuple[List[str], np.ndarray]:
        """Strings and confidences of RGB word crops (module docstring)."""
        recognizer = self.model.recognizer
        if len(crops) == 0:
            return [], np.zeros(0, dtype=np.float32)
        texts, scores = recognizer.recognize(recognizer.normalize(crops.to(self.device)))
        return list(texts), scores.float().cpu().numpy()

    @torch.no_grad()
    def detect_rotated(
        self, images: torch.Tensor, output_sizes: Sequence[Tuple[int, int]]
    ) -> List[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Rotated boxes of a batch, in the pixels of `output_sizes` (module docstring): the
        model's own inference, including its rescaling to the output size."""
        inputs = [
            {"image": image, "height": int(size[0]), "width": int(size[1])}
            for image, size in zip(images, output_sizes)
        ]
        outputs = []
        for output in self.model(inputs):
            instances = output["instances"].to("cpu")
            outputs.append(
                (
                    instances.pred_boxes.tensor.numpy().reshape(-1, 5),
                    instances.scores.numpy(),
                    instances.pred_classes.numpy().astype(np.int64),
                )
            )
        return outputs


@register_backend("torch")
def build_torch_runner(cfg, weights) -> TorchRunner:
    """The default backend: the detectron2 model in PyTorch; `weights` (the ``.pth``/``.pkl``
    file) is already ``cfg.MODEL.WEIGHTS``."""
    return TorchRunner(cfg)
