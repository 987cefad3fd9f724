"""tools/demo.py keeps its memory bounded on a large scene: a rotated-box model runs tiled (the
model never sees more than one patch) and the drawing is made on a downscaled copy.

The demo runs in a subprocess (tests/tools/demo_memory_probe.py) with a stand-in predictor, so
that its peak resident set size measures the demo's own reading, tiling, merging and drawing.
"""

import json
import subprocess
import sys

import cv2
import numpy as np

from tests.common import QUICK_RRCNN, REPO_ROOT, get_config_file

PROBE = REPO_ROOT / "tests" / "tools" / "demo_memory_probe.py"
SIDE = 4096  # the scene: 4096 x 4096 RGB, 48 MiB decoded
PATCH = 1024  # tile size from INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST, as the DOTA configs
DRAW_SIDE = 2048  # tools/demo.py's default --max-draw-side
# matplotlib's figure, canvas and copies per drawn pixel (measured: about 120 at 2048 x 2048)
DRAW_BYTES_PER_PIXEL = 150


def test_large_scene_runs_tiled_within_a_memory_bound(tmp_path):
    scene = np.empty((SIDE, SIDE, 3), np.uint8)
    scene[...] = (40, 120, 200)  # constant colour: a 4096^2 PNG of a few hundred KB
    assert cv2.imwrite(str(tmp_path / "scene.png"), scene)
    assert cv2.imwrite(str(tmp_path / "warmup.png"), scene[:300, :300])
    del scene
    proc = subprocess.run(
        [
            sys.executable,
            "-W",
            "ignore",
            str(PROBE),
            get_config_file(QUICK_RRCNN),
            str(tmp_path / "warmup.png"),
            str(tmp_path / "scene.png"),
            str(tmp_path / "out"),
            "--opts",
            "INPUT.MIN_SIZE_TEST",
            str(PATCH),
            "INPUT.MAX_SIZE_TEST",
            str(PATCH),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    probe = json.loads(proc.stdout.strip().splitlines()[-1])

    # tiled: 5 x 5 patches of 1024 (origins 0, 824, 1648, 2472 and 3072 on each axis), and the
    # model was never given anything larger than a patch
    record = probe["record"]
    assert record["status"] == "ok"
    assert record["tiles"] == {"patches": 25, "size": PATCH, "gap": 200}
    assert probe["inputs"] == [[PATCH, PATCH, 3]] * 25
    # drawn on a copy downscaled to the default --max-draw-side; predictions in scene pixels
    assert record["drawn_scale"] == DRAW_SIDE / SIDE
    drawn = cv2.imread(str(tmp_path / "out" / "large" / "scene.png"))
    assert drawn.shape == (DRAW_SIDE, DRAW_SIDE, 3)
    assert 0 < len(record["predictions"]) <= 25
    assert all(0 <= r["rbox_xywha"][0] <= SIDE for r in record["predictions"])

    # memory above the warmed-up demo: the decoded scene (and a copy of it at most), one patch,
    # and the drawing at DRAW_SIDE (measured: 536 MB of the 744 MB bound); drawn whole
    # (--max-draw-side 0), the scene takes 2.0 GB
    scene_mb = SIDE * SIDE * 3 / 2**20
    bound_mb = 3 * scene_mb + DRAW_BYTES_PER_PIXEL * DRAW_SIDE**2 / 2**20
    extra_mb = probe["peak_mb"] - probe["baseline_mb"]
    assert extra_mb < bound_mb, (extra_mb, bound_mb)
