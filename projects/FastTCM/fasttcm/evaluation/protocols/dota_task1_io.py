"""DOTA Task-1 result files: ``Task1_<class>.txt``, one per class.

Each line is ``<image> <score> x1 y1 x2 y2 x3 y3 x4 y4``: the file stem of a full image (or of a
patch, before the merge), the detection score, and a quadrilateral in absolute pixels of that
image (x right, y down). Lines are kept in file order, which the devkit's AP depends on for tied
scores. A score or coordinate that is not a finite number (``nan``, ``inf``) is an error naming
the file and line: the devkit would sort a NaN score arbitrarily and report a meaningless AP.
The writer prints scores with ``repr`` and coordinates with two decimals, so the numbers an
evaluator reports are the numbers the devkit computes from the files it writes.

Nothing here imports detectron2 or torch.
"""

import os
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Union

import numpy as np

from ...utils.atomic_io import atomic_write_text

__all__ = [
    "ClassDetections",
    "task1_file_name",
    "format_task1_lines",
    "round_task1",
    "read_task1_file",
    "read_task1_dir",
    "write_task1_dir",
]


@dataclass(frozen=True)
class ClassDetections:
    """The detections of one class, in the order of the lines of its ``Task1_<class>.txt``.

    Attributes:
        image_names: object array ``(N,)`` of image names (file stems of the full images).
        scores: float64 ``(N,)``.
        polys: float64 ``(N, 8)`` quadrilaterals in absolute pixels of the full image.
    """

    image_names: np.ndarray
    scores: np.ndarray
    polys: np.ndarray

    def __post_init__(self):
        names = np.empty(len(self.image_names), dtype=object)
        names[:] = [str(n) for n in self.image_names]
        object.__setattr__(self, "image_names", names)
        object.__setattr__(self, "scores", np.asarray(self.scores, dtype=np.float64).reshape(-1))
        object.__setattr__(self, "polys", np.asarray(self.polys, dtype=np.float64).reshape(-1, 8))
        if not len(self.image_names) == len(self.scores) == len(self.polys):
            raise ValueError(
                f"ClassDetections: {len(self.image_names)} names, {len(self.scores)} scores and "
                f"{len(self.polys)} polygons"
            )

    @classmethod
    def empty(cls) -> "ClassDetections":
        return cls(np.zeros(0, dtype=object), np.zeros(0), np.zeros((0, 8)))

    def __len__(self) -> int:
        return len(self.scores)


def task1_file_name(class_name: str) -> str:
    """``Task1_<class>.txt``."""
    return f"Task1_{class_name}.txt"


_MAX_ECHO_CHARS = 200  # of a bad line, in a message


def _echo(raw: str) -> str:
    line = raw.strip()
    if len(line) <= _MAX_ECHO_CHARS:
        return repr(line)
    return f"{line[:_MAX_ECHO_CHARS]!r}... ({len(line)} characters)"


def read_task1_file(path: Union[str, os.PathLike]) -> ClassDetections:
    """Read one ``Task1_<class>.txt`` in line order.

    Raises:
        ValueError: a line without exactly 10 fields (name, score, 8 coordinates), with
            non-numbers, or with a non-finite score or coordinate; the message names the file and
            the line (and shows at most 200 characters of it).
    """
    names: List[str] = []
    values: List[List[float]] = []
    with open(path, "r", encoding="utf-8") as f:
        for lineno, raw in enumerate(f, start=1):
            tokens = raw.split()
            if not tokens:
                continue
            if len(tokens) != 10:
                raise ValueError(
                    f"{path}:{lineno}: expected '<image> <score> x1 y1 x2 y2 x3 y3 x4 y4' "
                    f"(10 fields), got {len(tokens)}: {_echo(raw)}"
                )
            try:
                numbers = [float(t) for t in tokens[1:]]
            except ValueError:
                raise ValueError(
                    f"{path}:{lineno}: score and coordinates must be numbers: {_echo(raw)}"
                ) from None
            finite = np.isfinite(numbers)
            if not finite.all():
                bad = int(np.argmin(finite))  # the first non-finite value
                what = "score" if bad == 0 else "coordinate"
                raise ValueError(
                    f"{path}:{lineno}: non-finite {what} {tokens[1 + bad][:20]!r}; the score and "
                    f"the coordinates must be finite numbers: {_echo(raw)}"
                )
            values.append(numbers)
            names.append(tokens[0])
    arr = np.asarray(values, dtype=np.float64).reshape(-1, 9)
    return ClassDetections(np.asarray(names, dtype=object), arr[:, 0], arr[:, 1:])


def read_task1_dir(
    pred_dir: Union[str, os.PathLike], class_names: Iterable[str]
) -> Dict[str, ClassDetections]:
    """Read ``Task1_<class>.txt`` of every class from `pred_dir`.

    A class whose file is missing is an error (a submission has one file per class); an empty
    file means no detections.
    """
    out = {}
    for name in class_names:
        path = os.path.join(pred_dir, task1_file_name(name))
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"Task-1 submission {pred_dir} has no file for class {name!r} ({path})"
            )
        out[name] = read_task1_file(path)
    return out


def format_task1_lines(dets: ClassDetections) -> str:
    """The text of a ``Task1_<class>.txt``: ``<image> <score> x1 y1 ... y4`` per line.

    Scores are written with ``repr`` (they read back to the same float64) and coordinates with
    two decimals; :func:`round_task1` gives the values a reader gets back.
    """
    lines = [
        f"{name} {float(score)!r} " + " ".join(f"{v:.2f}" for v in poly)
        for name, score, poly in zip(dets.image_names, dets.scores, dets.polys)
    ]
    return "".join(line + "\n" for line in lines)


def round_task1(dets: ClassDetections) -> ClassDetections:
    """`dets` with the values a reader of :func:`write_task1_dir`'s files gets back."""
    return ClassDetections(dets.image_names, dets.scores, np.round(dets.polys, 2))


def write_task1_dir(
    out_dir: Union[str, os.PathLike],
    detections: Mapping[str, ClassDetections],
    class_names: Optional[Iterable[str]] = None,
) -> List[str]:
    """Write one ``Task1_<class>.txt`` per class (atomically), empty for a class without
    detections.

    Args:
        out_dir: created if missing.
        detections: class name -> detections, written in their order.
        class_names: classes to write (default: the keys of `detections`).

    Returns:
        the paths written.
    """
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for name in class_names if class_names is not None else detections.keys():
        path = os.path.join(out_dir, task1_file_name(name))
        atomic_write_text(path, format_task1_lines(detections.get(name, ClassDetections.empty())))
        paths.append(path)
    return paths
