"""Collect what every evaluation process kept on the main process."""

import itertools
from typing import List, Optional

from detectron2.utils import comm

__all__ = ["gather_on_main_process"]


def gather_on_main_process(items: List, distributed: bool) -> Optional[List]:
    """All processes' `items` concatenated (rank order) on the main process; None on the others.

    Without `distributed` the local list is returned as it is. A None result means the caller is
    not the main process and returns ``{}`` from ``evaluate``, as detectron2's evaluators do.
    """
    if not distributed:
        return items
    comm.synchronize()
    gathered = comm.gather(items, dst=0)
    if not comm.is_main_process():
        return None
    return list(itertools.chain(*gathered))
