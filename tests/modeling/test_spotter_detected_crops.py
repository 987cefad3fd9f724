"""Training the spotter's recognizer on crops of its detector's own outlines
(MODEL.SPOTTER.DETECTED_CROPS)."""

import numpy as np
import torch

from detectron2.utils.events import EventStorage

from fasttcm.modeling.recognition.crop_voting import framed_quads, parse_crop_variants
from fasttcm.modeling.recognition.detection_matching import match_outlines_to_words
from fasttcm.structures.rectification.rectify import rectify_polygons
from tests.modeling.test_text_spotter import (  # noqa: F401
    CURVED,
    QUAD,
    _FixedPolygons,
    _spotter_counts,
    _training_input,
    model,
)

BOX = np.array([[0, 0], [10, 0], [10, 5], [0, 5]], dtype=np.float64)


def test_matching_is_greedy_one_to_one_above_the_threshold():
    outlines = [BOX, BOX + 100, BOX + [1, 0], np.zeros((2, 2)), BOX + [5, 0]]
    words = [BOX + [2, 0], BOX + [100.5, 100], BOX + 300]
    # by decreasing IoU: (1, 1) 9.5/10.5; (2, 0) 9/11 beats (0, 0) 8/12 and (4, 0) 7/13, which
    # find word 0 taken
    assert match_outlines_to_words(outlines, words) == [(1, 1), (2, 0)]
    assert match_outlines_to_words(outlines, words, iou_threshold=0.95) == []
    assert match_outlines_to_words([], words) == []


def test_detected_outlines_are_cropped_as_at_inference_and_labelled_by_their_word(
    model,  # noqa: F811
    monkeypatch,
):
    inputs = _training_input([QUAD, CURVED, QUAD], ["ab", "cd", "###"], [False, False, True])
    outlines = [
        np.array(CURVED, dtype=np.float32) + [1, 0],  # finds "cd"
        np.array(QUAD, dtype=np.float32) + [0, 1],  # finds "ab" (the don't-care copy is skipped)
        np.array([[70, 2], [90, 2], [90, 10], [70, 10]], dtype=np.float32),  # background
    ]
    monkeypatch.setattr(model, "postprocessor", _FixedPolygons(outlines, [0.9, 0.8, 0.7]))
    monkeypatch.setattr(model, "crop_layout", "rectangle")
    prob = torch.zeros(1, 1, 64, 96)
    crops, labels, matched = model.detected_training_crops([inputs], prob)
    assert labels == ["cd", "ab"] and matched == 2
    expected = rectify_polygons(
        [inputs["image"]],
        [o.astype(np.float64) for o in outlines[:2]],
        [0, 0],
        (16, 32),
        layout="rectangle",
    ).crops
    torch.testing.assert_close(crops, model.recognizer.normalize(expected))

    # with crop variants, the first framing is the training crop
    variants = parse_crop_variants([[0.1, 0.1, 0.1, 0.1, 1], [0, 0, 0, 0]])
    monkeypatch.setattr(model, "crop_variants", variants)
    crops, labels, _ = model.detected_training_crops([inputs], prob)
    quads, _ = framed_quads([o.astype(np.float64) for o in outlines[:2]], variants[:1])
    expected = rectify_polygons([inputs["image"]], quads[::2], [0, 0], (16, 32)).crops
    torch.testing.assert_close(crops, model.recognizer.normalize(expected))


def test_training_step_adds_the_detected_crops_to_the_recognizer_batch(
    model,  # noqa: F811
    monkeypatch,
):
    inputs = _training_input([QUAD, CURVED], ["ab", "cd"], [False, False])
    monkeypatch.setattr(model, "postprocessor", _FixedPolygons([QUAD], [0.9]))
    monkeypatch.setattr(model, "detected_crops", True)
    seen = {}

    def spy(crops, labels):
        seen["shape"], seen["labels"] = tuple(crops.shape), list(labels)
        return {"loss_visual": crops.sum() * 0, "loss_cross_modal": crops.sum() * 0}

    monkeypatch.setattr(model.recognizer, "recognition_losses", spy)
    model.train()
    with EventStorage() as storage:
        losses = model([inputs])
        counts = _spotter_counts(storage)
    assert seen["labels"] == ["ab", "cd", "ab"] and seen["shape"] == (3, 3, 16, 32)
    assert counts["detected_matched"] == 1 and counts["detected_crops"] == 1
    assert {"loss_prob", "loss_rec_visual"} <= set(losses)


def test_frozen_detector_trains_only_the_recognizer_on_its_inference_maps(monkeypatch):
    from detectron2.modeling import build_model

    from fasttcm.modeling.meta_arch.text_detector import FastTCMTextDetector
    from tests.modeling.test_text_spotter import _tiny_cfg

    cfg = _tiny_cfg()
    cfg.MODEL.SPOTTER.FREEZE_DETECTOR = True
    cfg.MODEL.SPOTTER.DETECTED_CROPS = True
    torch.manual_seed(0)
    spotter = build_model(cfg)
    assert spotter.freeze_detector
    trainable = {n for n, p in spotter.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("recognizer.") for n in trainable)

    spotter.train()
    assert spotter.recognizer.training
    assert not any(m.training for n, m in spotter.named_modules() if n and "recognizer" not in n)

    inputs = _training_input([QUAD, CURVED], ["ab", "cd"], [False, False])
    seen = {}

    def spy(batched_inputs, prob_maps):  # the maps the detector gives at inference
        seen["prob"] = prob_maps.clone()
        return torch.zeros(0, 3, 16, 32), [], 0

    monkeypatch.setattr(spotter, "detected_training_crops", spy)
    before = {n: p.detach().clone() for n, p in spotter.named_parameters()}
    optimizer = torch.optim.SGD([p for p in spotter.parameters() if p.requires_grad], lr=0.1)
    with EventStorage():
        losses = spotter([inputs])
        assert set(losses) and all(k.startswith("loss_rec") for k in losses)
        sum(losses.values()).backward()
    optimizer.step()
    changed = {n for n, p in spotter.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(n.startswith("recognizer.") for n in changed)

    spotter.eval()
    with torch.no_grad():
        images = spotter.preprocess_image([inputs])
        features, _ = FastTCMTextDetector.extract_features(spotter, images.tensor)
        maps, _ = spotter.text_head(features)
    torch.testing.assert_close(seen["prob"], maps["prob"])
