"""Export a trained FastTCM-D2 model to a folder of ONNX graphs plus ``manifest.json``.

What each task exports (graph names, :mod:`fasttcm.deploy.graphs` for their inputs/outputs):

* "detector": ``detector`` (pixels -> DB probability and threshold maps);
* "recognizer": ``recognizer_image``, ``recognizer_text``, ``recognizer_visual_decoder``,
  ``recognizer_cross_decoder`` (decoding runs outside, see :mod:`.recognizer_runtime`), and
  ``recognizer_ctc`` when the confidences use the CTC head (``CTC_CONFIDENCE_WEIGHT`` > 0);
* "spotter": both of the above;
* "dota": ``features`` (pixels -> FPN p2..p6 and the class text embeddings).

The exporter is ``torch.onnx.export(..., dynamo=True)`` (``torch.export`` + onnxscript, the
default and maintained exporter; the TorchScript exporter is deprecated). Image graphs have a
dynamic batch and a dynamic height and width that are multiples of the backbone's size
divisibility (32); crop and token graphs a dynamic batch; decoder graphs dynamic context and
query lengths. FastTCM's image-independent text embedding is folded into each graph as a
constant (:func:`~fasttcm.deploy.graphs.fold_text_embeddings`).

The folder is built next to the target and renamed into place, so a reader sees a complete
export or none; an existing folder is replaced only if it is an export itself.
"""

import copy
import inspect
import json
import logging
import os
import shutil
import tempfile
import time
from typing import Any, Callable, Dict, Optional

import numpy as np
import torch
from torch import nn

from ..modeling.clip.tokenizer import bpe_tokenizer
from ..modeling.text_heads.postprocess import DBPostprocessor
from .dota_model import HEADS_FILE, heads_state_dict
from .graph_writer import GraphWriter
from .graphs import (
    DecoderGraph,
    DetectorGraph,
    FeatureGraph,
    RecognizerCTCGraph,
    RecognizerImageGraph,
    RecognizerTextGraph,
    fold_text_embeddings,
)
from .manifest import FORMAT, MANIFEST_NAME, TASKS, VERSION
from .sessions import onnxruntime_available

__all__ = ["export_onnx", "infer_task", "TASK_OF_ARCHITECTURE"]

logger = logging.getLogger(__name__)

TASK_OF_ARCHITECTURE = {
    "FastTCMTextDetector": "detector",
    "FastTCMTextSpotter": "spotter",
    "FastTCMTextRecognizer": "recognizer",
    "FastTCMRotatedRCNN": "dota",
}
"""The task a meta-architecture exports by default; a spotter may also export its detector or
its recognizer alone."""

_MAX_SIDE_STEPS = 1024  # largest image side of the dynamic shapes: 1024 x 32 pixels


def infer_task(model: nn.Module, task: Optional[str] = None) -> str:
    """The export task for `model`: `task` if given and possible, else the architecture's own.

    Raises:
        ValueError: unknown architecture or a task the model cannot export.
    """
    name = type(model).__name__
    if name not in TASK_OF_ARCHITECTURE:
        raise ValueError(
            f"fasttcm.deploy: cannot export a {name}; exportable meta-architectures: "
            f"{sorted(TASK_OF_ARCHITECTURE)}"
        )
    own = TASK_OF_ARCHITECTURE[name]
    if task is None or task == own:
        return own
    if task not in TASKS:
        raise ValueError(f"fasttcm.deploy: unknown task {task!r}; one of {TASKS}")
    if own == "spotter" and task in ("detector", "recognizer"):
        return task
    raise ValueError(f"fasttcm.deploy: a {name} cannot be exported as task {task!r}")


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.Tensor):
        return value.tolist()
    return value


def _postprocessor_arguments(postprocessor: DBPostprocessor) -> Dict[str, Any]:
    """The keyword arguments that rebuild `postprocessor` (read back from its attributes)."""
    arguments = {}
    for name, parameter in inspect.signature(type(postprocessor).__init__).parameters.items():
        if name == "self" or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if not hasattr(postprocessor, name):
            raise ValueError(
                f"fasttcm.deploy: {type(postprocessor).__name__} keeps no attribute {name!r}, so "
                "its setting cannot be written to the export manifest"
            )
        arguments[name] = _json_safe(getattr(postprocessor, name))
    return arguments


def _random_pixels(shape, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=generator) * 255.0


