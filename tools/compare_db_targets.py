#!/usr/bin/env python
"""Measure how far the project's DB targets ("shapely") are from the official ones ("official").

For the first ``--num-images`` images of a text dataset (default: the generated
``synthetic_text_train``, 320 x 320 scenes), the polygons go through the training mapper of a
config (its augmentation: rotation, rescale, 320 px crop, seeded per image; ``--no-augment``: the
annotations as they are), then both target makers run on the same polygons. Per map, the tool
reports the share of pixels where the two disagree, averaged over the images:

* ``shrink_map``, ``shrink_mask``, ``thresh_mask``: pixels whose 0/1 values differ;
* ``thresh_map``: pixels with ``|difference| > 1e-3``, and the mean absolute difference.

Two comparisons are made. "as_is" gives both makers the same coordinates, which is what training
sees: the official maker reads pixel (i, j) as the point (j, i), the project's as the square
``[j, j+1) x [i, i+1)`` (centre ``(j + 0.5, i + 0.5)``), so the official maps sit half a pixel up
and left of the project's. "aligned" first shifts the official maker's polygons by -0.5 px so both
use the same pixel centres: what remains is the algorithms' own difference (integer Clipper
offsets and round joins, integer-rounded kernel offset, ``cv2.fillPoly``'s inclusive fill, the
DBNet edge-distance formula).

The last stdout line is one JSON object::

    {"num_images": N, "height": H, "width": W, "augment": bool, "dataset": ...,
     "as_is": {"shrink_map": share, "shrink_mask": share, "thresh_map": share,
               "thresh_map_mean_abs": value, "thresh_mask": share,
               "shrink_map_of_region": share, ...},
     "aligned": {... the same keys ...}}

Shares are per image, averaged over the images. ``<map>_of_region`` pools the differing pixels of
all images over the pixels either map marks (kernels, ignored areas, the threshold band above
thresh_min, the threshold masks) instead of the whole image.

Example::

    DETECTRON2_DATASETS=/tmp/d2data tools/compare_db_targets.py --num-images 200
"""

import argparse
import json
import sys
from typing import Dict, List, Tuple

import numpy as np
import torch

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog

from fasttcm import add_fasttcm_config, merge_config_file
from fasttcm.data.db_targets import make_db_targets
from fasttcm.data.db_targets_official import make_db_targets_official
from fasttcm.data.mappers import TextDatasetMapper, db_target_kwargs

DEFAULT_CONFIG = "projects/FastTCM/configs/TextDetection/fasttcm_cr50_fpn_dbnet_synthetic_cpu.yaml"
BINARY_MAPS = ("shrink_map", "shrink_mask", "thresh_mask")
THRESH_TOLERANCE = 1e-3


def map_disagreement(
    official: Dict[str, torch.Tensor], project: Dict[str, torch.Tensor], thresh_min: float = 0.3
) -> Dict[str, float]:
    """Where two sets of DB target maps of one image disagree, per map.

    Returns:
        {"<map>": share of the image's pixels that differ (0/1 maps: any difference; thresh_map:
         |difference| > 1e-3), "thresh_map_mean_abs": mean |difference| of the threshold maps,
         "<map>_differ" and "<map>_region": the number of differing pixels and of the pixels
         either map marks (1 in shrink_map / thresh_mask, 0 in shrink_mask, above thresh_min in
         thresh_map)}.
    """
    result = {}
    for name in BINARY_MAPS:
        background = 1.0 if name == "shrink_mask" else 0.0
        differ = official[name] != project[name]
        marked = (official[name] != background) | (project[name] != background)
        result[name] = float(differ.float().mean())
        result[f"{name}_differ"], result[f"{name}_region"] = int(differ.sum()), int(marked.sum())
    diff = (official["thresh_map"] - project["thresh_map"]).abs()
    differ = diff > THRESH_TOLERANCE
    band = (official["thresh_map"] > thresh_min + THRESH_TOLERANCE) | (
        project["thresh_map"] > thresh_min + THRESH_TOLERANCE
    )
    result["thresh_map"] = float(differ.float().mean())
    result["thresh_map_differ"], result["thresh_map_region"] = int(differ.sum()), int(band.sum())
    result["thresh_map_mean_abs"] = float(diff.mean())
    return result


