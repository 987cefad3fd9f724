"""Read checkpoints written by other frameworks without running any of their code.

Official checkpoints are ``torch.save`` files. Their tensors read with ``weights_only=True``, but
their bookkeeping often names classes of the framework that wrote them: PyTorch Lightning's
``AttributeDict`` and OmegaConf containers in ``hyper_parameters`` (CLIP4STR ``.ckpt``), numpy
scalars in mmcv's ``meta``. ``weights_only`` refuses such a file as a whole.

:func:`read_checkpoint` first tries a plain weights-only load. If the file names globals outside
torch's allowlist, and every one of them is a known *data container* (:func:`is_inert_global`),
the load is repeated with inert stand-ins registered under those names
(``torch.serialization.safe_globals`` with ``(stand_in, "module.Name")`` pairs): dict-like classes
become plain dicts, everything else an :class:`InertRecord` that only stores the arguments and
state the file gives it. The referenced modules are never imported and no code from the file runs.
Any other global (a function, a model class) is refused with an error naming it.
:func:`plain_data` turns the stand-ins back into lists, dicts and scalars.
"""

import os
import pickle
import re
from typing import Any, Callable, Dict, List, Tuple

import torch

from .report import ConversionError

__all__ = ["InertRecord", "is_inert_global", "plain_data", "read_checkpoint"]

# dict subclasses whose pickles are "new empty instance, then dict items": read as plain dicts
_DICT_LIKE = frozenset(
    {
        "pytorch_lightning.utilities.parsing.AttributeDict",
        "lightning_fabric.utilities.data.AttributeDict",
        "lightning.fabric.utilities.data.AttributeDict",
        "mmcv.utils.config.ConfigDict",
        "mmengine.config.config.ConfigDict",
        "addict.addict.Dict",
    }
)
# classes (and type objects) that only hold data; they become InertRecord stand-ins
_RECORD_NAMES = frozenset(
    {
        "argparse.Namespace",
        "pathlib.Path",
        "pathlib.PosixPath",
        "pathlib.WindowsPath",
        "pathlib.PurePosixPath",
        "pathlib.PureWindowsPath",
        "numpy.dtype",
        "numpy.ndarray",
        "numpy.core.multiarray.scalar",
        "numpy.core.multiarray._reconstruct",
        "numpy._core.multiarray.scalar",
        "numpy._core.multiarray._reconstruct",
        "datetime.datetime",
        "datetime.date",
        "datetime.timedelta",
        "datetime.timezone",
    }
    | {
        f"builtins.{name}"
        for name in (
            "bool bytes complex dict float frozenset int list NoneType object set str tuple type"
        ).split()
    }
)
_RECORD_PREFIXES = ("omegaconf.", "typing.", "numpy.dtypes.", "mmengine.logging.")
_UNSUPPORTED_GLOBAL = re.compile(r"GLOBAL (\S+) was not an allowed global")
_MAX_RETRIES = 64


class InertRecord:
    """Stand-in for a class named in a pickle: stores what the pickle gives it, runs nothing.

    Attributes:
        qualified_name: the ``module.Name`` the pickle referred to (set per stand-in subclass).
        args: positional arguments of the construction (``NEWOBJ`` / ``REDUCE``).
        state: the ``BUILD`` state (usually the original object's ``__dict__``), or None.
    """

    qualified_name = ""

    def __new__(cls, *args, **kwargs):
        record = object.__new__(cls)
        record.args, record.state = args, None
        return record

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<stand-in for {self.qualified_name}>"


def _empty_dict(*args, **kwargs) -> Dict[Any, Any]:
    """Stand-in for ``collections.defaultdict(factory)``: a plain dict (items follow)."""
    return {}


def is_inert_global(name: str) -> bool:
    """Whether the pickle global ``module.Name`` is a known data container (given a stand-in)."""
    return (
        name in _DICT_LIKE
        or name in _RECORD_NAMES
        or name == "collections.defaultdict"
        or name.startswith(_RECORD_PREFIXES)
    )