def _text_branch(folded: int, kept: int) -> str:
    if kept:
        return "image-conditioned (text encoder in the graph)"
    return "folded" if folded else "none"


def _export_detector(writer: GraphWriter, model: nn.Module, folded_model: nn.Module) -> Dict:
    divisibility = int(model.backbone.size_divisibility) or 32
    rows = torch.export.Dim("rows", min=1, max=_MAX_SIDE_STEPS)
    cols = torch.export.Dim("cols", min=1, max=_MAX_SIDE_STEPS)
    example = _random_pixels((2, 3, 2 * divisibility, 3 * divisibility))
    writer.export(
        "detector",
        DetectorGraph(folded_model),
        (example,),
        ["image"],
        ["prob", "thresh"],
        {"image": {0: torch.export.Dim.DYNAMIC, 2: divisibility * rows, 3: divisibility * cols}},
    )
    return {
        "pixel_mean": _json_safe(model.pixel_mean.flatten()),
        "pixel_std": _json_safe(model.pixel_std.flatten()),
        "size_divisibility": divisibility,
        "k": float(model.text_head.k),
        "pred_masks": bool(model.pred_masks),
        "postprocessor": _postprocessor_arguments(model.postprocessor),
    }


def _export_recognizer(writer: GraphWriter, recognizer: nn.Module, input_format: str) -> Dict:
    dynamic = torch.export.Dim.DYNAMIC
    height, width = recognizer.input_size
    crops = _random_pixels((2, 3, height, width))
    writer.export(
        "recognizer_image",
        RecognizerImageGraph(recognizer),
        (crops,),
        ["crops"],
        ["image_tokens"],
        {"crops": {0: dynamic}},
    )
    token_ids = bpe_tokenizer()(["ab", "cd"], context_length=recognizer.text_context_length)
    writer.export(
        "recognizer_text",
        RecognizerTextGraph(recognizer),
        (token_ids.long(),),
        ["token_ids"],
        ["text_tokens"],
        {"token_ids": {0: dynamic}},
    )
    with torch.no_grad():
        image_tokens = recognizer.clip_model.encode_image(recognizer.normalize(crops))
    num_image_tokens = image_tokens.shape[1]
    names = ["tokens", "memory", "content_mask", "query_mask", "padding_mask", "query_positions"]
    shapes = {
        "tokens": {0: dynamic, 1: dynamic},
        "memory": {0: dynamic, 1: dynamic},
        "content_mask": {0: dynamic, 1: dynamic},
        "query_mask": {0: dynamic, 1: dynamic},
        "padding_mask": {0: dynamic, 1: dynamic},
        "query_positions": {0: dynamic},
    }
    context = 3
    blocked = torch.ones(context, context, dtype=torch.bool).triu(1)
    mask = torch.zeros(context, context).masked_fill(blocked, float("-inf"))
    for name, decoder, memory_length in (
        ("recognizer_visual_decoder", recognizer.visual_decoder, num_image_tokens),
        (
            "recognizer_cross_decoder",
            recognizer.cross_decoder,
            num_image_tokens + recognizer.text_context_length,
        ),
    ):
        args = (
            torch.tensor([[recognizer.tokenizer.bos_id, 1, 2]] * 2),
            torch.randn(2, memory_length, image_tokens.shape[2]),
            mask,
            mask[1:],
            torch.zeros(2, context, dtype=torch.bool),
            torch.arange(1, context),
        )
        writer.export(name, DecoderGraph(decoder), args, names, ["logits"], shapes)
    if recognizer.ctc_confidence_weight > 0:  # the confidences need the CTC head too
        writer.export(
            "recognizer_ctc",
            RecognizerCTCGraph(recognizer),
            (image_tokens,),
            ["image_tokens"],
            ["log_probs"],
            {"image_tokens": {0: dynamic}},
        )
    return {
        "charset": recognizer.charset,
        "test_charset": recognizer.text_adapter.charset,
        "max_label_length": int(recognizer.max_label_length),
        "text_context_length": int(recognizer.text_context_length),
        "refine_iters": int(recognizer.refine_iters),
        "ctc_confidence_weight": float(recognizer.ctc_confidence_weight),
        "input_size": [int(height), int(width)],
        "input_format": input_format,
    }


