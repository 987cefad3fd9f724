"""Every shipped config loads with sane invariants; every quick-schedule model trains and infers.

Like DensePose's ``tests/test_setup.py``: paper-size configs (IC15, Total-Text, CTW1500, TD500,
SynthText pre-training, DOTA-1.0, CLIP4STR-B, ...) are only merged and checked, never built;
the quick schedules (``configs/quick_schedules``) are built with their own small widths and run
one optimizer step on a synthetic batch and one inference pass on CPU.
"""

import numpy as np
import pytest
import torch
import yaml

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.modeling import (
    BACKBONE_REGISTRY,
    META_ARCH_REGISTRY,
    PROPOSAL_GENERATOR_REGISTRY,
    ROI_BOX_HEAD_REGISTRY,
    ROI_HEADS_REGISTRY,
    SEM_SEG_HEADS_REGISTRY,
)
from detectron2.structures import Instances, RotatedBoxes
from detectron2.utils.events import EventStorage

from fasttcm.data.build import MAPPER_REGISTRY, build_mapper
from fasttcm.data.db_targets import make_db_targets
from fasttcm.data.mappers import db_target_kwargs
from fasttcm.engine import build_lr_scheduler, build_optimizer
from fasttcm.structures.charset import load_charset
from tests.common import (
    CONFIG_DIR,
    build_model_from_cfg,
    config_id,
    get_config_files,
    get_paper_config_files,
    get_quick_schedule_config_files,
    load_config,
)

DETECTOR, SPOTTER = "FastTCMTextDetector", "FastTCMTextSpotter"
RECOGNIZER, RRCNN = "FastTCMTextRecognizer", "FastTCMRotatedRCNN"
# META_ARCHITECTURE -> the INPUT.DATASET_MAPPER_NAME its training data needs
MAPPER_OF = {DETECTOR: "text", SPOTTER: "text", RECOGNIZER: "str", RRCNN: "dota"}

ALL_CONFIGS = get_config_files()
QUICK_CONFIGS = get_quick_schedule_config_files()


def test_config_discovery():
    names = {config_id(p) for p in ALL_CONFIGS}
    assert not any(n.split("/")[-1].startswith("Base-") for n in names)
    assert {config_id(p) for p in QUICK_CONFIGS} == {
        "quick_schedules/clip4str_instant_test.yaml",
        "quick_schedules/fasttcm_cr50_fpn_dbnet_instant_test.yaml",
        "quick_schedules/fasttcm_cr50_fpn_rrcnn_instant_test.yaml",
        "quick_schedules/fasttcm_cr50_fpn_spotter_instant_test.yaml",
    }
    assert {
        "TextDetection/fasttcm_cr50_fpn_dbnet_ic15.yaml",
        "TextDetection/fasttcm_cr50_fpn_dbnet_totaltext.yaml",
        "TextDetection/fasttcm_cr50_fpn_dbnet_ctw1500.yaml",
        "TextDetection/fasttcm_cr50_fpn_dbnet_td500.yaml",
        "TextDetection/fasttcm_cr50_fpn_dbnet_synthtext_pretrain.yaml",
        "DOTA/fasttcm_cr50_fpn_rrcnn_1x_dota10_ss.yaml",
        "TextRecognition/clip4str_vitb16_synth.yaml",
        "TextSpotting/fasttcm_cr50_fpn_spotter_ic15.yaml",
    } <= {config_id(p) for p in get_paper_config_files()}
    assert len(ALL_CONFIGS) == len(get_paper_config_files()) + len(QUICK_CONFIGS)


def test_every_base_config_is_used():
    """Each ``Base-*.yaml`` is the ``_BASE_`` (directly or not) of a config that is loaded."""
    used = set()
    for path in ALL_CONFIGS:
        current = path
        while True:
            with open(current) as f:
                base = (yaml.safe_load(f) or {}).get("_BASE_")
            if not base:
                break
            current = str((CONFIG_DIR / current).parent.joinpath(base).resolve())
            used.add(current)
    bases = {str(p.resolve()) for p in CONFIG_DIR.rglob("Base-*.yaml")}
    assert bases and bases <= used, sorted(bases - used)


