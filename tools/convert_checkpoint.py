#!/usr/bin/env python
"""Convert an official checkpoint into a detectron2 checkpoint of a FastTCM-D2 model.

Sources (``--from``):

* ``tcm``: an official TCM / FastTCM detector (OCRCLIP, mmocr ``.pth`` with ``state_dict``),
  e.g. the released TCM-DBNet IC15 and TD500 files; target: a text-detection config
  (default ``TextDetection/fasttcm_cr50_fpn_dbnet_ic15.yaml``);
* ``clip4str``: a released CLIP4STR recognizer (PyTorch Lightning ``.ckpt``, B or L); target: a
  recognizer config (default ``TextRecognition/clip4str_vitb16_real.yaml``);
* ``openai-clip`` / ``open_clip``: CLIP weights (OpenAI ``RN50.pt``, an open_clip state dict, or
  an open_clip pretrained name such as ``RN50-quickgelu:openai``); target: any FastTCM config.

The model is built from the config (names and shapes are the target); every input entry is
consumed or listed as unused with its reason, every model tensor the input does not fill is listed,
and a shape mismatch is an error naming the key and both shapes. Settings the file determines
(TCM: mode, n_ctx, attention-pool grid; CLIP4STR: charsets, label length, image and patch size,
tower sizes) are applied to the config before building and printed as a YAML snippet: build the
model you load the output into with them. The output ``{"model": ...}`` is written atomically and
never replaces a file unless ``--overwrite``.

Standard output: a short summary, the config snippet, and as LAST line one JSON object with the
counts ``consumed``, ``unused``, ``unfilled``, the key lists and the config values (on failure:
``{"error": ...}`` with the counts so far). Exit status 0 on success, 1 on failure.

Examples::

    tools/convert_checkpoint.py --from tcm --input tcm_ic15.pth --output output/tcm_ic15.pth
    tools/convert_checkpoint.py --from clip4str --input clip4str_base16x16_d70bde1f2d.ckpt \\
        --output output/clip4str_b.pth
    tools/convert_checkpoint.py --from openai-clip --input RN50-quickgelu:openai \\
        --output output/clip_rn50.pth MODEL.FASTTCM.ATTNPOOL_GRID 20
"""

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import List, Optional

from detectron2.config import get_cfg

from fasttcm import add_fasttcm_config, merge_config_file
from fasttcm.engine.conversion import SOURCES, ConversionReport, convert_checkpoint

logger = logging.getLogger("fasttcm.convert_checkpoint")

CONFIG_DIR = Path(__file__).resolve().parents[1] / "projects" / "FastTCM" / "configs"
DEFAULT_CONFIGS = {
    "tcm": "TextDetection/fasttcm_cr50_fpn_dbnet_ic15.yaml",
    "clip4str": "TextRecognition/clip4str_vitb16_real.yaml",
    "openai-clip": "TextDetection/fasttcm_cr50_fpn_dbnet_ic15.yaml",
    "open_clip": "TextDetection/fasttcm_cr50_fpn_dbnet_ic15.yaml",
}


def setup_cfg(source: str, config_file: Optional[str], opts: List[str]):
    """get_cfg -> FastTCM keys -> the config file (default per source) -> command-line opts."""
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    merge_config_file(cfg, config_file or str(CONFIG_DIR / DEFAULT_CONFIGS[source]))
    cfg.merge_from_list(opts)
    cfg.MODEL.DEVICE = "cpu"
    return cfg


def _print_report(report: ConversionReport) -> None:
    print(
        f"{report.input} -> {report.output}: {len(report.consumed)} consumed, "
        f"{len(report.unused)} unused, {len(report.unfilled)} unfilled"
    )
    for key, reason in sorted(report.unused.items()):
        print(f"  unused {key}: {reason}")
    for note in report.notes:
        print(f"  note: {note}")
    snippet = report.config_snippet()
    if snippet:
        print("Config values the converted weights need (add to the config you load them with):")
        print(snippet)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--from", dest="source", required=True, choices=SOURCES)
    parser.add_argument(
        "--input", required=True, help="official checkpoint (or open_clip name for CLIP)"
    )
    parser.add_argument("--output", required=True, help="detectron2 checkpoint to write (.pth)")
    parser.add_argument("--config-file", default=None, help="config of the target model")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="fail (write nothing) if any input entry is unused or any model tensor unfilled",
    )
    parser.add_argument(
        "--bsm-identity",
        action="store_true",
        help="tcm: with the released (1024, 512) pix_w, keep the identity BSM projection",
    )
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    report = ConversionReport(source=args.source, input=args.input)
    try:
        cfg = setup_cfg(args.source, args.config_file, args.opts)
        convert_checkpoint(
            args.source,
            args.input,
            args.output,
            cfg,
            overwrite=args.overwrite,
            strict=args.strict,
            bsm_identity=args.bsm_identity,
            report=report,
        )
    except (FileNotFoundError, FileExistsError, ValueError, KeyError) as e:
        message = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
        logger.error(message)
        print(json.dumps({"error": message, **report.summary()}, ensure_ascii=False))
        return 1
    _print_report(report)
    print(report.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
