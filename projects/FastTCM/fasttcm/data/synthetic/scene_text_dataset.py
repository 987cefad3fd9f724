"""Write a synthetic scene-text dataset: images plus annotations in the project's text-JSON format.

Image ``i`` of a dataset with seed ``s`` is rendered from ``numpy.random.default_rng([s, i])``
only (:func:`fasttcm.data.synthetic.scene_text.render_scene`), so the files are byte-identical
for one seed whatever the number of worker processes.
"""

import dataclasses
import json
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import List, Tuple, Union

import cv2
import numpy as np

from ...utils.atomic_io import atomic_write_bytes
from .scene_text import render_scene
from .scene_text_options import SceneTextOptions

__all__ = ["generate_text_dataset"]

logger = logging.getLogger(__name__)


def _render_and_save(
    index: int,
    *,
    seed: int,
    image_size,
    options: SceneTextOptions,
    image_dir: Path,
    ext: str,
    jpeg_quality: int,
) -> Tuple[str, List[dict]]:
    """Render image `index` of the dataset and write it; returns (file name, annotations)."""
    rng = np.random.default_rng([seed, index])
    image, annotations = render_scene(rng, image_size, options=options)
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if ext == "jpg" else []
    ok, encoded = cv2.imencode("." + ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise RuntimeError(f"generate_text_dataset: OpenCV could not encode image {index} as {ext}")
    name = f"{index:06d}.{ext}"
    atomic_write_bytes(image_dir / name, encoded.tobytes())
    return name, annotations


def generate_text_dataset(
    out_dir: Union[str, Path],
    num_images: int,
    seed: int,
    image_size: Tuple[int, int] = (320, 320),
    *,
    difficulty: str = "default",
    num_workers: int = 0,
    image_format: str = "jpg",
    jpeg_quality: int = 95,
    **options,
) -> Path:
    """Generate a synthetic scene-text dataset in the project's text-JSON format.

    Writes ``out_dir/images/000000.jpg ...`` and ``out_dir/annotations.json``::

        {"info": {"description": str, "version": 1},
         "images": [{"id", "file_name" (relative to out_dir, POSIX), "height", "width"}],
         "annotations": [{"id", "image_id", "polygon": [[x, y], ...] (absolute pixels),
                          "text" ("###" = don't care), "ignore": bool}],
         "categories": [{"id": 1, "name": "text"}]}

    Image and annotation ids start at 1. Every file is written atomically (temporary file and
    rename), the JSON last, so an existing annotations.json always describes complete images.

    Args:
        out_dir: output folder (created if needed).
        num_images: number of images (>= 1).
        seed: non-negative integer; image i is drawn from ``numpy.random.default_rng([seed, i])``.
        image_size: (H, W) in pixels.
        difficulty: preset name in :data:`DIFFICULTY_PRESETS`.
        num_workers: processes rendering in parallel (0: in this process). The output does not
            depend on it.
        image_format: "jpg" or "png".
        jpeg_quality: JPEG quality, 1-100.
        **options: fields of :class:`SceneTextOptions` overriding the preset.

    Returns:
        Path of ``annotations.json``.
    """
    if not isinstance(num_images, (int, np.integer)) or num_images < 1:
        raise ValueError(
            f"generate_text_dataset: num_images must be a positive integer, got {num_images!r}"
        )
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(
            f"generate_text_dataset: seed must be a non-negative integer, got {seed!r}"
        )
    if image_format not in ("jpg", "png"):
        raise ValueError(
            f"generate_text_dataset: image_format must be 'jpg' or 'png', got {image_format!r}"
        )
    if not 1 <= jpeg_quality <= 100:
        raise ValueError(
            f"generate_text_dataset: jpeg_quality must be in [1, 100], got {jpeg_quality}"
        )
    img_h, img_w = (int(v) for v in image_size)
    opts = SceneTextOptions.from_difficulty(difficulty, **options)

    out_dir = Path(out_dir)
    image_dir = out_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    render = partial(
        _render_and_save,
        seed=int(seed),
        image_size=(img_h, img_w),
        options=opts,
        image_dir=image_dir,
        ext=image_format,
        jpeg_quality=int(jpeg_quality),
    )
    start = time.perf_counter()
    indices = range(int(num_images))
    if num_workers > 0:
        with ProcessPoolExecutor(
            num_workers, mp_context=multiprocessing.get_context("spawn")
        ) as pool:
            results = list(
                pool.map(render, indices, chunksize=max(1, num_images // (4 * num_workers)))
            )
    else:
        results = [render(i) for i in indices]
    elapsed = time.perf_counter() - start

    images, annotations = [], []
    for index, (name, anns) in enumerate(results):
        images.append(
            {"id": index + 1, "file_name": f"images/{name}", "height": img_h, "width": img_w}
        )
        for ann in anns:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": index + 1,
                    "polygon": [
                        [round(float(x), 2), round(float(y), 2)] for x, y in ann["polygon"]
                    ],
                    "text": ann["text"],
                    "ignore": ann["ignore"],
                }
            )
    changed = {
        k: v for k, v in dataclasses.asdict(opts).items() if v != getattr(SceneTextOptions, k)
    }
    dataset = {
        "info": {
            "description": (
                f"FastTCM-D2 synthetic scene text: seed={seed}, num_images={num_images}, "
                f"image_size={img_h}x{img_w}, difficulty={difficulty}, options={changed}"
            ),
            "version": 1,
        },
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "text"}],
    }
    json_path = out_dir / "annotations.json"
    atomic_write_bytes(json_path, json.dumps(dataset, separators=(",", ":")).encode("utf-8"))
    logger.info(
        "Wrote %d synthetic scene-text images (%d words) to %s in %.1f s (%.1f images/s)",
        num_images,
        len(annotations),
        out_dir,
        elapsed,
        num_images / max(elapsed, 1e-9),
    )
    return json_path
