"""Scene-text-recognition LMDB datasets: writer and the crops-folder converter.

The standard STR layout (deep-text-recognition-benchmark, PARSeq, CLIP4STR): an LMDB environment
(a folder holding ``data.mdb``) with the keys

* ``num-samples``: the number of samples N, ASCII digits;
* ``image-%09d`` (1-based index): the encoded image file (JPEG, PNG, ...), bytes as on disk;
* ``label-%09d``: the transcription, UTF-8.

:class:`StrLmdbWriter` writes such an environment atomically (into a temporary folder that is
renamed into place when complete); :func:`convert_crops_to_lmdb` builds one from a folder of word
crops and a labels file (``tools/create_lmdb_dataset.py``). No detectron2 import.
"""

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import lmdb
import numpy as np

from ..image_io import ImageReadError, decode_image
from .source_files import ConversionError, read_text_lines

__all__ = [
    "NUM_SAMPLES_KEY",
    "image_key",
    "label_key",
    "StrLmdbWriter",
    "ConversionStats",
    "parse_labels_file",
    "decode_image_bytes",
    "resolve_image_path",
    "convert_crops_to_lmdb",
]

logger = logging.getLogger(__name__)

NUM_SAMPLES_KEY = b"num-samples"
DEFAULT_MAP_SIZE = 1 << 40  # virtual address space reserved by LMDB; the file grows as written
LABEL_FORMATS = ("tsv", "icdar")


def image_key(index: int) -> bytes:
    """Key of sample `index` (1-based) image bytes."""
    return b"image-%09d" % index


def label_key(index: int) -> bytes:
    """Key of sample `index` (1-based) label."""
    return b"label-%09d" % index


class StrLmdbWriter:
    """Write an STR LMDB environment atomically; use as a context manager.

    Samples are appended with :meth:`add`; on a clean exit ``num-samples`` is stored and the
    temporary folder is renamed to `out_dir`. On an exception nothing is left behind.

    Args:
        out_dir: the environment folder to create; it must not exist unless `overwrite`.
        overwrite: replace an existing `out_dir`.
        commit_every: samples per LMDB write transaction.
        map_size: LMDB map size in bytes (virtual; the file only grows as data is written).
    """

    def __init__(
        self,
        out_dir: Union[str, Path],
        *,
        overwrite: bool = False,
        commit_every: int = 1000,
        map_size: int = DEFAULT_MAP_SIZE,
    ):
        self.out_dir = Path(out_dir)
        self.overwrite = overwrite
        self.commit_every = commit_every
        self.map_size = map_size
        self.num_samples = 0
        self._env = self._txn = self._tmp_dir = None

    def __enter__(self) -> "StrLmdbWriter":
        if self.out_dir.exists() and not self.overwrite:
            raise FileExistsError(
                f"{self.out_dir} already exists; pass overwrite=True (--overwrite) to replace it"
            )
        self.out_dir.parent.mkdir(parents=True, exist_ok=True)
        self._tmp_dir = tempfile.mkdtemp(
            prefix=f".{self.out_dir.name}.", suffix=".tmp", dir=self.out_dir.parent
        )
        self._env = lmdb.open(self._tmp_dir, map_size=self.map_size, subdir=True, lock=True)
        self._txn = self._env.begin(write=True)
        return self

    def add(self, image_bytes: bytes, label: str) -> int:
        """Append one sample; returns its 1-based index."""
        if self._txn is None:
            raise RuntimeError("StrLmdbWriter.add called outside its `with` block")
        self.num_samples += 1
        self._txn.put(image_key(self.num_samples), image_bytes)
        self._txn.put(label_key(self.num_samples), label.encode("utf-8"))
        if self.num_samples % self.commit_every == 0:
            self._txn.commit()
            self._txn = self._env.begin(write=True)
        return self.num_samples

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._txn.put(NUM_SAMPLES_KEY, str(self.num_samples).encode())
                self._txn.commit()
            else:
                self._txn.abort()
            self._env.sync()
            self._env.close()
            if exc_type is None:
                if self.out_dir.exists():  # overwrite: checked in __enter__
                    shutil.rmtree(self.out_dir)
                os.rename(self._tmp_dir, self.out_dir)
        finally:
            self._txn = self._env = None
            if self._tmp_dir and os.path.exists(self._tmp_dir):
                shutil.rmtree(self._tmp_dir, ignore_errors=True)


@dataclass
class ConversionStats:
    """Outcome of :func:`convert_crops_to_lmdb`: written samples and counted skips."""

    written: int = 0
    missing_image: int = 0  # the labels file names a file that does not exist
    unreadable_image: int = 0  # the file is not a decodable image, or has zero width or height
    examples: Dict[str, List[str]] = field(default_factory=dict)  # a few skipped paths per reason

    def skip(self, reason: str, path: str) -> None:
        setattr(self, reason, getattr(self, reason) + 1)
        self.examples.setdefault(reason, [])
        if len(self.examples[reason]) < 5:
            self.examples[reason].append(path)


def _parse_icdar_line(line: str, path, lineno: int) -> Tuple[str, str]:
    name, sep, rest = line.partition(",")
    rest = rest.strip()
    if not sep or len(rest) < 2 or rest[0] != '"' or rest[-1] != '"':
        raise ConversionError(path, f'expected `image, "label"`, got {line!r}', lineno)
    return name.strip(), rest[1:-1].replace('\\"', '"').replace("\\\\", "\\")


