"""Training and inference glue: trainer, atomic checkpointer, launcher, predictor."""
from .checkpoint import AtomicDetectionCheckpointer
from .launch import launch
from .trainer import FastTCMTrainer, build_lr_scheduler, build_mapper, build_optimizer

__all__ = [
    "AtomicDetectionCheckpointer",
    "FastTCMTrainer",
    "build_lr_scheduler",
    "build_mapper",
    "build_optimizer",
    "launch",
]
