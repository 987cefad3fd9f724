"""FastTCM-D2: FastTCM-CR50 (CLIP ResNet-50 + TCM) as a detectron2 extension.

Importing the package registers its backbone, heads, meta-architectures and datasets with
detectron2's registries and catalogs (so workers spawned by ``launch`` see them too). It changes no
detectron2 default: configs get our keys only through :func:`add_fasttcm_config`.

The predictor API (:mod:`fasttcm.api`) is reachable from here, imported on first use::

    from fasttcm import TextSpotter  # also TextDetector, TextRecognizer, OrientedDetector
"""

__version__ = "0.1.0"

import importlib as _importlib

from . import modeling  # noqa: E402,F401  (registration)
from .config import add_fasttcm_config, merge_config_file  # noqa: E402,F401
from .data.datasets import builtin  # noqa: F401  (registers splits)

# Names served lazily by `fasttcm.api`: importing it here would load the engine (trainer,
# evaluators, solver) and the ONNX deploy code on every `import fasttcm`, for registration only.
_API_NAMES = (
    "TextDetector",
    "TextSpotter",
    "TextRecognizer",
    "OrientedDetector",
    "TextInstance",
    "TextResult",
    "OrientedInstance",
    "OrientedResult",
    "Recognition",
)


def __getattr__(name):
    if name in _API_NAMES:
        value = getattr(_importlib.import_module(".api", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_API_NAMES))
