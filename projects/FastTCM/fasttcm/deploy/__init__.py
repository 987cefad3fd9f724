"""Deployment: ONNX export of the trained models and an onnxruntime backend (docs/deployment.md).

* :func:`export_onnx` writes a folder of ONNX graphs plus ``manifest.json``
  (``tools/export_model.py --format onnx`` is its command line);
* :func:`load_onnx_model` loads such a folder as an object called like the PyTorch model in
  eval mode; :class:`OnnxPredictor` is ``FastTCMPredictor`` on it (``tools/demo.py --backend
  onnxruntime``).

onnx, onnxscript (export) and onnxruntime (inference) are the optional extra ``.[onnx]``; they are
imported only when used.
"""

from .export import TASK_OF_ARCHITECTURE, export_onnx, infer_task
from .manifest import read_manifest
from .predictor import OnnxPredictor, config_differences, load_onnx_model
from .recognizer_runtime import OnnxRecognizer
from .sessions import OnnxGraph, onnxruntime_available
from .text_models import OnnxTextDetector, OnnxTextRecognizer, OnnxTextSpotter

__all__ = [
    "OnnxGraph",
    "OnnxPredictor",
    "OnnxRecognizer",
    "OnnxTextDetector",
    "OnnxTextRecognizer",
    "OnnxTextSpotter",
    "TASK_OF_ARCHITECTURE",
    "config_differences",
    "export_onnx",
    "infer_task",
    "load_onnx_model",
    "onnxruntime_available",
    "read_manifest",
]
