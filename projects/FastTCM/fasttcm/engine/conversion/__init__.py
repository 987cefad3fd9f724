"""Official checkpoints -> detectron2 checkpoints of FastTCM-D2 models.

``tools/convert_checkpoint.py`` is the command line; :func:`convert_checkpoint` the entry point:

* ``tcm.py``: official TCM / FastTCM (OCRCLIP, mmocr) text detectors;
* ``clip4str.py``: released CLIP4STR (PyTorch Lightning) recognizers;
* ``clip.py``: CLIP weights (OpenAI, open_clip, open_clip pretrained names);
* ``safe_load.py``: reading other frameworks' files without running their code;
* ``target.py``: the model a config builds, checked filling and the atomic write;
* ``report.py``: what was consumed, unused and unfilled.
"""

from .convert import SOURCES, convert_checkpoint
from .report import ConversionError, ConversionReport

__all__ = ["SOURCES", "ConversionError", "ConversionReport", "convert_checkpoint"]
