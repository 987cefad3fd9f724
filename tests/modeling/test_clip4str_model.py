"""CLIP4STR recognizer: charsets, shapes, frozen layers, optimizer groups, CLIP weights,
meta-architecture."""

import glob
import logging
import os
import string

import pytest
import torch

from detectron2.config import get_cfg
from detectron2.modeling import build_model

from fasttcm import add_fasttcm_config
from fasttcm.modeling.recognition import (
    CharacterDecoder,
    CharsetTokenizer,
    build_clip4str_recognizer,
    load_clip4str_clip_weights,
)
from fasttcm.solver import build_param_groups, clip4str_param_groups
from fasttcm.structures.charset import CharsetAdapter, load_charset, preprocess_label
from tests.common import QUICK_RECOGNIZER, key_values, load_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# The recognizer quick schedule on 16x32 crops with 4 text layers (2 frozen). INPUT.FORMAT and the
# SOLVER keys the optimizer groups read keep the detectron2 defaults these tests were written with.
TINY_OVERRIDES = (
    "MODEL.RECOGNIZER.IMAGE_SIZE",
    (16, 32),
    "MODEL.RECOGNIZER.TEXT_LAYERS",
    4,
    "MODEL.RECOGNIZER.TEXT_FREEZE_LAYERS",
    2,
    "INPUT.FORMAT",
    "BGR",
    "SOLVER.BASE_LR",
    0.001,
    "SOLVER.WEIGHT_DECAY",
    0.0001,
)


def tiny_cfg(**overrides):
    """The tiny recognizer config, then ``MODEL.RECOGNIZER.<key> = value`` for each override."""
    recognizer = key_values("MODEL.RECOGNIZER", **overrides)
    return load_config(QUICK_RECOGNIZER, *TINY_OVERRIDES, *recognizer)


# --- charsets ---------------------------------------------------------------------------------
def test_shipped_charsets():
    full = load_charset("94_full")
    assert (
        full == string.digits + string.ascii_lowercase + string.ascii_uppercase + string.punctuation
    )
    assert load_charset("36_lowercase") == string.digits + string.ascii_lowercase
    with pytest.raises(FileNotFoundError, match="no_such_charset"):
        load_charset("no_such_charset")


def test_charset_file_validation(tmp_path):
    bad = tmp_path / "dup.txt"
    bad.write_text("abca\n")
    with pytest.raises(ValueError, match="repeats"):
        load_charset(str(bad))


def test_charset_adapter_and_label_preprocessing():
    assert CharsetAdapter(load_charset("36_lowercase"))("Hello, World-42!") == "helloworld42"
    assert CharsetAdapter(load_charset("94_full"))("Hello, World!") == "Hello,World!"
    adapter = CharsetAdapter(load_charset("94_full"))
    assert preprocess_label(" Caf\u00e9 au lait ", adapter, 25) == ("Cafeaulait", None)
    assert preprocess_label("x" * 26, adapter, 25) == (None, "too_long")
    # the length is checked before unsupported characters are removed (official order)
    assert preprocess_label("\u00e9" * 26, adapter, 25) == (None, "too_long")
    assert preprocess_label("\u65e5\u672c", adapter, 25) == (None, "empty")


def test_tokenizer_ids_and_greedy_decoding():
    tok = CharsetTokenizer(load_charset("94_full"))
    assert (tok.eos_id, tok.bos_id, tok.pad_id, tok.num_classes, len(tok)) == (0, 95, 96, 95, 97)
    ids = tok.encode(["ab", "c"])
    assert ids.tolist() == [[95, 11, 12, 0], [95, 13, 0, 96]]
    with pytest.raises(ValueError, match="not in the charset"):
        tok.encode(["a b"])
    probs = torch.full((2, 4, 95), 0.0)
    probs[0, 0, 11], probs[0, 1, 12], probs[0, 2, 0], probs[0, 3, 13] = 0.9, 0.8, 0.5, 1.0
    probs[1, :, 1] = 0.5  # "0000", no EOS predicted
    texts, char_scores, scores = tok.decode(probs)
    assert texts == ["ab", "0000"]
    torch.testing.assert_close(char_scores[0], torch.tensor([0.9, 0.8, 0.5]))
    torch.testing.assert_close(scores, torch.tensor([0.9 * 0.8 * 0.5, 0.5**4]))


