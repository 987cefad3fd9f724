"""Polygon rectification: text polygons -> fixed-size crops that read left to right (pure torch).

The text spotter feeds its recognizer with crops sampled from the image along each text polygon
(the detector's polygons, or the ground truth in training). Everything is batched over
polygons, runs on any device, and is differentiable with respect to the image
(``F.grid_sample``).

**Frames.** Polygons are ``(K, 2)`` vertices ``(x, y)`` in absolute pixels of the image they are
cropped from, in detectron2's continuous frame: pixel (row r, column c) covers
``[c, c + 1) x [r, r + 1)`` and has its centre at ``(c + 0.5, r + 0.5)``; x to the right, y down.
A crop has ``output_size = (h, w)``; its pixel (i, j) is the bilinear sample of the image at the
point the polygon's layout maps the normalized crop coordinate ``(u, v) = ((j + 0.5) / w,
(i + 0.5) / h)`` in ``(0, 1)^2`` to: u runs along the reading direction (left to right in the
crop), v from the top of the text to its bottom. Samples outside the image are zero.

**Layouts.**

* ``"annotated"`` (ground truth, dataset order): 4 points = a quadrilateral listed clockwise from
  its top-left corner (ICDAR 2015, the synthetic generator): exact perspective warp through the
  homography that maps the unit square's corners (0,0), (1,0), (1,1), (0,1) onto the 4 vertices
  (batched 8x8 linear solve). 2n points (n >= 3; Total-Text, CTW1500, the synthetic generator):
  n along the top edge left->right, then n along the bottom edge right->left; both long sides are
  resampled by arc length at the w column centres, and column j runs on the straight line from
  the j-th top point to the j-th bottom point. Any other vertex count uses the contour fallback.
* ``"predicted"`` (detector output, no side structure; e.g. DB contours): a quadrilateral is first
  rolled so that its first edge is a long edge heading in the reading direction (see below), then
  warped exactly. Another outline that fills at least 85% of its minimum-area rectangle is
  straight text: that rectangle is warped (long side = reading direction), which keeps rounded or
  bevelled ends of DB outlines from skewing the crop. Curved outlines use the contour fallback.
* ``"rectangle"`` (detector output, any outline): the polygon's minimum-area rectangle, long
  side = reading direction, warped exactly. Straight text keeps any perspective skew and curved
  text stays curved inside the crop, but the crop never follows the wobble of a noisy outline.

**Contour fallback.** Outlines without side structure are split into a top and a bottom side by
two end caps found along their principal axis (:mod:`.two_sided_warp`), then sampled as a
2n-point polygon. Reading directions point to the right (``x`` component > 0), or straight down
when vertical, so vertical text is read top to bottom. When that split leaves a side without an
edge or of zero length, the polygon's minimum-area rectangle is warped as a quadrilateral instead
(long side = reading direction).

**Validity.** Polygons with fewer than 3 vertices, a non-finite coordinate, or an absolute
shoelace area below ``min_area`` (pixels^2) give no crop; they are counted
(``RectifiedCrops.num_skipped``), never an error. Counter-clockwise polygons are first reversed
keeping their first vertex, so a mirrored listing of the same outline gives the same crop. A quad
whose homography sends part of the unit square through infinity (concave or self-intersecting)
uses the contour fallback.

The geometry lives in :mod:`.polygon_batch` (padding, orientation, validity), :mod:`.quad_warp`
(perspective warps, minimum-area rectangles) and :mod:`.two_sided_warp` (curved text); this
module picks the warp per layout and samples the crops.
"""

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from .polygon_batch import is_valid, make_clockwise, pad_polygons, signed_areas
from .quad_warp import (
    canonical_predicted_quads,
    homography_grids,
    min_area_rect_quads,
    quad_homographies,
)
from .two_sided_warp import annotated_side_ends, contour_ends, two_sided_grids

__all__ = [
    "LAYOUTS",
    "RectifiedCrops",
    "polygon_validity",
    "polygon_sampling_grids",
    "sample_crops",
    "rectify_polygons",
]

LAYOUTS = ("annotated", "predicted", "rectangle")
"""Vertex conventions :func:`polygon_sampling_grids` understands (see the module docstring)."""

# predicted outlines filling their minimum-area rectangle this much are straight
_STRAIGHT_FILL_RATIO = 0.85


@dataclass
class RectifiedCrops:
    """Crops of the polygons that could be rectified.

    Attributes:
        crops: (M, C, h, w) float crops, in the order of the kept polygons.
        keep: (N,) bool, which of the N input polygons gave a crop (M = keep.sum()).
        num_skipped: N - M, polygons without a crop (degenerate geometry).
    """

    crops: torch.Tensor
    keep: torch.Tensor
    num_skipped: int


