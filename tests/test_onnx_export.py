"""ONNX export and the onnxruntime backend reproduce the PyTorch models (random weights, CPU).

One spotter export (through tools/export_model.py: detector + recognizer graphs) and one rotated
R-CNN export are shared by the tests of this module; each export takes tens of seconds on two
cores, every test after it a few seconds.

Polygons are compared exactly. Polygons come from thresholding the probability map, so two maps
within 1e-7 give the same polygons unless a pixel lies within 1e-7 of the threshold: the test
picks ``TEST.TEXT.MASK_THRESH`` in the widest gap between neighbouring map values near the median
of its images' maps (and checks that the onnxruntime maps fall on the same sides of it). The
random detector's probability branch is made to replicate each stride-4 value over its 4 x 4
output block (each transposed-convolution kernel set to its mean over the 2 x 2 taps), so the
random map has word-sized regions instead of thousands of one-pixel ones.
"""

import contextlib
import io
import json
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from detectron2.data import transforms as T

from fasttcm.data.synthetic.scene_text import render_scene
from fasttcm.modeling.recognition.decoding import causal_mask, cloze_query_mask
from tests.common import QUICK_RRCNN, QUICK_SPOTTER, build_quick_model, get_config_file, load_config

pytest.importorskip(
    "onnxruntime",
    reason="onnxruntime is not installed: the ONNX backend is the optional extra .[onnx] "
    "(`pip install .[onnx]`; `make install` installs it)",
)
pytest.importorskip("onnxscript", reason="onnxscript (torch's ONNX exporter) is not installed")

import onnx  # noqa: E402

from fasttcm.deploy import (  # noqa: E402
    OnnxPredictor,
    OnnxTextDetector,
    OnnxTextRecognizer,
    OnnxTextSpotter,
    export_onnx,
    load_onnx_model,
    read_manifest,
)
from fasttcm.deploy.graphs import DetectorGraph, FeatureGraph  # noqa: E402
from fasttcm.deploy.recognizer_runtime import OnnxRecognizer, SessionDecoder  # noqa: E402
from fasttcm.deploy.sessions import OnnxGraph  # noqa: E402
from fasttcm.deploy.text_models import pad_pixels  # noqa: E402
from fasttcm.engine import FastTCMPredictor, IncompleteWeightsError  # noqa: E402
from fasttcm.modeling.meta_arch.text_detector import FastTCMTextDetector  # noqa: E402
from fasttcm.modeling.meta_arch.text_recognizer import FastTCMTextRecognizer  # noqa: E402
from fasttcm.modeling.recognition.crop_voting import parse_crop_variants  # noqa: E402

# (height, width) of the synthetic test scenes; 128 x 128 keeps its size through the test resize
# (attention-pool grid 4 x 4 = the stored table: the graph's resize is then the identity)
SCENE_SIZES = ((128, 160), (112, 150), (128, 128))
TOLERANCE = 1e-4


def _replicate_prob_upsampling(model) -> None:
    """Each transposed conv of the probability branch copies its input over its 2 x 2 outputs."""
    with torch.no_grad():
        for layer in model.text_head.prob_branch:
            if isinstance(layer, torch.nn.ConvTranspose2d):
                mean = layer.weight.mean(dim=(2, 3), keepdim=True)
                layer.weight.copy_(mean.expand_as(layer.weight))


def _scenes():
    """RGB uint8 synthetic scenes (the project's generator, fixed seeds)."""
    return [
        render_scene(np.random.default_rng([18, i]), size)[0] for i, size in enumerate(SCENE_SIZES)
    ]


def _network_input(rgb, cfg):
    """The (3, h, w) float tensor FastTCMPredictor feeds the model (RGB config)."""
    aug = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
    image = aug.get_transform(rgb).apply_image(rgb)
    return torch.as_tensor(image.astype("float32").transpose(2, 0, 1))


@torch.no_grad()
def _prob_map(model, image):
    padded = model.preprocess_image([{"image": image}])
    features, _ = model.extract_features(padded.tensor)
    maps, _ = model.text_head(features)
    return maps["prob"][0, 0, : image.shape[1], : image.shape[2]].numpy()


def _threshold_in_a_gap(maps):
    """The midpoint of the widest gap between sorted map values in the 40-60 % band, and half
    that gap (the margin any other map must stay within to binarize the same)."""
    values = np.unique(np.concatenate([m.ravel() for m in maps]))
    low, high = int(len(values) * 0.4), int(len(values) * 0.6)
    i = low + int(np.argmax(np.diff(values[low : high + 1])))
    return float((values[i] + values[i + 1]) / 2), float((values[i + 1] - values[i]) / 2)


