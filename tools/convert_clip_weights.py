#!/usr/bin/env python
"""Convert CLIP RN50 weights into a detectron2 checkpoint for FastTCM models.

The input is a local OpenAI ``RN50.pt`` (TorchScript archive) or an open_clip state dict; the
output is a ``.pth`` file ``{"model": state_dict, "__author__": ..., "matching_heuristics": False}``
whose names are those of a FastTCM meta-architecture (``backbone.bottom_up.visual.*`` and
``backbone.bottom_up.text_encoder.*``), so ``MODEL.WEIGHTS`` loads it with
``DetectionCheckpointer``. This is an optional convenience: ``MODEL.FASTTCM.CLIP_WEIGHTS`` reads
the CLIP file directly. ``--attnpool-grid`` resizes the attention-pool table to the target's
``MODEL.FASTTCM.ATTNPOOL_GRID`` (20 in the paper configs). ``tools/convert_checkpoint.py --from
openai-clip`` does the same against a config (names, shapes and grid taken from the model it
builds) and reports what it filled.

Examples::

    tools/convert_clip_weights.py ~/models/RN50.pt output/clip_rn50_fasttcm.pth
    tools/convert_clip_weights.py open_clip_rn50.bin clip_rn50.pth --image-only --overwrite
    tools/convert_clip_weights.py ~/models/RN50.pt clip_rn50_grid20.pth --attnpool-grid 20

The output is written atomically and never replaces an existing file unless ``--overwrite``.
"""

import argparse
import logging
import os
import sys
from typing import List, Optional

import torch

from fasttcm.modeling.clip.weights import clip_to_detectron2_state_dict, read_clip_state_dict
from fasttcm.utils.atomic_io import atomic_open

logger = logging.getLogger("fasttcm.convert_clip_weights")


def convert_clip_weights(
    src: str,
    dst: str,
    *,
    prefix: str = "backbone.bottom_up.",
    image_only: bool = False,
    overwrite: bool = False,
    attnpool_grid: Optional[int] = None,
) -> int:
    """Convert `src` (CLIP weights) into the detectron2 checkpoint `dst`.

    Args:
        src: OpenAI ``RN50.pt`` or open_clip state dict.
        dst: output path, must end with ``.pth``.
        prefix: name of the FastTCM backbone inside the model (``backbone.bottom_up.`` for the
            FPN backbone held as ``model.backbone``).
        image_only: keep only the image encoder (for MODE "none").
        overwrite: replace `dst` if it exists.
        attnpool_grid: resize the attention-pool positional table to this grid side (the target's
            ``MODEL.FASTTCM.ATTNPOOL_GRID``); None keeps the file's (CLIP: 7).

    Returns:
        The number of tensors written.

    Raises:
        FileExistsError: `dst` exists and `overwrite` is False.
        ValueError: `dst` is not a ``.pth`` file, or `src` is not a readable CLIP checkpoint.
    """
    if not dst.endswith(".pth"):
        raise ValueError(
            f"output {dst!r} must be a .pth file "
            "(DetectionCheckpointer reads .pkl as pickled numpy)"
        )
    if os.path.exists(dst) and not overwrite:
        raise FileExistsError(f"output {dst!r} exists; pass --overwrite to replace it")
    state_dict = clip_to_detectron2_state_dict(
        read_clip_state_dict(src),
        image_prefix=prefix + "visual.",
        text_prefix=prefix + "text_encoder.",
        attnpool_grid=attnpool_grid,
    )
    if image_only:
        state_dict = {k: v for k, v in state_dict.items() if k.startswith(prefix + "visual.")}
    checkpoint = {
        "model": state_dict,
        "__author__": f"fasttcm-d2 tools/convert_clip_weights.py from {os.path.basename(src)}",
        "matching_heuristics": False,
    }
    with atomic_open(dst, "wb") as f:
        torch.save(checkpoint, f)
    return len(state_dict)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", help="OpenAI RN50.pt (TorchScript) or open_clip state dict")
    parser.add_argument("output", help="detectron2 checkpoint to write (.pth)")
    parser.add_argument(
        "--prefix", default="backbone.bottom_up.", help="module path of the FastTCM backbone"
    )
    parser.add_argument(
        "--image-only", action="store_true", help="write only the image encoder (MODE none)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument(
        "--attnpool-grid",
        type=int,
        default=None,
        help="resize the attention-pool table to this grid (MODEL.FASTTCM.ATTNPOOL_GRID)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        count = convert_clip_weights(
            args.input,
            args.output,
            prefix=args.prefix,
            image_only=args.image_only,
            overwrite=args.overwrite,
            attnpool_grid=args.attnpool_grid,
        )
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        logger.error(str(e))
        return 1
    logger.info(f"Wrote {count} tensors to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