# --- architecture -------------------------------------------------------------------------------
def test_decoder_size_matches_the_official_count():
    decoder = CharacterDecoder(embed_dim=512, num_tokens=97, num_classes=95, num_heads=8)
    assert (
        sum(p.numel() for p in decoder.parameters()) == 4_317_791
    )  # docs/recognizer.md, "Model sizes"


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_clip4str_recognizer(tiny_cfg())


def test_training_logits_and_memory_shapes(model):
    images = torch.randn(2, 3, 16, 32)
    memory = model.clip_model.encode_image(images)
    assert memory.shape == (2, 1 + 2 * 4, 32)  # class token + (16/8) x (32/8) patches, width D
    tokens = model.tokenizer.encode(["ab", "xyz"])
    logits, features = model.visual_decoder(tokens[:, :-1], memory)
    assert logits.shape == (2, 4, 95) and features.shape == (2, 4, 32)
    cross = model.text_memory(memory, logits)
    assert cross.shape == (2, 9 + 16, 32)  # image tokens + 16 text tokens
    torch.testing.assert_close(cross[:, :9], memory)  # image tokens first (detached copy)
    model.eval()
    with pytest.raises(ValueError, match="resize the crops"):
        model.clip_model.encode_image(torch.randn(1, 3, 32, 32))
    model.train()


def test_frozen_text_layers_get_no_gradient_and_the_others_do(model):
    model.zero_grad(set_to_none=True)
    losses = model.recognition_losses(torch.randn(3, 3, 16, 32), ["Hello", "a1", "xyz!"])
    assert set(losses) == {"loss_visual", "loss_cross_modal"}
    sum(losses.values()).backward()
    clip = model.clip_model
    frozen = [
        clip.token_embedding.weight,
        clip.positional_embedding,
        *clip.transformer.resblocks[:2].parameters(),
    ]
    assert all(not p.requires_grad and p.grad is None for p in frozen)
    trained = [
        *clip.transformer.resblocks[2:].parameters(),
        *clip.ln_final.parameters(),
        clip.text_projection,
    ]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trained)
    assert clip.visual.conv1.weight.grad.abs().sum() > 0
    for decoder in (model.visual_decoder, model.cross_decoder):
        assert decoder.head.weight.grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)


def test_cross_modal_loss_sends_no_gradient_into_the_image_encoder(model):
    model.zero_grad(set_to_none=True)
    losses = model.recognition_losses(torch.randn(2, 3, 16, 32), ["abc", "de"])
    losses["loss_cross_modal"].backward()
    assert all(p.grad is None for p in model.clip_model.visual.parameters())
    assert model.cross_decoder.head.weight.grad is not None
    model.zero_grad(set_to_none=True)


def test_frozen_text_blocks_stay_in_eval_mode(model):
    model.train()
    assert not model.clip_model.transformer.resblocks[0].training
    assert model.clip_model.transformer.resblocks[3].training


def test_unusable_labels_are_dropped_not_fatal(model):
    losses = model.recognition_losses(torch.randn(3, 3, 16, 32), ["\u65e5\u672c", "x" * 30, "ok"])
    assert torch.isfinite(sum(losses.values()))
    nothing = model.recognition_losses(torch.randn(1, 3, 16, 32), ["\u65e5\u672c"])
    assert float(sum(nothing.values()).detach()) == 0.0


def test_optimizer_groups_follow_the_official_recipe(model):
    groups = clip4str_param_groups(model, base_lr=1e-4, weight_decay=0.2, decoder_lr_factor=19.0)
    assert len(groups) == 4
    by_param = {id(p): g for g in groups for p in g["params"]}
    dec = model.visual_decoder
    assert by_param[id(dec.pos_queries)]["weight_decay"] == 0.0
    assert by_param[id(dec.text_embed.embedding.weight)]["weight_decay"] == 0.0
    assert by_param[id(dec.head.weight)]["weight_decay"] == 0.2
    assert by_param[id(dec.head.bias)]["weight_decay"] == 0.0
    assert by_param[id(dec.head.weight)]["lr"] == pytest.approx(19e-4)
    assert by_param[id(model.clip_model.visual.conv1.weight)]["lr"] == pytest.approx(1e-4)
    assert by_param[id(model.clip_model.visual.conv1.weight)]["betas"] == (0.9, 0.98)
    assert id(model.clip_model.token_embedding.weight) not in by_param  # frozen
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(by_param) == len(trainable)


