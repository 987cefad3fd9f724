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

import contextlib
import logging
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..engine.predictor import FastTCMPredictor
from ..modeling.inference_optimization import optimize_for_inference

__all__ = ["register_backend", "build_runner", "available_backends", "TorchRunner"]

logger = logging.getLogger(__name__)

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

    Args:
        cfg: the frozen config.
        optimize: rewrite the model with
            :func:`~fasttcm.modeling.inference_optimization.optimize_for_inference` (BatchNorm
            folding, channels_last weights): the same outputs up to float rounding, faster on CPU.
        autocast_dtype: run the networks under ``torch.autocast`` with this dtype (e.g.
            ``torch.bfloat16``): the backbone and DB head of text detectors, the recognizer, and
            only the backbone (+ FPN) of rotated R-CNNs, whose box regression and NMS stay
            float32. Maps and scores are returned as float32. None = float32 throughout.
    """

    def __init__(self, cfg, optimize: bool = False, autocast_dtype: Optional[torch.dtype] = None):
        self.model = FastTCMPredictor(cfg).model
        if optimize:
            optimize_for_inference(self.model)
        self.autocast_dtype = autocast_dtype
        self.meta_architecture = cfg.MODEL.META_ARCHITECTURE
        if (
            autocast_dtype is not None
            and hasattr(self.model, "backbone")
            and not hasattr(self.model, "text_head")
        ):
            # box regression and rotated NMS stay float32: only the backbone is autocast
            self.model.backbone = _AutocastBackbone(self.model.backbone, autocast_dtype)
        recognizer = getattr(self.model, "recognizer", None)
        self.recognizer_input_size = (
            tuple(int(s) for s in recognizer.input_size) if recognizer is not None else None
        )

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _precision(self):
        """The autocast context of ``autocast_dtype`` (a no-op without one)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    @torch.no_grad()
    def maps(self, images: torch.Tensor, all_maps: bool = False) -> Dict[str, np.ndarray]:
        """DB maps of a batch (module docstring): the detector's normalisation and padding
        (``preprocess_image``), backbone and DB head."""
        model = self.model
        padded = model.preprocess_image([{"image": image} for image in images])
        with self._precision():
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
        with self._precision():
            texts, scores = recognizer.recognize(recognizer.normalize(crops.to(self.device)))
        return list(texts), scores.float().cpu().numpy()

    @torch.no_grad()
    def detect_rotated(
        self, images: torch.Tensor, output_sizes: Sequence[Tuple[int, int]]
    ) -> List[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Rotated boxes of a batch, in the pixels of `output_sizes` (module docstring): the
        model's own inference, including its rescaling to the output size."""
        return rotated_detections(self.model, images, output_sizes)


def rotated_detections(
    model, images: torch.Tensor, output_sizes: Sequence[Tuple[int, int]]
) -> List[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A rotated R-CNN's own inference on a batch, as the runners' ``detect_rotated`` returns it:
    per image ``(N, 5)`` XYWHA boxes (degrees, counter-clockwise) in the pixels of
    ``output_sizes[i]``, ``(N,)`` float32 scores and int64 classes."""
    inputs = [
        {"image": image, "height": int(size[0]), "width": int(size[1])}
        for image, size in zip(images, output_sizes)
    ]
    outputs = []
    for output in model(inputs):
        instances = output["instances"].to("cpu")
        outputs.append(
            (
                instances.pred_boxes.tensor.float().numpy().reshape(-1, 5),
                instances.scores.float().numpy(),
                instances.pred_classes.numpy().astype(np.int64),
            )
        )
    return outputs


@register_backend("torch")
def build_torch_runner(cfg, weights) -> TorchRunner:
    """The default backend: the detectron2 model in PyTorch; `weights` (the ``.pth``/``.pkl``
    file) is already ``cfg.MODEL.WEIGHTS``."""
    return TorchRunner(cfg)


@register_backend("torch-opt")
def build_optimized_torch_runner(cfg, weights) -> TorchRunner:
    """The PyTorch model after BatchNorm folding and channels_last (``optimize_for_inference``):
    float32, the same outputs as "torch" up to rounding, faster on CPU."""
    return TorchRunner(cfg, optimize=True)


@register_backend("torch-bf16")
def build_bfloat16_torch_runner(cfg, weights) -> TorchRunner:
    """ "torch-opt" with the networks under bfloat16 autocast. About twice as fast on CPUs with
    native bfloat16 matrix units (AVX512-BF16 / AMX: Intel Xeon from Sapphire Rapids, AMD Zen 4),
    slower elsewhere; the DB maps move by about 1e-3 and a borderline polygon or character can
    change (see the model zoo for the measured effect on the synthetic benchmark)."""
    if cfg.MODEL.DEVICE == "cpu" and not torch.backends.mkldnn.is_available():
        raise ValueError("backend 'torch-bf16' on CPU needs PyTorch built with oneDNN (mkldnn)")
    if cfg.MODEL.DEVICE == "cpu" and not _cpu_has_native_bfloat16():
        logger.warning(
            "backend 'torch-bf16': this CPU has no native bfloat16 matrix instructions "
            "(AVX512-BF16 / AMX); bfloat16 is emulated and likely slower than 'torch-opt'"
        )
    return TorchRunner(cfg, optimize=True, autocast_dtype=torch.bfloat16)


class _AutocastBackbone(torch.nn.Module):
    """A detectron2 backbone run under autocast; its feature maps (and the auxiliary outputs of
    ``forward_with_aux``, e.g. FastTCM's class text embeddings) are returned as float32."""

    def __init__(self, backbone: torch.nn.Module, dtype: torch.dtype):
        super().__init__()
        self.backbone = backbone
        self.dtype = dtype

    def forward(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        with torch.autocast(device_type=images.device.type, dtype=self.dtype):
            features = self.backbone(images)
        return _as_float32(features)

    def forward_with_aux(self, images: torch.Tensor):
        if not hasattr(self.backbone, "forward_with_aux"):
            return self.forward(images), {}
        with torch.autocast(device_type=images.device.type, dtype=self.dtype):
            features, aux = self.backbone.forward_with_aux(images)
        return _as_float32(features), _as_float32(aux)

    def output_shape(self):
        return self.backbone.output_shape()

    @property
    def size_divisibility(self) -> int:
        return self.backbone.size_divisibility

    @property
    def padding_constraints(self):
        return getattr(self.backbone, "padding_constraints", {})


def _as_float32(outputs: Dict) -> Dict:
    """A dict with its floating-point tensors as float32 (other values unchanged)."""
    return {
        name: value.float() if torch.is_tensor(value) and value.is_floating_point() else value
        for name, value in outputs.items()
    }


def _cpu_has_native_bfloat16() -> bool:
    """Whether oneDNN reports bfloat16 support on this CPU (its own check)."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return bool(check()) if check is not None else False
    except RuntimeError:
        return False
