"""Build information that ``detectron2.utils.collect_env`` reads from ``detectron2._C``.

The project's ops are not compiled: they are PyTorch (and torchvision / numpy) code, running on any
device torch supports. These functions say so in the places where a compiled ``_C`` names its
compiler and CUDA version.
"""

import torch

__all__ = ["get_compiler_version", "get_cuda_version", "has_cuda"]


def get_compiler_version() -> str:
    """What built the ops: nothing, they are Python."""
    return "not compiled (FastTCM-D2 pure-PyTorch ops, fasttcm_ops)"


def get_cuda_version() -> str:
    """The CUDA the ops use: torch's own, when torch has one."""
    cuda = torch.version.cuda
    return (
        f"not compiled (ops run on torch's CUDA {cuda})"
        if cuda
        else "not compiled (torch built without CUDA)"
    )


def has_cuda() -> bool:
    """False: the ops contain no compiled CUDA code (they still run on CUDA tensors through torch).

    ``collect_env`` only inspects the architecture flags of a compiled CUDA ``_C`` when this is
    True.
    """
    return False
