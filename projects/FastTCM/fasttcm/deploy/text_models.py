"""onnxruntime counterparts of the text meta-architectures at inference: same inputs, same outputs.

:class:`OnnxTextDetector`, :class:`OnnxTextSpotter` and :class:`OnnxTextRecognizer` take the
``batched_inputs`` of :class:`~fasttcm.modeling.meta_arch.text_detector.FastTCMTextDetector`,
``FastTCMTextSpotter`` and ``FastTCMTextRecognizer`` in eval mode (dicts with "image", a (3, H, W)
tensor or array in the model's INPUT.FORMAT at network-input size, and the original "height" /
"width") and return the same result dicts, so a predictor swaps one for the other.

Inside the graphs: normalization, backbone, text-image interaction (FastTCM's text branch folded
into a constant), DB head; the recognizer's towers and decoders. Outside, shared with the
PyTorch models: padding (as ``ImageList.from_tensors``), ``DBPostprocessor`` on the probability
map, the spotter's crop reading (``spotter_crop_reader.read_polygon_crops``: rectification with
``rectify``, crop batches, crop-variant voting; torch on CPU tensors) and the recognizer's
decoding (:mod:`.recognizer_runtime`).
"""

import logging
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from detectron2.structures import Boxes, Instances

from ..modeling.meta_arch.spotter_crop_reader import read_polygon_crops
from ..modeling.recognition.crop_voting import parse_crop_shapes, parse_crop_variants
from ..modeling.text_heads.postprocess import DBPostprocessor, polygons_to_masks
from .manifest import graph_path, read_manifest
from .recognizer_runtime import OnnxRecognizer
from .sessions import OnnxGraph

__all__ = ["OnnxTextDetector", "OnnxTextRecognizer", "OnnxTextSpotter", "pad_pixels"]

logger = logging.getLogger(__name__)


def _as_tensor(image) -> torch.Tensor:
    return image if isinstance(image, torch.Tensor) else torch.as_tensor(np.asarray(image))


