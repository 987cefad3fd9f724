"""``TextDetector`` and ``TextSpotter``: scene-text polygons (and their transcriptions) of images.

Per call, for every chunk of ``batch_size`` images:

1. each image is resized like the test mapper (shorter side ``INPUT.MIN_SIZE_TEST``, longer
   at most ``INPUT.MAX_SIZE_TEST``), channels in ``INPUT.FORMAT`` order;
2. images of the same resized size run through the network as one batch (other sizes are not
   padded together: the CLIP attention pool attends over the whole padded map, so padding would
   change the result), giving the DB probability map at the network input's resolution;
3. :class:`~fasttcm.modeling.text_heads.postprocess.DBPostprocessor` of the config's
   ``TEST.TEXT`` settings (``DBPostprocessor.from_config``, as the model builds it) turns each
   map into polygons, rescaled per axis to the original image;
4. spotter only: every polygon of the chunk is scaled back to its network input, rectified into
   a word crop (``TEST.SPOTTER.CROP_LAYOUT``, or the framings of ``TEST.SPOTTER.CROP_VARIANTS``
   with the most confident reading kept; polygons below ``MODEL.SPOTTER.MIN_POLYGON_AREA`` get
   none and are dropped) by the spotter's own ``read_polygon_crops``, and the crops of all
   images are read together, in batches of
   ``TEST.SPOTTER.CROP_BATCH_SIZE``; detections read below ``TEST.SPOTTER.MIN_TEXT_SCORE`` are
   dropped.

These are the steps of ``FastTCMTextDetector.inference`` and
``FastTCMTextSpotter.recognize_detections``, with the network behind the runner seam
(:mod:`fasttcm.api.backends`), so every backend shares them.
"""

import logging
from typing import List, Tuple

import numpy as np
import torch

from detectron2.utils.logger import log_every_n_seconds

from ..modeling.meta_arch.spotter_crop_reader import read_polygon_crops
from ..modeling.recognition.crop_voting import parse_crop_shapes, parse_crop_variants
from ..modeling.text_heads.postprocess import DBPostprocessor
from .base import LoadedImage, Predictor
from .results import TextResult, text_result

__all__ = ["TextDetector", "TextSpotter"]

Detections = Tuple[List[np.ndarray], np.ndarray]  # polygons (K_i, 2) original pixels, scores


class TextDetector(Predictor):
    """Text polygons of images.

    Example::

        from fasttcm import TextDetector
        detector = TextDetector("TextDetection/fasttcm_cr50_fpn_dbnet_ic15", "model_final.pth")
        result = detector("photo.jpg")  # or an RGB array, a PIL image, or a list of them
        for word in result:
            print(word.score, word.polygon)  # [(x, y), ...] in the photo's pixels

    Arguments: those of :class:`~fasttcm.api.base.Predictor`. Serves text detector configs
    (``TextDetection/``) and spotter configs (detection only: the recognizer is loaded but not
    run).

    Returns (a call):
        a :class:`~fasttcm.api.results.TextResult` per image: :class:`TextInstance` items with
        ``polygon`` and ``score`` (``text`` is None), sorted by decreasing score.
    """

    architectures = ("FastTCMTextDetector", "FastTCMTextSpotter")

    def __init__(self, config, weights, **kwargs):
        super().__init__(config, weights, **kwargs)
        self.postprocessor = DBPostprocessor.from_config(self.cfg)  # as the detector builds it

    def detect(self, images: List[LoadedImage]) -> Tuple[List[Detections], List[torch.Tensor]]:
        """Polygons of loaded images (steps 1-3 of the module docstring).

        Returns:
            ``(detections, network_inputs)``: per image the polygons (list of ``(K, 2)`` float32
            arrays, original pixels) and ``(N,)`` float32 scores, and the ``(3, h, w)`` uint8
            tensors the network saw.
        """
        inputs = [self.network_input(rgb) for rgb, _ in images]
        detections: List[Detections] = [None] * len(images)
        for batch in self.same_size_batches(inputs):
            prob = self.runner.maps(torch.stack([inputs[i] for i in batch]))["prob"]
            for row, index in enumerate(batch):
                height, width = images[index][0].shape[:2]
                detections[index] = self.postprocessor(prob[row], output_size=(height, width))
        return detections, inputs

    def _predict(self, images: List[LoadedImage]) -> List[TextResult]:
        detections, _ = self.detect(images)
        return [
            text_result(polygons, scores, rgb.shape[:2], source=source)._attach_image(
                None if source else rgb
            )
            for (rgb, source), (polygons, scores) in zip(images, detections)
        ]


