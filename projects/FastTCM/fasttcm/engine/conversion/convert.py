"""One entry point for every source format: read, map, check, write atomically, report."""

import logging
import os
from typing import Optional

from ...utils.atomic_io import atomic_write_text
from .clip import convert_clip
from .clip4str import convert_clip4str
from .report import ConversionError, ConversionReport
from .target import check_output_path, write_checkpoint
from .tcm import convert_tcm

__all__ = ["SOURCES", "convert_checkpoint"]

logger = logging.getLogger(__name__)

SOURCES = ("tcm", "clip4str", "openai-clip", "open_clip")
"""Formats ``--from`` accepts."""


def convert_checkpoint(
    source: str,
    input_path: str,
    output: str,
    cfg,
    *,
    overwrite: bool = False,
    strict: bool = False,
    bsm_identity: bool = False,
    report: Optional[ConversionReport] = None,
) -> ConversionReport:
    """Convert `input_path` (format `source`) into the detectron2 checkpoint `output`.

    Args:
        source: one of :data:`SOURCES`.
        input_path: the official checkpoint; for the CLIP sources also an open_clip pretrained
            name (``RN50-quickgelu:openai``).
        output: the ``.pth`` file to write (atomically).
        cfg: the config of the model the weights are for (its names and shapes are the target).
        overwrite: replace an existing `output`.
        strict: refuse (write nothing) when an input entry is unused or a model tensor unfilled.
        bsm_identity: ``tcm`` only: keep the identity BSM projection when the file's ``pix_w``
            is the unusable (D, D/2) one, instead of refusing the file.
        report: filled in place when given (so a caller sees partial results after an error).

    Returns:
        The :class:`ConversionReport` (``output`` set once the file is written).

    Raises:
        FileExistsError: `output` exists and `overwrite` is False (checked before reading).
        FileNotFoundError, ValueError (ConversionError included): the input cannot be converted;
            nothing is written.
    """
    if source not in SOURCES:
        raise ConversionError(f"unknown source format {source!r}; expected one of {SOURCES}")
    check_output_path(output, overwrite)
    report = report if report is not None else ConversionReport(source=source, input=input_path)
    files = {}
    if source == "tcm":
        state, _ = convert_tcm(input_path, cfg, report, bsm_identity=bsm_identity)
    elif source == "clip4str":
        state, _, files = convert_clip4str(input_path, cfg, report, output)
    else:
        state, _ = convert_clip(input_path, cfg, report)
    if strict and (report.unused or report.unfilled):
        raise ConversionError(
            f"{input_path}: --strict: {len(report.unused)} input entries unused "
            f"({sorted(report.unused)[:10]}) and {len(report.unfilled)} model tensors unfilled "
            f"({report.unfilled[:10]}); nothing written"
        )
    if report.unfilled:
        logger.warning(
            f"{len(report.unfilled)} model tensors are not in {input_path} and keep their "
            f"initialisation (evaluation with these weights alone is refused): "
            f"{report.unfilled[:20]}{' ...' if len(report.unfilled) > 20 else ''}"
        )
    for path, text in files.items():
        if os.path.exists(path) and not overwrite:
            with open(path, "r", encoding="utf-8") as f:
                if f.read() != text:
                    raise FileExistsError(
                        f"{path} exists with another charset; pass --overwrite to replace it"
                    )
        atomic_write_text(path, text)
        report.notes.append(f"charset written to {path}")
    write_checkpoint(state, output, report, overwrite)
    return report
