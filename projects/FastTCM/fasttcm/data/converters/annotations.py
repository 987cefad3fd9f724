"""The converters' intermediate form: an image and its text instances, built and validated.

Every converter parses its native files into :class:`SourceImage` objects holding
:class:`TextAnnotation` instances made by :func:`make_annotation`, and the split writers turn
those into the text JSON and the evaluation ground truth.

Polygons are kept as annotated (also self-intersecting ones: the loader,
:func:`fasttcm.data.datasets.text_json.load_text_json`, repairs them, and the evaluation GT stays
faithful to the official annotation). Annotations with fewer than 3 points or non-finite
coordinates cannot be represented in the JSON schema and are skipped with a warning naming the
file and line.

Once the image sizes are known, :func:`drop_unusable_polygons` removes from the text JSON the
polygons lying entirely outside their image or degenerate after clipping to it
(:mod:`fasttcm.data.image_bounds`), with one warning per split naming the JSON file, the count
and the images these drops leave without any text instance. The evaluation ground truth keeps
them, as the official annotation has them. No detectron2 import.
"""

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from ...structures.text import DONT_CARE_TEXT
from ..image_bounds import MIN_CLIPPED_AREA, unusable_polygons_in_image
from .source_files import ConversionError, pair_images_with_annotations

logger = logging.getLogger(__name__)

__all__ = [
    "TextAnnotation",
    "SourceImage",
    "make_annotation",
    "collect_paired_images",
    "drop_unusable_polygons",
]


@dataclass
class TextAnnotation:
    """One text instance in a converter's intermediate form.

    Attributes:
        polygon: (N, 2) float64 array, N >= 3, absolute pixel coordinates (x right, y down) of the
            image as detectron2 reads it, vertices in annotation order.
        text: transcription; ``"###"`` for don't-care regions.
        ignore: True for don't-care regions (always True when ``text == "###"``).
    """

    polygon: np.ndarray
    text: str
    ignore: bool


@dataclass
class SourceImage:
    """A raw image and its annotations.

    Attributes:
        path: path of the raw image file.
        file_name: name it gets under ``DST/<split>_images`` (POSIX, relative).
        annotations: the image's text instances, in file order.
    """

    path: str
    file_name: str
    annotations: List[TextAnnotation] = field(default_factory=list)


def make_annotation(coords, text: str, ignore: bool, *, path, line: Optional[int] = None):
    """Build a :class:`TextAnnotation` from flat ``[x1, y1, ...]`` or ``[[x, y], ...]`` coords.

    Args:
        coords: the polygon's vertices in absolute pixels, flat (2N,) or as (N, 2).
        text: the transcription.
        ignore: True for a don't-care region; ``text == "###"`` forces it.
        path: annotation file (or a description of the instance), for messages.
        line: 1-based line number in `path`, for messages.

    Returns:
        The annotation, or None (with a warning naming `path`/`line`) for a polygon that the JSON
        schema cannot hold: fewer than 3 distinct vertices or non-finite coordinates. A closing
        vertex equal to the first one is dropped.

    Raises:
        ConversionError: if `coords` has an odd number of values or is not a list of pairs.
    """
    pts = np.asarray(coords, dtype=np.float64)
    if pts.ndim == 1:
        if pts.size % 2:
            raise ConversionError(path, f"odd number of coordinates ({pts.size})", line)
        pts = pts.reshape(-1, 2)
    elif pts.ndim != 2 or pts.shape[1] != 2:
        raise ConversionError(
            path, f"polygon must be a list of [x, y] pairs, got shape {pts.shape}", line
        )
    if len(pts) > 1 and np.array_equal(pts[0], pts[-1]):
        pts = pts[:-1]
    if not np.isfinite(pts).all():
        logger.warning("%s: skipping a polygon with non-finite coordinates", _where(path, line))
        return None
    if len(pts) < 3:
        logger.warning(
            "%s: skipping a polygon with %d point(s) (< 3)", _where(path, line), len(pts)
        )
        return None
    ignore = bool(ignore) or text == DONT_CARE_TEXT
    return TextAnnotation(polygon=pts, text=DONT_CARE_TEXT if ignore else text, ignore=ignore)


def _where(path, line):
    return f"{path}" if line is None else f"{path}, line {line}"


def collect_paired_images(
    image_dir,
    ann_dir,
    ann_name_for_stem: Callable[[str], Sequence[str]],
    what: str,
    parse: Callable[[Path], List[TextAnnotation]],
) -> List[SourceImage]:
    """Each image of `image_dir` with the annotations of its own annotation file in `ann_dir`.

    Args:
        image_dir, ann_dir, ann_name_for_stem, what: as in
            :func:`~.source_files.pair_images_with_annotations`.
        parse: reads one annotation file into its instances.

    Returns:
        the images in natural order of their names, each named as its raw file.
    """
    pairs = pair_images_with_annotations(image_dir, ann_dir, ann_name_for_stem, what)
    return [
        SourceImage(path=str(img), file_name=Path(img).name, annotations=parse(gt))
        for img, gt in pairs
    ]


def drop_unusable_polygons(
    records: Sequence[Tuple[SourceImage, Tuple[int, int]]], where: str
) -> List[Tuple[SourceImage, Tuple[int, int]]]:
    """The records without the polygons that are unusable in their images.

    A polygon is unusable when it lies entirely outside its image or less than
    :data:`~fasttcm.data.image_bounds.MIN_CLIPPED_AREA` of it is inside
    (:mod:`fasttcm.data.image_bounds`). When any is dropped, one warning names `where`, the
    number dropped (with an example) and the images these drops leave without any text instance,
    which add no positive to the text loss. (Images without annotations in the source are
    counted when the JSON is loaded, :func:`fasttcm.data.datasets.text_json.load_text_json`.)

    Args:
        records: ``(image, (height, width))`` pairs, the size as detectron2 reads the image.
        where: the file the records go to (the split's JSON), for the warning.

    Returns:
        The records in the same order; an image that lost polygons is a copy without them, the
        others are the same objects.
    """
    out, num_dropped, example, emptied = [], 0, None, []
    for src, (height, width) in records:
        polygons = [a.polygon for a in src.annotations]
        unusable = unusable_polygons_in_image(polygons, height, width)
        if unusable.any():
            num_dropped += int(unusable.sum())
            if example is None:
                k = int(np.flatnonzero(unusable)[0])
                example = f"instance {k + 1} of {src.path} ({width}x{height})"
            src = dataclasses.replace(
                src, annotations=[a for a, bad in zip(src.annotations, unusable) if not bad]
            )
            if not src.annotations:
                emptied.append(src.path)
        out.append((src, (height, width)))
    if num_dropped:
        left = (
            f"; {len(emptied)} of {len(records)} image(s) are left with no text instance by "
            f"these drops, e.g. {emptied[0]}: they add no positive to the text loss"
            if emptied
            else ""
        )
        logger.warning(
            "%s: dropped %d polygon(s) lying outside their image or degenerate after clipping to "
            "it (less than %g square pixel inside), e.g. %s; the evaluation ground truth keeps "
            "them%s",
            where,
            num_dropped,
            MIN_CLIPPED_AREA,
            example,
            left,
        )
    return out
