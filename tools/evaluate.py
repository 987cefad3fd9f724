#!/usr/bin/env python
"""Offline evaluation of result files against ground-truth files, as the official scripts do.

Text detection (ICDAR IoU protocol or Total-Text DetEval; rules in
projects/FastTCM/docs/protocols.md)::

    tools/evaluate.py --task det --gt GT --pred PRED [--protocol iou|deteval] [--score-sweep]

GT and PRED are folders or zip files of ``gt_<id>.txt`` / ``res_<id>.txt`` (``gt_img_<id>.txt``,
``res_img_<id>.txt`` and bare ``<id>.txt`` also work). GT lines are
``x1,y1,...,xn,yn,transcription`` (n >= 3, ``###`` = don't care, commas allowed in the
transcription); detection lines ``x1,y1,...,xn,yn[,score]`` (an odd count of numbers means the
last is the score, which must lie in [0, 1]). GT and end-to-end lines are read by one of two
rules (``fasttcm/evaluation/protocols/text_lines.py``): ``polygon`` (any number of vertices: the
project's files, Total-Text, CTW1500, AdelaiDet's ``,####``; a line of only numbers ends with a
numeric word, ``x1,...,y4,2015``) or ``icdar2015`` (the RRC Challenge 4 rule: 8 coordinates,
then the transcription, even ``1,000`` or ``12,ab``). The default ``--line-format auto`` picks one
per folder: ``polygon`` when it reads every line, else ``icdar2015`` when every other line is a
quadrilateral, else the error (rule in ``fasttcm/evaluation/protocols/submission_io.py``).
The ground truth defines the image set: a missing result file means no detections, a result file
without ground truth is an error. Malformed lines are reported with file and line number (exit
status 1).

The ``det_txt/`` folder written by ``TextDetEvaluator`` is a valid PRED: this script then reports
the evaluator's numbers.

DOTA Task 1 (oriented boxes, the devkit's ``dota_evaluation_task1.py``; docs/protocols.md)::

    tools/evaluate.py --task dota --gt LABELTXT_DIR --pred TASK1_DIR [--classes dota10|dota15]

GT is a folder of full-image ``<image>.txt`` labelTxt files (the image set); PRED holds one
``Task1_<class>.txt`` per class (``<image> <score> x1 y1 ... x4 y4``), e.g. the output folder of
``DOTAEvaluator``. The JSON line has ``mAP`` and ``AP`` (class name -> AP50), in percent.

End-to-end text spotting (RRC rules and lexicons; docs/protocols.md)::

    tools/evaluate.py --task e2e --gt GT --pred PRED [--word-spotting]
        [--lexicon none|generic|weak|strong|full --lexicon-dir DIR] [--far-off-rule adelaidet|testr]

PRED lines are ``x1,y1,...,xn,yn[,score],transcription`` (a numeric transcription may be quoted,
``"2015"``; unquoted, a line of only numbers ends with it) or AdelaiDet's
``x1,...,yn,####transcription``; the ``e2e_txt/`` folder written by
``TextSpottingEvaluator`` is a valid PRED. ``--word-spotting`` is the Total-Text setting. With a
lexicon, DIR holds the official lexicon files (e.g. ``ch4_test_vocabulary_new.txt`` and its pair
list; strong: ``new_strong_lexicon/new_voc_img_<id>.txt``). ``precision``/``recall``/``hmean`` are
those of the requested lexicon run; ``runs`` has every run (``e2e_none``, ``e2e_<lexicon>``,
``text_det``: the detection-only figure of the same file).

COCO AP of text detection (pycocotools COCOeval; docs/protocols.md)::

    tools/evaluate.py --task coco --gt instances.json --pred coco_results.json
        [--iou-type bbox segm] [--max-dets 100]

GT is a COCO instances json (``coco_text_gt.json``, written by the ``coco`` evaluator, has the
don't-care text as ``iscrowd`` = 1), PRED a COCO results list (the evaluator's
``coco_instances_results.json``). The JSON line is ``{"task": "coco", "bbox": {"AP", "AP50",
"AP75", "APs", "APm", "APl"}, "segm": {...}}`` in percent, detectron2 ``COCOEvaluator``'s keys
(null where it reports NaN); by default segm is evaluated when every result has a segmentation.

Zips are read within limits (64 MiB per member, 1 GiB per zip, a compression ratio of 100 for
members over 1 MiB; ``fasttcm/evaluation/protocols/zip_reading.py``), raised with
``--zip-max-member-mb``, ``--zip-max-total-mb`` and ``--zip-max-ratio``.

Output: a human-readable summary, then **one JSON object as the last stdout line**, with at least
``precision``, ``recall`` and ``hmean`` in percent (0-100, the detectron2 convention used by the
evaluators), the dataset totals and, with ``--score-sweep``, the best hmean over TCM's score
thresholds 0.3..0.9 (``sweep_*`` keys) and the whole sweep table.

Each task is a function in ``TASKS`` taking the parsed arguments and returning the JSON dict.
"""

