"""Atomic file and folder writing: a reader never sees a half-written file, and a crash never
leaves one in place of the user's.

Every writer in the project goes through this module:

* :func:`atomic_open`, :func:`atomic_write_text`, :func:`atomic_write_bytes` and
  :func:`atomic_write_json` write one file through a temporary sibling renamed over the target;
* :func:`replace_dir_atomic` swaps a whole folder of files in;
* :func:`build_dir_once` is the generate-once pattern of the synthetic datasets, the DOTA patch
  splits and the converters: build into a temporary sibling, rename it into place, and let the
  process that loses a race use the winner's copy.
"""

import contextlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Union

__all__ = [
    "atomic_open",
    "atomic_write_text",
    "atomic_write_bytes",
    "atomic_write_json",
    "replace_dir_atomic",
    "build_dir_once",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "w", **kwargs) -> Iterator:
    """Open a temporary file next to `path`; on success it replaces `path` with ``os.replace``.

    On an exception the temporary file is removed and `path` is left as it was.
    """
    if not any(c in mode for c in "wx"):
        raise ValueError(f"atomic_open is for writing, got mode {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        # mkstemp creates 0600 files; give the result the permissions open() would (umask)
        os.chmod(tmp, 0o666 & ~_current_umask())
        with os.fdopen(fd, mode.replace("x", "w"), **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write `text` to `path` atomically (``\\n`` line ends on every platform)."""
    with atomic_open(path, "w", encoding=encoding, newline="\n") as f:
        f.write(text)


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_json(path: PathLike, obj: Any, indent: Optional[int] = None) -> None:
    """Write `obj` as UTF-8 JSON to `path` atomically (non-ASCII characters kept as they are)."""
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False))


def replace_dir_atomic(folder: PathLike, files: Mapping[str, str]) -> None:
    """Make `folder` hold exactly `files` (name -> UTF-8 text), swapped in by renames.

    The new folder is written next to the old one, so no reader sees a partial set of files; the
    previous folder's content is removed afterwards. Names must be plain file names.
    """
    folder = os.path.abspath(os.fspath(folder))
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    base = os.path.basename(folder)
    tmp = tempfile.mkdtemp(prefix=f".{base}.new-", dir=parent)
    old = None
    try:
        for name, text in files.items():
            if os.path.basename(name) != name or name in ("", ".", ".."):
                raise ValueError(f"file name {name!r} for {folder} must not contain a folder")
            with open(os.path.join(tmp, name), "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
        if os.path.exists(folder):
            old = tempfile.mkdtemp(prefix=f".{base}.old-", dir=parent)
            os.rename(folder, old)
        os.rename(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build_dir_once(
    out_dir: PathLike,
    build: Callable[[str], None],
    stamp: Optional[Mapping[str, Any]] = None,
    *,
    stamp_name: str = "generated_with.json",
    is_complete: Optional[Callable[[str], bool]] = None,
) -> bool:
    """Build `out_dir` with ``build(tmp_dir)`` unless a complete one is already there.

    ``build`` fills a fresh, empty temporary sibling of `out_dir`; when it returns, `stamp` (the
    parameters it was built with) is written into it as ``stamp_name`` and the folder is renamed
    to `out_dir` in one step. A reader therefore sees a complete folder or none, an interrupted
    build leaves nothing behind, and when two processes race, the loser discards its copy and
    uses the winner's.

    Args:
        out_dir: the folder to create.
        build: called with the temporary folder's path.
        stamp: JSON-serialisable parameters; when `out_dir` already exists with a different stamp,
            a warning says so (the existing files are used, never overwritten).
        stamp_name: file name of the stamp inside the folder.
        is_complete: tells whether an existing `out_dir` is a finished build; default: it is a
            non-empty folder.

    Returns:
        True when this call built the folder, False when a complete one was already there.

    Raises:
        OSError: `out_dir` exists but is not complete (left over from an interrupted run that
            did not go through this function); the message names it.
    """
    out_dir = os.path.abspath(os.fspath(out_dir))
    complete = is_complete or (lambda d: os.path.isdir(d) and bool(os.listdir(d)))
    if complete(out_dir):
        _warn_if_stale(out_dir, stamp, stamp_name)
        return False
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.", suffix=".tmp", dir=parent)
    try:
        build(tmp)
        if stamp is not None:
            with open(os.path.join(tmp, stamp_name), "w", encoding="utf-8") as f:
                json.dump(stamp, f)
        try:
            os.rename(tmp, out_dir)  # atomic; replaces only an absent or empty folder
        except OSError as e:
            if not complete(out_dir):
                raise OSError(
                    f"Cannot move the newly built folder into {out_dir} ({e}); that folder "
                    "exists but is incomplete (left over from an interrupted run?). Delete it "
                    "and run again."
                ) from e
            logger.info("Another process built %s first; using its copy", out_dir)
            return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return True


def _warn_if_stale(out_dir: str, stamp: Optional[Mapping[str, Any]], stamp_name: str) -> None:
    if stamp is None:
        return
    try:
        with open(os.path.join(out_dir, stamp_name), "r", encoding="utf-8") as f:
            made_with = json.load(f)
    except (OSError, ValueError):
        return
    if made_with != json.loads(json.dumps(stamp)):
        logger.warning(
            "%s was built with %s but %s is requested; using the existing files. Delete the "
            "folder to build it again.",
            out_dir,
            made_with,
            dict(stamp),
        )