_STAND_INS: Dict[str, Callable] = {}


def _stand_in(name: str) -> Callable:
    if name not in _STAND_INS:
        if name in _DICT_LIKE:
            _STAND_INS[name] = dict
        elif name == "collections.defaultdict":
            _STAND_INS[name] = _empty_dict
        else:
            _STAND_INS[name] = type(
                "InertRecord_" + re.sub(r"\W", "_", name),
                (InertRecord,),
                {"qualified_name": name},
            )
    return _STAND_INS[name]


def _load(path: str, stand_ins: List[str]) -> Any:
    with torch.serialization.safe_globals([(_stand_in(n), n) for n in stand_ins]):
        return torch.load(path, map_location="cpu", weights_only=True)


def _refuse(path: str, names: List[str]) -> ConversionError:
    return ConversionError(
        f"{path}: refused to load: the file names {sorted(names)}, which are not plain data "
        "containers (only tensors and the data containers of Lightning, OmegaConf, mmcv, "
        "argparse, datetime and numpy are read; a pickle naming other globals could run code). "
        "Load it in a trusted environment and re-save the weights alone: "
        "torch.save(ckpt['state_dict'], 'weights.pth')"
    )


def read_checkpoint(path: str) -> Tuple[Any, List[str]]:
    """``torch.load(path, weights_only=True)``, with inert stand-ins for known data containers.

    Args:
        path: a ``torch.save`` file (zip or legacy format).

    Returns:
        (the loaded object, the sorted names that were given stand-ins; [] for a plain file).

    Raises:
        FileNotFoundError: `path` does not exist.
        ConversionError: the file is corrupt or truncated, is not a torch file, or names a global
            that is not a known data container (the message names the file and the globals).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    stand_ins: List[str] = []
    try:
        stand_ins = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # noqa: BLE001 - legacy (non-zip) files: found one by one below
        pass
    refused = [n for n in stand_ins if not is_inert_global(n)]
    if refused:
        raise _refuse(path, refused)
    for _ in range(_MAX_RETRIES):
        try:
            return _load(path, stand_ins), stand_ins
        except pickle.UnpicklingError as e:
            match = _UNSUPPORTED_GLOBAL.search(str(e))
            if not match:
                raise ConversionError(
                    f"{path}: cannot be read as a weights-only torch checkpoint ({str(e)[:300]})"
                ) from e
            name = match.group(1)
            name = name if "." in name else f"builtins.{name}"
            if not is_inert_global(name) or name in stand_ins:
                raise _refuse(path, [name]) from e
            stand_ins = sorted(stand_ins + [name])
        except Exception as e:  # noqa: BLE001 - torch raises RuntimeError, EOFError, ... on bad files
            raise ConversionError(
                f"{path}: cannot be read as a torch checkpoint; the file may be corrupt or "
                f"truncated ({type(e).__name__}: {str(e)[:300]})"
            ) from e
    raise _refuse(path, stand_ins)


def plain_data(obj: Any, depth: int = 0) -> Any:
    """Stand-ins -> plain Python: OmegaConf containers and nodes to their content, Namespace to a
    dict, tuples to lists, small tensors to lists; other stand-ins to their ``repr``."""
    if depth > 50:
        return repr(obj)
    if isinstance(obj, dict):
        return {plain_data(k, depth + 1): plain_data(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain_data(v, depth + 1) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.tolist() if obj.numel() <= 16 else f"<tensor {tuple(obj.shape)}>"
    if isinstance(obj, InertRecord):
        state = obj.state if isinstance(obj.state, dict) else {}
        if obj.qualified_name.startswith("omegaconf."):
            if "_content" in state:
                return plain_data(state["_content"], depth + 1)
            if "_val" in state:
                return plain_data(state["_val"], depth + 1)
        if obj.qualified_name == "argparse.Namespace":
            return plain_data(state, depth + 1)
        if obj.qualified_name.startswith("pathlib."):
            return "/".join(str(a) for a in obj.args)
        return repr(obj)
    return obj
