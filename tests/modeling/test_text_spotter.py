"""FastTCMTextSpotter on CPU: GT-crop training, inference in original pixels, counted skips,
configs."""

import glob
import os

import numpy as np
import pytest
import torch

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.modeling import build_model
from detectron2.structures import Instances
from detectron2.utils.events import EventStorage

from fasttcm import add_fasttcm_config
from fasttcm.data.db_targets import make_db_targets
from fasttcm.evaluation import TextDetEvaluator, TextSpottingEvaluator, build_evaluator
from fasttcm.modeling.meta_arch.text_detector import FastTCMTextDetector
from fasttcm.modeling.meta_arch.text_spotter import FastTCMTextSpotter
from fasttcm.solver import build_param_groups
from fasttcm.structures.rectification.crop_jitter import jitter_side_polygons
from fasttcm.structures.rectification.rectify import rectify_polygons
from tests.common import QUICK_SPOTTER, load_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG_DIR = os.path.join(REPO, "projects", "FastTCM", "configs")


def _tiny_cfg():
    """The spotter quick schedule, narrower (FPNC 16 -> 4 x 4, 1 text layer, 16-wide decoders),
    without dropout, on 16x32 crops of up to 10 characters, 2 orders, Base-Spotter's crop batch
    sizes."""
    return load_config(
        QUICK_SPOTTER,
        "MODEL.FPNC.LATERAL_CHANNELS",
        16,
        "MODEL.FPNC.OUT_CHANNELS",
        4,
        "MODEL.DB_HEAD.CONV_DIMS",
        16,
        "MODEL.FASTTCM.EMBED_DIM",
        32,
        "MODEL.FASTTCM.TEXT_LAYERS",
        1,
        "MODEL.FASTTCM.DECODER_WIDTH",
        16,
        "MODEL.FASTTCM.DECODER_HEADS",
        2,
        "MODEL.FASTTCM.DECODER_DROPOUT",
        0.0,
        "MODEL.RECOGNIZER.IMAGE_SIZE",
        (16, 32),
        "MODEL.RECOGNIZER.DECODER_DROPOUT",
        0.0,
        "MODEL.RECOGNIZER.MAX_LABEL_LENGTH",
        10,
        "MODEL.RECOGNIZER.PERM_NUM",
        2,
        "MODEL.SPOTTER.MAX_TRAIN_CROPS",
        64,
        "TEST.SPOTTER.CROP_BATCH_SIZE",
        64,
    )


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(_tiny_cfg())


def _training_input(polygons, texts, ignore, height=64, width=96, seed=0):
    generator = torch.Generator().manual_seed(seed)
    instances = Instances((height, width))
    instances.gt_polygons = [np.asarray(p, dtype=np.float32) for p in polygons]
    instances.gt_texts = list(texts)
    instances.gt_ignore = torch.tensor(ignore, dtype=torch.bool)
    targets = make_db_targets(
        instances.gt_polygons,
        list(ignore),
        height,
        width,
        shrink_ratio=0.4,
        thresh_min=0.3,
        thresh_max=0.7,
        min_text_size=8,
    )
    return {
        "file_name": f"synthetic_{seed}.jpg",
        "image": torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=generator),
        "instances": instances,
        "db_targets": {k: torch.as_tensor(v) for k, v in targets.items()},
    }


QUAD = [[6, 6], [58, 8], [57, 26], [5, 24]]
CURVED = [[6, 36], [30, 32], [55, 32], [80, 36], [80, 52], [55, 48], [30, 48], [6, 52]]


def _spotter_counts(storage):
    return {
        k.split("/", 1)[1]: v for k, (v, _) in storage.latest().items() if k.startswith("spotter/")
    }


