"""Image file names of text datasets: kept inside the image root, and checked for existence.

A dataset's ``file_name`` entries (text JSON ``images`` or an image list's lines) are relative
paths with POSIX separators. :func:`check_relative_file_name` rejects any that could resolve
outside the image root; :func:`files_exist` tells which of many resolved paths exist with one
directory listing per folder.
"""

import os
from pathlib import PurePosixPath
from typing import Dict, List, Sequence, Tuple

import numpy as np

__all__ = ["check_relative_file_name", "files_exist"]


def check_relative_file_name(file_name, source: str) -> str:
    """Reject file names that could resolve outside the image root.

    Args:
        file_name: a ``file_name`` entry (relative path with POSIX separators).
        source: what to name in the error (file and entry).

    Returns:
        `file_name`, unchanged.

    Raises:
        ValueError: empty, absolute (``/x``, ``C:/x``), containing backslashes or ``..``.
    """
    if not isinstance(file_name, str) or not file_name:
        raise ValueError(f"{source}: file_name must be a non-empty string, got {file_name!r}")
    if "\\" in file_name:
        raise ValueError(f"{source}: file_name {file_name!r} must use '/' separators")
    path = PurePosixPath(file_name)
    if path.is_absolute() or (len(file_name) > 1 and file_name[1] == ":") or ".." in path.parts:
        raise ValueError(
            f"{source}: file_name {file_name!r} escapes the image root (absolute or '..' paths "
            "are not allowed; names are relative to the image root)"
        )
    return file_name


def files_exist(paths: Sequence[str]) -> np.ndarray:
    """Existence of many files with one directory listing per folder instead of one stat each.

    Args:
        paths: N file paths (absolute, or relative to the working directory).

    Returns:
        (N,) bool array, True where the path names an existing regular file.
    """
    listings: Dict[str, set] = {}
    out = np.zeros(len(paths), dtype=bool)
    for i, path in enumerate(paths):
        folder, name = os.path.split(path)
        if folder not in listings:
            try:
                listings[folder] = {e.name for e in os.scandir(folder or ".") if e.is_file()}
            except (FileNotFoundError, NotADirectoryError):
                listings[folder] = set()
        out[i] = name in listings[folder]
    return out