def polygon_validity(
    polygons: Sequence[Union[np.ndarray, torch.Tensor]], *, min_area: float = 1.0
) -> torch.Tensor:
    """Which polygons :func:`polygon_sampling_grids` gives a crop, without building the grids.

    Args:
        polygons: N (K_i, 2) vertex arrays or tensors (x, y).
        min_area: smallest absolute polygon area (pixels^2).

    Returns:
        (N,) bool on the CPU: at least 3 vertices, all finite, area >= `min_area`.
    """
    points, lengths, finite = pad_polygons(polygons)
    return is_valid(lengths, finite, signed_areas(points, lengths), min_area)


def polygon_sampling_grids(
    polygons: Sequence[Union[np.ndarray, torch.Tensor]],
    output_size: Tuple[int, int],
    *,
    layout: str = "annotated",
    min_area: float = 1.0,
    device: Optional[torch.device] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Where each crop pixel samples the image, for N polygons at once.

    Args:
        polygons: N (K_i, 2) vertex arrays or tensors (x, y), absolute pixels of the image.
        output_size: (h, w) of the crops.
        layout: "annotated", "predicted" or "rectangle" (see the module docstring).
        min_area: smallest absolute polygon area (pixels^2) that gets a crop.
        device: device of the computation and of the outputs (default: CPU; it must support
            float64, so keep the CPU for MPS images: :func:`sample_crops` moves the points).

    Returns:
        grids: (N, h, w, 2) float64 image points (x, y) of the crops' pixel centres, in the
            polygons' pixel frame (zeros for skipped polygons); 16 h w bytes per polygon, so
            callers with many polygons and large crops work in chunks.
        valid: (N,) bool, False for polygons that get no crop (fewer than 3 vertices, a
            non-finite coordinate, or an area below `min_area`).

    Raises:
        ValueError: unknown layout, bad output size, or a polygon not of shape (K, 2).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"rectify: unknown layout {layout!r}; known: {LAYOUTS}")
    h, w = (int(s) for s in output_size)
    if h < 1 or w < 1:
        raise ValueError(f"rectify: output_size must be positive (h, w), got {tuple(output_size)}")
    points, lengths, finite = pad_polygons(polygons, device)
    n = len(lengths)
    grids = points.new_zeros(n, h, w, 2)
    if n == 0:
        return grids, torch.zeros(0, dtype=torch.bool, device=points.device)
    area = signed_areas(points, lengths)
    valid = is_valid(lengths, finite, area, min_area)
    points = make_clockwise(points, lengths, area)

    if layout == "rectangle":
        H, ok = quad_homographies(min_area_rect_quads(points[valid]))
        index = valid.nonzero()[:, 0]
        grids[index[ok]] = homography_grids(H[ok], (h, w))  # the others stay zero
        valid[index[~ok]] = False
        return grids, valid

    quads = valid & (lengths == 4)
    sided = (
        valid & (lengths >= 6) & (lengths % 2 == 0)
        if layout == "annotated"
        else torch.zeros_like(valid)
    )
    contour = valid & ~quads & ~sided

    if quads.any():
        quad_points = points[quads][:, :4]
        if layout == "predicted":
            quad_points = canonical_predicted_quads(quad_points)
        H, ok = quad_homographies(quad_points)
        index = quads.nonzero()[:, 0]
        grids[index[ok]] = homography_grids(H[ok], (h, w))
        contour[index[~ok]] = True  # concave or self-intersecting: follow the outline instead

    if sided.any():
        index = sided.nonzero()[:, 0]
        left_end, right_end = annotated_side_ends(lengths[index])
        side_grids, ok = two_sided_grids(points[index], lengths[index], left_end, right_end, (h, w))
        grids[index[ok]] = side_grids[ok]
        contour[index[~ok]] = True

    fallback = torch.zeros_like(valid)
    if layout == "predicted" and contour.any():
        index = contour.nonzero()[:, 0]
        rect_quads = min_area_rect_quads(points[index])
        rect_area = signed_areas(rect_quads, torch.full_like(index, 4)).abs()
        straight = area[index].abs() >= _STRAIGHT_FILL_RATIO * rect_area
        H, ok = quad_homographies(rect_quads[straight])
        grids[index[straight][ok]] = homography_grids(H[ok], (h, w))
        contour[index[straight][ok]] = False

    if contour.any():
        index = contour.nonzero()[:, 0]
        left_end, right_end, ends_ok = contour_ends(points[index], lengths[index])
        side_grids, sides_ok = two_sided_grids(
            points[index], lengths[index], left_end, right_end, (h, w)
        )
        ok = ends_ok & sides_ok
        grids[index[ok]] = side_grids[ok]
        fallback[index[~ok]] = True

    if fallback.any():
        quad_points = min_area_rect_quads(points[fallback])
        H, ok = quad_homographies(quad_points)
        index = fallback.nonzero()[:, 0]
        grids[index[ok]] = homography_grids(H[ok], (h, w))
        valid[index[~ok]] = False
    grids[~valid] = 0.0
    return grids, valid


