#!/usr/bin/env python
"""Join a trained text detector and a trained recognizer into one FastTCMTextSpotter checkpoint.

``FastTCMTextSpotter`` names its parameters as ``FastTCMTextDetector`` does (``backbone.*``,
``text_head.*``) and as ``FastTCMTextRecognizer`` does (``recognizer.*``). This tool takes the
detector's parameters from a detector checkpoint and the ``recognizer.*`` parameters from a
recognizer checkpoint (both as written by ``tools/train_net.py``: ``{"model": state_dict, ...}``),
and writes ``{"model": joined state_dict}`` for ``MODEL.WEIGHTS`` of a spotter config. Optimizer,
scheduler and iteration are not carried over: the spotter's training starts at iteration 0.

Examples::

    tools/compose_spotter_weights.py --detector output/demo_text/model_final.pth \\
        --recognizer output/clip4str_tiny_synthetic_cpu/model_final.pth \\
        --output output/spotter_init.pth

The output is written atomically and never replaces an existing file unless ``--overwrite``.
"""

import argparse
import logging
import os
import sys
from typing import Dict, List, Optional

import torch

from fasttcm.utils.atomic_io import atomic_open

logger = logging.getLogger("fasttcm.compose_spotter_weights")

RECOGNIZER_PREFIX = "recognizer."


def _read_model_state(path: str, role: str) -> Dict[str, torch.Tensor]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{role} checkpoint {path!r} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means "not a checkpoint"
        raise ValueError(
            f"{role} checkpoint {path!r} cannot be read as a torch checkpoint: {e}"
        ) from e
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(
            f"{role} checkpoint {path!r} holds no state dict "
            f"(expected {{'model': {{name: tensor}}}})"
        )
    return state


def compose_spotter_weights(
    detector: str, recognizer: str, output: str, *, overwrite: bool = False
) -> Dict[str, int]:
    """Write the joined checkpoint; returns the number of tensors taken from each input.

    Raises:
        FileExistsError: `output` exists and `overwrite` is False.
        FileNotFoundError / ValueError: an input is missing, unreadable, or holds no parameter of
            its role (the message names the file).
    """
    if not output.endswith(".pth"):
        raise ValueError(
            f"output {output!r} must be a .pth file "
            "(DetectionCheckpointer reads .pkl as pickled numpy)"
        )
    if os.path.exists(output) and not overwrite:
        raise FileExistsError(f"output {output!r} exists; pass --overwrite to replace it")
    det_state = _read_model_state(detector, "detector")
    rec_state = _read_model_state(recognizer, "recognizer")
    det_part = {k: v for k, v in det_state.items() if not k.startswith(RECOGNIZER_PREFIX)}
    rec_part = {k: v for k, v in rec_state.items() if k.startswith(RECOGNIZER_PREFIX)}
    if not any(k.startswith("backbone.") for k in det_part):
        raise ValueError(
            f"detector checkpoint {detector!r} has no 'backbone.*' parameters: not a text detector"
        )
    if not rec_part:
        raise ValueError(
            f"recognizer checkpoint {recognizer!r} has no '{RECOGNIZER_PREFIX}*' parameters: "
            "not a FastTCMTextRecognizer checkpoint"
        )
    checkpoint = {
        "model": {**det_part, **rec_part},
        "__author__": (
            f"fasttcm-d2 tools/compose_spotter_weights.py from {os.path.basename(detector)} "
            f"+ {os.path.basename(recognizer)}"
        ),
        "matching_heuristics": False,
    }
    with atomic_open(output, "wb") as f:
        torch.save(checkpoint, f)
    return {"detector": len(det_part), "recognizer": len(rec_part)}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--detector", required=True, help="FastTCMTextDetector checkpoint (model_final.pth)"
    )
    parser.add_argument(
        "--recognizer", required=True, help="FastTCMTextRecognizer checkpoint (model_final.pth)"
    )
    parser.add_argument("--output", required=True, help="spotter checkpoint to write (.pth)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        counts = compose_spotter_weights(
            args.detector, args.recognizer, args.output, overwrite=args.overwrite
        )
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        logger.error(str(e))
        return 1
    logger.info(
        f"Wrote {args.output}: {counts['detector']} detector tensors + "
        f"{counts['recognizer']} recognizer tensors"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
