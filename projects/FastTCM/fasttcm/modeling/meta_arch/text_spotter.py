"""FastTCMTextSpotter: the FastTCM text detector + a CLIP4STR recognizer on rectified polygon
crops."""

import logging
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.structures import Instances
from detectron2.utils.events import get_event_storage
from detectron2.utils.logger import log_every_n_seconds

from ..recognition.clip4str import CLIP4STR, build_clip4str_recognizer
from ..recognition.crop_voting import parse_crop_shapes, parse_crop_variants
from .spotter_crop_reader import SpotterCropReader
from .spotter_training_crops import SpotterTrainingCrops
from .text_detector import FastTCMTextDetector

__all__ = ["FastTCMTextSpotter"]

logger = logging.getLogger(__name__)


@META_ARCH_REGISTRY.register()
class FastTCMTextSpotter(SpotterTrainingCrops, SpotterCropReader, FastTCMTextDetector):
    """End-to-end text spotter: :class:`FastTCMTextDetector` + a CLIP4STR recognizer
    (docs/recognizer.md).

    The detector and the recognizer share no features: the recognizer reads crops of the input image
    rectified along each text polygon (:mod:`fasttcm.structures.rectification.rectify`), squashed to
    its input size and normalized with its own pixel statistics (``recognizer.normalize``,
    ``MODEL.RECOGNIZER.PIXEL_MEAN/STD``), in RGB whatever ``INPUT.FORMAT`` is.

    **Training** returns the detector's losses plus the recognizer's permutation-LM losses
    (``loss_rec_visual``, ``loss_rec_cross_modal``, times ``recognition_loss_weight``) on
    ground-truth crops: every ``gt_polygons`` instance of the mapper's ``instances`` (network-input
    pixels, after augmentation; 4 points = quad clockwise from top-left, 2n points = top side
    left->right then bottom side right->left) whose text is usable. Skipped, and counted in the
    event storage as ``spotter/skipped_ignore``, ``spotter/skipped_text``,
    ``spotter/skipped_geometry``: don't-care instances (``gt_ignore`` or ``"###"``); texts that are
    empty, longer than the recognizer's ``max_label_length``, or have a character outside its
    charset (after NFKD folding to ASCII, and whitespace removal when ``remove_whitespace``);
    polygons without a valid rectification (< 3 points, non-finite, area below
    ``min_polygon_area``). At most ``max_train_crops`` crops per batch are used (a random subset,
    ``spotter/dropped_by_cap``). With ``crop_jitter = (low, high)`` other than (0, 0), each side of
    a ground-truth polygon is first moved by ``U(low, high)`` times its height
    (:mod:`~fasttcm.structures.rectification.crop_jitter`), so the recognizer learns to read the
    imprecise framing of detected polygons.

    **Inference** detects polygons (original-image pixels), maps them back to the network input by
    the per-axis scale between the two sizes (the test mapper only resizes), rectifies them from
    the network-input image with the orientation-free layout ``crop_layout``, recognizes the crops
    in batches of ``crop_batch_size`` and returns, per image, :class:`Instances` in original-image
    pixels with ``polygons``, ``scores`` (detection), ``pred_boxes``, ``texts`` (strings over the
    recognizer's training charset) and ``text_scores`` (recognition confidence: product of the
    per-character maximum probabilities, EOS included). Detections that cannot be rectified are
    dropped, counted in a rate-limited warning and, when an event storage is active, as
    ``spotter/inference_skipped_geometry``; so are those whose text score is below
    ``min_text_score``.

    Parameter names are the detector's (``backbone.*``, ``text_head.*``) and
    :class:`FastTCMTextRecognizer`'s (``recognizer.*``), so checkpoints of either model load into
    the spotter by name.
    """

    @configurable
    def __init__(
        self,
        *,
        recognizer: CLIP4STR,
        input_format: str = "RGB",
        max_train_crops: int = 64,
        recognition_loss_weight: float = 1.0,
        remove_whitespace: bool = True,
        min_polygon_area: float = 4.0,
        crop_batch_size: int = 64,
        min_text_score: float = 0.0,
        crop_jitter: Tuple[float, float] = (0.0, 0.0),
        crop_layout: str = "predicted",
        crop_variants: Sequence[Sequence[float]] = (),
        crop_shapes: Sequence[str] = ("rectangle",),
        detected_crops: bool = False,
        freeze_detector: bool = False,
        **detector_kwargs,
    ):
        """
        Args:
            recognizer: the CLIP4STR recognizer (``recognize``, ``recognition_losses``,
                ``normalize``, ``input_size``, ``charset``, ``max_label_length``).
            input_format: channel order of the input images, "RGB" or "BGR" (crops are flipped
                to RGB for the recognizer).
            max_train_crops: most ground-truth crops per training batch (>= 1).
            recognition_loss_weight: weight of the recognizer's losses.
            remove_whitespace: remove whitespace from ground-truth texts (CLIP4STR labels);
                False skips texts containing whitespace.
            min_polygon_area: polygons with a smaller area (network-input pixels^2) get no crop.
            crop_batch_size: crops per recognizer forward at inference (>= 1).
            min_text_score: detections with a lower recognition confidence are dropped.
            crop_jitter: (low, high) range of the random side offsets of ground-truth training
                polygons, in units of the polygon's height (positive = outwards);
                -0.25 <= low <= high; (0, 0) = exact ground-truth crops.
            crop_layout: how detected outlines are rectified at inference: "predicted" (quads
                and straight outlines by their rectangle, curved ones along their two long sides)
                or "rectangle" (always the minimum-area rectangle); see
                :mod:`~fasttcm.structures.rectification.rectify`.
            crop_variants: framings of each detection read at inference instead of the one
                `crop_layout` crop, rows (top, right, bottom, left[, flip]) of side offsets in
                text heights from the outline's minimum-area rectangle; the reading with the
                highest confidence wins (:mod:`~fasttcm.modeling.recognition.crop_voting`).
                Empty = one crop.
            crop_shapes: shapes each framing of `crop_variants` is cut in, all voting:
                "rectangle" (the quad) and/or "band" (along a parabola fitted to the outline,
                for curved words); :mod:`~fasttcm.modeling.recognition.crop_voting`.
            detected_crops: in training, also read crops of the detector's own outlines (from
                the batch's probability maps, post-processed as at inference and cropped as at
                inference) that match a usable ground-truth word with IoU > 0.5, labelled with
                that word, so the recognizer learns the framing errors of its detector. With
                `crop_variants`, each is cut in the first framing of the first shape.
            freeze_detector: train the recognizer only: the detector's parameters get
                ``requires_grad=False`` (so the optimizer leaves them out), its modules stay in
                eval mode (BatchNorm statistics fixed), it runs without gradients and returns no
                losses. Its maps, and so the ``detected_crops`` outlines, are then exactly the
                ones inference sees.
            detector_kwargs: arguments of :class:`FastTCMTextDetector`.
        """
        super().__init__(**detector_kwargs)
        if input_format not in ("RGB", "BGR"):
            raise ValueError(
                "text_spotter.FastTCMTextSpotter: INPUT.FORMAT must be RGB or BGR, "
                f"got {input_format!r}"
            )
        if max_train_crops < 1 or crop_batch_size < 1:
            raise ValueError(
                "text_spotter.FastTCMTextSpotter: MODEL.SPOTTER.MAX_TRAIN_CROPS and "
                "TEST.SPOTTER.CROP_BATCH_SIZE "
                f"must be >= 1, got {max_train_crops} and {crop_batch_size}"
            )
        low, high = (float(x) for x in crop_jitter)
        if not -0.25 <= low <= high:
            raise ValueError(
                "text_spotter.FastTCMTextSpotter: "
                "MODEL.SPOTTER.CROP_JITTER must be (low, high) with "
                "-0.25 <= low <= high (fractions of the text height; "
                "more negative offsets can fold a short "
                f"word's ends over each other), got {tuple(crop_jitter)}"
            )
        self.crop_jitter = (low, high)
        if crop_layout not in ("predicted", "rectangle"):
            raise ValueError(
                "text_spotter.FastTCMTextSpotter: "
                "TEST.SPOTTER.CROP_LAYOUT must be 'predicted' or 'rectangle', "
                f"got {crop_layout!r}"
            )
        self.crop_layout = crop_layout
        self.crop_variants = parse_crop_variants(crop_variants)
        self.crop_shapes = parse_crop_shapes(crop_shapes)
        self.detected_crops = bool(detected_crops)
        self.recognizer = recognizer
        self.freeze_detector = bool(freeze_detector)
        if self.freeze_detector:
            for name, param in self.named_parameters():
                if not name.startswith("recognizer."):
                    param.requires_grad_(False)
        self.input_format = input_format
        self.max_train_crops = max_train_crops
        self.recognition_loss_weight = recognition_loss_weight
        self.remove_whitespace = remove_whitespace
        self.min_polygon_area = min_polygon_area
        self.crop_batch_size = crop_batch_size
        self.min_text_score = min_text_score
        self._charset = frozenset(recognizer.charset)

    @classmethod
    def from_config(cls, cfg):
        ret = super().from_config(cfg)
        ret.update(
            recognizer=build_clip4str_recognizer(cfg),
            input_format=cfg.INPUT.FORMAT,
            max_train_crops=cfg.MODEL.SPOTTER.MAX_TRAIN_CROPS,
            recognition_loss_weight=cfg.MODEL.SPOTTER.RECOGNITION_LOSS_WEIGHT,
            remove_whitespace=cfg.MODEL.SPOTTER.REMOVE_WHITESPACE,
            min_polygon_area=cfg.MODEL.SPOTTER.MIN_POLYGON_AREA,
            crop_batch_size=cfg.TEST.SPOTTER.CROP_BATCH_SIZE,
            min_text_score=cfg.TEST.SPOTTER.MIN_TEXT_SCORE,
            crop_jitter=tuple(cfg.MODEL.SPOTTER.CROP_JITTER),
            crop_layout=cfg.TEST.SPOTTER.CROP_LAYOUT,
            crop_variants=[list(row) for row in cfg.TEST.SPOTTER.CROP_VARIANTS],
            crop_shapes=list(cfg.TEST.SPOTTER.CROP_SHAPES),
            detected_crops=cfg.MODEL.SPOTTER.DETECTED_CROPS,
            freeze_detector=cfg.MODEL.SPOTTER.FREEZE_DETECTOR,
        )
        return ret

    def train(self, mode: bool = True):
        """As :meth:`torch.nn.Module.train`, but with ``freeze_detector`` every module other than
        the recognizer stays in eval mode."""
        super().train(mode)
        if self.freeze_detector:
            for name, child in self.named_children():
                if name != "recognizer":
                    child.train(False)
        return self

    # ---------------------------------------------------------------------------------------------
    def forward(self, batched_inputs: List[Dict]):
        """
        Args:
            batched_inputs: dicts from :class:`~fasttcm.data.mappers.TextDatasetMapper`: "image"
                ((3, H, W) in INPUT.FORMAT), "height"/"width" (inference), and in training
                "db_targets" and "instances" (``gt_polygons``, ``gt_texts``, ``gt_ignore`` in the
                pixel frame of "image").

        Returns:
            training: the detector's losses (none with ``freeze_detector``) plus
            "loss_rec_visual", "loss_rec_cross_modal" (and "loss_rec_ctc" with a CTC head).
            inference: see :meth:`inference`.
        """
        if not self.training:
            return self.inference(batched_inputs)
        if self.freeze_detector:
            with torch.no_grad():
                images = self.preprocess_image(batched_inputs)
                features, _ = self.extract_features(images.tensor)
                maps, _ = self.text_head(features)
            losses = {}
        else:
            losses, maps = self.training_losses(batched_inputs)
        detected = (
            self.detected_training_crops(batched_inputs, maps["prob"])
            if self.detected_crops
            else None
        )
        losses.update(self.recognition_losses(batched_inputs, detected))
        return losses

    def inference(self, batched_inputs: List[Dict], return_maps: bool = False) -> List[Dict]:
        """
        Args:
            batched_inputs: as in :meth:`forward`.
            return_maps: also return the detector's DB maps (see
                :meth:`FastTCMTextDetector.inference`).

        Returns:
            one dict per image with "instances": :class:`Instances` of the original image size
            with ``polygons`` (list of (K_i, 2) float32 arrays, (x, y) original-image pixels,
            clockwise), ``scores`` (Tensor (N,), detection), ``pred_boxes`` (XYXY bounds),
            ``texts`` (list of N str) and ``text_scores`` (Tensor (N,), recognition confidence).
        """
        results = super().inference(batched_inputs, return_maps=return_maps)
        return self.recognize_detections(batched_inputs, results)

    # ---------------------------------------------------------------------------------------------
    def recognition_losses(
        self,
        batched_inputs: List[Dict],
        detected: Optional[Tuple[torch.Tensor, List[str], int]] = None,
    ) -> Dict[str, torch.Tensor]:
        """Recognizer losses on the batch's ground-truth crops (see the class docstring), plus
        the crops of :meth:`detected_training_crops` when given.

        Returns:
            {"loss_rec_visual", "loss_rec_cross_modal"} (plus "loss_rec_ctc" when the recognizer
            has a CTC head): the recognizer's losses times ``recognition_loss_weight``; zeros
            (connected to every trainable recognizer parameter) without a usable crop.
        """
        crops, labels, counts = self.training_crops(batched_inputs)
        if detected is not None:
            detected_crops, detected_labels, counts["detected_matched"] = detected
            counts["detected_crops"] = len(detected_labels)
            crops = torch.cat([crops, detected_crops.to(crops)])
            labels = labels + detected_labels
        _record_counts(counts)
        if counts["skipped_geometry"]:
            log_every_n_seconds(
                logging.WARNING,
                f"{counts['skipped_geometry']} ground-truth polygon(s) had no valid "
                "rectification (fewer than 3 points, non-finite or smaller than "
                f"{self.min_polygon_area} pixels^2) and got no recognizer crop",
                n=60,
                name=__name__,
            )
        if not labels:
            zero = sum(p.sum() for p in self.recognizer.parameters() if p.requires_grad) * 0.0
            return {_spotter_loss_name(name): zero.clone() for name in self.recognizer.loss_names}
        losses = self.recognizer.recognition_losses(crops, labels)
        # loss_visual -> loss_rec_visual, ...: every recognizer loss, so no head is left
        # without gradient
        return {_spotter_loss_name(k): self.recognition_loss_weight * v for k, v in losses.items()}

    @torch.no_grad()
    def recognize_detections(self, batched_inputs: List[Dict], results: List[Dict]) -> List[Dict]:
        """Add ``texts`` and ``text_scores`` to the detector's results (see :meth:`inference`).

        Polygons are read by :meth:`recognize_polygons` (cropped from each input's "image");
        the returned polygons stay in original pixels.
        """
        inputs_at_result_size = [
            {
                **inputs,
                "height": r["instances"].image_size[0],
                "width": r["instances"].image_size[1],
            }
            for inputs, r in zip(batched_inputs, results)
        ]
        polygons = [r["instances"].polygons for r in results]
        texts, text_scores = self.recognize_polygons(
            inputs_at_result_size, polygons, vote=bool(self.crop_variants)
        )
        num_skipped = sum(t is None for image_texts in texts for t in image_texts)
        _record_counts({"inference_skipped_geometry": num_skipped})
        if num_skipped:
            log_every_n_seconds(
                logging.WARNING,
                f"{num_skipped} detected polygon(s) had no valid rectification and were dropped",
                n=60,
                name=__name__,
            )
        for result, image_texts, image_scores in zip(results, texts, text_scores):
            valid = torch.tensor([t is not None for t in image_texts], dtype=torch.bool)
            keep = valid & (image_scores >= self.min_text_score)
            result["instances"] = self._spotting_instances(
                result["instances"],
                keep.nonzero()[:, 0],
                [t or "" for t in image_texts],
                image_scores,
            )
        return results

    # ---------------------------------------------------------------------------------------------
    def _spotting_instances(
        self,
        instances: Instances,
        index: torch.Tensor,
        texts: Sequence[str],
        text_scores: torch.Tensor,
    ) -> Instances:
        """The detections `index` of `instances`, with ``texts`` and ``text_scores``."""
        kept = index.tolist()
        result = self._make_instances(
            [instances.polygons[i] for i in kept],
            instances.scores[index].cpu().numpy(),
            instances.image_size,
        )
        result.texts = [texts[i] for i in kept]
        result.text_scores = text_scores[index].to(self.device)
        return result


def _spotter_loss_name(name: str) -> str:
    """A recognizer loss key in the spotter's loss dict: "loss_visual" -> "loss_rec_visual"."""
    return "loss_rec_" + name[len("loss_") :]


def _record_counts(counts) -> None:
    """Put the counts as ``spotter/<name>`` scalars into the current event storage, if there is
    one."""
    try:
        storage = get_event_storage()
    except AssertionError:  # no EventStorage outside a trainer
        return
    storage.put_scalars(
        **{f"spotter/{name}": float(value) for name, value in counts.items()}, smoothing_hint=False
    )