def test_train_step_with_random_and_empty_instances(model):
    batch = [
        _training_input(
            [QUAD, CURVED, QUAD, QUAD, QUAD, QUAD, [[1, 1], [40, 40], [80, 80]], QUAD],
            ["Hello", "wörld", "###", "fine", "", "中文", "line", "a b"],
            [False, False, False, True, False, False, False, False],
        ),
        _training_input([], [], [], seed=1),
    ]
    model.train()
    model.zero_grad()
    with EventStorage() as storage:
        losses = model(batch)
        counts = _spotter_counts(storage)
    detector_losses = {"loss_prob", "loss_binary", "loss_thresh", "loss_ilm"}
    assert detector_losses | {"loss_rec_visual", "loss_rec_cross_modal"} <= set(losses)
    assert all(torch.isfinite(v) and v.ndim == 0 for v in losses.values())
    assert losses["loss_rec_visual"] > 0 and losses["loss_rec_cross_modal"] > 0
    # "###" and gt_ignore; "" and non-Latin text; the collinear polygon; "Hello", "world" (NFKD),
    # "ab"
    assert counts == dict(
        skipped_ignore=2, skipped_text=2, skipped_geometry=1, dropped_by_cap=0, num_crops=3
    )

    sum(losses.values()).backward()
    rec = model.recognizer
    for module in (rec.visual_decoder, rec.cross_decoder, rec.clip_model.visual):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.backbone.parameters())

    # no usable crop in the batch: zero recognition losses that still reach the recognizer
    model.zero_grad()
    with EventStorage() as storage:
        losses = model(
            [_training_input([QUAD], ["###"], [True], seed=2), _training_input([], [], [], seed=3)]
        )
    assert losses["loss_rec_visual"].item() == 0.0 and losses["loss_rec_cross_modal"].item() == 0.0
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in model.recognizer.parameters() if p.requires_grad)
    assert _spotter_counts(storage)["num_crops"] == 0


def test_recognizer_ctc_loss_is_part_of_the_spotter_losses():
    cfg = _tiny_cfg()
    cfg.MODEL.RECOGNIZER.PATCH_EMBED, cfg.MODEL.RECOGNIZER.PATCH_SIZE = "conv", (8, 4)
    cfg.MODEL.RECOGNIZER.CTC_LOSS_WEIGHT = 1.0
    torch.manual_seed(0)
    spotter = build_model(cfg)
    spotter.train()
    for batch in (
        [_training_input([QUAD, CURVED], ["Hello", "world"], [False, False])],
        [_training_input([QUAD], ["###"], [True], seed=2)],
    ):
        spotter.zero_grad()
        with EventStorage():
            losses = spotter(batch)
        assert {"loss_rec_visual", "loss_rec_cross_modal", "loss_rec_ctc"} == {
            k for k in losses if "rec" in k
        }
        sum(losses.values()).backward()
        # every trainable recognizer parameter takes part (DDP without find_unused_parameters)
        assert all(p.grad is not None for p in spotter.recognizer.parameters() if p.requires_grad)
    assert any(p.grad is not None for p in spotter.recognizer.ctc_head.parameters())


def test_training_crops_follow_the_ground_truth(model, monkeypatch):
    """Crops come from the GT polygons of the augmented image; labels in order; the cap is
    random."""
    inputs = _training_input([QUAD, CURVED, QUAD, CURVED], ["ab", "cd", "ef", "gh"], [False] * 4)
    crops, labels, counts = model.training_crops([inputs])
    expected = rectify_polygons(
        [inputs["image"]], [QUAD, CURVED, QUAD, CURVED], [0] * 4, (16, 32)
    ).crops
    torch.testing.assert_close(crops, model.recognizer.normalize(expected))
    assert labels == ["ab", "cd", "ef", "gh"] and counts["num_crops"] == 4

    seen = {}

    def spy(crops, labels):
        seen["shape"], seen["labels"] = tuple(crops.shape), list(labels)
        return {"loss_visual": crops.sum() * 0, "loss_cross_modal": crops.sum() * 0}

    monkeypatch.setattr(model, "max_train_crops", 2)
    monkeypatch.setattr(model.recognizer, "recognition_losses", spy)
    model.train()
    with EventStorage() as storage:
        model.recognition_losses([inputs])
        counts = _spotter_counts(storage)
    assert counts["dropped_by_cap"] == 2 and counts["num_crops"] == 2
    assert seen["shape"] == (2, 3, 16, 32) and set(seen["labels"]) <= {"ab", "cd", "ef", "gh"}

    monkeypatch.setattr(model, "remove_whitespace", False)
    assert model.training_label("a b") == (None, "out_of_charset")
    assert model.training_label(" Exit ") == ("Exit", "")
    assert model.training_label("x" * 11) == (None, "too_long")
    with pytest.raises(ValueError, match="has no 'instances'"):
        model.training_crops([{"image": inputs["image"], "file_name": "a.jpg"}])


def test_training_crops_with_jitter_are_crops_of_the_jittered_polygons(model, monkeypatch):
    """CROP_JITTER moves the GT sides by a seeded random multiple of the height before
    rectification."""
    inputs = _training_input([QUAD, CURVED], ["ab", "cd"], [False] * 2)
    monkeypatch.setattr(model, "crop_jitter", (-0.1, 0.3))
    torch.manual_seed(7)
    crops, labels, _ = model.training_crops([inputs])
    torch.manual_seed(7)
    rng = np.random.default_rng(int(torch.randint(2**31 - 1, (1,))))
    jittered, offsets = jitter_side_polygons([np.float32(QUAD), np.float32(CURVED)], -0.1, 0.3, rng)
    expected = rectify_polygons([inputs["image"]], jittered, [0, 0], (16, 32)).crops
    torch.testing.assert_close(crops, model.recognizer.normalize(expected))
    exact = rectify_polygons([inputs["image"]], [QUAD, CURVED], [0, 0], (16, 32)).crops
    assert labels == ["ab", "cd"] and not torch.allclose(crops, model.recognizer.normalize(exact))
    assert offsets.min() >= -0.1 and offsets.max() <= 0.3