def sample_crops(
    images: Union[torch.Tensor, Sequence[torch.Tensor]],
    grids: torch.Tensor,
    image_indices: torch.Tensor,
    *,
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """Bilinear crops at image points (``F.grid_sample``, one call per source image).

    Args:
        images: (B, C, H, W) tensor or B tensors (C, H_b, W_b), any dtype (integer images are
            sampled as float32); the frame of `grids` is each image's pixel frame.
        grids: (N, h, w, 2) image points (x, y) in pixels.
        image_indices: (N,) int, the image each crop comes from.
        padding_mode: ``grid_sample`` padding for points outside the image ("zeros" or "border").

    Returns:
        (N, C, h, w) crops on the images' device, differentiable with respect to the images.
    """
    if len(grids) != len(image_indices):
        raise ValueError(
            f"rectify.sample_crops: {len(grids)} grids but {len(image_indices)} image indices"
        )
    num_images = len(images)
    first = images[0] if num_images else None
    if first is None:
        if len(grids):
            raise ValueError("rectify.sample_crops: crops requested from an empty image batch")
        return torch.zeros(0, 0, *grids.shape[1:3])
    dtype = first.dtype if first.is_floating_point() else torch.float32
    n, h, w, _ = grids.shape
    crops = first.new_zeros((n, first.shape[0], h, w), dtype=dtype)
    image_indices = image_indices.to("cpu").long()
    if n == 0:
        return crops
    if int(image_indices.min()) < 0 or int(image_indices.max()) >= num_images:
        raise ValueError(
            f"rectify.sample_crops: image indices span "
            f"[{int(image_indices.min())}, {int(image_indices.max())}] "
            f"but there are {num_images} images"
        )
    outputs, positions = [], []
    for b in torch.unique(
        image_indices
    ).tolist():  # one grid_sample per image, all its crops at once
        image = images[b]
        if image.ndim != 3:
            raise ValueError(
                f"rectify.sample_crops: image {b} has shape {tuple(image.shape)}, "
                "expected (C, H, W)"
            )
        select = (image_indices == b).nonzero()[:, 0]
        height, width = image.shape[-2:]
        grid = grids[select.to(grids.device)]
        scale = grid.new_tensor([2.0 / width, 2.0 / height])
        # align_corners=False: the image's outer pixel edges at -1 and 1; normalized in the grid's
        # precision, then cast, so devices without float64 (MPS) only see `dtype`
        normalized = (grid * scale - 1.0).to(device=image.device, dtype=dtype)
        sampled = F.grid_sample(
            image[None].to(dtype),
            normalized.reshape(1, len(select) * h, w, 2),
            mode="bilinear",
            padding_mode=padding_mode,
            align_corners=False,
        )  # (1, C, n_b * h, w)
        outputs.append(sampled[0].reshape(image.shape[0], len(select), h, w).transpose(0, 1))
        positions.append(select.to(crops.device))
    return crops.index_copy(0, torch.cat(positions), torch.cat(outputs))


def rectify_polygons(
    images: Union[torch.Tensor, Sequence[torch.Tensor]],
    polygons: Sequence[Union[np.ndarray, torch.Tensor]],
    image_indices: Union[Sequence[int], torch.Tensor],
    output_size: Tuple[int, int],
    *,
    layout: str = "annotated",
    min_area: float = 1.0,
    padding_mode: str = "zeros",
) -> RectifiedCrops:
    """Crop every polygon from its image into an upright, left-to-right (h, w) crop.

    Args:
        images: (B, C, H, W) tensor or B tensors (C, H_b, W_b) (e.g. 0-255 RGB); the crops are
            differentiable with respect to them.
        polygons: N (K_i, 2) vertex arrays (x, y) in the pixel frame of their image.
        image_indices: (N,) index into `images` of each polygon.
        output_size: (h, w) of the crops.
        layout: "annotated" (dataset vertex order), "predicted" or "rectangle" (any outline);
            see the module docstring.
        min_area: polygons with a smaller absolute area (pixels^2) are skipped.
        padding_mode: ``grid_sample`` padding outside the image.

    Returns:
        :class:`RectifiedCrops`: crops of the valid polygons in input order, the keep mask and
        the number of skipped polygons.
    """
    image_indices = torch.as_tensor(image_indices, dtype=torch.long).reshape(-1)
    if len(image_indices) != len(polygons):
        raise ValueError(
            f"rectify_polygons: {len(polygons)} polygons but {len(image_indices)} image indices"
        )
    grids, valid = polygon_sampling_grids(polygons, output_size, layout=layout, min_area=min_area)
    crops = sample_crops(images, grids[valid], image_indices[valid], padding_mode=padding_mode)
    return RectifiedCrops(crops=crops, keep=valid, num_skipped=int((~valid).sum()))