# --- CLIP weights -------------------------------------------------------------------------------
def test_clip_weights_are_loaded_with_grid_resize_and_text_slicing(tmp_path, model):
    reference = build_clip4str_recognizer(
        tiny_cfg(IMAGE_SIZE=(32, 32), TEXT_MAX_LENGTH=77)
    ).clip_model
    state = {k: v.clone() for k, v in reference.state_dict().items()}
    state["logit_scale"] = torch.tensor(4.6)
    path = tmp_path / "open_clip_vit.pt"
    torch.save({"state_dict": {"module." + k: v for k, v in state.items()}}, path)

    target = build_clip4str_recognizer(
        tiny_cfg(TEXT_MAX_LENGTH=20)
    ).clip_model  # 2x4 grid, 20 text rows
    result = load_clip4str_clip_weights(str(path), target)
    assert result.missing_keys == []
    loaded = target.state_dict()
    torch.testing.assert_close(loaded["visual.conv1.weight"], state["visual.conv1.weight"])
    torch.testing.assert_close(
        loaded["transformer.resblocks.3.mlp.c_fc.weight"],
        state["transformer.resblocks.3.mlp.c_fc.weight"],
    )
    torch.testing.assert_close(loaded["positional_embedding"], state["positional_embedding"][:20])
    assert loaded["visual.positional_embedding"].shape == (1 + 2 * 4, 32)  # 4x4 grid resized to 2x4
    torch.testing.assert_close(
        loaded["visual.positional_embedding"][0], state["visual.positional_embedding"][0]
    )


def test_clip_weights_with_wrong_shapes_fail_naming_the_file(tmp_path):
    other = build_clip4str_recognizer(tiny_cfg(VISION_WIDTH=64, EMBED_DIM=64)).clip_model
    path = tmp_path / "wide.pt"
    torch.save(other.state_dict(), path)
    target = build_clip4str_recognizer(tiny_cfg()).clip_model
    with pytest.raises(ValueError, match="wide.pt"):
        load_clip4str_clip_weights(str(path), target)


# --- meta-architecture and configs ---------------------------------------------------------------
def test_meta_architecture_training_and_inference():
    cfg = tiny_cfg()
    cfg.MODEL.META_ARCHITECTURE = "FastTCMTextRecognizer"
    cfg.MODEL.DEVICE = "cpu"
    torch.manual_seed(0)
    model = build_model(cfg)
    crops = [
        torch.randint(0, 256, (3, 16, 32), dtype=torch.uint8),
        torch.randint(0, 256, (3, 20, 50), dtype=torch.uint8),
    ]
    losses = model([{"image": crops[0], "text": "Sale!"}, {"image": crops[1], "text": "42"}])
    assert set(losses) == {"loss_visual", "loss_cross_modal"} and all(
        torch.isfinite(v) for v in losses.values()
    )
    model.eval()
    outputs = model([{"image": c} for c in crops])
    assert [sorted(o) for o in outputs] == [["char_scores", "score", "text"]] * 2
    for out in outputs:
        assert isinstance(out["text"], str) and 0.0 <= out["score"] <= 1.0
        assert out["char_scores"].numel() in (len(out["text"]), len(out["text"]) + 1)
        assert out["score"] == pytest.approx(float(out["char_scores"].prod()), rel=1e-5)
    with pytest.raises(ValueError, match="non-empty"):
        model([{"image": torch.zeros(3, 0, 10, dtype=torch.uint8), "image_id": "broken"}])
    groups = build_param_groups(model, cfg)
    assert {g["lr"] for g in groups} == {cfg.SOLVER.BASE_LR, cfg.SOLVER.BASE_LR * 19.0}


@pytest.mark.parametrize(
    "config",
    sorted(glob.glob(os.path.join(REPO, "projects/FastTCM/configs/TextRecognition/*.yaml")))
    + [os.path.join(REPO, "projects/FastTCM/configs/quick_schedules/clip4str_instant_test.yaml")],
    ids=os.path.basename,
)
def test_recognition_configs_load(config):
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    cfg.merge_from_file(config)
    assert cfg.MODEL.META_ARCHITECTURE == "FastTCMTextRecognizer"
    assert cfg.INPUT.DATASET_MAPPER_NAME == "str"
    h, w = cfg.MODEL.RECOGNIZER.IMAGE_SIZE
    ph, pw = cfg.MODEL.RECOGNIZER.PATCH_SIZE
    assert h % ph == 0 and w % pw == 0


