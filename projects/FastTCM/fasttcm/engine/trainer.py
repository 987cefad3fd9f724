"""FastTCMTrainer: detectron2's DefaultTrainer with FastTCM's data, optimizer and evaluators.

What differs from ``DefaultTrainer`` and why:

* data loaders come from :mod:`fasttcm.data.build`: the mapper registered as
  ``INPUT.DATASET_MAPPER_NAME``, ``DATASETS.TRAIN_FRACTION`` subsets, batched word-crop tests;
* the optimizer and the lr schedule come from :mod:`fasttcm.solver`: the model's parameter-group
  recipe (FastTCM's: text encoder frozen, image encoder lr x
  ``MODEL.FASTTCM.IMAGE_ENCODER_LR_FACTOR``; CLIP4STR's for the recognizer) and
  ``SOLVER.OPTIMIZER`` (SGD / Adam / AdamW); ``SOLVER.CLIP_GRADIENTS.CLIP_TYPE: "full_model"``
  clips the norm of all gradients together; ``SOLVER.LR_SCHEDULER_NAME: "WarmupPolyLR"`` adds
  the poly schedule of the official configs;
* the evaluator is looked up from the dataset metadata's ``evaluator_type``;
* checkpoints are written atomically;
* DDP also works for CPU models (gloo workers started by :func:`fasttcm.engine.launch.launch`).
"""

import logging
import weakref

import torch
from torch.nn.parallel import DistributedDataParallel

from detectron2.engine import AMPTrainer, DefaultTrainer, SimpleTrainer, TrainerBase
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from ..data.build import build_mapper, build_test_loader, build_train_loader
from ..evaluation import build_evaluator
from ..solver import build_lr_scheduler, build_optimizer
from .checkpoint import AtomicDetectionCheckpointer

__all__ = ["FastTCMTrainer", "build_mapper", "build_optimizer", "build_lr_scheduler"]

logger = logging.getLogger(__name__)


def create_ddp_model_any_device(model: torch.nn.Module, **kwargs) -> torch.nn.Module:
    """Wrap in DistributedDataParallel when world size > 1; device ids only for CUDA models."""
    if comm.get_world_size() == 1:
        return model
    if next(model.parameters()).is_cuda:
        kwargs.setdefault("device_ids", [comm.get_local_rank()])
    return DistributedDataParallel(model, **kwargs)


class FastTCMTrainer(DefaultTrainer):
    """DefaultTrainer for every FastTCM task; see the module docstring for what it changes."""

    def __init__(self, cfg):
        # DefaultTrainer.__init__, except: the model is wrapped by `create_ddp_model_any_device`
        # (detectron2 v0.6 passes CUDA device ids even for CPU models) and checkpoints are atomic.
        TrainerBase.__init__(self)
        if not logging.getLogger("detectron2").isEnabledFor(logging.INFO):
            setup_logger()
        cfg = DefaultTrainer.auto_scale_workers(cfg, comm.get_world_size())
        model = self.build_model(cfg)
        optimizer = self.build_optimizer(cfg, model)
        data_loader = self.build_train_loader(cfg)
        model = create_ddp_model_any_device(model, broadcast_buffers=False)
        self._trainer = (AMPTrainer if cfg.SOLVER.AMP.ENABLED else SimpleTrainer)(
            model, data_loader, optimizer
        )
        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        self.checkpointer = AtomicDetectionCheckpointer(
            model, cfg.OUTPUT_DIR, trainer=weakref.proxy(self)
        )
        if comm.is_main_process():
            self.checkpointer.remove_stale_temp_files()  # left by saves a kill interrupted
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.cfg = cfg
        self.register_hooks(self.build_hooks())

    @classmethod
    def build_train_loader(cls, cfg):
        return build_train_loader(cfg)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        return build_test_loader(cfg, dataset_name)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        return build_evaluator(cfg, dataset_name, output_folder)

    @classmethod
    def build_optimizer(cls, cfg, model):
        return build_optimizer(cfg, model)

    @classmethod
    def build_lr_scheduler(cls, cfg, optimizer):
        return build_lr_scheduler(cfg, optimizer)
