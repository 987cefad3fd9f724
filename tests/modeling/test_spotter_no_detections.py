"""A spotter that reads several framings per detection (TEST.SPOTTER.CROP_VARIANTS) returns empty
results, rather than failing, on an image without detections."""

import torch

from tests.common import QUICK_SPOTTER, build_model_from_cfg, load_config


def test_spotter_with_crop_variants_and_no_detections():
    cfg = load_config(QUICK_SPOTTER)
    cfg.TEST.SPOTTER.CROP_VARIANTS = [[0.0, 0.0, 0.0, 0.0], [0.1, 0.15, 0.1, 0.15]]
    model = build_model_from_cfg(cfg).eval()

    def no_text(module, args, output):  # an all-background probability map
        maps, losses = output
        return dict(maps, prob=torch.zeros_like(maps["prob"])), losses

    model.text_head.register_forward_hook(no_text)
    image = torch.rand(3, 96, 128, generator=torch.Generator().manual_seed(0)) * 255
    with torch.no_grad():
        instances = model.inference([{"image": image, "height": 96, "width": 128}])[0]["instances"]
    assert len(instances) == 0
    assert instances.texts == [] and instances.text_scores.shape == (0,)