# --- convolutional patch stem (from-scratch towers) ----------------------------------------------
def test_conv_patch_stem_replaces_conv1_with_the_same_token_grid():
    torch.manual_seed(0)
    linear = build_clip4str_recognizer(tiny_cfg())
    conv = build_clip4str_recognizer(tiny_cfg(PATCH_EMBED="conv", PATCH_SIZE=(8, 4)))
    images = torch.randn(2, 3, 16, 32)
    assert linear.clip_model.encode_image(images).shape == (2, 1 + 2 * 4, 32)
    assert conv.clip_model.encode_image(images).shape == (2, 1 + 2 * 8, 32)  # 16/8 x 32/4 tokens
    strides = [
        m.stride for m in conv.clip_model.visual.conv1.modules() if isinstance(m, torch.nn.Conv2d)
    ]
    assert strides == [
        (2, 2),
        (2, 2),
        (2, 1),
        (1, 1),
    ]  # halve both axes twice, then height only; 1x1 proj
    losses = conv.recognition_losses(images, ["ab", "cd"])
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in conv.clip_model.visual.conv1.parameters())


def test_full_height_patches_give_one_token_per_column_and_a_ctc_step_each():
    """PATCH_SIZE (H, 4): a 1 x W/4 grid, the stem halving only the height at the end
    (CPU config)."""
    torch.manual_seed(0)
    model = build_clip4str_recognizer(
        tiny_cfg(PATCH_EMBED="conv", PATCH_SIZE=(16, 4), CTC_LOSS_WEIGHT=1.0)
    )
    images = torch.randn(2, 3, 16, 32)
    assert model.clip_model.visual.grid_size == (1, 8)
    tokens = model.clip_model.encode_image(images)
    assert tokens.shape == (2, 1 + 8, 32)
    strides = [
        m.stride for m in model.clip_model.visual.conv1.modules() if isinstance(m, torch.nn.Conv2d)
    ]
    assert strides == [(2, 2), (2, 2), (2, 1), (2, 1), (1, 1)]
    assert model.ctc_head(tokens, (1, 8)).shape == (
        8,
        2,
        model.tokenizer.num_classes,
    )  # 8 time steps
    losses = model.recognition_losses(images, ["ab", "cde"])
    assert set(losses) == {"loss_visual", "loss_cross_modal", "loss_ctc"}
    assert all(torch.isfinite(v) for v in losses.values())


def test_conv_patch_stem_rejects_clip_weights_and_odd_patches(tmp_path):
    from fasttcm.modeling.clip.conv_stem import ConvPatchStem

    with pytest.raises(ValueError, match="power of two"):
        ConvPatchStem((6, 8), 32)
    with pytest.raises(ValueError, match="linear' or 'conv"):
        build_clip4str_recognizer(tiny_cfg(PATCH_EMBED="resnet"))
    with pytest.raises(ValueError, match="PATCH_EMBED"):
        build_clip4str_recognizer(
            tiny_cfg(PATCH_EMBED="conv", CLIP_WEIGHTS=str(tmp_path / "ViT-B-16.pt"))
        )


# --- auxiliary CTC on the image-token columns (from-scratch towers) ------------------------------
def test_column_ctc_head_reads_columns_left_to_right_and_scores_known_alignments():
    from fasttcm.modeling.recognition.ctc_aux import ColumnCTCHead

    torch.manual_seed(0)
    head = ColumnCTCHead(embed_dim=8, num_classes=4)
    tokens = torch.randn(2, 1 + 2 * 3, 8)  # class token + 2x3 grid
    log_probs = head(tokens, (2, 3))
    assert log_probs.shape == (3, 2, 4)  # (columns, batch, blank + 3 chars)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(3, 2))
    # column c is the mean of rows 0 and 1 at that column (row-major patches after the class token)
    columns = tokens[:, 1:].reshape(2, 2, 3, 8).mean(1)
    torch.testing.assert_close(
        log_probs, head.classifier(head.norm(columns)).log_softmax(-1).transpose(0, 1)
    )
    # a one-character label over 3 steps: sum over the 6 alignments (b=blank): cbb, bcb, bbc, ccb,
    # bcc, ccc
    p = log_probs[:, 0].exp()
    c, b = 2, 0
    paths = [(c, b, b), (b, c, b), (b, b, c), (c, c, b), (b, c, c), (c, c, c)]
    expected = -torch.log(sum(p[0, x] * p[1, y] * p[2, z] for x, y, z in paths))
    targets = torch.tensor([[c, 0, 0], [1, 3, 0]])
    both = head.loss(tokens, (2, 3), targets)
    second = torch.nn.functional.ctc_loss(
        log_probs[:, 1:],
        torch.tensor([[1, 3]]),
        torch.tensor([3]),
        torch.tensor([2]),
        reduction="sum",
    )
    torch.testing.assert_close(both, (expected + second) / 3)  # per target character
    # a label longer than the columns has no alignment: it adds nothing instead of inf
    assert torch.isfinite(head.loss(tokens, (2, 3), torch.tensor([[1, 2, 3, 1], [1, 0, 0, 0]])))