import argparse
import json
import sys

_MIB = 2**20


def zip_limits(args):
    """The :class:`~fasttcm.evaluation.protocols.zip_reading.ZipLimits` the arguments ask for.

    A limit not given on the command line keeps the module's default.
    """
    from fasttcm.evaluation.protocols.zip_reading import ZipLimits

    overrides = {}
    if args.zip_max_member_mb is not None:
        overrides["max_member_bytes"] = int(args.zip_max_member_mb * _MIB)
    if args.zip_max_total_mb is not None:
        overrides["max_total_bytes"] = int(args.zip_max_total_mb * _MIB)
    if args.zip_max_ratio is not None:
        overrides["max_ratio"] = args.zip_max_ratio
    return ZipLimits(**overrides)


def run_det(args) -> dict:
    """``--task det``: text detection P/R/hmean of PRED against GT."""
    from fasttcm.evaluation.protocols.submission_io import read_detections, read_ground_truth
    from fasttcm.evaluation.protocols.text_det import (
        MMOCR_SCORE_THRESHOLDS,
        build_text_det_protocol,
        evaluate_text_detection,
    )

    kwargs = {}
    if args.invalid_detections is not None:
        if args.protocol not in ("iou", "iou0.5"):
            raise ValueError("--invalid-detections applies to the iou protocol only")
        kwargs["invalid_detections"] = args.invalid_detections
    protocol = build_text_det_protocol(args.protocol, **kwargs)
    limits = zip_limits(args)
    ground_truth = read_ground_truth(args.gt, line_format=args.line_format, zip_limits=limits)
    detections = read_detections(args.pred, zip_limits=limits)
    if not ground_truth:
        raise ValueError(f"{args.gt}: no ground-truth files (gt_<id>.txt) found")
    result = evaluate_text_detection(
        ground_truth,
        detections,
        protocol,
        score_thresholds=MMOCR_SCORE_THRESHOLDS if args.score_sweep else None,
    )
    summary = {"task": "det", "num_result_files": len(detections), **result.summary()}
    print(
        f"{protocol.name} protocol, {summary['num_images']} images: "
        f"precision {summary['precision']:.2f}, recall {summary['recall']:.2f}, "
        f"hmean {summary['hmean']:.2f} (percent)"
    )
    if args.score_sweep:
        print(
            f"best over score thresholds: hmean {summary['sweep_hmean']:.2f} at score >= "
            f"{summary['sweep_score_thr']:.1f}"
        )
    return summary


def run_dota(args) -> dict:
    """``--task dota``: DOTA Task-1 AP50 of PRED's ``Task1_<class>.txt`` against GT's labelTxt."""
    from fasttcm.evaluation.offline_dota import run_dota as evaluate_dota

    return evaluate_dota(args)


def run_e2e(args) -> dict:
    """``--task e2e``: end-to-end spotting P/R/hmean of PRED against GT, optionally with a
    lexicon."""
    from fasttcm.evaluation.protocols.e2e import E2EProtocol, evaluate_text_spotting
    from fasttcm.evaluation.protocols.lexicon import build_lexicon_corrector
    from fasttcm.evaluation.protocols.submission_io import (
        read_ground_truth,
        read_spotting_detections,
    )

    limits = zip_limits(args)
    ground_truth = read_ground_truth(args.gt, line_format=args.line_format, zip_limits=limits)
    if not ground_truth:
        raise ValueError(f"{args.gt}: no ground-truth files (gt_<id>.txt) found")
    detections = read_spotting_detections(
        args.pred, line_format=args.line_format, zip_limits=limits
    )
    lexicons = {}
    if args.lexicon != "none":
        if not args.lexicon_dir:
            raise ValueError(f"--lexicon {args.lexicon} needs --lexicon-dir")
        lexicons[args.lexicon] = build_lexicon_corrector(
            args.lexicon_dir, args.lexicon, list(ground_truth), far_off_rule=args.far_off_rule
        )
    protocol = E2EProtocol(word_spotting=args.word_spotting)
    result = evaluate_text_spotting(ground_truth, detections, protocol, lexicons=lexicons)
    metrics = result.metrics()
    headline = metrics[f"e2e_{args.lexicon}"]
    for name, m in metrics.items():
        print(
            f"{name}: precision {m['precision']:.2f}, recall {m['recall']:.2f}, "
            f"hmean {m['hmean']:.2f} (percent)"
        )
    return {
        "task": "e2e",
        "lexicon": args.lexicon,
        **headline,
        "num_result_files": len(detections),
        "runs": metrics,
        **{k: v for k, v in result.summary().items() if k != "metrics"},
    }


