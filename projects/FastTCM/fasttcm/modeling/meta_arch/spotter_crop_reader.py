"""``SpotterCropReader``: how a spotter reads polygons with its recognizer at inference.

The spotter's recognizer reads crops of the input image cut along each polygon: the detector's
outlines at inference, ground-truth polygons in the error analysis (``tools/analyze_spotting.py``).
Both go through :meth:`SpotterCropReader.recognize_polygons`, so they are cut, flipped and
normalized identically. With ``crop_variants``, each outline is read in several framings (in each
of ``crop_shapes``) and the most confident reading wins (:func:`read_polygon_crops`). The
predictor API reads with the same function, whatever its backend.
"""

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ...structures.rectification.rectify import polygon_sampling_grids, sample_crops
from ..recognition.crop_voting import Variant, framed_outlines

__all__ = ["SpotterCropReader", "read_polygon_crops"]

#: reads (M, 3, h, w) RGB crops in 0-255 -> (M strings, (M,) confidences)
CropReader = Callable[[torch.Tensor], Tuple[Sequence[str], object]]


def read_polygon_crops(
    images: Sequence[torch.Tensor],
    polygons: Sequence[np.ndarray],
    owners: Sequence[int],
    *,
    read: CropReader,
    input_size: Tuple[int, int],
    layout: str,
    crop_variants: Sequence[Variant] = (),
    crop_shapes: Sequence[str] = ("rectangle",),
    batch_size: int = 64,
    min_area: float = 4.0,
    bgr: bool = False,
) -> Tuple[List[Optional[str]], torch.Tensor]:
    """Read polygons of a batch of images through `read`, as the spotter reads its detections.

    Used by the spotter model and by the predictor API (any backend), so both cut, vote and
    read identically.

    Args:
        images: (3, H, W) images in 0-255 (INPUT.FORMAT channel order, `bgr` tells which).
        polygons: M (K, 2) polygons (x, y) in the pixels of their image.
        owners: M image indices.
        read: the recognizer on RGB 0-255 crops (it normalizes them itself).
        input_size: (h, w) of the recognizer's crops.
        layout: rectification layout (:mod:`~fasttcm.structures.rectification.rectify`) used
            without `crop_variants`.
        crop_variants: framings per polygon (:mod:`~fasttcm.modeling.recognition.crop_voting`);
            the most confident reading wins (ties: the first framing). Empty = one crop in
            `layout`.
        crop_shapes: shapes each of `crop_variants` is cut in ("rectangle", "band"; see
            :mod:`~fasttcm.modeling.recognition.crop_voting`); all of them take part in the
            vote.
        batch_size: crops per `read` call (bounds grid and crop memory).
        min_area: polygons below this area (pixels^2) give no crop.
        bgr: the images are BGR; crops are flipped to RGB.

    Returns:
        texts: M readings, None where the polygon gives no crop.
        scores: (M,) float32 CPU confidences, 0 where the polygon gives no crop.
    """
    owners = torch.as_tensor(list(owners), dtype=torch.long)
    if len(owners) == 0:  # no detections (with crop variants, 0 framings per polygon)
        return [], torch.zeros(0)
    per_polygon = 1
    if crop_variants:
        polygons, owner_polygon = framed_outlines(list(polygons), crop_variants, crop_shapes)
        per_polygon = len(polygons) // max(len(owners), 1)
        owners = owners[torch.as_tensor(owner_polygon, dtype=torch.long)]
        layout = "annotated"
    texts: List[Optional[str]] = [None] * len(polygons)
    scores = torch.zeros(len(polygons))
    # framings a shape leaves out (empty polygons) take no place in the recognizer's batches
    candidates = [i for i, polygon in enumerate(polygons) if len(polygon) >= 3]
    for start in range(0, len(candidates), batch_size):
        batch = candidates[start : start + batch_size]
        grids, valid = polygon_sampling_grids(
            [polygons[i] for i in batch], input_size, layout=layout, min_area=min_area
        )
        chunk = torch.as_tensor(batch, dtype=torch.long)[valid]
        if len(chunk) == 0:
            continue
        crops = sample_crops(images, grids[valid], owners[chunk])
        if bgr:
            crops = crops.flip(1)
        chunk_texts, chunk_scores = read(crops)
        for i, text in zip(chunk.tolist(), chunk_texts):
            texts[i] = text
        scores[chunk] = torch.as_tensor(chunk_scores).float().cpu()
    if per_polygon == 1:
        return texts, scores
    grid = scores.reshape(-1, per_polygon)
    readable = torch.tensor([t is not None for t in texts], dtype=torch.bool).reshape(grid.shape)
    best = torch.where(readable, grid, torch.full_like(grid, -1.0)).argmax(dim=1)
    chosen = (torch.arange(len(grid)) * per_polygon + best).tolist()
    return [texts[i] for i in chosen], grid.gather(1, best[:, None])[:, 0]


