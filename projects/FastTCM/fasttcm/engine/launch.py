"""``launch`` for FastTCM tools: detectron2's launcher on GPUs, a gloo launcher on CPU-only hosts.

detectron2 v0.6's ``launch`` always initialises NCCL and asserts CUDA. On a machine without CUDA,
``--num-gpus N`` here starts N CPU worker processes joined by the gloo backend, so distributed
code paths (sampler sharding, evaluator gathering, DDP) run and can be tested anywhere.
"""

import sys
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from detectron2.engine import launch as d2_launch
from detectron2.engine.launch import _find_free_port
from detectron2.utils import comm

from ..utils.threads import configure_threads

__all__ = ["launch"]

DEFAULT_TIMEOUT = timedelta(minutes=30)


def launch(
    main_func,
    num_gpus_per_machine,
    num_machines=1,
    machine_rank=0,
    dist_url=None,
    args=(),
    timeout=DEFAULT_TIMEOUT,
):
    """Same signature as :func:`detectron2.engine.launch`; see the module docstring."""
    world_size = num_machines * num_gpus_per_machine
    if torch.cuda.is_available() or world_size <= 1:
        return d2_launch(
            main_func,
            num_gpus_per_machine,
            num_machines,
            machine_rank,
            dist_url,
            args=args,
            timeout=timeout,
        )
    if dist_url in (None, "auto"):
        if num_machines != 1:
            raise ValueError("dist_url=auto is only supported with --num-machines 1")
        dist_url = f"tcp://127.0.0.1:{_find_free_port()}"
    # logging is not configured yet at this point (default_setup runs in the workers)
    print(
        f"[fasttcm.launch] no CUDA: starting {num_gpus_per_machine} CPU worker processes joined "
        f"by the gloo backend ({dist_url})",
        file=sys.stderr,
        flush=True,
    )
    mp.spawn(
        _cpu_worker,
        nprocs=num_gpus_per_machine,
        args=(main_func, world_size, num_gpus_per_machine, machine_rank, dist_url, args, timeout),
        daemon=False,
    )


def _cpu_worker(
    local_rank, main_func, world_size, num_per_machine, machine_rank, dist_url, args, timeout
):
    global_rank = machine_rank * num_per_machine + local_rank
    dist.init_process_group(
        backend="gloo",
        init_method=dist_url,
        world_size=world_size,
        rank=global_rank,
        timeout=timeout,
    )
    num_machines = world_size // num_per_machine
    for i in range(num_machines):
        ranks = list(range(i * num_per_machine, (i + 1) * num_per_machine))
        pg = dist.new_group(ranks)
        if i == machine_rank:
            comm._LOCAL_PROCESS_GROUP = pg
    comm.synchronize()
    configure_threads(processes=num_per_machine)  # share the CPUs among this machine's workers
    try:
        main_func(*args)
    finally:
        dist.destroy_process_group()