def pad_pixels(
    images: Sequence[torch.Tensor], pixel_mean: Sequence[float], size_divisibility: int
) -> Tuple[np.ndarray, List[Tuple[int, int]]]:
    """Batch (3, H_i, W_i) pixel images into one (B, 3, H, W) float32 array, padded with the pixel
    mean to the largest size rounded up to `size_divisibility` (``ImageList.from_tensors``' sizes).

    The graphs normalize their input, so mean padding becomes the zero padding the PyTorch models
    add after normalizing.

    Returns:
        (batch, [(H_i, W_i), ...]).
    """
    sizes = [(int(im.shape[-2]), int(im.shape[-1])) for im in images]
    height, width = (max(s[i] for s in sizes) for i in (0, 1))
    if size_divisibility > 1:
        height = -(-height // size_divisibility) * size_divisibility
        width = -(-width // size_divisibility) * size_divisibility
    mean = np.asarray(pixel_mean, dtype=np.float32).reshape(-1, 1, 1)
    batch = np.empty((len(images), len(mean), height, width), dtype=np.float32)
    batch[...] = mean
    for out, image, (h, w) in zip(batch, images, sizes):
        if image.ndim != 3 or image.shape[0] != len(mean):
            raise ValueError(
                f"fasttcm.deploy: images must be ({len(mean)}, H, W), got {tuple(image.shape)}"
            )
        out[:, :h, :w] = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else image
    return batch, sizes


def _polygon_bounds(polygons: List[np.ndarray]) -> np.ndarray:
    """(N, 4) float32 XYXY bounds of polygons."""
    if not polygons:
        return np.zeros((0, 4), dtype=np.float32)
    return np.asarray(
        [np.concatenate([p.min(axis=0), p.max(axis=0)]) for p in polygons], dtype=np.float32
    )


class OnnxTextDetector:
    """``FastTCMTextDetector`` inference on onnxruntime (see the module docstring).

    Args:
        directory: an export folder of task "detector" or "spotter".
        threads: intra-op threads of each session (None: onnxruntime's default).
        providers: onnxruntime execution providers (default: CPU).
        manifest: the folder's manifest, if already read.
    """

    def __init__(
        self,
        directory: str,
        *,
        threads: Optional[int] = None,
        providers: Optional[Sequence[str]] = None,
        manifest: Optional[Dict[str, Any]] = None,
    ):
        self.directory = directory
        self.manifest = manifest if manifest is not None else read_manifest(directory)
        if "detector" not in self.manifest:
            raise ValueError(
                f"{directory}: a {self.manifest['task']!r} export has no text detector graph"
            )
        settings = self.manifest["detector"]
        self.detector_graph = OnnxGraph(
            graph_path(directory, self.manifest, "detector"), threads=threads, providers=providers
        )
        self.pixel_mean = [float(v) for v in settings["pixel_mean"]]
        self.size_divisibility = int(settings["size_divisibility"])
        self.k = float(settings["k"])
        self.pred_masks = bool(settings["pred_masks"])
        self.postprocessor = DBPostprocessor(**settings["postprocessor"])

    def maps(self, images: np.ndarray) -> Dict[str, np.ndarray]:
        """The exported graph itself: (B, 3, H, W) float32 pixels, H and W multiples of the size
        divisibility (pad with :func:`pad_pixels`) -> {"prob", "thresh"}, each (B, 1, H, W)."""
        d = self.size_divisibility
        if images.ndim != 4 or images.shape[-2] % d or images.shape[-1] % d:
            raise ValueError(
                f"OnnxTextDetector.maps: images must be (B, 3, H, W) with H and W multiples of "
                f"{d}, got {tuple(images.shape)}; pad them with pad_pixels"
            )
        return self.detector_graph(image=np.ascontiguousarray(images, dtype=np.float32))

    def __call__(self, batched_inputs: List[Dict]) -> List[Dict]:
        return self.inference(batched_inputs)

    def inference(self, batched_inputs: List[Dict], return_maps: bool = False) -> List[Dict]:
        """As ``FastTCMTextDetector.inference``: one dict per image with "instances" (``polygons``,
        ``scores``, ``pred_boxes``, ``pred_classes`` and, if exported with them,
        ``pred_masks``) in original-image pixels, and "db_maps" with `return_maps`."""
        images = [_as_tensor(x["image"]) for x in batched_inputs]
        batch, sizes = pad_pixels(images, self.pixel_mean, self.size_divisibility)
        maps = self.maps(batch)
        prob_maps = maps["prob"][:, 0]
        results = []
        for index, (inputs, (h, w)) in enumerate(zip(batched_inputs, sizes)):
            height, width = int(inputs.get("height", h)), int(inputs.get("width", w))
            polygons, scores = self.postprocessor(
                prob_maps[index, :h, :w], output_size=(height, width)
            )
            result = {"instances": self.make_instances(polygons, scores, (height, width))}
            if return_maps:
                result["db_maps"] = self._resized_maps(maps, index, (h, w), (height, width))
            results.append(result)
        return results

    def _resized_maps(self, maps, index, size, output_size) -> Dict[str, torch.Tensor]:
        h, w = size
        prob = torch.from_numpy(maps["prob"][index : index + 1, :, :h, :w])
        thresh = torch.from_numpy(maps["thresh"][index : index + 1, :, :h, :w])
        binary = torch.sigmoid(self.k * (prob - thresh))
        return {
            name: F.interpolate(m, size=output_size, mode="bilinear", align_corners=False)[0]
            for name, m in (("prob", prob), ("thresh", thresh), ("binary", binary))
        }

    def make_instances(
        self, polygons: List[np.ndarray], scores: np.ndarray, image_size: Tuple[int, int]
    ) -> Instances:
        """Instances with the fields of ``FastTCMTextDetector`` (on the CPU)."""
        instances = Instances(image_size)
        instances.polygons = polygons
        instances.scores = torch.as_tensor(scores, dtype=torch.float32)
        instances.pred_boxes = Boxes(torch.as_tensor(_polygon_bounds(polygons)))
        instances.pred_classes = torch.zeros(len(polygons), dtype=torch.int64)
        if self.pred_masks:
            instances.pred_masks = torch.from_numpy(polygons_to_masks(polygons, image_size))
        return instances


class OnnxTextSpotter(OnnxTextDetector):
    """``FastTCMTextSpotter`` inference on onnxruntime: the detector above, then every detected
    polygon cropped from the network-input image and read by :class:`OnnxRecognizer` through the
    spotter's own reading code (``read_polygon_crops``: rectification, crop batches of
    ``crop_batch_size``, ``crop_variants`` voting); same results and fields (``texts``,
    ``text_scores``) as the PyTorch spotter.

    Args: as :class:`OnnxTextDetector`; the folder's task must be "spotter".
    """

    def __init__(self, directory: str, **kwargs):
        super().__init__(directory, **kwargs)
        if self.manifest["task"] != "spotter":
            raise ValueError(f"{directory}: not a spotter export (task {self.manifest['task']!r})")
        settings = self.manifest["spotter"]
        self.recognizer = OnnxRecognizer(
            directory,
            self.manifest,
            threads=self.detector_graph.threads,
            providers=kwargs.get("providers"),
        )
        self.input_format = settings["input_format"]
        self.crop_layout = settings["crop_layout"]
        self.min_polygon_area = float(settings["min_polygon_area"])
        self.crop_batch_size = int(settings["crop_batch_size"])
        self.min_text_score = float(settings["min_text_score"])
        self.crop_variants = parse_crop_variants(settings.get("crop_variants", []))
        # manifests written before band framings existed cut every framing as a rectangle
        self.crop_shapes = parse_crop_shapes(settings.get("crop_shapes", ["rectangle"]))

    def inference(self, batched_inputs: List[Dict], return_maps: bool = False) -> List[Dict]:
        results = super().inference(batched_inputs, return_maps=return_maps)
        return self.recognize_detections(batched_inputs, results)

    @torch.no_grad()
    def recognize_detections(self, batched_inputs: List[Dict], results: List[Dict]) -> List[Dict]:
        """Add ``texts`` and ``text_scores`` (as ``FastTCMTextSpotter.recognize_detections``):
        the polygons are scaled per axis from the results' (original) pixels to each input's
        "image" and read by the spotter's own ``read_polygon_crops`` (rectification, BGR flip,
        crop batches, ``crop_variants`` / ``crop_shapes`` voting) with :class:`OnnxRecognizer`
        as the reader."""
        flat, owners = [], []
        for index, (inputs, result) in enumerate(zip(batched_inputs, results)):
            height, width = result["instances"].image_size
            input_height, input_width = _as_tensor(inputs["image"]).shape[-2:]
            scale = np.array([input_width / width, input_height / height], dtype=np.float64)
            flat.extend(
                np.asarray(p, dtype=np.float64) * scale for p in result["instances"].polygons
            )
            owners.extend([index] * len(result["instances"]))
        texts, text_scores = read_polygon_crops(
            [_as_tensor(x["image"]) for x in batched_inputs],
            flat,
            owners,
            read=self.recognizer.recognize,
            input_size=self.recognizer.input_size,
            layout=self.crop_layout,
            crop_variants=self.crop_variants,
            crop_shapes=self.crop_shapes,
            batch_size=self.crop_batch_size,
            min_area=self.min_polygon_area,
            bgr=self.input_format == "BGR",
        )
        num_skipped = sum(t is None for t in texts)
        if num_skipped:
            logger.warning(
                f"{num_skipped} detected polygon(s) had no valid rectification and were dropped"
            )
        start = 0
        for result in results:
            instances = result["instances"]
            stop = start + len(instances)
            kept = [
                i
                for i in range(len(instances))
                if texts[start + i] is not None
                and float(text_scores[start + i]) >= self.min_text_score
            ]
            spotted = self.make_instances(
                [instances.polygons[i] for i in kept],
                instances.scores[kept].numpy(),
                instances.image_size,
            )
            spotted.texts = [texts[start + i] for i in kept]
            spotted.text_scores = text_scores[start:stop][kept]
            result["instances"] = spotted
            start = stop
        return results


class OnnxTextRecognizer:
    """``FastTCMTextRecognizer`` inference on onnxruntime: word crops in, strings out.

    Each input dict holds "image", a (3, H, W) crop in the exporting config's INPUT.FORMAT (crops
    of another size are resized bicubically, as the PyTorch model does). Returns one dict per
    crop: "text", "score" (float) and "char_scores" (tensor), as ``FastTCMTextRecognizer``.

    Args: as :class:`OnnxTextDetector`; the folder's task must be "recognizer" or "spotter".
    """

    def __init__(
        self,
        directory: str,
        *,
        threads: Optional[int] = None,
        providers: Optional[Sequence[str]] = None,
        manifest: Optional[Dict[str, Any]] = None,
    ):
        self.manifest = manifest if manifest is not None else read_manifest(directory)
        if "recognizer" not in self.manifest:
            raise ValueError(f"{directory}: a {self.manifest['task']!r} export has no recognizer")
        self.recognizer = OnnxRecognizer(
            directory, self.manifest, threads=threads, providers=providers
        )
        self.input_format = self.manifest["recognizer"]["input_format"]

    def preprocess_image(self, batched_inputs: List[Dict]) -> torch.Tensor:
        """(B, 3, h, w) float RGB 0-255 crops of the recognizer's input size."""
        size = self.recognizer.input_size
        images = []
        for i, inputs in enumerate(batched_inputs):
            image = _as_tensor(inputs["image"])
            if image.ndim != 3 or image.shape[0] != 3 or image.shape[1] == 0 or image.shape[2] == 0:
                raise ValueError(
                    f"OnnxTextRecognizer: input {i} has an image of shape {tuple(image.shape)}; "
                    "expected a non-empty (3, H, W) crop"
                )
            image = image.float()
            if tuple(image.shape[1:]) != size:
                image = F.interpolate(image[None], size=size, mode="bicubic", align_corners=False)[
                    0
                ].clamp_(0, 255)
            images.append(image)
        images = torch.stack(images)
        return images.flip(1) if self.input_format == "BGR" else images

    def __call__(self, batched_inputs: List[Dict]) -> List[Dict]:
        texts, scores, char_scores = self.recognizer.predict(self.preprocess_image(batched_inputs))
        return [
            {"text": text, "score": float(score), "char_scores": chars}
            for text, score, chars in zip(texts, scores.tolist(), char_scores)
        ]
