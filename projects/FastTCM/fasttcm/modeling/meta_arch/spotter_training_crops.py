"""``SpotterTrainingCrops``: the crops a text spotter's recognizer trains on.

Two sources, both cut from the network-input image of a training batch and labelled with the
ground-truth word: the ground-truth polygons themselves (optionally with jittered sides,
:mod:`~fasttcm.structures.rectification.crop_jitter`), and the detector's own outlines of the batch
that match a usable word (``MODEL.SPOTTER.DETECTED_CROPS``), cut as inference cuts them.
"""

from collections import Counter
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from ...structures.charset import normalize_label
from ...structures.rectification.crop_jitter import jitter_side_polygons
from ...structures.rectification.rectify import (
    polygon_sampling_grids,
    polygon_validity,
    sample_crops,
)
from ...structures.text import DONT_CARE_TEXT
from ..recognition.crop_voting import framed_outlines
from ..recognition.detection_matching import match_outlines_to_words

__all__ = ["SpotterTrainingCrops", "CROP_COUNT_NAMES"]

CROP_COUNT_NAMES = (
    "skipped_ignore",
    "skipped_text",
    "skipped_geometry",
    "dropped_by_cap",
    "num_crops",
)
"""Counters of :meth:`SpotterTrainingCrops.training_crops` (``spotter/<name>`` in the event
storage)."""