@pytest.fixture(scope="module")
def spotter(tmp_path_factory, load_tool):
    """The quick spotter with random weights (probability branch replicating), its weights file,
    and its export by tools/export_model.py (stdout captured)."""
    e = SimpleNamespace()
    tmp = tmp_path_factory.mktemp("onnx_spotter")
    model = build_quick_model(QUICK_SPOTTER).eval()
    _replicate_prob_upsampling(model)
    cfg = load_config(QUICK_SPOTTER)
    e.scenes = _scenes()
    e.inputs = [_network_input(rgb, cfg) for rgb in e.scenes]
    e.maps = [_prob_map(model, image) for image in e.inputs]
    e.threshold, e.margin = _threshold_in_a_gap(e.maps)
    e.weights = tmp / "model.pth"
    torch.save({"model": model.state_dict()}, e.weights)
    e.opts = ["MODEL.WEIGHTS", str(e.weights), "TEST.TEXT.MASK_THRESH", repr(e.threshold)]
    e.config_file = get_config_file(QUICK_SPOTTER)
    e.cfg = load_config(QUICK_SPOTTER, "MODEL.WEIGHTS", str(e.weights))
    e.cfg.TEST.TEXT.MASK_THRESH = e.threshold
    e.cfg.freeze()
    e.torch = FastTCMPredictor(e.cfg)  # the reference: weights loaded strictly from the file
    e.dir = tmp / "export"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        load_tool("export_model").main(
            ["--format", "onnx", "--config-file", e.config_file, "--output", str(e.dir)]
            + ["--opts"]
            + e.opts
        )
    e.stdout = stdout.getvalue()
    return e


@pytest.fixture(scope="module")
def dota(tmp_path_factory):
    """The quick rotated R-CNN with random weights and its export (export_onnx)."""
    e = SimpleNamespace()
    e.cfg = load_config(QUICK_RRCNN)
    e.model = build_quick_model(QUICK_RRCNN).eval()
    e.dir = tmp_path_factory.mktemp("onnx_dota") / "export"
    e.summary = export_onnx(e.model, e.cfg, str(e.dir))
    return e


# ------------------------------------------------------------------------------ export tool
def test_export_tool_prints_a_json_summary_of_a_complete_folder(spotter):
    summary = json.loads(spotter.stdout.strip().splitlines()[-1])
    graphs = (
        "detector",
        "recognizer_image",
        "recognizer_text",
        "recognizer_visual_decoder",
        "recognizer_cross_decoder",
        "recognizer_ctc",  # the quick spotter's confidences use its CTC head
    )
    assert summary["task"] == "spotter" and summary["format"] == "onnx"
    assert isinstance(summary["opset"], int) and summary["opset"] >= 17
    assert summary["files"] == sorted(["manifest.json"] + [f"{g}.onnx" for g in graphs])
    assert sorted(os.listdir(spotter.dir)) == summary["files"]  # no temporary file left
    assert not [p for p in os.listdir(spotter.dir.parent) if p.startswith(".export.")]
    assert summary["graphs"]["detector"] == {
        "file": "detector.onnx",
        "inputs": ["image"],
        "outputs": ["prob", "thresh"],
    }
    assert summary["graphs"]["recognizer_visual_decoder"]["outputs"] == ["logits"]
    assert summary["graphs"]["recognizer_ctc"]["outputs"] == ["log_probs"]
    assert summary["text_branch"] == "folded"
    assert summary["max_abs_diff"] and max(summary["max_abs_diff"].values()) < TOLERANCE
    manifest = read_manifest(str(spotter.dir))
    assert manifest["detector"]["postprocessor"]["mask_thresh"] == spotter.threshold
    assert manifest["recognizer"]["ctc_confidence_weight"] == 0.5
    assert manifest["input"]["resize_backend"] == "pil"  # the test resize the exporting config used
    # the image input: dynamic batch, dynamic height and width in multiples of 32
    shape = manifest["graphs"]["detector"]["inputs"][0]["shape"]
    assert shape[1] == 3 and all(isinstance(s, str) and s.startswith("32*") for s in shape[2:])


