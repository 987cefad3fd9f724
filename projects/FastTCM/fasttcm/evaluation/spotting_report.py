"""The spotting analysis as a readable table and as files (docs/spotting.md).

:func:`format_analysis_table` turns :meth:`~.spotting_analysis.SpottingAnalysis.summary` into a
plain-text table; :func:`write_analysis_files` writes the summary and the per-instance records.
"""

import csv
import io
import json
import os
from typing import Any, Dict, List

from tabulate import tabulate

from ..utils.atomic_io import atomic_write_json, atomic_write_text
from .spotting_analysis import RECORD_FIELDS, SpottingAnalysis

__all__ = ["ANALYSIS_FILES", "format_analysis_table", "write_analysis_files"]

ANALYSIS_FILES = ("spotting_analysis.json", "spotting_instances.jsonl", "spotting_instances.csv")
"""The files :func:`write_analysis_files` writes: the summary, and one record per instance."""


def _share(count: int, total: int) -> str:
    return f"{100.0 * count / total:.2f}" if total else "-"


def format_analysis_table(summary: Dict[str, Any]) -> str:
    """Counts and shares of each category, the metrics and the what-ifs, as a text table."""
    gt, det = summary["counts"]["gt"], summary["counts"]["det"]
    signals = summary["counts"]["misread_signals"]
    threshold = summary["protocol"].get("iou_threshold", 0.5)
    rows: List[List[Any]] = [
        [f"ground truth (care words: {gt['care']})", "count", "% words"],
        ["  read right (true positives)", gt["correct"], _share(gt["correct"], gt["care"])],
        ["  missed", gt["missed"], _share(gt["missed"], gt["care"])],
        [
            "    by the detector",
            gt["missed_by_detector"],
            _share(gt["missed_by_detector"], gt["care"]),
        ],
        ["      no detection overlaps", gt["missed_no_overlap"], ""],
        [f"      best IoU <= {threshold}", gt["missed_low_iou"], ""],
        ["      its detection matched another word", gt["missed_taken"], ""],
        ["    found, dropped by the reading gate", "", ""],
        ["      its reading was right", gt["missed_rejected_right"], ""],
        ["      its reading was wrong", gt["missed_rejected_wrong"], ""],
        ["  detected but misread", gt["misread"], _share(gt["misread"], gt["care"])],
        ["    the crop cuts or pads the word", gt["misread_crop"], ""],
        ["    misread on a clean crop", gt["misread_clean"], ""],
        [f"  (don't care: {gt['dont_care']})", "", ""],
        [f"detections (care: {det['care']})", "count", "% dets"],
        ["  read right (true positives)", det["correct"], _share(det["correct"], det["care"])],
        ["  misread (the pairs above)", det["misread"], _share(det["misread"], det["care"])],
        [
            "  false positives",
            det["false_positive"],
            _share(det["false_positive"], det["care"]),
        ],
        ["    with a reading", det["fp_with_reading"], ""],
        ["    read as nothing", det["fp_empty_reading"], ""],
        ["    duplicate of a matched word", det["fp_duplicate"], ""],
        [f"    on a word, IoU <= {threshold}", det["fp_low_iou"], ""],
        ["    on no word", det["fp_background"], ""],
        [f"  (don't care: {det['dont_care']}, invalid: {det['invalid']})", "", ""],
        ["misread words: the two signals", "", ""],
        ["  crop or clean decided by the recognizer", signals["by_recognizer"], ""],
        ["  crop or clean decided by geometry", signals["by_geometry"], ""],
        ["  geometry: the detection cuts the word", signals["geometric_cut"], ""],
        ["  geometry: it pads the word", signals["geometric_pad"], ""],
        ["  geometry: it cuts and pads", signals["geometric_cut_pad"], ""],
        ["  geometry: clean", signals["geometric_clean"], ""],
        ["  recognizer: reads the word's own crop right", signals["recognizer_crop"], ""],
        ["  recognizer: misreads it too", signals["recognizer_clean"], ""],
        ["  crop misreads due to the outline", signals["crop_outline"], ""],
        ["  crop misreads due to the rectification", signals["crop_rectification"], ""],
    ]
    width = max(len(str(row[0])) for row in rows) + 2
    table = "\n".join(f"{row[0]:<{width}}{row[1]!s:>7}  {row[2]!s:>8}".rstrip() for row in rows)
    metrics = [
        [name, m["precision"], m["recall"], m["hmean"]]
        for name, m in (
            ("end to end, no lexicon", summary["metrics"]["e2e_none"]),
            ("detection only", summary["metrics"]["text_det"]),
            *((f"if {name.replace('_', ' ')}", m) for name, m in summary["what_if"].items()),
        )
    ]
    metric_table = tabulate(
        metrics, headers=["", "precision", "recall", "hmean"], floatfmt=".2f", tablefmt="simple"
    )
    parts = [table, metric_table]
    readings = summary.get("gt_crop_readings", {})
    if readings:
        parts.append(
            tabulate(
                [[name, r["cropped"], r["correct"], r["accuracy"]] for name, r in readings.items()],
                headers=["word crops read by", "cropped", "read right", "accuracy %"],
                floatfmt=".2f",
                tablefmt="simple",
            )
        )
    return "\n\n".join(parts)


def write_analysis_files(output_dir: str, analysis: SpottingAnalysis, summary: dict) -> None:
    """Write :data:`ANALYSIS_FILES` under `output_dir`, each atomically.

    ``spotting_analysis.json``: `summary` (:meth:`SpottingAnalysis.summary`);
    ``spotting_instances.jsonl``: one JSON record per ground truth and detection;
    ``spotting_instances.csv``: the same records, columns :data:`RECORD_FIELDS` then the
    ground-truth crop readings (empty cells for None).
    """
    os.makedirs(output_dir, exist_ok=True)
    atomic_write_json(os.path.join(output_dir, ANALYSIS_FILES[0]), summary, indent=2)
    records = analysis.records
    atomic_write_text(
        os.path.join(output_dir, ANALYSIS_FILES[1]),
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
    )
    extra = sorted({k for r in records for k in r} - set(RECORD_FIELDS))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*RECORD_FIELDS, *extra], lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: ("" if v is None else v) for k, v in record.items()})
    atomic_write_text(os.path.join(output_dir, ANALYSIS_FILES[2]), buffer.getvalue())