def _export_dota(writer: GraphWriter, model: nn.Module, folded_model: nn.Module) -> Dict:
    divisibility = int(model.backbone.size_divisibility) or 32
    feature_names = list(model.backbone.output_shape())
    example = _random_pixels((2, 3, 2 * divisibility, 3 * divisibility))
    with_text = False
    if hasattr(model.backbone, "forward_with_aux"):
        with torch.no_grad():
            normalized = (example - model.pixel_mean) / model.pixel_std
            with_text = "text_embeddings" in model.backbone.forward_with_aux(normalized)[1]
    rows = torch.export.Dim("rows", min=1, max=_MAX_SIDE_STEPS)
    cols = torch.export.Dim("cols", min=1, max=_MAX_SIDE_STEPS)
    writer.export(
        "features",
        FeatureGraph(folded_model, feature_names, with_text),
        (example,),
        ["image"],
        feature_names + (["text_embeddings"] if with_text else []),
        {"image": {0: torch.export.Dim.DYNAMIC, 2: divisibility * rows, 3: divisibility * cols}},
    )
    torch.save(heads_state_dict(model), os.path.join(writer.folder, HEADS_FILE))
    return {
        "pixel_mean": _json_safe(model.pixel_mean.flatten()),
        "pixel_std": _json_safe(model.pixel_std.flatten()),
        "size_divisibility": divisibility,
        "feature_names": feature_names,
        "feature_shapes": {
            name: {"channels": int(spec.channels), "stride": int(spec.stride)}
            for name, spec in model.backbone.output_shape().items()
        },
        "with_text": with_text,
        "heads": HEADS_FILE,
    }


def _max_abs_diff(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.abs(a - b).max()) if a.size else 0.0


def _verify(task: str, folder: str, manifest: Dict, model: nn.Module) -> Dict[str, float]:
    """Largest |onnxruntime - PyTorch| of each exported output on random inputs (two image sizes
    for image graphs), against the original (unfolded) model."""
    from .recognizer_runtime import OnnxRecognizer
    from .sessions import OnnxGraph
    from .text_models import OnnxTextDetector

    diffs: Dict[str, float] = {}
    if task in ("detector", "spotter"):
        runtime = OnnxTextDetector(folder, manifest=manifest)
        reference = DetectorGraph(model).eval()
        d = manifest["detector"]["size_divisibility"]
        for seed, shape in enumerate(((1, 3, 2 * d, 3 * d), (2, 3, 3 * d, 2 * d))):
            pixels = _random_pixels(shape, seed)
            maps = runtime.maps(pixels.numpy())
            with torch.no_grad():
                prob, thresh = reference(pixels)
            for name, expected in (("prob", prob), ("thresh", thresh)):
                diffs[name] = max(diffs.get(name, 0.0), _max_abs_diff(maps[name], expected))
    if task in ("recognizer", "spotter"):
        recognizer = model.recognizer
        crops = _random_pixels((3, 3, *recognizer.input_size), seed=7)
        with torch.no_grad():
            expected = recognizer(recognizer.normalize(crops))
        got = OnnxRecognizer(folder, manifest).forward(crops)
        diffs["recognizer_logits"] = _max_abs_diff(got, expected)
    if task == "dota":
        graph = OnnxGraph(os.path.join(folder, manifest["graphs"]["features"]["file"]))
        settings = manifest["dota"]
        reference = FeatureGraph(model, settings["feature_names"], settings["with_text"]).eval()
        d = settings["size_divisibility"]
        pixels = _random_pixels((1, 3, 3 * d, 2 * d), seed=3)
        outputs = graph(image=pixels.numpy())
        with torch.no_grad():
            expected = reference(pixels)
        for name, value in zip(graph.output_names, expected):
            diffs[name] = _max_abs_diff(outputs[name], value)
    return diffs


