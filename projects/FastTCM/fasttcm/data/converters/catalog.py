"""The scene-text dataset converters by name, and the one function that runs them.

:data:`CONVERTERS` maps the name given to ``tools/convert_dataset.py`` to what is specific to a
dataset: the reader of its native files (``collect_split``), its splits and its JSON
description. :func:`convert` reads every split with that reader and writes the dataset folder
with :func:`~fasttcm.data.converters.split_output.convert_dataset`. SynthText, whose conversion
is streamed, brings its own ``convert`` instead. No detectron2 import.
"""

from dataclasses import dataclass
from functools import partial
from typing import Callable, Dict, List, Optional, Sequence

from . import art, ctw1500, icdar2015, msra_td500, synthtext, totaltext
from .annotations import SourceImage
from .split_output import SplitOutputs, convert_dataset

__all__ = ["DatasetConverter", "CONVERTERS", "convert"]


@dataclass(frozen=True)
class DatasetConverter:
    """What is specific to converting one raw dataset.

    Attributes:
        summary: one line for the command-line help (native format in brief).
        splits: the splits that are written.
        collect_split: ``(src, split) -> [SourceImage]``, the reader of the native files; None
            when `convert` is given.
        description: ``info.description`` of the JSON, followed by `` (<split>)``.
        convert: a converter that writes its outputs itself,
            ``(src, dst, *, gt_root, image_mode, overwrite) -> {split: SplitOutputs}``; None for
            datasets read with `collect_split`.
    """

    summary: str
    splits: Sequence[str]
    collect_split: Optional[Callable[[str, str], List[SourceImage]]] = None
    description: str = ""
    convert: Optional[Callable[..., Dict[str, SplitOutputs]]] = None


# Converter name (the dataset argument of tools/convert_dataset.py) -> what converts it.
CONVERTERS: Dict[str, DatasetConverter] = {
    "icdar2015": DatasetConverter(
        "ICDAR 2015 incidental text (gt_img_<n>.txt quadrilaterals)",
        icdar2015.SPLITS,
        icdar2015.collect_split,
        "ICDAR 2015 incidental scene text",
    ),
    "totaltext": DatasetConverter(
        "Total-Text (poly_gt_<img>.txt 'x: [[..]], y: [[..]]' polygons)",
        totaltext.SPLITS,
        totaltext.collect_split,
        "Total-Text",
    ),
    "ctw1500": DatasetConverter(
        "SCUT-CTW1500 (XML train labels, '####' test labels)",
        ctw1500.SPLITS,
        ctw1500.collect_split,
        "SCUT-CTW1500",
    ),
    "td500": DatasetConverter(
        "MSRA-TD500 (.gt rotated rectangles, difficult -> ignore)",
        msra_td500.SPLITS,
        msra_td500.collect_split,
        "MSRA-TD500",
    ),
    "art": DatasetConverter(
        "ICDAR 2019 ArT (train_labels.json polygons)",
        art.SPLITS,
        art.collect_split,
        "ICDAR 2019 ArT",
    ),
    "synthtext": DatasetConverter(
        "SynthText 800k (gt.mat word quads; train only, no evaluation GT; --images symlink "
        "recommended)",
        synthtext.SPLITS,
        convert=synthtext.convert,
    ),
}


def convert(
    name: str, src, dst, *, gt_root=None, image_mode: str = "copy", overwrite: bool = False
) -> Dict[str, SplitOutputs]:
    """Convert the raw dataset `name` under `src` into the dataset folder `dst`.

    Args:
        name: a key of :data:`CONVERTERS`.
        src: folder holding the extracted raw dataset (layout in the converter module's
            docstring).
        dst: output folder, e.g. ``$DETECTRON2_DATASETS/icdar2015``.
        gt_root: root of the evaluation GT; default ``<parent of dst>/evaluation/<dst name>_gt``.
        image_mode: ``"copy"`` or ``"symlink"``.
        overwrite: replace existing outputs; otherwise any existing output is an error.

    Returns:
        ``{split: SplitOutputs}``.

    Raises:
        ValueError: unknown `name`, or bad input (see
            :func:`~fasttcm.data.converters.split_output.convert_dataset`).
        FileNotFoundError, FileExistsError: missing input or existing output.
    """
    if name not in CONVERTERS:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(CONVERTERS)}")
    spec = CONVERTERS[name]
    options = {"gt_root": gt_root, "image_mode": image_mode, "overwrite": overwrite}
    if spec.convert is not None:
        return spec.convert(src, dst, **options)
    return convert_dataset(
        partial(spec.collect_split, src), spec.splits, dst, description=spec.description, **options
    )