def run_coco(args) -> dict:
    """``--task coco``: COCO bbox / segm AP of the results json PRED against the instances json
    GT."""
    from fasttcm.evaluation.offline_coco import evaluate_coco_files

    summary = evaluate_coco_files(args.gt, args.pred, args.iou_type, max_dets=args.max_dets)
    for iou_type, metrics in summary.items():
        figures = ", ".join(
            f"{name} {'nan' if value is None else f'{value:.2f}'}"
            for name, value in metrics.items()
        )
        print(f"{iou_type}: {figures} (percent)")
    return {"task": "coco", **summary}


TASKS = {"det": run_det, "dota": run_dota, "e2e": run_e2e, "coco": run_coco}


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", required=True, choices=sorted(TASKS), help="what to evaluate")
    parser.add_argument("--gt", required=True, help="ground truth: folder or zip (coco: json)")
    parser.add_argument("--pred", required=True, help="results: folder or zip (coco: json)")
    text = parser.add_argument_group("--task det and e2e")
    text.add_argument(
        "--line-format",
        choices=("auto", "polygon", "icdar2015"),
        default="auto",
        help="how GT and end-to-end lines split coordinates from the transcription: polygon "
        "(any number of vertices), icdar2015 (8 coordinates, then the transcription) or auto "
        "(default: polygon when it reads every line of the folder, else icdar2015 when the "
        "folder's other lines are all quadrilaterals)",
    )
    text.add_argument(
        "--zip-max-member-mb",
        type=_positive_float,
        default=None,
        help="largest uncompressed zip member, MiB (default 64)",
    )
    text.add_argument(
        "--zip-max-total-mb",
        type=_positive_float,
        default=None,
        help="largest total uncompressed size read from one zip, MiB (default 1024)",
    )
    text.add_argument(
        "--zip-max-ratio",
        type=_positive_float,
        default=None,
        help="largest compression ratio of a zip member over 1 MiB (default 100)",
    )
    det = parser.add_argument_group("--task det")
    det.add_argument(
        "--protocol",
        default="iou",
        help="iou (ICDAR/RRC, default) or deteval (Total-Text DetEval)",
    )
    det.add_argument(
        "--score-sweep",
        action="store_true",
        help="also report the best hmean over score thresholds 0.3..0.9 (MMOCR/TCM tables)",
    )
    det.add_argument(
        "--invalid-detections",
        choices=("drop", "repair"),
        default=None,
        help="iou protocol: drop self-intersecting detections (AdelaiDet, default) or repair "
        "them with buffer(0) (MMOCR)",
    )
    e2e = parser.add_argument_group("--task e2e")
    e2e.add_argument(
        "--lexicon",
        choices=("none", "generic", "weak", "strong", "full"),
        default="none",
        help="lexicon run to report (generic/weak/strong: ICDAR 2015; full: Total-Text, CTW1500)",
    )
    e2e.add_argument("--lexicon-dir", default=None, help="folder holding the lexicon files")
    e2e.add_argument(
        "--word-spotting",
        action="store_true",
        help="RRC word-spotting mode (Total-Text): GT words that are not dictionary words are "
        "don't care",
    )
    e2e.add_argument(
        "--far-off-rule",
        choices=("adelaidet", "testr"),
        default="adelaidet",
        help="lexicon words farther than the rule allows are removed (adelaidet: distance <= 1)",
    )
    coco = parser.add_argument_group("--task coco")
    coco.add_argument(
        "--iou-type",
        nargs="+",
        choices=("bbox", "segm"),
        default=None,
        help="COCO iou types (default: bbox, and segm when every result has a segmentation)",
    )
    coco.add_argument(
        "--max-dets",
        type=int,
        default=100,
        help="COCO maxDets: detections per image counted (default 100)",
    )
    dota = parser.add_argument_group("--task dota")
    dota.add_argument(
        "--classes",
        choices=("dota10", "dota15"),
        default="dota10",
        help="class list: DOTA-v1.0 (15 classes, default) or v1.5 (16)",
    )
    dota.add_argument(
        "--area-ap",
        action="store_true",
        help="area under the PR curve instead of the devkit's VOC07 11-point AP",
    )
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = TASKS[args.task](args)
    except (ValueError, KeyError, OSError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"evaluate.py: error: {message}", file=sys.stderr)
        return 1
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