def parse_labels_file(
    labels_file: Union[str, Path], label_format: str = "tsv"
) -> List[Tuple[str, str, int]]:
    """Read a labels file into ``(image path, label, line number)`` entries.

    Blank lines are skipped.

    Formats:
        ``tsv``: ``relative/path.jpg<TAB>label`` (deep-text-recognition-benchmark ``gt.txt``);
        ``icdar``: ``word_1.png, "label"`` (ICDAR word-recognition ground truth; ``\\"`` escapes
        a quote).

    Raises:
        ConversionError: a malformed line (the message names the file and the line).
    """
    if label_format not in LABEL_FORMATS:
        raise ValueError(f"label_format must be one of {LABEL_FORMATS}, got {label_format!r}")
    entries = []
    for lineno, line in enumerate(read_text_lines(labels_file), start=1):
        if not line.strip():
            continue
        if label_format == "tsv":
            name, sep, label = line.partition("\t")
            if not sep or not name:
                raise ConversionError(
                    labels_file, f"expected `path<TAB>label`, got {line!r}", lineno
                )
        else:
            name, label = _parse_icdar_line(line, labels_file, lineno)
        entries.append((name, label, lineno))
    return entries


def decode_image_bytes(data: bytes, format: str = "BGR") -> Optional[np.ndarray]:
    """Decode encoded image bytes with :func:`fasttcm.data.image_io.decode_image`.

    Args:
        data: the bytes of an image file (e.g. an LMDB ``image-%09d`` value).
        format: channel order, ``"BGR"`` or ``"RGB"``.

    Returns:
        (H, W, 3) uint8 array in the displayed (EXIF-applied) orientation, or None when the
        data is empty, undecodable, truncated or beyond the pixel limit.
    """
    try:
        return decode_image(data, format)
    except ImageReadError:
        return None


def resolve_image_path(
    image_root: Union[str, Path], name: str, labels_file: Union[str, Path], lineno: int
) -> Path:
    """The file a labels-file entry names, which must lie inside `image_root`.

    The check is the same whether or not images are decoded: an absolute path, a ``..`` that
    climbs out of `image_root`, or a symbolic link (of the file or of a folder on its way) that
    leads out of it is refused, so no file from elsewhere can be packed into a dataset.

    Args:
        image_root: the images folder.
        name: the path as written in the labels file.
        labels_file, lineno: where the entry is, for the message.

    Returns:
        ``image_root / name`` (the path as given, not the resolved one).

    Raises:
        ConversionError: naming the labels file, the line and the path.
    """
    if os.path.isabs(name) or Path(name).drive:
        raise ConversionError(
            labels_file,
            f"image path {name!r} is absolute; paths must be relative to the images folder "
            f"{image_root}",
            lineno,
        )
    path = Path(image_root) / name
    root = os.path.realpath(image_root)
    resolved = os.path.realpath(path)
    if os.path.commonpath([root, resolved]) != root:
        raise ConversionError(
            labels_file,
            f"image path {name!r} leads outside the images folder {image_root} (to {resolved}); "
            "'..' and symbolic links may not leave it",
            lineno,
        )
    return path


def convert_crops_to_lmdb(
    labels_file: Union[str, Path],
    image_root: Union[str, Path],
    out_dir: Union[str, Path],
    *,
    label_format: str = "tsv",
    check_images: bool = True,
    overwrite: bool = False,
) -> ConversionStats:
    """Convert a folder of word crops and its labels file into an STR LMDB environment.

    Image bytes are copied unchanged. Entries whose image is missing, or (with `check_images`)
    cannot be decoded or is empty, are skipped and counted; labels are stored as given (the
    dataset loader normalizes and filters them). Every image path must resolve inside
    `image_root` (:func:`resolve_image_path`); all are checked before anything is written.

    Args:
        labels_file: see :func:`parse_labels_file`.
        image_root: folder the image paths of `labels_file` are relative to.
        out_dir: the LMDB folder to write (atomically).
        label_format: ``"tsv"`` or ``"icdar"``.
        check_images: decode every image to skip broken ones.
        overwrite: replace an existing `out_dir`.

    Returns:
        :class:`ConversionStats`.

    Raises:
        ConversionError: a malformed labels file, or an image path leading outside `image_root`
            (the message names the labels file and the line).
    """
    entries = parse_labels_file(labels_file, label_format)
    if not entries:
        raise ConversionError(labels_file, "no samples (the file is empty)")
    paths = [resolve_image_path(image_root, name, labels_file, n) for name, _, n in entries]
    stats = ConversionStats()
    with StrLmdbWriter(out_dir, overwrite=overwrite) as writer:
        for path, (_, label, _) in zip(paths, entries):
            try:
                data = path.read_bytes()
            except (FileNotFoundError, IsADirectoryError):
                stats.skip("missing_image", str(path))
                continue
            if check_images and decode_image_bytes(data) is None:
                stats.skip("unreadable_image", str(path))
                continue
            writer.add(data, label)
    stats.written = writer.num_samples
    skipped = stats.missing_image + stats.unreadable_image
    if skipped:
        logger.warning(
            f"{labels_file}: skipped {stats.missing_image} missing and "
            f"{stats.unreadable_image} unreadable images (e.g. {stats.examples})"
        )
    logger.info(f"Wrote {stats.written} samples to {out_dir}")
    return stats