def test_ctc_loss_is_reported_and_trains_the_image_encoder():
    torch.manual_seed(0)
    model = build_clip4str_recognizer(
        tiny_cfg(PATCH_EMBED="conv", PATCH_SIZE=(8, 4), CTC_LOSS_WEIGHT=0.5)
    )
    losses = model.recognition_losses(torch.randn(2, 3, 16, 32), ["ab", "Sale!"])
    assert set(losses) == {"loss_visual", "loss_cross_modal", "loss_ctc"} == set(model.loss_names)
    losses["loss_ctc"].backward()
    assert model.clip_model.visual.conv1.proj.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.visual_decoder.parameters())
    official = build_clip4str_recognizer(tiny_cfg())
    assert official.ctc_head is None  # official recipe: no CTC head
    assert official.loss_names == ("loss_visual", "loss_cross_modal")
    assert set(official.recognition_losses(torch.randn(1, 3, 16, 32), ["ab"])) == set(
        official.loss_names
    )


def _brute_force_ctc_probability(probs: torch.Tensor, target) -> float:
    """Sum over every path of T classes (blank 0) that collapses to `target`."""
    import itertools

    steps, classes = probs.shape
    total = 0.0
    for path in itertools.product(range(classes), repeat=steps):
        collapsed = [c for i, c in enumerate(path) if c != 0 and (i == 0 or path[i - 1] != c)]
        if collapsed == list(target):
            total += float(torch.prod(probs[torch.arange(steps), torch.tensor(path)]))
    return total


def test_ctc_string_probability_sums_every_alignment():
    from fasttcm.modeling.recognition.ctc_aux import ctc_string_probabilities

    torch.manual_seed(1)
    log_probs = torch.randn(4, 5, 3).log_softmax(-1)  # T = 4 steps, 5 strings, blank + 2 chars
    strings = [(1,), (1, 2), (1, 1), (), (2, 1, 2, 1, 2)]  # the last needs 5 steps: impossible
    targets = torch.tensor([list(t) + [0] * (5 - len(t)) for t in strings])
    lengths = torch.tensor([len(t) for t in strings])
    got = ctc_string_probabilities(log_probs, targets, lengths)
    probs = log_probs.exp()
    expected = [_brute_force_ctc_probability(probs[:, b], t) for b, t in enumerate(strings)]
    torch.testing.assert_close(got, torch.tensor(expected), rtol=1e-5, atol=1e-7)
    assert got[3] > 0 and got[4] == 0  # the empty string is all blanks; "21212" fits no 4 steps
    assert ctc_string_probabilities(log_probs[:, :0], targets[:0], lengths[:0]).shape == (0,)


def test_ctc_weighted_confidence_reads_the_string_up_to_eos():
    from fasttcm.modeling.recognition.ctc_aux import (
        ctc_string_probabilities,
        ctc_weighted_confidences,
    )
    from fasttcm.modeling.recognition.tokenizer import CharsetTokenizer

    torch.manual_seed(2)
    tokenizer = CharsetTokenizer("ab")  # ids: EOS 0, a 1, b 2
    log_probs = torch.randn(4, 2, 3).log_softmax(-1)
    # decoder probabilities over (EOS, a, b): string 0 reads "ab" then EOS, string 1 "b" then EOS
    probs = torch.full((2, 4, 3), 0.1)
    for b, ids in enumerate([(1, 2, 0, 1), (2, 0, 2, 2)]):
        probs[b, torch.arange(4), torch.tensor(ids)] = 0.8
    texts, _, scores = tokenizer.decode(probs)
    _, ids, lengths = tokenizer.greedy_ids(probs)
    assert texts == ["ab", "b"] and lengths.tolist() == [2, 1]
    got = ctc_weighted_confidences(scores, ids, lengths, log_probs, weight=0.5)
    support = ctc_string_probabilities(
        log_probs, torch.tensor([[1, 2], [2, 0]]), torch.tensor([2, 1])
    )
    torch.testing.assert_close(got, scores * support.sqrt())
    assert torch.equal(ctc_weighted_confidences(scores, ids, lengths, log_probs, 0.0), scores)


