"""The ``manifest.json`` of an exported folder: which graphs it holds and how to run them.

An export folder is self-contained for the text tasks: the manifest carries everything the
onnxruntime backend needs besides the graphs (pixel statistics, padding, the DB post-processing
settings, the recognizer's charsets and decoding lengths, the spotter's crop settings, the
test-time resize, the exporting config's ``TEST`` section). Keys, by section:

* top level: ``format`` ("fasttcm-onnx"), ``version``, ``task`` (:data:`TASKS`),
  ``meta_architecture``, ``opset``, ``exporter``, ``torch_version``, ``graphs`` ({name:
  {"file", "inputs", "outputs"}}, each input/output {"name", "dtype", "shape"}, symbolic
  dimensions as strings), ``input`` ({"format", "min_size_test", "max_size_test",
  "resize_backend"}),
  ``test_config`` (the exporting config's ``TEST`` node as plain JSON), ``text_branch``
  ("folded", "none", or image-conditioned: the text encoder is in the graph);
* ``detector``: ``pixel_mean``, ``pixel_std``, ``size_divisibility``, ``k``, ``pred_masks``,
  ``postprocessor`` (the keyword arguments of ``DBPostprocessor``);
* ``recognizer``: ``charset``, ``test_charset``, ``max_label_length``, ``text_context_length``,
  ``refine_iters``, ``input_size``, ``input_format``;
* ``spotter``: ``input_format``, ``crop_layout``, ``min_polygon_area``, ``crop_batch_size``,
  ``min_text_score``, ``crop_variants`` (rows top, right, bottom, left, flip), ``crop_shapes``
  (each framing cut as "rectangle" and/or "band"; absent in older folders = rectangle only);
* ``dota``: ``pixel_mean``, ``pixel_std``, ``size_divisibility``, ``feature_names``,
  ``feature_shapes`` ({name: {"channels", "stride"}}), ``with_text``, ``heads`` (the file of the
  RPN and ROI head weights).
"""

import json
import os
from typing import Any, Dict

__all__ = ["FORMAT", "MANIFEST_NAME", "TASKS", "VERSION", "graph_path", "read_manifest"]

FORMAT = "fasttcm-onnx"
VERSION = 1
MANIFEST_NAME = "manifest.json"
TASKS = ("detector", "spotter", "recognizer", "dota")
"""What a folder holds: the text detector; the detector and the recognizer; the recognizer; the
rotated R-CNN's backbone + FPN."""

_SECTIONS = {
    "detector": ("detector",),
    "spotter": ("detector", "recognizer", "spotter"),
    "recognizer": ("recognizer",),
    "dota": ("dota",),
}


def read_manifest(directory: str) -> Dict[str, Any]:
    """Read and check ``directory/manifest.json``.

    Raises:
        FileNotFoundError: the folder has no manifest or lacks a graph it names.
        ValueError: the manifest is not valid JSON, has another format or version, an unknown
            task, or misses a section its task needs (the message names the file and the key).
    """
    path = os.path.join(directory, MANIFEST_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path}: no ONNX export manifest; export the model with "
            "tools/export_model.py --format onnx first"
        )
    try:
        with open(path, "r", encoding="utf-8") as f:
            manifest = json.load(f)
    except ValueError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: 'format' must be {FORMAT!r}")
    if manifest.get("version") != VERSION:
        raise ValueError(
            f"{path}: 'version' is {manifest.get('version')!r}; this fasttcm reads version "
            f"{VERSION}: export the model again"
        )
    task = manifest.get("task")
    if task not in TASKS:
        raise ValueError(f"{path}: 'task' must be one of {TASKS}, got {task!r}")
    for key in ("graphs", "input", "meta_architecture") + _SECTIONS[task]:
        if key not in manifest:
            raise ValueError(f"{path}: the {task!r} export has no {key!r} section")
    for name in manifest["graphs"]:
        graph_path(directory, manifest, name)  # raises if missing
    return manifest


def graph_path(directory: str, manifest: Dict[str, Any], name: str) -> str:
    """The path of graph `name` of the manifest.

    Raises:
        KeyError: the manifest has no graph `name`.
        FileNotFoundError: its file is missing.
    """
    graphs = manifest["graphs"]
    if name not in graphs:
        raise KeyError(
            f"{os.path.join(directory, MANIFEST_NAME)}: no graph {name!r} (it has {sorted(graphs)})"
        )
    file_name = graphs[name]["file"]
    if os.path.basename(file_name) != file_name:
        raise ValueError(
            f"{os.path.join(directory, MANIFEST_NAME)}: graph file {file_name!r} "
            "must be a plain file name"
        )
    path = os.path.join(directory, file_name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: graph {name!r} of the ONNX export is missing")
    return path