class _FixedPolygons:
    """Stands in for DBPostprocessor: the same polygons (original-image pixels) for every image."""

    def __init__(self, polygons, scores):
        self.polygons, self.scores = polygons, scores

    def __call__(self, prob_map, output_size):
        return [np.asarray(p, dtype=np.float32) for p in self.polygons], np.asarray(
            self.scores, dtype=np.float32
        )


def test_inference_returns_texts_in_original_coordinates(model, monkeypatch):
    """Input 64x96 of a 128x192 original: polygons stay in original pixels, crops come from the
    input."""
    original = [
        np.array([[12, 12], [116, 16], [114, 52], [10, 48]], dtype=np.float32),  # quad
        np.array(CURVED, dtype=np.float32) * 2,  # 8-point outline
        np.array([[0, 0], [50, 50], [100, 100]], dtype=np.float32),  # zero area
        np.array([[0, 0], [np.nan, 5], [9, 9], [0, 9]], dtype=np.float32),  # NaN
    ]
    monkeypatch.setattr(model, "postprocessor", _FixedPolygons(original, [0.9, 0.8, 0.7, 0.6]))
    captured = []
    recognize = model.recognizer.recognize

    def spy(crops):
        captured.append(crops.clone())
        return recognize(crops)

    monkeypatch.setattr(model.recognizer, "recognize", spy)
    image = _training_input([], [], [], seed=4)["image"]
    model.eval()
    with EventStorage() as storage, torch.no_grad():  # as detectron2's inference_on_dataset
        outputs = model([{"image": image, "height": 128, "width": 192, "image_id": 7}])
        counts = _spotter_counts(storage)
    instances = outputs[0]["instances"]
    assert instances.image_size == (128, 192) and len(instances) == 2
    for got, want in zip(instances.polygons, original[:2]):
        np.testing.assert_array_equal(got, want)
    torch.testing.assert_close(instances.scores, torch.tensor([0.9, 0.8]))
    assert len(instances.texts) == 2 and all(isinstance(t, str) for t in instances.texts)
    assert (
        instances.text_scores.shape == (2,)
        and ((instances.text_scores >= 0) & (instances.text_scores <= 1)).all()
    )
    assert instances.pred_boxes.tensor[0].tolist() == [10.0, 12.0, 116.0, 52.0]
    assert counts == {"inference_skipped_geometry": 2}

    scaled = [p.astype(np.float64) / 2 for p in original[:2]]
    expected = rectify_polygons([image], scaled, [0, 0], (16, 32), layout="predicted").crops
    torch.testing.assert_close(torch.cat(captured), model.recognizer.normalize(expected))

    # TEST.SPOTTER.CROP_LAYOUT "rectangle": the crops are those of the min-area rectangles
    captured.clear()
    monkeypatch.setattr(model, "crop_layout", "rectangle")
    with torch.no_grad():
        model([{"image": image, "height": 128, "width": 192}])
    expected = rectify_polygons([image], scaled, [0, 0], (16, 32), layout="rectangle").crops
    torch.testing.assert_close(torch.cat(captured), model.recognizer.normalize(expected))
    assert not torch.allclose(
        expected[1],
        rectify_polygons([image], scaled[1:], [0], (16, 32), layout="predicted").crops[0],
    )
    monkeypatch.setattr(model, "crop_layout", "predicted")

    # recognition confidence gate; batches of one crop give the same answer
    monkeypatch.setattr(model, "crop_batch_size", 1)
    with torch.no_grad():
        again = model([{"image": image, "height": 128, "width": 192}])[0]["instances"]
        assert again.texts == instances.texts
        torch.testing.assert_close(again.text_scores, instances.text_scores)
        monkeypatch.setattr(model, "min_text_score", 1.1)
        assert len(model([{"image": image, "height": 128, "width": 192}])[0]["instances"]) == 0


