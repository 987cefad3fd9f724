"""Training and inference glue: trainer, atomic checkpointer, launcher, predictor."""

from .checkpoint import AtomicDetectionCheckpointer, CheckpointPathError, IncompleteWeightsError
from .launch import launch
from .predictor import FastTCMPredictor
from .trainer import FastTCMTrainer, build_lr_scheduler, build_mapper, build_optimizer

__all__ = [
    "AtomicDetectionCheckpointer",
    "CheckpointPathError",
    "FastTCMPredictor",
    "IncompleteWeightsError",
    "FastTCMTrainer",
    "build_lr_scheduler",
    "build_mapper",
    "build_optimizer",
    "launch",
]