@pytest.mark.parametrize("config_file", ALL_CONFIGS, ids=config_id)
def test_config_loads_with_sane_invariants(config_file, tmp_path):
    cfg = load_config(config_file)
    arch = cfg.MODEL.META_ARCHITECTURE
    assert arch in META_ARCH_REGISTRY, arch
    assert cfg.INPUT.DATASET_MAPPER_NAME == MAPPER_OF[arch]
    assert cfg.INPUT.DATASET_MAPPER_NAME in MAPPER_REGISTRY
    build_mapper(cfg, True), build_mapper(cfg, False)  # reads INPUT.* (no data loaded)
    assert cfg.DATASETS.TRAIN and cfg.DATASETS.TEST
    registered = set(DatasetCatalog.list())
    for name in (*cfg.DATASETS.TRAIN, *cfg.DATASETS.TEST):
        assert name in registered, f"{name} is not registered in DatasetCatalog"
    assert cfg.OUTPUT_DIR
    assert cfg.INPUT.FORMAT == "RGB"  # CLIP towers are trained on RGB
    assert cfg.SOLVER.OPTIMIZER in ("SGD", "ADAM", "ADAMW")
    assert cfg.SOLVER.MAX_ITER > 0 and cfg.SOLVER.BASE_LR > 0 and cfg.SOLVER.IMS_PER_BATCH > 0

    if arch in (RECOGNIZER, SPOTTER):
        rc = cfg.MODEL.RECOGNIZER
        assert all(size % patch == 0 for size, patch in zip(rc.IMAGE_SIZE, rc.PATCH_SIZE))
        assert load_charset(rc.CHARSET) and load_charset(rc.TEST_CHARSET)
    if arch != RECOGNIZER:
        assert cfg.MODEL.BACKBONE.NAME in BACKBONE_REGISTRY
        assert cfg.MODEL.BACKBONE.NAME in (
            "build_fasttcm_cr50_fpn_backbone",
            "build_fasttcm_cr50_fpnc_backbone",
        )
        assert len(cfg.MODEL.PIXEL_MEAN) == len(cfg.MODEL.PIXEL_STD) == 3
    if arch in (DETECTOR, SPOTTER):
        assert cfg.INPUT.DB_TARGETS  # the DB head trains on the mapper's maps
        assert cfg.MODEL.DB_HEAD.NAME in SEM_SEG_HEADS_REGISTRY
        fused = cfg.MODEL.BACKBONE.NAME == "build_fasttcm_cr50_fpnc_backbone"
        outputs = {"fused"} if fused else {"p2", "p3", "p4", "p5", "p6"}
        assert set(cfg.MODEL.DB_HEAD.IN_FEATURES) <= outputs
        assert cfg.MODEL.DB_HEAD.FUSE_CONVS != fused  # the FPNC map is fused already
    if arch == SPOTTER:
        assert cfg.TEST.EVALUATOR_TYPE == "text_e2e"
    if arch == RRCNN:
        assert cfg.MODEL.PROPOSAL_GENERATOR.NAME in PROPOSAL_GENERATOR_REGISTRY
        assert cfg.MODEL.ROI_HEADS.NAME in ROI_HEADS_REGISTRY
        assert cfg.MODEL.ROI_BOX_HEAD.NAME in ROI_BOX_HEAD_REGISTRY
        classes = MetadataCatalog.get(cfg.DATASETS.TRAIN[0]).get("thing_classes", None)
        if classes is not None:
            assert cfg.MODEL.ROI_HEADS.NUM_CLASSES == len(classes)

    # what train_net.py writes as config.yaml reads back to the same config (compared as data:
    # the dump's YAML anchors for shared default lists differ from one dump to the next)
    dumped = tmp_path / "config.yaml"
    dumped.write_text(cfg.dump())
    assert yaml.safe_load(load_config(str(dumped)).dump()) == yaml.safe_load(cfg.dump())


# --- quick schedules: build, one training step, one inference pass --------------------------------
QUAD = np.array([[6, 6], [58, 8], [57, 26], [5, 24]], dtype=np.float32)
HEIGHT, WIDTH = 64, 96


def _image(seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, HEIGHT, WIDTH), dtype=torch.uint8, generator=generator)


def _db_targets(cfg, polygons):
    targets = make_db_targets(
        polygons, [False] * len(polygons), HEIGHT, WIDTH, **db_target_kwargs(cfg)
    )
    return {k: torch.as_tensor(v) for k, v in targets.items()}


def _text_input(cfg, seed, polygons, texts):
    instances = Instances((HEIGHT, WIDTH))
    instances.gt_polygons = list(polygons)
    instances.gt_texts = list(texts)
    instances.gt_ignore = torch.zeros(len(polygons), dtype=torch.bool)
    return {
        "file_name": f"synthetic_{seed}.jpg",
        "image": _image(seed),
        "instances": instances,
        "db_targets": _db_targets(cfg, polygons),
    }


def _rotated_input(seed, boxes, classes):
    instances = Instances((HEIGHT, WIDTH))
    instances.gt_boxes = RotatedBoxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 5))
    instances.gt_classes = torch.tensor(classes, dtype=torch.int64)
    return {"image": _image(seed), "instances": instances, "height": HEIGHT, "width": WIDTH}


def _training_batch(cfg):
    arch = cfg.MODEL.META_ARCHITECTURE
    if arch in (DETECTOR, SPOTTER):
        return [_text_input(cfg, 0, [QUAD], ["Sale"]), _text_input(cfg, 1, [], [])]
    if arch == RECOGNIZER:
        h, w = cfg.MODEL.RECOGNIZER.IMAGE_SIZE
        crops = torch.randint(0, 256, (2, 3, h, w), dtype=torch.uint8)
        return [{"image": crops[0], "text": "ab"}, {"image": crops[1], "text": "42"}]
    assert arch == RRCNN
    return [
        _rotated_input(0, [[40, 30, 40, 12, 30], [70, 40, 20, 20, -45]], [0, 9]),
        _rotated_input(1, [], []),
    ]


@pytest.mark.parametrize("config_file", QUICK_CONFIGS, ids=config_id)
def test_quick_schedule_trains_one_step_and_infers(config_file):
    cfg = load_config(config_file)
    model = build_model_from_cfg(cfg)
    optimizer = build_optimizer(cfg, model)
    scheduler = build_lr_scheduler(cfg, optimizer)
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert trainable

    model.train()
    with EventStorage():
        losses = model(_training_batch(cfg))
    assert losses and all(torch.isfinite(v) for v in losses.values()), losses
    optimizer.zero_grad()
    sum(losses.values()).backward()
    optimizer.step()
    scheduler.step()
    params = dict(model.named_parameters())
    assert any(not torch.equal(params[n], before) for n, before in trainable.items())

    model.eval()
    with torch.no_grad():
        if cfg.MODEL.META_ARCHITECTURE == RECOGNIZER:
            (output,) = model([{"image": _image(2)}])
            assert isinstance(output["text"], str)
        else:
            (output,) = model([{"image": _image(2), "height": 2 * HEIGHT, "width": 2 * WIDTH}])
            assert output["instances"].image_size == (2 * HEIGHT, 2 * WIDTH)