def test_export_refuses_incomplete_weights_and_writes_nothing(load_tool, tmp_path):
    model = build_quick_model(QUICK_SPOTTER)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("recognizer.")}
    weights = tmp_path / "partial.pth"
    torch.save({"model": state}, weights)
    out = tmp_path / "export"
    argv = ["--format", "onnx", "--config-file", get_config_file(QUICK_SPOTTER)]
    argv += ["--output", str(out), "--opts", "MODEL.WEIGHTS", str(weights)]
    with pytest.raises(IncompleteWeightsError, match="missing"):
        load_tool("export_model").main(argv)
    assert not out.exists()


def test_export_never_replaces_a_folder_that_is_not_an_export(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    model = build_quick_model(QUICK_SPOTTER)
    with pytest.raises(ValueError, match="holds no ONNX export"):
        export_onnx(model, load_config(QUICK_SPOTTER), str(folder))
    assert (folder / "notes.txt").read_text() == "keep me"
    with pytest.raises(ValueError, match="cannot be exported as task 'dota'"):
        export_onnx(model, load_config(QUICK_SPOTTER), str(tmp_path / "new"), task="dota")


def test_manifest_errors_name_the_file_and_the_problem(spotter, tmp_path):
    with pytest.raises(FileNotFoundError, match="no ONNX export manifest"):
        read_manifest(str(tmp_path))
    manifest = json.loads((spotter.dir / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "version": 99}))
    with pytest.raises(ValueError, match="'version' is 99"):
        read_manifest(str(tmp_path))
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))  # graphs not copied
    with pytest.raises(FileNotFoundError, match="graph 'detector' of the ONNX export is missing"):
        read_manifest(str(tmp_path))


