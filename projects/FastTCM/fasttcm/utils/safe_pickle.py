"""Read pickled weight files without running code from them.

``pickle.load`` calls whatever global a file names (``os.system`` included), so a downloaded
``.pkl`` checkpoint could run any code. detectron2 and Caffe2 model-zoo pickles only hold dicts,
lists, strings, numbers and numpy arrays; :func:`restricted_pickle_load` allows exactly the globals
those need (numpy array and dtype reconstruction, ``OrderedDict``, and ``_codecs.encode``, which
protocol-2 pickles use for byte strings) and refuses every other one with an error naming the file
and the refused global.
"""

import io
import pickle
from typing import IO, Any, FrozenSet, Tuple

__all__ = ["UnsafePickleError", "restricted_pickle_load", "ALLOWED_PICKLE_GLOBALS"]

ALLOWED_PICKLE_GLOBALS: FrozenSet[Tuple[str, str]] = frozenset(
    {
        ("collections", "OrderedDict"),
        ("_codecs", "encode"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
    }
)
"""(module, name) pairs a weight pickle may name."""


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle names a global outside :data:`ALLOWED_PICKLE_GLOBALS`."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], source: str, **kwargs):
        super().__init__(file, **kwargs)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED_PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"{self._source}: refused to load the global {module}.{name!s:.80}: weight pickles may "
            "only hold dicts, lists, strings, numbers and numpy arrays (a pickle naming other "
            "globals can run code). Convert the file to a .pth state dict from a trusted source."
        )


def restricted_pickle_load(file: IO[bytes], source: str, encoding: str = "latin1") -> Any:
    """``pickle.load(file, encoding=encoding)`` that only accepts weight-file content.

    Args:
        file: a binary file object.
        source: the file's name, for error messages.
        encoding: how Python 2 strings are decoded (detectron2 reads model-zoo pickles as latin1).

    Raises:
        UnsafePickleError: the pickle names a global outside :data:`ALLOWED_PICKLE_GLOBALS`.
        pickle.UnpicklingError: the file is not a valid pickle (message names `source`).
    """
    try:
        return _RestrictedUnpickler(file, source, encoding=encoding).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, io.UnsupportedOperation) as e:
        raise pickle.UnpicklingError(f"{source}: not a readable weight pickle ({e})") from e