class SpotterTrainingCrops:
    """Mixin of :class:`~.text_spotter.FastTCMTextSpotter`: recognizer training crops.

    Uses the host's ``recognizer``, ``device``, ``remove_whitespace``, ``_charset``,
    ``max_train_crops``, ``min_polygon_area``, ``crop_jitter``, ``postprocessor``,
    ``crop_layout``, ``crop_variants``, ``crop_shapes`` and ``_normalize_crops``.
    """

    def training_label(self, text: str) -> Tuple[Optional[str], str]:
        """The recognizer label of a ground-truth text, or why it is unusable.

        Returns:
            ``(label, "")`` or ``(None, reason)``, reason one of "dont_care", "empty",
            "out_of_charset", "too_long".
        """
        if text.strip() == DONT_CARE_TEXT:
            return None, "dont_care"
        if self.remove_whitespace:
            text = "".join(text.split())
        else:
            text = text.strip()
        if not text:
            return None, "empty"
        label = normalize_label(text, remove_whitespace=False)  # NFKD, folded to ASCII
        if not label or any(c not in self._charset for c in label):
            return None, "out_of_charset"
        if len(label) > self.recognizer.max_label_length:
            return None, "too_long"
        return label, ""

    def training_crops(self, batched_inputs: List[Dict]) -> Tuple[torch.Tensor, List[str], Counter]:
        """Rectified ground-truth crops and their labels.

        Returns:
            crops: (M, 3, h, w) normalized RGB crops, (h, w) = ``recognizer.input_size``.
            labels: M strings over the recognizer's charset.
            counts: Counter of "skipped_ignore", "skipped_text", "skipped_geometry",
                "dropped_by_cap", "num_crops".
        """
        counts = Counter(dict.fromkeys(CROP_COUNT_NAMES, 0))
        polygons, labels, image_indices = [], [], []
        for index, inputs in enumerate(batched_inputs):
            if "instances" not in inputs:
                name = inputs.get("file_name", inputs.get("image_id", index))
                raise ValueError(
                    f"text_spotter.FastTCMTextSpotter: training input {name} has no 'instances'; "
                    "the text mapper must keep gt_polygons / gt_texts / gt_ignore "
                    "for the recognizer."
                )
            instances = inputs["instances"]
            for polygon, text, ignore in zip(
                instances.gt_polygons, instances.gt_texts, instances.gt_ignore.tolist()
            ):
                label, reason = (None, "dont_care") if ignore else self.training_label(text)
                if label is None:
                    counts["skipped_ignore" if reason == "dont_care" else "skipped_text"] += 1
                    continue
                polygons.append(polygon)
                labels.append(label)
                image_indices.append(index)

        valid = polygon_validity(polygons, min_area=self.min_polygon_area)
        counts["skipped_geometry"] = int((~valid).sum())
        selected = valid.nonzero()[:, 0]
        if len(selected) > self.max_train_crops:
            counts["dropped_by_cap"] = len(selected) - self.max_train_crops
            selected = selected[torch.randperm(len(selected))[: self.max_train_crops]].sort().values
        counts["num_crops"] = len(selected)
        selected_polygons = [polygons[i] for i in selected.tolist()]
        if self.crop_jitter != (0.0, 0.0):
            rng = np.random.default_rng(int(torch.randint(2**31 - 1, (1,))))  # follows torch's seed
            selected_polygons, _ = jitter_side_polygons(selected_polygons, *self.crop_jitter, rng)
        grids, _ = polygon_sampling_grids(
            selected_polygons,
            self.recognizer.input_size,
            layout="annotated",
            min_area=self.min_polygon_area,
        )
        images = [x["image"].to(self.device) for x in batched_inputs]
        crops = sample_crops(
            images, grids, torch.as_tensor(image_indices, dtype=torch.long)[selected]
        )
        return (
            self._normalize_crops(crops, len(batched_inputs[0]["image"])),
            [labels[i] for i in selected],
            counts,
        )

    @torch.no_grad()
    def detected_training_crops(
        self, batched_inputs: List[Dict], prob_maps: torch.Tensor
    ) -> Tuple[torch.Tensor, List[str], int]:
        """Crops of the detector's own outlines that found a usable ground-truth word.

        Args:
            batched_inputs: the training batch (as :meth:`forward`).
            prob_maps: (B, 1, H_pad, W_pad) probability maps of this batch (network-input frame).

        Returns:
            crops: (M, 3, h, w) normalized RGB crops, cut as at inference (``crop_variants``'
                first framing in the first of ``crop_shapes``, else ``crop_layout``), at most
                ``max_train_crops``.
            labels: the matched ground-truth words' labels.
            num_matched: outlines matched before the cap.
        """
        prob = prob_maps[:, 0].detach().float().cpu().numpy()
        polygons, labels, image_indices = [], [], []
        for index, inputs in enumerate(batched_inputs):
            height, width = inputs["image"].shape[-2:]
            outlines, _ = self.postprocessor(
                prob[index, :height, :width], output_size=(height, width)
            )
            instances = inputs["instances"]
            words, word_labels = [], []
            for polygon, text, ignore in zip(
                instances.gt_polygons, instances.gt_texts, instances.gt_ignore.tolist()
            ):
                label = None if ignore else self.training_label(text)[0]
                if label is not None:
                    words.append(np.asarray(polygon, dtype=np.float64))
                    word_labels.append(label)
            for i, j in match_outlines_to_words(outlines, words):
                polygons.append(np.asarray(outlines[i], dtype=np.float64))
                labels.append(word_labels[j])
                image_indices.append(index)
        num_matched = len(polygons)
        if num_matched > self.max_train_crops:
            keep = torch.randperm(num_matched)[: self.max_train_crops].sort().values.tolist()
            polygons = [polygons[i] for i in keep]
            labels = [labels[i] for i in keep]
            image_indices = [image_indices[i] for i in keep]
        layout = self.crop_layout
        if self.crop_variants and polygons:
            first = self.crop_variants[0][:4] + (False,)  # not the half turn
            polygons, _ = framed_outlines(polygons, [first], self.crop_shapes[:1])
            layout = "annotated"
        grids, valid = polygon_sampling_grids(
            polygons, self.recognizer.input_size, layout=layout, min_area=self.min_polygon_area
        )
        images = [x["image"].to(self.device) for x in batched_inputs]
        crops = sample_crops(
            images, grids[valid], torch.as_tensor(image_indices, dtype=torch.long)[valid]
        )
        kept = valid.nonzero()[:, 0].tolist()
        return (
            self._normalize_crops(crops, len(batched_inputs[0]["image"])),
            [labels[i] for i in kept],
            num_matched,
        )
