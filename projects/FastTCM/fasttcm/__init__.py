"""FastTCM-D2: FastTCM-CR50 (CLIP ResNet-50 + TCM) as a detectron2 extension.

Importing the package registers its backbone, heads, meta-architectures and datasets with
detectron2's registries and catalogs (so workers spawned by ``launch`` see them too). It changes no
detectron2 default: configs get our keys only through :func:`add_fasttcm_config`.
"""

__version__ = "0.1.0"

from . import modeling  # noqa: E402,F401  (registration)
from .config import add_fasttcm_config, merge_config_file  # noqa: E402,F401
from .data.datasets import builtin  # noqa: F401  (registers splits)
