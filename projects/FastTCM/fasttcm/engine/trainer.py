"""FastTCMTrainer: detectron2's DefaultTrainer with FastTCM's data, optimizer and evaluators.

What differs from ``DefaultTrainer`` and why:

* mappers are picked by ``INPUT.DATASET_MAPPER_NAME`` from :data:`MAPPERS` (text / dota);
* ``DATASETS.TRAIN_FRACTION`` selects a deterministic few-shot subset of the training images;
* the optimizer uses FastTCM's parameter groups (text encoder frozen, image encoder lr x
  ``MODEL.FASTTCM.IMAGE_ENCODER_LR_FACTOR``) and ``SOLVER.OPTIMIZER`` (SGD / Adam / AdamW);
  ``SOLVER.CLIP_GRADIENTS.CLIP_TYPE: "full_model"`` clips the norm of all gradients together;
* ``SOLVER.LR_SCHEDULER_NAME: "WarmupPolyLR"`` adds the poly schedule of the official configs;
* the evaluator is looked up from the dataset metadata's ``evaluator_type``;
* checkpoints are written atomically;
* DDP also works for CPU models (gloo workers started by :func:`fasttcm.engine.launch.launch`).
"""
import logging
import os
import weakref

import torch
from torch.nn.parallel import DistributedDataParallel
from fvcore.common.param_scheduler import PolynomialDecayParamScheduler

from detectron2.data import (
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
)
from detectron2.engine import AMPTrainer, DefaultTrainer, SimpleTrainer, TrainerBase
from detectron2.solver import build_lr_scheduler as d2_build_lr_scheduler
from detectron2.solver.build import maybe_add_gradient_clipping
from detectron2.solver.lr_scheduler import LRMultiplier, WarmupParamScheduler

from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from .checkpoint import AtomicDetectionCheckpointer

__all__ = ["FastTCMTrainer", "MAPPERS", "build_mapper", "build_optimizer", "build_lr_scheduler"]

logger = logging.getLogger(__name__)


def _text_mapper(cfg, is_train):
    from ..data.mappers import TextDatasetMapper

    return TextDatasetMapper(cfg, is_train)


def _dota_mapper(cfg, is_train):
    from ..data.dota_mapper import DOTADatasetMapper

    return DOTADatasetMapper(cfg, is_train)


def _str_mapper(cfg, is_train):
    from ..data.str_mapper import STRDatasetMapper

    return STRDatasetMapper(cfg, is_train)


#: INPUT.DATASET_MAPPER_NAME -> factory(cfg, is_train)
MAPPERS = {"text": _text_mapper, "dota": _dota_mapper, "str": _str_mapper}


def create_ddp_model_any_device(model: torch.nn.Module, **kwargs) -> torch.nn.Module:
    """Wrap in DistributedDataParallel when world size > 1; device ids only for CUDA models."""
    if comm.get_world_size() == 1:
        return model
    if next(model.parameters()).is_cuda:
        kwargs.setdefault("device_ids", [comm.get_local_rank()])
    return DistributedDataParallel(model, **kwargs)


def build_mapper(cfg, is_train: bool):
    name = cfg.INPUT.DATASET_MAPPER_NAME
    if name not in MAPPERS:
        raise KeyError(f"INPUT.DATASET_MAPPER_NAME={name!r}; known mappers: {sorted(MAPPERS)}")
    return MAPPERS[name](cfg, is_train)


#: SOLVER.OPTIMIZER -> factory(params, cfg). ``foreach=True`` everywhere: torch picks the multi-tensor
#: update by itself only for CUDA parameters; on the CPU the per-parameter loop of the DOTA model's
#: 276 tensors took 102 ms per AdamW step against 44 ms with ``foreach`` (same values).
_OPTIMIZERS = {
    "SGD": lambda params, cfg: torch.optim.SGD(
        params,
        lr=cfg.SOLVER.BASE_LR,
        momentum=cfg.SOLVER.MOMENTUM,
        nesterov=cfg.SOLVER.NESTEROV,
        foreach=True,
    ),
    "ADAM": lambda params, cfg: torch.optim.Adam(params, lr=cfg.SOLVER.BASE_LR, foreach=True),
    "ADAMW": lambda params, cfg: torch.optim.AdamW(params, lr=cfg.SOLVER.BASE_LR, foreach=True),
}


