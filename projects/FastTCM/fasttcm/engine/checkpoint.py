"""A DetectionCheckpointer whose files are written atomically."""
import os

import torch

from detectron2.checkpoint import DetectionCheckpointer

from ..utils.atomic_io import atomic_open

__all__ = ["AtomicDetectionCheckpointer"]


class AtomicDetectionCheckpointer(DetectionCheckpointer):
    """Same behaviour and file names as :class:`DetectionCheckpointer`, but ``model_*.pth`` and
    ``last_checkpoint`` are written to a temporary file and renamed into place, so an interrupted
    save (killed job, full disk) never leaves a truncated checkpoint or a tag pointing at one."""

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
