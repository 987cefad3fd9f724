"""Import first: OpenMP settings that must be in the environment before torch is imported.

PyTorch's CPU kernels (and so the project's rotated-box ops, which are PyTorch code) run their
parallel loops on an OpenMP (libgomp) thread team. By default an idle team thread spins for a
while before it sleeps. On a CPU shared with other busy processes that spinning steals the cores
from the threads doing work, and a parallel region waits for its slowest, descheduled thread.
Measured on 2 cores shared with other jobs (load 8-15): the rotated ops ran 4-66x slower with 2
spinning threads than with one thread, and about as fast as one thread once idle threads sleep
instead (``OMP_WAIT_POLICY=PASSIVE``); the ``make demo`` training step took 19-28 s instead of
1.9 s (``tools/benchmark.py --task ops`` / ``--task contention``).

libgomp reads ``OMP_WAIT_POLICY`` once, when torch loads it, so this module must be imported
before torch (and before detectron2, fasttcm or anything that imports torch)::

    import fasttcm_ops.openmp_env  # noqa: F401  (first import: OpenMP settings before torch)

Importing it sets ``OMP_WAIT_POLICY=PASSIVE`` unless the variable is already set (a user's
``ACTIVE`` or ``PASSIVE`` wins) or ``FASTTCM_KEEP_OPENMP_DEFAULTS=1`` asks to leave OpenMP's
defaults alone. Child processes inherit the setting. Imported after torch it changes nothing for
the running process (``APPLIED`` is then False) but still sets the variable for its children.
"""

import os
import sys

__all__ = ["APPLIED", "SET_BY_PROJECT", "WAIT_POLICY", "apply"]

WAIT_POLICY = "PASSIVE"
KEEP_DEFAULTS_ENV = "FASTTCM_KEEP_OPENMP_DEFAULTS"


def apply(environ=None, torch_loaded=None):
    """Set ``OMP_WAIT_POLICY`` in `environ` (default ``os.environ``) as the module docstring says.

    Returns:
        (set_by_project, applied): whether this call set the variable, and whether it takes effect
        in this process (torch not imported yet).
    """
    environ = os.environ if environ is None else environ
    torch_loaded = "torch" in sys.modules if torch_loaded is None else torch_loaded
    if environ.get(KEEP_DEFAULTS_ENV, "") not in ("", "0") or "OMP_WAIT_POLICY" in environ:
        return False, False
    environ["OMP_WAIT_POLICY"] = WAIT_POLICY
    return True, not torch_loaded


SET_BY_PROJECT, APPLIED = apply()