def build_optimizer(cfg, model: torch.nn.Module) -> torch.optim.Optimizer:
    """Optimizer over FastTCM's parameter groups; gradient clipping per ``SOLVER.CLIP_GRADIENTS``."""
    from ..solver import build_fasttcm_param_groups

    name = cfg.SOLVER.OPTIMIZER.upper()
    if name not in _OPTIMIZERS:
        raise ValueError(f"SOLVER.OPTIMIZER={cfg.SOLVER.OPTIMIZER!r}; known: {sorted(_OPTIMIZERS)}")
    if hasattr(model, "optimizer_param_groups"):  # a model with its own recipe (CLIP4STR recognizer)
        params = model.optimizer_param_groups(cfg)
    else:
        params = build_fasttcm_param_groups(model, cfg)
    optimizer = _OPTIMIZERS[name](params, cfg)
    clip = cfg.SOLVER.CLIP_GRADIENTS
    if clip.ENABLED and clip.CLIP_TYPE == "full_model":
        return _with_full_model_clipping(optimizer, clip.CLIP_VALUE, clip.NORM_TYPE)
    if clip.ENABLED:
        optimizer = maybe_add_gradient_clipping(cfg, type(optimizer))(optimizer.param_groups)
    return optimizer


def _with_full_model_clipping(optimizer, max_norm: float, norm_type: float):
    """Clip the norm of all gradients together before each step (mmcv's ``grad_clip``, which the
    official DOTA configs use); detectron2 v0.6 only clips per parameter ("value" / "norm")."""
    base = type(optimizer)

    class FullModelGradientClipping(base):
        def step(self, closure=None):
            params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
            return super().step(closure)

    optimizer.__class__ = FullModelGradientClipping
    return optimizer


def build_lr_scheduler(cfg, optimizer):
    """detectron2's schedulers plus "WarmupPolyLR": lr = base * (1 - it/max_iter) ** power."""
    if cfg.SOLVER.LR_SCHEDULER_NAME != "WarmupPolyLR":
        return d2_build_lr_scheduler(cfg, optimizer)
    sched = WarmupParamScheduler(
        PolynomialDecayParamScheduler(1.0, cfg.SOLVER.POLY_LR_POWER),
        cfg.SOLVER.WARMUP_FACTOR,
        min(cfg.SOLVER.WARMUP_ITERS / max(cfg.SOLVER.MAX_ITER, 1), 1.0),
        cfg.SOLVER.WARMUP_METHOD,
    )
    return LRMultiplier(optimizer, multiplier=sched, max_iter=cfg.SOLVER.MAX_ITER)


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
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.cfg = cfg
        self.register_hooks(self.build_hooks())

    @classmethod
    def build_train_loader(cls, cfg):
        from ..data.datasets.fractions import select_fraction

        dataset = get_detection_dataset_dicts(
            cfg.DATASETS.TRAIN,
            filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS,
            proposal_files=cfg.DATASETS.PROPOSAL_FILES_TRAIN if cfg.MODEL.LOAD_PROPOSALS else None,
        )
        if cfg.DATASETS.TRAIN_FRACTION < 1.0:
            before = len(dataset)
            dataset = select_fraction(
                dataset, cfg.DATASETS.TRAIN_FRACTION, cfg.DATASETS.TRAIN_FRACTION_SEED
            )
            logger.info(
                f"DATASETS.TRAIN_FRACTION={cfg.DATASETS.TRAIN_FRACTION}: training on "
                f"{len(dataset)} of {before} images (seed {cfg.DATASETS.TRAIN_FRACTION_SEED})"
            )
        return build_detection_train_loader(cfg, mapper=build_mapper(cfg, True), dataset=dataset)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        if cfg.INPUT.DATASET_MAPPER_NAME == "str":  # word crops: batched evaluation (TEST.STR.BATCH_SIZE)
            from ..data.str_mapper import build_str_test_loader

            return build_str_test_loader(cfg, dataset_name, build_mapper(cfg, False))
        return build_detection_test_loader(cfg, dataset_name, mapper=build_mapper(cfg, False))

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        from ..evaluation import build_evaluator

        if output_folder is None:
            output_folder = os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return build_evaluator(cfg, dataset_name, output_folder)

    @classmethod
    def build_optimizer(cls, cfg, model):
        return build_optimizer(cfg, model)

    @classmethod
    def build_lr_scheduler(cls, cfg, optimizer):
        return build_lr_scheduler(cfg, optimizer)