def _swap_in(tmp: str, output_dir: str) -> None:
    """Rename the built folder `tmp` to `output_dir`, replacing an earlier export there."""
    old = None
    if os.path.exists(output_dir):
        old = tempfile.mkdtemp(
            prefix=f".{os.path.basename(output_dir)}.old-", dir=os.path.dirname(output_dir)
        )
        os.rename(output_dir, os.path.join(old, "export"))
    os.rename(tmp, output_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def export_onnx(
    model: nn.Module,
    cfg,
    output_dir: str,
    *,
    task: Optional[str] = None,
    opset: Optional[int] = None,
    verify: bool = True,
    progress: Optional[Callable[[str], None]] = None,
) -> Dict[str, Any]:
    """Export `model` (trained weights loaded; it is not modified) to ONNX graphs in `output_dir`.

    Args:
        model: a FastTCM-D2 meta-architecture (see :data:`TASK_OF_ARCHITECTURE`).
        cfg: its config (test-time resize, INPUT.FORMAT and the TEST node go to the manifest).
        output_dir: the export folder; an existing one must be an earlier export (it is replaced).
        task: what to export (default: the architecture's task); "detector" or "recognizer" pick
            a part of a spotter.
        opset: ONNX opset (default: the exporter's recommended one).
        verify: run the graphs in onnxruntime (when installed) on random inputs and record the
            largest difference to PyTorch per output.
        progress: called with a line per exported graph.

    Returns:
        A JSON-serialisable summary: ``output``, ``task``, ``opset``, ``files``, ``graphs`` (inputs
        and outputs of each), ``text_branch``, ``max_abs_diff`` (with `verify`), ``seconds``.

    Raises:
        ValueError: unknown task; `output_dir` is an existing file or a non-empty folder that is
            not an export.
        ImportError: onnx / onnxscript are not installed.
    """
    start = time.perf_counter()
    task = infer_task(model, task)
    output_dir = os.path.abspath(output_dir)
    if os.path.isfile(output_dir):
        raise ValueError(f"fasttcm.deploy: output {output_dir} is a file, not a folder")
    if (
        os.path.isdir(output_dir)
        and os.listdir(output_dir)
        and not os.path.isfile(os.path.join(output_dir, MANIFEST_NAME))
    ):
        raise ValueError(
            f"fasttcm.deploy: output {output_dir} is a non-empty folder that holds no ONNX "
            "export; choose a new or empty folder"
        )
    model = copy.deepcopy(model).cpu().eval()
    folded_model = copy.deepcopy(model)
    folded, kept = fold_text_embeddings(folded_model)

    parent = os.path.dirname(output_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(output_dir)}.new-", dir=parent)
    try:
        writer = GraphWriter(tmp, opset, progress)
        manifest: Dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "task": task,
            "meta_architecture": type(model).__name__,
            "exporter": "torch.onnx.export(dynamo=True)",
            "torch_version": torch.__version__,
            "input": {
                "format": cfg.INPUT.FORMAT,
                "min_size_test": int(cfg.INPUT.MIN_SIZE_TEST),
                "max_size_test": int(cfg.INPUT.MAX_SIZE_TEST),
                "resize_backend": cfg.INPUT.RESIZE_BACKEND,
            },
            "test_config": _json_safe(cfg.TEST),
            "text_branch": _text_branch(folded, kept),
        }
        if task in ("detector", "spotter"):
            manifest["detector"] = _export_detector(writer, model, folded_model)
        if task in ("recognizer", "spotter"):
            recognizer = model.recognizer
            manifest["recognizer"] = _export_recognizer(writer, recognizer, cfg.INPUT.FORMAT)
        if task == "spotter":
            manifest["spotter"] = {
                "input_format": model.input_format,
                "crop_layout": model.crop_layout,
                "min_polygon_area": float(model.min_polygon_area),
                "crop_batch_size": int(model.crop_batch_size),
                "min_text_score": float(model.min_text_score),
                "crop_variants": [
                    [float(v) for v in row[:4]] + [int(bool(row[4]))]
                    for row in getattr(model, "crop_variants", ())
                ],
                "crop_shapes": list(getattr(model, "crop_shapes", ("rectangle",))),
            }
        if task == "dota":
            manifest["dota"] = _export_dota(writer, model, folded_model)
        manifest["graphs"] = writer.graphs
        manifest["opset"] = max(writer.opsets) if writer.opsets else None
        with open(os.path.join(tmp, MANIFEST_NAME), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1)
        diffs = {}
        if verify and onnxruntime_available():
            diffs = _verify(task, tmp, manifest, model)
        _swap_in(tmp, output_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {
        "format": "onnx",
        "output": output_dir,
        "task": task,
        "meta_architecture": manifest["meta_architecture"],
        "opset": manifest["opset"],
        "files": sorted(os.listdir(output_dir)),
        "graphs": {
            name: {
                "file": g["file"],
                "inputs": [i["name"] for i in g["inputs"]],
                "outputs": [o["name"] for o in g["outputs"]],
            }
            for name, g in manifest["graphs"].items()
        },
        "text_branch": manifest["text_branch"],
        "max_abs_diff": diffs,
        "seconds": round(time.perf_counter() - start, 1),
    }