def test_real_postprocessing_and_empty_detections(model):
    model.eval()
    image = torch.randint(0, 256, (3, 64, 96), dtype=torch.uint8)
    with torch.no_grad():
        blank = torch.zeros(3, 32, 64, dtype=torch.uint8)
        outputs = model([{"image": image}, {"image": blank, "height": 64, "width": 128}])
    for out, size in zip(outputs, [(64, 96), (64, 128)]):
        instances = out["instances"]
        assert instances.image_size == size
        assert (
            len(instances.texts)
            == len(instances.polygons)
            == len(instances.scores)
            == len(instances.text_scores)
        )


def test_checkpoints_of_detector_and_recognizer_load_by_name(model):
    detector = FastTCMTextDetector(_tiny_cfg())
    spotter_keys = set(model.state_dict())
    assert set(detector.state_dict()) <= spotter_keys
    assert spotter_keys - set(detector.state_dict()) == {
        k for k in spotter_keys if k.startswith("recognizer.")
    }


def test_optimizer_groups_cover_every_trainable_parameter_once(model):
    cfg = _tiny_cfg()
    groups = build_param_groups(model, cfg)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == sum(p.requires_grad for p in model.parameters())
    decoder = {id(p) for p in model.recognizer.visual_decoder.parameters()}
    lrs = {g["lr"] for g in groups if any(id(p) in decoder for p in g["params"])}
    assert lrs == {cfg.SOLVER.BASE_LR * cfg.SOLVER.RECOGNIZER.DECODER_LR_FACTOR}


def test_bad_construction_arguments(model):
    kwargs = dict(
        backbone=model.backbone,
        text_head=model.text_head,
        postprocessor=model.postprocessor,
        pixel_mean=[0.0, 0.0, 0.0],
        pixel_std=[1.0, 1.0, 1.0],
        recognizer=model.recognizer,
    )
    with pytest.raises(ValueError, match="INPUT.FORMAT must be RGB or BGR"):
        FastTCMTextSpotter(input_format="YUV", **kwargs)
    with pytest.raises(ValueError, match="MAX_TRAIN_CROPS"):
        FastTCMTextSpotter(max_train_crops=0, **kwargs)
    for bad in ((0.3, 0.1), (-0.5, 0.2)):
        with pytest.raises(ValueError, match="CROP_JITTER"):
            FastTCMTextSpotter(crop_jitter=bad, **kwargs)
    with pytest.raises(ValueError, match="CROP_LAYOUT must be 'predicted' or 'rectangle'"):
        FastTCMTextSpotter(crop_layout="annotated", **kwargs)
    bgr = FastTCMTextSpotter(input_format="BGR", **kwargs)
    crops = torch.rand(2, 3, 16, 32) * 255
    torch.testing.assert_close(
        bgr._normalize_crops(crops, 3), model._normalize_crops(crops.flip(1), 3)
    )


SPOTTER_CONFIGS = sorted(
    glob.glob(os.path.join(CONFIG_DIR, "TextSpotting", "*.yaml"))
    + glob.glob(os.path.join(CONFIG_DIR, "quick_schedules", "*spotter*.yaml"))
)


@pytest.mark.parametrize("config_file", SPOTTER_CONFIGS, ids=os.path.basename)
def test_spotter_configs_load_and_evaluate_end_to_end(config_file):
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    cfg.merge_from_file(config_file)
    assert cfg.MODEL.META_ARCHITECTURE == "FastTCMTextSpotter"
    assert cfg.TEST.EVALUATOR_TYPE == "text_e2e"
    assert cfg.INPUT.DATASET_MAPPER_NAME == "text" and cfg.INPUT.FORMAT == "RGB"
    for name in (*cfg.DATASETS.TRAIN, *cfg.DATASETS.TEST):
        assert name in DatasetCatalog.list(), name
        assert (
            MetadataCatalog.get(name).evaluator_type == "text_det"
        )  # the metadata rule is untouched
    assert len(SPOTTER_CONFIGS) == 6


def test_evaluator_type_override(tmp_path):
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    cfg.OUTPUT_DIR = str(tmp_path)
    assert isinstance(build_evaluator(cfg, "synthetic_spotting_test"), TextDetEvaluator)
    assert not isinstance(build_evaluator(cfg, "synthetic_spotting_test"), TextSpottingEvaluator)
    cfg.TEST.EVALUATOR_TYPE = "text_e2e"
    assert isinstance(build_evaluator(cfg, "synthetic_spotting_test"), TextSpottingEvaluator)
    cfg.TEST.EVALUATOR_TYPE = "bogus"
    with pytest.raises(KeyError, match="TEST.EVALUATOR_TYPE"):
        build_evaluator(cfg, "synthetic_spotting_test")
    assert MetadataCatalog.get("synthetic_spotting_train").generation_options == {"line_prob": 0.0}
