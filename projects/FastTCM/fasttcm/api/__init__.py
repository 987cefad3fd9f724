"""The predictor API: three lines from ``import`` to results on an image.

::

    from fasttcm import TextSpotter
    spotter = TextSpotter("TextSpotting/fasttcm_cr50_fpn_spotter_ic15", "model_final.pth")
    for word in spotter("photo.jpg"): print(word.text, word.polygon)

* :class:`TextDetector`, :class:`TextSpotter` (:mod:`.text`), :class:`TextRecognizer`
  (:mod:`.recognizer`), :class:`OrientedDetector` (:mod:`.oriented`): built from a config
  (path, or name under the project's configs folder, :mod:`.config_files`) and trained weights;
  called on a path, an array (RGB unless told ``channel_order="BGR"``), a PIL image, or a list
  of them (:mod:`.images`);
* results are dataclasses in original-image pixels, with ``to_json`` / ``from_json`` and
  ``draw`` (:mod:`.results`);
* the network runs behind a backend seam (:mod:`.backends`): "torch", and "onnxruntime" on a
  folder of exported graphs (:mod:`.onnxruntime_backend`, over :mod:`fasttcm.deploy`).

This layer sits over :mod:`fasttcm.engine` (weights load through the engine's strict
checkpointer) and :mod:`fasttcm.deploy`.
"""

from . import onnxruntime_backend  # noqa: F401  (registers backend="onnxruntime", fasttcm.deploy)
from .backends import available_backends, register_backend
from .config_files import get_config_file, list_config_files
from .oriented import OrientedDetector
from .recognizer import TextRecognizer
from .results import OrientedInstance, OrientedResult, Recognition, TextInstance, TextResult
from .text import TextDetector, TextSpotter

__all__ = [
    "TextDetector",
    "TextSpotter",
    "TextRecognizer",
    "OrientedDetector",
    "TextInstance",
    "TextResult",
    "OrientedInstance",
    "OrientedResult",
    "Recognition",
    "get_config_file",
    "list_config_files",
    "register_backend",
    "available_backends",
]