class SpotterCropReader:
    """Mixin of :class:`~.text_spotter.FastTCMTextSpotter`: reading polygons at inference.

    Uses the host's ``recognizer``, ``device``, ``input_format``, ``crop_layout``,
    ``crop_variants``, ``crop_shapes``, ``crop_batch_size`` and ``min_polygon_area``.
    """

    @torch.no_grad()
    def recognize_polygons(
        self,
        batched_inputs: List[Dict],
        polygons: Sequence[Sequence[np.ndarray]],
        layout: Optional[str] = None,
        vote: bool = False,
    ) -> Tuple[List[List[Optional[str]]], List[torch.Tensor]]:
        """Read given polygons with the recognizer, cropped exactly as detections are cropped.

        The polygons are scaled per axis from original-image pixels (``inputs["height"]``,
        ``inputs["width"]``; the test mapper only resizes) to the pixels of each input's
        "image", rectified from that image (:func:`read_polygon_crops`), flipped to RGB when
        INPUT.FORMAT is BGR and read in batches of ``crop_batch_size``.

        Args:
            batched_inputs: the test loader's dicts ("image" (3, H, W), "height", "width").
            polygons: per input, its (K_i, 2) polygons (x, y) in original-image pixels.
            layout: a rectification layout ("annotated", "predicted", "rectangle");
                None = ``crop_layout``.
            vote: read every framing of ``crop_variants`` and keep the most confident reading
                (as inference does when ``crop_variants`` is set); `layout` is then unused.

        Returns:
            texts: per input, one reading per polygon; None where the polygon gives no crop.
            scores: per input, a (N_i,) float32 CPU tensor of recognition confidences (0 where
                the polygon gives no crop).
        """
        flat, owners = [], []
        for index, (inputs, polys) in enumerate(zip(batched_inputs, polygons)):
            input_height, input_width = inputs["image"].shape[-2:]
            height = inputs.get("height", input_height)
            width = inputs.get("width", input_width)
            scale = np.array([input_width / width, input_height / height], dtype=np.float64)
            flat.extend(np.asarray(p, dtype=np.float64) * scale for p in polys)
            owners.extend([index] * len(polys))
        images = [x["image"].to(self.device) for x in batched_inputs]
        if images and len(images[0]) != 3:
            raise ValueError(
                "text_spotter.FastTCMTextSpotter: images must have 3 channels, "
                f"got {len(images[0])}"
            )
        texts, scores = read_polygon_crops(
            images,
            flat,
            owners,
            read=self._read_rgb_crops,
            input_size=self.recognizer.input_size,
            layout=self.crop_layout if layout is None else layout,
            crop_variants=self.crop_variants if vote else (),
            crop_shapes=self.crop_shapes,
            batch_size=self.crop_batch_size,
            min_area=self.min_polygon_area,
            bgr=self.input_format == "BGR",
        )
        out_texts, out_scores, start = [], [], 0
        for polys in polygons:
            out_texts.append(texts[start : start + len(polys)])
            out_scores.append(scores[start : start + len(polys)])
            start += len(polys)
        return out_texts, out_scores

    def _read_rgb_crops(self, crops: torch.Tensor):
        return self.recognizer.recognize(self.recognizer.normalize(crops))

    def _normalize_crops(self, crops: torch.Tensor, num_channels: int) -> torch.Tensor:
        """(M, 3, h, w) crops in 0-255, INPUT.FORMAT order -> normalized RGB recognizer input."""
        if num_channels != 3:
            raise ValueError(
                f"text_spotter.FastTCMTextSpotter: images must have 3 channels, got {num_channels}"
            )
        if self.input_format == "BGR":
            crops = crops.flip(1)
        return self.recognizer.normalize(crops)