# ------------------------------------------------------------------------------ detector maps
def test_detector_maps_match_pytorch_at_two_sizes_and_in_a_padded_batch(spotter):
    graph = OnnxGraph(str(spotter.dir / "detector.onnx"), threads=1)
    reference = DetectorGraph(spotter.torch.model).eval()
    generator = torch.Generator().manual_seed(0)
    for shape in ((1, 3, 64, 96), (2, 3, 160, 128)):  # two dynamic H x W, batch 1 and 2
        pixels = torch.rand(shape, generator=generator) * 255
        outputs = graph(image=pixels.numpy())
        with torch.no_grad():
            prob, thresh = reference(pixels)
        assert outputs["prob"].shape == tuple(prob.shape) == (shape[0], 1, *shape[2:])
        np.testing.assert_allclose(outputs["prob"], prob.numpy(), rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(outputs["thresh"], thresh.numpy(), rtol=0, atol=TOLERANCE)
    # padding with the pixel mean inside the graph = the model's zero padding after normalizing
    model, runtime = spotter.torch.model, load_onnx_model(str(spotter.dir))
    images = [img.clone() for img in spotter.inputs[:2]]  # different sizes, padded together
    batch = [{"image": img, "height": img.shape[1], "width": img.shape[2]} for img in images]
    # the detector's part of the spotters (no recognition)
    ours = OnnxTextDetector.inference(runtime, batch, return_maps=True)
    with torch.no_grad():
        theirs = FastTCMTextDetector.inference(model, batch, return_maps=True)
    for a, b in zip(ours, theirs):
        for name in ("prob", "thresh", "binary"):
            assert a["db_maps"][name].shape == b["db_maps"][name].shape
            diff = (a["db_maps"][name] - b["db_maps"][name]).abs().max()
            assert float(diff) < (TOLERANCE if name != "binary" else 50 * TOLERANCE)


def test_the_fasttcm_text_cache_is_folded_in_so_no_text_encoder_is_exported(spotter):
    model = onnx.load(str(spotter.dir / "detector.onnx"))
    names = [init.name for init in model.graph.initializer]
    assert any("bottom_up.visual" in n for n in names)  # parameter names survive the export
    assert not [n for n in names if "text_encoder" in n or "token_embedding" in n]
    assert not [n for n in names if "prompt_learner" in n or "language_prompt" in n]
    backbone = spotter.torch.model.backbone.bottom_up
    vocab, width = backbone.text_encoder.token_embedding.weight.shape
    elements = sum(int(np.prod(init.dims)) for init in model.graph.initializer)
    text_encoder = sum(p.numel() for p in backbone.text_encoder.parameters())
    # the whole detector graph holds fewer numbers than the text encoder alone
    assert elements < text_encoder, (elements, text_encoder)
    assert not [i for i in model.graph.initializer if tuple(i.dims) == (vocab, width)]
    # the image-conditioned parts stay: FastTCM's bimodal similarity matching runs per image
    assert any("bimodal_similarity_matching" in n for n in names)


# ------------------------------------------------------------------------------ recognizer
def test_exported_decoder_matches_pytorch_for_any_context_and_queries(spotter):
    recognizer = spotter.torch.model.recognizer
    decoder = SessionDecoder(OnnxGraph(str(spotter.dir / "recognizer_visual_decoder.onnx")))
    generator = torch.Generator().manual_seed(1)
    steps = recognizer.num_steps
    memory_length = (recognizer.input_size[0] // 8) * (recognizer.input_size[1] // 8) + 1
    cases = [  # (batch, context length, query slice, padding)
        (1, 1, slice(0, 1), False),  # the first autoregressive step
        (3, 5, slice(4, 5), False),  # a later step
        (2, 1, slice(0, steps), True),  # refinement after an early stop at slot 0
        (2, steps, slice(0, steps), True),  # refinement of a full prediction
    ]
    for batch, length, queries, padded in cases:
        tokens = torch.randint(
            0, recognizer.tokenizer.num_classes, (batch, length), generator=generator
        )
        tokens[:, 0] = recognizer.tokenizer.bos_id
        memory = torch.randn(
            batch, memory_length, recognizer.clip_model.embed_dim, generator=generator
        )
        if padded:
            content, query = causal_mask(length), cloze_query_mask(queries.stop, length)
            padding = torch.zeros(batch, length, dtype=torch.bool)
            padding[0, length // 2 + 1 :] = True
        else:
            content, query, padding = (
                causal_mask(length),
                causal_mask(steps)[queries, :length],
                None,
            )
        kwargs = dict(
            content_mask=content, query_mask=query, padding_mask=padding, query_slice=queries
        )
        got, _ = decoder(tokens, memory, **kwargs)
        with torch.no_grad():
            expected, _ = recognizer.visual_decoder(tokens, memory, **kwargs)
        assert got.shape == expected.shape
        assert float((got - expected).abs().max()) < TOLERANCE


def test_recognizer_logits_and_strings_match_pytorch(spotter):
    recognizer = spotter.torch.model.recognizer
    runtime = OnnxRecognizer(str(spotter.dir), read_manifest(str(spotter.dir)), threads=2)
    generator = torch.Generator().manual_seed(2)
    crops = torch.rand(6, 3, *recognizer.input_size, generator=generator) * 255
    logits = runtime.forward(crops)
    with torch.no_grad():
        expected = recognizer(recognizer.normalize(crops))
    assert logits.shape == expected.shape
    assert float((logits - expected).abs().max()) < TOLERANCE
    texts, scores = runtime.recognize(crops)
    expected_texts, expected_scores = recognizer.recognize(recognizer.normalize(crops))
    assert texts == expected_texts and len(set(texts)) > 1
    assert float((scores - expected_scores).abs().max()) < TOLERANCE
    torch.testing.assert_close(scores, expected_scores, rtol=1e-3, atol=0.0)  # tiny ones too
    # the confidences include the CTC head's support (weight 0.5): its graph gives the head's
    # log-probabilities, which the shared ctc_weighted_confidences turns into the same scores
    assert runtime.ctc_graph is not None and recognizer.ctc_confidence_weight == 0.5
    with torch.no_grad():
        memory = recognizer.clip_model.encode_image(recognizer.normalize(crops))
        head = recognizer.ctc_head(memory, recognizer.clip_model.visual.grid_size)
    graph = next(iter(runtime.ctc_graph(image_tokens=memory.numpy()).values()))
    assert graph.shape == tuple(head.shape) == (8, 6, recognizer.tokenizer.num_classes)
    assert float((torch.from_numpy(graph) - head).abs().max()) < TOLERANCE


def test_recognizer_backend_reads_word_crops_like_the_recognizer_architecture(spotter):
    recognizer = spotter.torch.model.recognizer
    architecture = FastTCMTextRecognizer(recognizer=recognizer, input_format="RGB").eval()
    runtime = OnnxTextRecognizer(str(spotter.dir))
    generator = torch.Generator().manual_seed(5)
    crops = [  # one at the input size, two resized (bicubic) by both
        (torch.rand(3, *recognizer.input_size, generator=generator) * 255).to(torch.uint8),
        (torch.rand(3, 20, 90, generator=generator) * 255).to(torch.uint8),
        (torch.rand(3, 48, 40, generator=generator) * 255).to(torch.uint8),
    ]
    inputs = [{"image": crop} for crop in crops]
    ours = runtime(inputs)
    with torch.no_grad():
        theirs = architecture(inputs)
    assert [r["text"] for r in ours] == [r["text"] for r in theirs]
    for a, b in zip(ours, theirs):
        assert abs(a["score"] - b["score"]) < TOLERANCE
        assert torch.allclose(a["char_scores"], b["char_scores"], atol=TOLERANCE)


# ------------------------------------------------------------------------------ end to end
def test_spotter_gives_the_pytorch_polygons_and_texts_on_synthetic_scenes(spotter):
    assert spotter.margin > 1e-7, "no usable gap in the random maps"
    runtime = load_onnx_model(str(spotter.dir), cfg=spotter.cfg, threads=1)
    assert isinstance(runtime, OnnxTextSpotter)
    count = 0
    for image, torch_map, (height, width) in zip(spotter.inputs, spotter.maps, SCENE_SIZES):
        padded, _ = pad_pixels([image], runtime.pixel_mean, runtime.size_divisibility)
        onnx_map = runtime.maps(padded)["prob"][0, 0, : image.shape[1], : image.shape[2]]
        assert float(np.abs(onnx_map - torch_map).max()) < spotter.margin
        inputs = [{"image": image, "height": height, "width": width}]
        ours = runtime(inputs)[0]["instances"]
        with torch.no_grad():
            theirs = spotter.torch.model(inputs)[0]["instances"]
        assert ours.image_size == theirs.image_size
        assert len(ours) == len(theirs)
        for a, b in zip(ours.polygons, theirs.polygons):
            np.testing.assert_array_equal(a, b)
        assert ours.texts == theirs.texts
        np.testing.assert_allclose(ours.scores.numpy(), theirs.scores.numpy(), atol=1e-6)
        np.testing.assert_allclose(
            ours.text_scores.numpy(), theirs.text_scores.numpy(), atol=TOLERANCE
        )
        np.testing.assert_array_equal(
            ours.pred_boxes.tensor.numpy(), theirs.pred_boxes.tensor.numpy()
        )
        count += len(ours)
    assert count >= 3, "the scenes must give polygons to compare"


def test_spotter_crop_variant_voting_is_shared_by_both_backends(spotter):
    """TEST.SPOTTER.CROP_VARIANTS / CROP_SHAPES run outside the graphs: the same voting code for
    both."""
    runtime = load_onnx_model(str(spotter.dir), threads=1)
    model = spotter.torch.model
    variants = parse_crop_variants([[0.1, 0.05, 0.1, 0.05, 1], [0.0, 0.0, 0.0, 0.0]])
    image, (height, width) = spotter.inputs[-1], SCENE_SIZES[-1]
    inputs = [{"image": image, "height": height, "width": width}]
    saved = model.crop_variants, model.crop_shapes
    assert runtime.crop_shapes == model.crop_shapes  # from the manifest
    try:
        model.crop_variants = runtime.crop_variants = variants
        model.crop_shapes = runtime.crop_shapes = ("rectangle", "band")
        ours = runtime(inputs)[0]["instances"]
        with torch.no_grad():
            theirs = model(inputs)[0]["instances"]
    finally:
        model.crop_variants, model.crop_shapes = saved
        runtime.crop_variants, runtime.crop_shapes = parse_crop_variants([]), ("rectangle",)
    assert len(ours) == len(theirs) > 0
    assert ours.texts == theirs.texts
    np.testing.assert_allclose(ours.text_scores.numpy(), theirs.text_scores.numpy(), atol=TOLERANCE)


def test_demo_onnxruntime_gives_the_pytorch_predictions(spotter, load_tool, tmp_path):
    import cv2

    demo = load_tool("demo")
    paths = []
    for i, rgb in enumerate(spotter.scenes[-1:]):  # 128 x 128: the fewest words
        paths.append(str(tmp_path / f"scene{i}.png"))
        assert cv2.imwrite(paths[-1], rgb[:, :, ::-1])
    common = ["--config-file", spotter.config_file, "--input", *paths]
    torch_run = demo.main(common + ["--output", str(tmp_path / "torch"), "--opts"] + spotter.opts)
    onnx_run = demo.main(
        common
        + [
            "--output",
            str(tmp_path / "onnx"),
            "--backend",
            "onnxruntime",
            "--onnx",
            str(spotter.dir),
        ]
        + ["--threads", "1", "--opts"]
        + spotter.opts
    )
    assert sum(len(r["predictions"]) for r in torch_run.values()) >= 3
    for path in paths:
        a, b = onnx_run[path], torch_run[path]
        assert a["status"] == b["status"] == "ok"
        assert [p["polygon"] for p in a["predictions"]] == [p["polygon"] for p in b["predictions"]]
        assert [p.get("text") for p in a["predictions"]] == [
            p.get("text") for p in b["predictions"]
        ]
    with pytest.raises(SystemExit, match="needs --onnx"):
        demo.main(common + ["--output", str(tmp_path / "x"), "--backend", "onnxruntime"])


def test_onnx_predictor_takes_bgr_images_like_the_pytorch_predictor(spotter):
    predictor = OnnxPredictor(str(spotter.dir), threads=1)  # settings from the manifest alone
    bgr = np.ascontiguousarray(spotter.scenes[-1][:, :, ::-1])
    ours, theirs = predictor(bgr)["instances"], spotter.torch(bgr)["instances"]
    assert ours.texts == theirs.texts and len(ours) == len(theirs)
    for a, b in zip(ours.polygons, theirs.polygons):
        np.testing.assert_array_equal(a, b)


def test_api_onnxruntime_backend_matches_the_torch_backend(spotter):
    api = pytest.importorskip("fasttcm.api")
    if "onnxruntime" not in api.available_backends():
        pytest.skip("the predictor API has no onnxruntime backend registered")
    opts = ["TEST.TEXT.MASK_THRESH", spotter.threshold]
    torch_spotter = api.TextSpotter(spotter.config_file, spotter.weights, opts=opts)
    onnx_spotter = api.TextSpotter(
        spotter.config_file, spotter.dir / "manifest.json", opts=opts, backend="onnxruntime"
    )
    for rgb in spotter.scenes[-1:]:
        a, b = onnx_spotter(rgb), torch_spotter(rgb)
        assert len(a) > 0
        assert [w.text for w in a] == [w.text for w in b]
        assert [w.polygon for w in a] == [w.polygon for w in b]


def test_sessions_take_a_thread_count(spotter):
    path = str(spotter.dir / "recognizer_text.onnx")
    assert OnnxGraph(path, threads=1).threads == 1
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        OnnxGraph(path, threads=0)
    with pytest.raises(ValueError, match="takes the inputs"):
        OnnxGraph(path)(ids=np.zeros((1, 16), dtype=np.int64))


# ------------------------------------------------------------------------------ DOTA
def test_dota_backbone_and_fpn_match_pytorch_at_two_sizes(dota):
    assert dota.summary["files"] == ["features.onnx", "heads.pth", "manifest.json"]
    assert dota.summary["text_branch"] == "folded"
    graph = OnnxGraph(str(dota.dir / "features.onnx"))
    names = list(dota.summary["graphs"]["features"]["outputs"])
    assert names == ["p2", "p3", "p4", "p5", "p6", "text_embeddings"]
    reference = FeatureGraph(dota.model, names[:-1], with_text=True).eval()
    generator = torch.Generator().manual_seed(3)
    for shape in ((1, 3, 96, 64), (2, 3, 64, 128)):
        pixels = torch.rand(shape, generator=generator) * 255
        outputs = graph(image=pixels.numpy())
        with torch.no_grad():
            expected = reference(pixels)
        for name, value in zip(names, expected):
            assert outputs[name].shape == tuple(value.shape)
            assert float(np.abs(outputs[name] - value.numpy()).max()) < TOLERANCE, name


def test_dota_detections_match_pytorch(dota):
    runtime = load_onnx_model(str(dota.dir), cfg=dota.cfg)
    image = torch.as_tensor(
        np.random.default_rng(4).integers(0, 256, (3, 160, 128)).astype("float32")
    )
    inputs = [{"image": image, "height": 200, "width": 150}]
    ours = runtime(inputs)[0]["instances"]
    with torch.no_grad():
        theirs = dota.model(inputs)[0]["instances"]
    assert len(ours) == len(theirs) > 0
    assert torch.equal(ours.pred_classes, theirs.pred_classes)
    assert float((ours.pred_boxes.tensor - theirs.pred_boxes.tensor).abs().max()) < 1e-3
    assert float((ours.scores - theirs.scores).abs().max()) < TOLERANCE
    with pytest.raises(ValueError, match="give the config"):
        load_onnx_model(str(dota.dir))
