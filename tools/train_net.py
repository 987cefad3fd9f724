#!/usr/bin/env python
"""Train or evaluate a FastTCM-D2 model: the detectron2 ``tools/train_net.py`` of this project.

It is an example entry point, not a framework: everything task-specific lives in
:class:`fasttcm.engine.FastTCMTrainer` (mappers, optimizer groups, evaluators by metadata).

Examples::

    # train on the synthetic text data on the CPU
    tools/train_net.py --config-file \\
        projects/FastTCM/configs/TextDetection/fasttcm_cr50_fpn_dbnet_synthetic_cpu.yaml

    # evaluate a checkpoint (overrides are trailing KEY VALUE pairs, positional)
    tools/train_net.py --config-file CONFIG --eval-only MODEL.WEIGHTS output/.../model_final.pth

    # 8 GPUs (or, on a machine without CUDA, 8 CPU processes joined by gloo)
    tools/train_net.py --config-file CONFIG --num-gpus 8
"""

import fasttcm_ops.openmp_env  # noqa: F401  (first: OpenMP settings before torch loads)

# isort: split
import logging
import os

from detectron2.config import get_cfg
from detectron2.engine import default_argument_parser, default_setup
from detectron2.evaluation import verify_results
from detectron2.utils import comm

from fasttcm import add_fasttcm_config, merge_config_file
from fasttcm.engine import AtomicDetectionCheckpointer, FastTCMTrainer, launch
from fasttcm.utils.threads import configure_threads

logger = logging.getLogger("fasttcm.train_net")


def default_output_dir(config_file: str) -> str:
    """output/<config file name without .yaml>, used when the config leaves OUTPUT_DIR at
    ./output."""
    return os.path.join("output", os.path.splitext(os.path.basename(config_file))[0])


def setup(args):
    """get_cfg -> add_fasttcm_config -> file -> overrides -> freeze -> default_setup."""
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    merge_config_file(cfg, args.config_file)
    cfg.merge_from_list(args.opts)
    configure_threads(cfg, processes=comm.get_local_size())  # fasttcm.utils.threads defaults
    if cfg.OUTPUT_DIR in ("./output", "output") and args.config_file:
        cfg.OUTPUT_DIR = default_output_dir(args.config_file)
    cfg.freeze()
    default_setup(cfg, args)
    return cfg


def main(args):
    cfg = setup(args)
    if args.eval_only:
        model = FastTCMTrainer.build_model(cfg)
        checkpointer = AtomicDetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR)
        weights = cfg.MODEL.WEIGHTS
        if args.resume and checkpointer.has_checkpoint():
            weights = checkpointer.get_checkpoint_file()
        checkpointer.load_trained_weights(weights)  # refuses weights that leave tensors random
        res = FastTCMTrainer.test(cfg, model)
        if comm.is_main_process():
            verify_results(cfg, res)
        return res
    trainer = FastTCMTrainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    print("Command Line Args:", args)
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
