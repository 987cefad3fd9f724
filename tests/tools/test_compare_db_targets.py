"""tools/compare_db_targets.py: per-map disagreement of the two DB target makers, known values."""

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def tool(load_tool):
    return load_tool("compare_db_targets")


def _maps(shrink, mask, thresh, thresh_mask):
    return {
        "shrink_map": torch.tensor(shrink, dtype=torch.float32),
        "shrink_mask": torch.tensor(mask, dtype=torch.float32),
        "thresh_map": torch.tensor(thresh, dtype=torch.float32),
        "thresh_mask": torch.tensor(thresh_mask, dtype=torch.float32),
    }


def test_map_disagreement_known_values(tool):
    a = _maps([[1, 1, 0, 0]], [[1, 1, 1, 0]], [[0.3, 0.5, 0.7, 0.3]], [[1, 1, 1, 0]])
    b = _maps([[1, 0, 0, 0]], [[1, 1, 1, 0]], [[0.3, 0.5005, 0.69, 0.3]], [[1, 1, 0, 0]])
    row = tool.map_disagreement(a, b)
    assert row["shrink_map"] == 0.25 and row["shrink_map_differ"] == 1
    assert row["shrink_map_region"] == 2  # pixels either map marks as kernel
    assert row["shrink_mask"] == 0.0 and row["shrink_mask_region"] == 1
    assert row["thresh_map"] == 0.25  # 0.0005 is within the 1e-3 tolerance, 0.01 is not
    assert row["thresh_map_region"] == 2
    assert row["thresh_map_mean_abs"] == pytest.approx((0.0005 + 0.01) / 4, abs=1e-7)
    assert row["thresh_mask"] == 0.25 and row["thresh_mask_region"] == 3
    summary = tool.summarize([row, tool.map_disagreement(a, a)])
    assert summary["shrink_map"] == pytest.approx(0.125)
    assert summary["shrink_map_of_region"] == pytest.approx(1 / 4)


def test_identical_polygons_in_both_frames_differ_only_by_the_frames(tool):
    rect = np.array([[10, 10], [70, 10], [70, 30], [10, 30]], dtype=np.float64)
    kwargs = dict(shrink_ratio=0.4, thresh_min=0.3, thresh_max=0.7, min_text_size=8.0)
    as_is, aligned = tool.compare_one([rect], [False], 40, 80, kwargs)
    assert as_is["shrink_mask"] == aligned["shrink_mask"] == 0.0
    # Half a pixel apart, nearly every threshold-band pixel differs; aligned, few do.
    assert as_is["thresh_map_differ"] > 0.9 * as_is["thresh_map_region"]
    assert aligned["thresh_map_differ"] < 0.2 * aligned["thresh_map_region"]