def summarize(rows: List[Dict[str, float]]) -> Dict[str, float]:
    """Per-image shares and the mean absolute difference averaged over images; "<map>_of_region"
    pooled over images (differing pixels / marked pixels of all images)."""
    summary = {}
    for name in (*BINARY_MAPS, "thresh_map"):
        summary[name] = sum(row[name] for row in rows) / len(rows)
        region = sum(row[f"{name}_region"] for row in rows)
        summary[f"{name}_of_region"] = sum(row[f"{name}_differ"] for row in rows) / max(region, 1)
    summary["thresh_map_mean_abs"] = sum(row["thresh_map_mean_abs"] for row in rows) / len(rows)
    return summary


def compare_one(
    polygons: List[np.ndarray], ignore: List[bool], height: int, width: int, kwargs: dict
) -> Tuple[Dict[str, float], Dict[str, float]]:
    """("as_is", "aligned") disagreements of one image's targets (module docstring)."""
    project = make_db_targets(polygons, ignore, height, width, **kwargs)
    as_is = make_db_targets_official(polygons, ignore, height, width, **kwargs)
    shifted = [np.asarray(p, dtype=np.float64) - 0.5 for p in polygons]
    aligned = make_db_targets_official(shifted, ignore, height, width, **kwargs)
    thresh_min = kwargs["thresh_min"]
    return (
        map_disagreement(as_is, project, thresh_min),
        map_disagreement(aligned, project, thresh_min),
    )


def _image_polygons(mapper, record: dict, seed: int, augment: bool):
    """(polygons, ignore flags, height, width) of one dataset record as training sees it."""
    if not augment:
        polygons, ignore = [], []
        for anno in record.get("annotations", []):
            polygons.append(np.asarray(anno["segmentation"][0], dtype=np.float64).reshape(-1, 2))
            ignore.append(bool(anno.get("ignore", False)) or anno.get("text") == "###")
        return polygons, ignore, int(record["height"]), int(record["width"])
    np.random.seed(seed)  # detectron2 augmentations draw from numpy's global generator
    out = mapper(record)
    instances = out["instances"]
    height, width = instances.image_size
    return list(instances.gt_polygons), instances.gt_ignore.tolist(), height, width


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config-file", default=DEFAULT_CONFIG, help="config of the mapper")
    parser.add_argument("--dataset", default="synthetic_text_train")
    parser.add_argument("--num-images", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0, help="augmentation seed of image 0")
    parser.add_argument(
        "--no-augment", action="store_true", help="compare on the annotations as they are"
    )
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    args = parser.parse_args(argv)

    cfg = get_cfg()
    add_fasttcm_config(cfg)
    merge_config_file(cfg, args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.INPUT.DB_TARGETS = False  # the mapper only augments; both makers run here
    cfg.freeze()
    mapper = TextDatasetMapper(cfg, is_train=True)
    records = DatasetCatalog.get(args.dataset)[: args.num_images]
    if not records:
        raise SystemExit(f"compare_db_targets: dataset {args.dataset!r} has no images.")

    kwargs = db_target_kwargs(cfg)
    rows = {"as_is": [], "aligned": []}
    sizes = set()
    for index, record in enumerate(records):
        polygons, ignore, height, width = _image_polygons(
            mapper, record, args.seed + index, not args.no_augment
        )
        sizes.add((height, width))
        for name, values in zip(rows, compare_one(polygons, ignore, height, width, kwargs)):
            rows[name].append(values)
    means = {name: summarize(values) for name, values in rows.items()}
    height, width = sorted(sizes)[-1]
    result = {
        "num_images": len(records),
        "height": height,
        "width": width,
        "augment": not args.no_augment,
        "dataset": args.dataset,
        **means,
    }
    for name, values in means.items():
        shares = "  ".join(
            f"{key} {100 * values[key]:.3f}% ({100 * values[key + '_of_region']:.2f}% of region)"
            for key in (*BINARY_MAPS, "thresh_map")
        )
        print(f"{name:8s} {shares}  thresh_map_mean_abs {values['thresh_map_mean_abs']:.5f}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
