"""The project's checkpointer: atomic writes, files from elsewhere read without running code, and
no model evaluated or served with weights it does not have.

:class:`AtomicDetectionCheckpointer` is detectron2's ``DetectionCheckpointer`` with these changes:

* ``model_*.pth`` and ``last_checkpoint`` are written to a temporary file and renamed into place,
  so an interrupted save (killed job, full disk) never leaves a truncated checkpoint or a tag
  pointing at one; temporary files an interrupted save left behind are removed by
  :meth:`~AtomicDetectionCheckpointer.remove_stale_temp_files` when training starts or resumes;
* ``.pth``/``.pyth`` files are read with ``torch.load(weights_only=True)`` and ``.pkl`` files with a
  restricted unpickler (:mod:`fasttcm.utils.safe_pickle`), so no file can run code;
* ``last_checkpoint`` must name a file inside the checkpoint folder (no absolute path, no ``..``);
* every load logs a table of what was loaded and what was not, per module, and
  :meth:`~AtomicDetectionCheckpointer.load_trained_weights` refuses weights that leave any model
  parameter or buffer missing or shape-mismatched (evaluation, demo and weight tools use it;
  training from a partial initialisation uses the lenient ``load``).
"""

import glob
import os
from collections import OrderedDict
from typing import Any, Dict, List

import torch
from tabulate import tabulate

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.utils.file_io import PathManager

from ..utils.atomic_io import atomic_open
from ..utils.safe_pickle import restricted_pickle_load

__all__ = ["AtomicDetectionCheckpointer", "IncompleteWeightsError", "CheckpointPathError"]

_STALE_TEMP_PATTERNS = (".model_*.pth.*.tmp", ".last_checkpoint.*.tmp")


class IncompleteWeightsError(RuntimeError):
    """Weights that would leave a model partly random were refused for evaluation or serving."""


class CheckpointPathError(ValueError):
    """``last_checkpoint`` names a file outside the checkpoint folder."""