class TextSpotter(TextDetector):
    """Text polygons of images and their transcriptions.

    Example::

        from fasttcm import TextSpotter
        spotter = TextSpotter("TextSpotting/fasttcm_cr50_fpn_spotter_ic15", "model_final.pth")
        for word in spotter("photo.jpg"): print(word.text, word.polygon)

    Arguments: those of :class:`~fasttcm.api.base.Predictor`. Serves spotter configs
    (``TextSpotting/``).

    Returns (a call):
        a :class:`~fasttcm.api.results.TextResult` per image: :class:`TextInstance` items with
        ``polygon``, ``score`` (detection), ``text`` (over the recognizer's charset) and
        ``text_score`` (recognition), sorted by decreasing detection score.
    """

    architectures = ("FastTCMTextSpotter",)

    def __init__(self, config, weights, **kwargs):
        super().__init__(config, weights, **kwargs)
        spotter = self.cfg.MODEL.SPOTTER
        test = self.cfg.TEST.SPOTTER
        self.crop_layout = test.CROP_LAYOUT
        self.crop_variants = parse_crop_variants(test.CROP_VARIANTS)
        self.crop_shapes = parse_crop_shapes(test.CROP_SHAPES)
        self.crop_batch_size = int(test.CROP_BATCH_SIZE)
        self.min_text_score = float(test.MIN_TEXT_SCORE)
        self.min_polygon_area = float(spotter.MIN_POLYGON_AREA)
        if self.crop_batch_size < 1:
            raise ValueError(
                f"TEST.SPOTTER.CROP_BATCH_SIZE must be >= 1, got {test.CROP_BATCH_SIZE}"
            )

    def read_detections(
        self,
        detections: List[Detections],
        inputs: List[torch.Tensor],
        original_sizes: List[Tuple[int, int]],
    ) -> List[Tuple[np.ndarray, List[str], np.ndarray]]:
        """Read every detection of a chunk of images (step 4 of the module docstring).

        Args:
            detections, inputs: what :meth:`detect` returned.
            original_sizes: ``(height, width)`` of each original image (the polygons' frame).

        Returns:
            per image ``(keep, texts, text_scores)``: which detections stay ((N,) bool), and
            the transcriptions and confidences of all N (empty strings and 0 where dropped).
        """
        polygons, owners = [], []
        for index, ((image_polygons, _), network) in enumerate(zip(detections, inputs)):
            height, width = original_sizes[index]
            scale = np.array(
                [network.shape[-1] / width, network.shape[-2] / height], dtype=np.float64
            )
            polygons.extend(np.asarray(p, dtype=np.float64) * scale for p in image_polygons)
            owners.extend([index] * len(image_polygons))
        texts, scores = read_polygon_crops(
            inputs,
            polygons,
            owners,
            read=self.runner.read,
            input_size=self.runner.recognizer_input_size,
            layout=self.crop_layout,
            crop_variants=self.crop_variants,
            crop_shapes=self.crop_shapes,
            batch_size=self.crop_batch_size,
            min_area=self.min_polygon_area,
            bgr=self.cfg.INPUT.FORMAT == "BGR",
        )
        valid = torch.tensor([t is not None for t in texts], dtype=torch.bool)
        texts = [t or "" for t in texts]
        text_scores = scores.numpy()
        skipped = int((~valid).sum())
        if skipped:
            log_every_n_seconds(
                logging.WARNING,
                f"{skipped} detected polygon(s) could not be rectified and were dropped",
                n=60,
                name=__name__,
            )
        keep = valid.numpy() & (text_scores >= self.min_text_score)
        out, start = [], 0
        for image_polygons, _ in detections:
            stop = start + len(image_polygons)
            out.append((keep[start:stop], texts[start:stop], text_scores[start:stop]))
            start = stop
        return out

    def _predict(self, images: List[LoadedImage]) -> List[TextResult]:
        detections, inputs = self.detect(images)
        readings = self.read_detections(detections, inputs, [rgb.shape[:2] for rgb, _ in images])
        results = []
        for (rgb, source), (polygons, scores), (keep, texts, text_scores) in zip(
            images, detections, readings
        ):
            kept = np.flatnonzero(keep)
            result = text_result(
                [polygons[i] for i in kept],
                scores[kept],
                rgb.shape[:2],
                texts=[texts[i] for i in kept],
                text_scores=text_scores[kept],
                source=source,
            )
            results.append(result._attach_image(None if source else rgb))
        return results
