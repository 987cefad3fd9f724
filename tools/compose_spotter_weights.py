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
        --config-file CONFIGS/TextSpotting/fasttcm_cr50_fpn_spotter_synthetic_cpu.yaml \\
        --output output/spotter_init.pth

(``CONFIGS`` = ``projects/FastTCM/configs``.)

**Completeness.** The joined weights are checked against the spotter that ``--config-file`` (and
``--opts KEY VALUE ...``) builds, loaded exactly as ``MODEL.WEIGHTS`` would load them
(:class:`~fasttcm.engine.AtomicDetectionCheckpointer`; ``pixel_mean``/``pixel_std`` come from the
config, as detectron2 has it). The model is built on the CPU only for its parameter names and
shapes: no CLIP weight file named in the config is read. When the weights leave any parameter or
buffer of that spotter missing or with another shape, the tool lists them, writes nothing and
exits with status 1, unless ``--allow-partial``: then it writes the file and logs a table of what
is loaded and what is not, per module. Tensors the spotter does not have are listed in a warning
(detectron2 would ignore them).

The output is written atomically and never replaces an existing file unless ``--overwrite``.
"""

import argparse
import logging
import os
import sys
from typing import Dict, List, Optional, Sequence

import torch

from fasttcm.utils.atomic_io import atomic_open

logger = logging.getLogger("fasttcm.compose_spotter_weights")

RECOGNIZER_PREFIX = "recognizer."
_MAX_LISTED = 40  # keys named in one message


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


def _key_list(keys: Sequence[str]) -> str:
    shown = ", ".join(keys[:_MAX_LISTED])
    more = len(keys) - _MAX_LISTED
    return shown + (f", ... ({more} more)" if more > 0 else "")


def build_spotter(config_file: str, opts: Sequence[str] = ()):
    """The spotter model of `config_file` + `opts`, on the CPU, without reading CLIP weights.

    Raises:
        ValueError: the config's model has no ``recognizer.*`` tensors (not a spotter config).
    """
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    from fasttcm import add_fasttcm_config, merge_config_file

    if not os.path.isfile(config_file):
        raise FileNotFoundError(f"--config-file {config_file!r} does not exist")
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    merge_config_file(cfg, config_file)
    cfg.merge_from_list(list(opts))
    # only names and shapes are needed: no CLIP file is read, nothing goes to a GPU
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.FASTTCM.CLIP_WEIGHTS = ""
    cfg.MODEL.RECOGNIZER.CLIP_WEIGHTS = ""
    logger.info(
        f"Building the spotter of {config_file} for its tensor names and shapes (no CLIP weight "
        "file is read: warnings about random CLIP encoders concern this check, not the output)"
    )
    model = build_model(cfg)
    if not any(k.startswith(RECOGNIZER_PREFIX) for k in model.state_dict()):
        raise ValueError(
            f"--config-file {config_file!r} builds {cfg.MODEL.META_ARCHITECTURE}, which has no "
            f"'{RECOGNIZER_PREFIX}*' tensors: not a text spotter config"
        )
    return model


def check_completeness(state: Dict[str, torch.Tensor], model, where: str):
    """Load `state` into `model` as ``MODEL.WEIGHTS`` would; returns ``(problems, table)``.

    Args:
        state: the joined state dict (not modified).
        model: the spotter built from the config.
        where: names the weights in messages.

    Returns:
        ``problems``: messages naming the missing and the mis-shaped tensors (empty when the
        weights fill the model); ``table``: loaded / missing / mis-shaped tensors per module.
    """
    from fasttcm.engine import AtomicDetectionCheckpointer

    checkpointer = AtomicDetectionCheckpointer(model)
    incompatible = checkpointer._load_model({"model": dict(state), "matching_heuristics": False})
    problems = []
    misshaped = {key for key, _, _ in incompatible.incorrect_shapes}
    missing = sorted(set(incompatible.missing_keys) - misshaped)  # a mis-shaped one stays unloaded
    if missing:
        problems.append(f"{len(missing)} missing: {_key_list(missing)}")
    if incompatible.incorrect_shapes:
        shapes = [
            f"{key} (weights {tuple(got)}, model {tuple(want)})"
            for key, got, want in incompatible.incorrect_shapes
        ]
        problems.append(f"{len(shapes)} with the wrong shape: {_key_list(shapes)}")
    unexpected = sorted(incompatible.unexpected_keys)
    if unexpected:
        logger.warning(
            f"{where}: {len(unexpected)} tensor(s) the spotter does not have (ignored when "
            f"loaded): {_key_list(unexpected)}"
        )
    return problems, checkpointer.load_table(incompatible)


def compose_spotter_weights(
    detector: str,
    recognizer: str,
    output: str,
    *,
    config_file: str,
    opts: Sequence[str] = (),
    overwrite: bool = False,
    allow_partial: bool = False,
) -> Dict[str, object]:
    """Write the joined checkpoint after checking it against the spotter of `config_file`.

    Returns:
        ``{"detector": tensors taken from it, "recognizer": likewise, "problems": [...]}``
        (``problems`` is non-empty only with `allow_partial`).

    Raises:
        FileExistsError: `output` exists and `overwrite` is False.
        FileNotFoundError / ValueError: an input is missing, unreadable, or holds no parameter of
            its role, or the config is not a spotter's (the message names the file).
        IncompleteWeightsError: the joined weights leave spotter tensors missing or mis-shaped
            and `allow_partial` is False (the message lists them); nothing is written.
    """
    from fasttcm.engine import IncompleteWeightsError

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
    joined = {**det_part, **rec_part}
    where = f"{os.path.basename(detector)} + {os.path.basename(recognizer)}"
    problems, table = check_completeness(joined, build_spotter(config_file, opts), where)
    if problems and not allow_partial:
        raise IncompleteWeightsError(
            f"{detector} + {recognizer}: the joined weights do not fill the spotter of "
            f"{config_file}: " + "; ".join(problems) + ". Nothing written; train or pick "
            "matching checkpoints, or pass --allow-partial to start the spotter from a partial "
            "initialisation."
        )
    if problems:
        logger.warning(
            f"--allow-partial: {output} leaves the spotter of {config_file} partly random: "
            + "; ".join(problems)
            + "\nWeights per module:\n"
            + table
        )
    checkpoint = {
        "model": joined,
        "__author__": f"fasttcm-d2 tools/compose_spotter_weights.py from {where}",
        "matching_heuristics": False,
    }
    with atomic_open(output, "wb") as f:
        torch.save(checkpoint, f)
    return {"detector": len(det_part), "recognizer": len(rec_part), "problems": problems}


def main(argv: Optional[List[str]] = None) -> int:
    from fasttcm.engine import IncompleteWeightsError

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--detector", required=True, help="FastTCMTextDetector checkpoint (model_final.pth)"
    )
    parser.add_argument(
        "--recognizer", required=True, help="FastTCMTextRecognizer checkpoint (model_final.pth)"
    )
    parser.add_argument(
        "--config-file",
        required=True,
        metavar="FILE",
        help="the spotter config whose model the joined weights must fill",
    )
    parser.add_argument("--output", required=True, help="spotter checkpoint to write (.pth)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument(
        "--allow-partial",
        action="store_true",
        help="write weights that leave spotter tensors missing or mis-shaped (logs a table)",
    )
    parser.add_argument(
        "--opts",
        default=[],
        nargs=argparse.REMAINDER,
        help="config overrides (KEY VALUE ...) of the spotter the weights are checked against",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        counts = compose_spotter_weights(
            args.detector,
            args.recognizer,
            args.output,
            config_file=args.config_file,
            opts=args.opts,
            overwrite=args.overwrite,
            allow_partial=args.allow_partial,
        )
    except (FileNotFoundError, FileExistsError, ValueError, IncompleteWeightsError) as e:
        logger.error(str(e))
        return 1
    logger.info(
        f"Wrote {args.output}: {counts['detector']} detector tensors + "
        f"{counts['recognizer']} recognizer tensors"
        + (" (a partial initialisation, --allow-partial)" if counts["problems"] else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
