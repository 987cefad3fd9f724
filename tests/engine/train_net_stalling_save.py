"""Run ``tools/train_net.py`` with a checkpoint save that stalls halfway, for the SIGKILL test.

Usage: ``python tests/engine/train_net_stalling_save.py FLAG_FILE SAVE_NUMBER <train_net args>``.

``torch.save`` is wrapped in this process: the SAVE_NUMBER-th checkpoint (a dict with ``"model"``
and ``"iteration"``, 1-based count) is serialised in memory, its first half written to the file
the checkpointer opened, then FLAG_FILE is created (holding the iteration being saved) and the
process sleeps, so that a kill from outside lands inside the write. Other saves run unchanged.
"""

import io
import os
import runpy
import sys
import time

import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> None:
    """Wrap ``torch.save`` as described in the module docstring, then run train_net.py."""
    flag, stall_at, train_args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    real_save = torch.save
    saves = []

    def stalling_save(obj, f, *args, **kwargs):
        if isinstance(obj, dict) and "model" in obj and "iteration" in obj:
            saves.append(obj["iteration"])
            if len(saves) == stall_at:
                buffer = io.BytesIO()
                real_save(obj, buffer, *args, **kwargs)
                data = buffer.getvalue()
                f.write(data[: len(data) // 2])
                f.flush()
                with open(flag + ".part", "w") as out:
                    out.write(str(obj["iteration"]))
                os.replace(flag + ".part", flag)
                time.sleep(3600)
        return real_save(obj, f, *args, **kwargs)

    torch.save = stalling_save
    sys.argv = [os.path.join(REPO, "tools", "train_net.py"), *train_args]
    runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