class AtomicDetectionCheckpointer(DetectionCheckpointer):
    """``DetectionCheckpointer`` with atomic writes and safe, checked reads (module docstring)."""

    last_incompatible = None
    """The ``_IncompatibleKeys`` of the last model load (missing, unexpected, wrong shapes)."""

    # ----------------------------------------------------------------------------------- writing
    def save(self, name: str, **kwargs) -> None:
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        basename = f"{name}.pth"
        save_file = os.path.join(self.save_dir, basename)
        self.logger.info(f"Saving checkpoint to {save_file}")
        with atomic_open(save_file, "wb") as f:
            torch.save(data, f)
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        with atomic_open(os.path.join(self.save_dir, "last_checkpoint"), "w") as f:
            f.write(last_filename_basename)

    def remove_stale_temp_files(self) -> List[str]:
        """Delete temporary files left in the checkpoint folder by interrupted saves.

        Returns:
            the removed paths.
        """
        removed = []
        if not self.save_dir or not os.path.isdir(self.save_dir):
            return removed
        for pattern in _STALE_TEMP_PATTERNS:
            for path in sorted(glob.glob(os.path.join(glob.escape(self.save_dir), pattern))):
                if os.path.isfile(path) and not os.path.islink(path):
                    os.unlink(path)
                    removed.append(path)
        if removed:
            self.logger.info(
                f"Removed {len(removed)} temporary file(s) of interrupted checkpoint saves: "
                + ", ".join(os.path.basename(p) for p in removed)
            )
        return removed

    # ----------------------------------------------------------------------------------- reading
    def get_checkpoint_file(self) -> str:
        """The file ``last_checkpoint`` names, which must lie inside the checkpoint folder.

        Raises:
            CheckpointPathError: the tag names an absolute path, a path with a folder or ``..``,
                or a link leading out of the folder.
        """
        tag = os.path.join(self.save_dir, "last_checkpoint")
        try:
            with self.path_manager.open(tag, "r") as f:
                name = f.read(4096).strip()
        except IOError:
            return ""  # deleted meanwhile by another process: no checkpoint, as detectron2 does
        if not name or os.path.isabs(name) or os.path.basename(name) != name or name in (".", ".."):
            raise CheckpointPathError(
                f"{tag}: names {name[:200]!r}, which is not a file name inside {self.save_dir} "
                "(absolute paths, folders and '..' are refused). Fix or delete the file."
            )
        path = os.path.join(self.save_dir, name)
        folder = os.path.realpath(self.save_dir)
        if os.path.commonpath([folder, os.path.realpath(path)]) != folder:
            raise CheckpointPathError(
                f"{tag}: names {name!r}, a link that leads outside {self.save_dir}; refused."
            )
        return path

    def _load_file(self, filename: str) -> Dict[str, Any]:
        if filename.endswith(".pkl"):
            with PathManager.open(filename, "rb") as f:
                data = restricted_pickle_load(f, filename)
            if not isinstance(data, dict):
                raise ValueError(f"{filename}: a weight pickle must hold a dict, got {type(data)}")
            if "model" in data and "__author__" in data:  # detectron2 model-zoo format
                self.logger.info(f"Reading a file from '{data['__author__']}'")
                return data
            if "blobs" in data:  # Caffe2 / Detectron1 detection models keep weights in "blobs"
                data = data["blobs"]
            data = {k: v for k, v in data.items() if not k.endswith("_momentum")}
            return {"model": data, "__author__": "Caffe2", "matching_heuristics": True}
        loaded = _torch_load_weights_only(filename)
        if filename.endswith(".pyth"):  # pycls
            if "model_state" not in loaded:
                raise ValueError(f"{filename}: pycls checkpoints must contain 'model_state'")
            state = {
                k: v
                for k, v in loaded["model_state"].items()
                if not k.endswith("num_batches_tracked")
            }
            return {"model": state, "__author__": "pycls", "matching_heuristics": True}
        if "model" not in loaded:
            loaded = {"model": loaded}
        return loaded

    def _load_model(self, checkpoint: Dict[str, Any]):
        incompatible = super()._load_model(checkpoint)
        self.last_incompatible = incompatible
        self.logger.info("Weights loaded per module:\n" + self.load_table(incompatible))
        return incompatible

    def load_table(self, incompatible) -> str:
        """A table of loaded / missing / shape-mismatched tensors per top-level module."""
        missing = set(incompatible.missing_keys)
        mismatched = {key for key, _, _ in incompatible.incorrect_shapes}
        rows: "OrderedDict[str, List[int]]" = OrderedDict()
        for key in self.model.state_dict().keys():
            module = ".".join(key.split(".")[:-1][:2]) or key  # e.g. "backbone.bottom_up"
            row = rows.setdefault(module, [0, 0, 0])
            row[1 if key in missing else 2 if key in mismatched else 0] += 1
        table = [[module, *counts] for module, counts in rows.items()]
        return tabulate(
            table, headers=["module", "loaded", "missing", "shape mismatch"], tablefmt="pipe"
        )

    def load_trained_weights(self, path: str) -> Dict[str, Any]:
        """Load weights for evaluation or serving: every parameter and buffer must come from `path`.

        Raises:
            IncompleteWeightsError: `path` is empty, or leaves model tensors missing or with the
                wrong shape (the message lists them).
        """
        if not path:
            raise IncompleteWeightsError(
                "no weights file is named (MODEL.WEIGHTS is empty, and no checkpoint to resume): "
                "evaluating or serving a randomly initialised model is refused"
            )
        checkpoint = self.load(path, checkpointables=[])
        incompatible = self.last_incompatible
        problems = []
        if incompatible is not None and incompatible.missing_keys:
            keys = sorted(incompatible.missing_keys)
            problems.append(f"{len(keys)} missing: {_key_list(keys)}")
        if incompatible is not None and incompatible.incorrect_shapes:
            shapes = [
                f"{key} (file {tuple(got)}, model {tuple(want)})"
                for key, got, want in incompatible.incorrect_shapes
            ]
            problems.append(f"{len(shapes)} with the wrong shape: {_key_list(shapes)}")
        if problems:
            raise IncompleteWeightsError(
                f"{path}: these weights would leave the model partly random, so evaluation and "
                "serving are refused; " + "; ".join(problems)
            )
        return checkpoint


def _torch_load_weights_only(filename: str) -> Dict[str, Any]:
    with PathManager.open(filename, "rb") as f:
        try:
            loaded = torch.load(f, map_location=torch.device("cpu"), weights_only=True)
        except Exception as e:  # torch raises UnpicklingError, RuntimeError or others
            raise RuntimeError(
                f"{filename}: cannot be read as a weights-only checkpoint ({str(e)[:300]}). "
                "Files that need code to load are refused; re-save the state dict from a "
                "trusted environment."
            ) from e
    if not isinstance(loaded, dict):
        raise ValueError(f"{filename}: a checkpoint must hold a dict, got {type(loaded).__name__}")
    return loaded


def _key_list(keys: List[str], limit: int = 40) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")
