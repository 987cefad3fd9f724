"""Reading the members of a ground-truth or submission zip within size limits.

A zip declares each member's compressed and uncompressed size. A small archive can expand to
gigabytes (a 0.6 MB zip of repeated lines to 3.5 GB), so before anything is decompressed every
member the reader wants is checked against :class:`ZipLimits`:

* its uncompressed size, at most :data:`MAX_MEMBER_BYTES`;
* the total uncompressed size of the members read, at most :data:`MAX_TOTAL_BYTES`;
* its compression ratio (uncompressed / compressed size), at most :data:`MAX_COMPRESSION_RATIO`,
  checked for members larger than :data:`RATIO_CHECK_MIN_BYTES` (a short text file may compress
  far better without harm).

Each member is then read with a bounded read, so a size that the archive misstates cannot get
past the member limit either. A member beyond a limit raises :class:`ZipLimitError` naming the zip
and the member; ``tools/evaluate.py`` can raise the limits (``--zip-max-member-mb``,
``--zip-max-total-mb``, ``--zip-max-ratio``). Nothing here imports detectron2.
"""

import zipfile
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

from .text_lines import SubmissionFormatError

__all__ = [
    "MAX_MEMBER_BYTES",
    "MAX_TOTAL_BYTES",
    "MAX_COMPRESSION_RATIO",
    "RATIO_CHECK_MIN_BYTES",
    "ZipLimits",
    "ZipLimitError",
    "read_zip_members",
]

MAX_MEMBER_BYTES = 64 * 2**20
"""Largest uncompressed member (64 MiB): a per-image text file is a few kilobytes."""

MAX_TOTAL_BYTES = 2**30
"""Largest total uncompressed size of the members read from one zip (1 GiB)."""

MAX_COMPRESSION_RATIO = 100.0
"""Largest uncompressed / compressed size of a member (text compresses about 3-10 times)."""

RATIO_CHECK_MIN_BYTES = 2**20
"""The ratio is checked only for members of more than this many uncompressed bytes (1 MiB)."""

_MIB = 2**20


@dataclass(frozen=True)
class ZipLimits:
    """Limits on reading one zip (defaults: the module constants).

    Attributes:
        max_member_bytes: largest uncompressed member.
        max_total_bytes: largest total uncompressed size of the members read.
        max_ratio: largest compression ratio of a member above :data:`RATIO_CHECK_MIN_BYTES`.
    """

    max_member_bytes: int = MAX_MEMBER_BYTES
    max_total_bytes: int = MAX_TOTAL_BYTES
    max_ratio: float = MAX_COMPRESSION_RATIO

    def __post_init__(self):
        if not (self.max_member_bytes > 0 and self.max_total_bytes > 0 and self.max_ratio > 0):
            raise ValueError(f"zip limits must be positive, got {self}")


class ZipLimitError(SubmissionFormatError):
    """A zip member beyond the size or compression-ratio limits."""


def _mib(num_bytes: float) -> str:
    return f"{num_bytes / _MIB:.1f} MiB"


def _check_declared(path: str, info: zipfile.ZipInfo, limits: ZipLimits) -> None:
    where = f"{path}:{info.filename}"
    if info.file_size > limits.max_member_bytes:
        raise ZipLimitError(
            f"{where}: uncompressed size {_mib(info.file_size)} is over the limit of "
            f"{_mib(limits.max_member_bytes)} per member (tools/evaluate.py --zip-max-member-mb)"
        )
    if info.file_size > RATIO_CHECK_MIN_BYTES:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > limits.max_ratio:
            raise ZipLimitError(
                f"{where}: compression ratio {ratio:.0f} ({_mib(info.file_size)} from "
                f"{info.compress_size} bytes) is over the limit of {limits.max_ratio:g} "
                f"(tools/evaluate.py --zip-max-ratio)"
            )


def read_zip_members(
    path: str,
    keep: Callable[[zipfile.ZipInfo], bool],
    limits: Optional[ZipLimits] = None,
) -> List[Tuple[zipfile.ZipInfo, bytes]]:
    """The contents of the members of the zip `path` that `keep` selects, in archive order.

    Args:
        path: a zip file.
        keep: which members to read (the others are neither checked nor decompressed).
        limits: default :class:`ZipLimits` ().

    Raises:
        ZipLimitError: a member over a limit (checked for all of them before any is read).
        SubmissionFormatError: the archive or a member cannot be read.
    """
    limits = ZipLimits() if limits is None else limits
    try:
        with zipfile.ZipFile(path) as archive:
            infos = [info for info in archive.infolist() if keep(info)]
            total = 0
            for info in infos:
                _check_declared(path, info, limits)
                total += info.file_size
                if total > limits.max_total_bytes:
                    raise ZipLimitError(
                        f"{path}: the members up to {info.filename} expand to {_mib(total)}, "
                        f"over the limit of {_mib(limits.max_total_bytes)} per zip "
                        f"(tools/evaluate.py --zip-max-total-mb)"
                    )
            contents = []
            for info in infos:
                with archive.open(info) as member:
                    data = member.read(limits.max_member_bytes + 1)
                if len(data) > limits.max_member_bytes:
                    raise ZipLimitError(
                        f"{path}:{info.filename}: expands beyond the limit of "
                        f"{_mib(limits.max_member_bytes)} per member (its declared size is "
                        f"{info.file_size} bytes; tools/evaluate.py --zip-max-member-mb)"
                    )
                contents.append((info, data))
            return contents
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,
        EOFError,
        RuntimeError,
    ) as e:
        raise SubmissionFormatError(f"{path}: cannot read the zip archive ({e})") from e