def test_ctc_confidence_multiplies_the_decoder_confidence_and_needs_the_head():
    from fasttcm.modeling.recognition.ctc_aux import ctc_string_probabilities

    torch.manual_seed(0)
    # 8 CTC columns: every reading of at most 3 characters has alignments
    settings = dict(PATCH_EMBED="conv", PATCH_SIZE=(8, 4), CTC_LOSS_WEIGHT=1.0, REFINE_ITERS=0)
    settings["MAX_LABEL_LENGTH"] = 3
    plain = build_clip4str_recognizer(tiny_cfg(**settings)).eval()
    weighted = build_clip4str_recognizer(tiny_cfg(CTC_CONFIDENCE_WEIGHT=0.5, **settings)).eval()
    weighted.load_state_dict(plain.state_dict())
    images = torch.randn(3, 3, 16, 32)
    texts, scores = plain.recognize(images)
    weighted_texts, weighted_scores = weighted.recognize(images)
    assert weighted_texts == texts  # the reading is the decoder's; only its confidence changes
    with torch.no_grad():
        memory = plain.clip_model.encode_image(images)
        log_probs = plain.ctc_head(memory, plain.clip_model.visual.grid_size)
    # the string's probability under the head (checked against enumeration above), by its ids
    ids = [plain.tokenizer.encode([text])[0, 1 : 1 + len(text)] for text in texts]
    targets = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True)
    lengths = torch.tensor([len(text) for text in texts])
    support = ctc_string_probabilities(log_probs, targets, lengths)
    assert ((support > 0) & (support < 1)).all()
    torch.testing.assert_close(weighted_scores, scores * support.sqrt(), rtol=1e-4, atol=1e-8)
    with pytest.raises(ValueError, match="CTC_LOSS_WEIGHT"):
        build_clip4str_recognizer(tiny_cfg(CTC_CONFIDENCE_WEIGHT=0.5))
    with pytest.raises(ValueError, match="ctc_confidence_weight must be >= 0"):
        build_clip4str_recognizer(tiny_cfg(CTC_CONFIDENCE_WEIGHT=-1.0, **settings))


def test_refinement_without_random_orders_is_warned_about(caplog):
    """perm_num <= 2 trains only the canonical / reverse contexts; refinement then reads an
    unseen one."""
    with caplog.at_level(logging.WARNING, logger="fasttcm.modeling.recognition.clip4str"):
        build_clip4str_recognizer(tiny_cfg(PERM_NUM=2, REFINE_ITERS=1))
    assert any("REFINE_ITERS 0" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fasttcm.modeling.recognition.clip4str"):
        build_clip4str_recognizer(tiny_cfg(PERM_NUM=2, REFINE_ITERS=0))
        build_clip4str_recognizer(tiny_cfg(PERM_NUM=6, REFINE_ITERS=1))
    assert not any("REFINE_ITERS 0" in r.getMessage() for r in caplog.records)


def test_cpu_spotter_config_uses_the_cpu_recognizer_settings():
    """tools/compose_spotter_weights.py joins the two CPU checkpoints: their recognizers must
    match."""

    def recognizer(path):
        cfg = get_cfg()
        add_fasttcm_config(cfg)
        cfg.merge_from_file(os.path.join(REPO, "projects/FastTCM/configs", path))
        return cfg.MODEL.RECOGNIZER

    alone = recognizer("TextRecognition/clip4str_tiny_synthetic_cpu.yaml")
    in_spotter = recognizer("TextSpotting/fasttcm_cr50_fpn_spotter_synthetic_cpu.yaml")
    # how the spotter scores readings does not change the weights
    inference_only = {"CTC_CONFIDENCE_WEIGHT"}
    differ = {k: (v, in_spotter[k]) for k, v in alone.items() if in_spotter[k] != v}
    assert set(differ) <= inference_only, differ
    assert in_spotter.CTC_CONFIDENCE_WEIGHT > 0 and in_spotter.CTC_LOSS_WEIGHT > 0
