"""CLIP4STR inference: greedy autoregressive decoding, cloze refinement, dual predict-and-refine
order."""

import pytest
import torch

from fasttcm.modeling.recognition import build_clip4str_recognizer
from fasttcm.modeling.recognition.decoding import (
    autoregressive_decode,
    causal_mask,
    cloze_query_mask,
    refine_decode,
)
from tests.common import QUICK_RECOGNIZER, key_values, load_config


def tiny_cfg(**overrides):
    """The recognizer quick schedule on 16x32 crops, then ``MODEL.RECOGNIZER.<key> = value``."""
    return load_config(
        QUICK_RECOGNIZER,
        "MODEL.RECOGNIZER.IMAGE_SIZE",
        (16, 32),
        *key_values("MODEL.RECOGNIZER", **overrides),
    )


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build_clip4str_recognizer(tiny_cfg()).eval()
    # Spread the head's logits so that greedy decoding produces varied, non-trivial strings.
    with torch.no_grad():
        for decoder in (m.visual_decoder, m.cross_decoder):
            decoder.head.weight.mul_(50.0)
    return m


@pytest.fixture(scope="module")
def images():
    return torch.randn(3, 3, 16, 32, generator=torch.Generator().manual_seed(1))


def _ids(m):
    return dict(bos_id=m.tokenizer.bos_id, eos_id=m.tokenizer.eos_id)


def test_autoregressive_decoding_equals_one_teacher_forced_pass(model, images):
    """Step-by-step greedy decoding = one causal pass over its own predictions (independent
    check)."""
    memory = model.clip_model.encode_image(images)
    steps = model.num_steps
    logits = autoregressive_decode(
        model.visual_decoder,
        memory,
        steps,
        pad_id=model.tokenizer.pad_id,
        stop_at_eos=False,
        **_ids(model),
    )
    assert logits.shape == (3, steps, model.tokenizer.num_classes)
    context = torch.cat(
        [torch.full((3, 1), model.tokenizer.bos_id), logits[:, :-1].argmax(-1)], dim=1
    )
    mask = causal_mask(steps)
    full, _ = model.visual_decoder(context, memory, content_mask=mask, query_mask=mask)
    torch.testing.assert_close(full, logits, atol=1e-4, rtol=1e-4)


def test_autoregressive_decoding_stops_once_every_sequence_has_eos(model, images):
    memory = model.clip_model.encode_image(images)
    decoder = model.visual_decoder
    original = decoder.head.bias.clone()
    try:
        with torch.no_grad():
            decoder.head.bias.zero_()
            decoder.head.bias[model.tokenizer.eos_id] = 1e4  # EOS everywhere
        logits = autoregressive_decode(
            decoder, memory, 26, pad_id=model.tokenizer.pad_id, **_ids(model)
        )
        assert logits.shape[1] == 1
        no_stop = autoregressive_decode(
            decoder, memory, 26, pad_id=model.tokenizer.pad_id, stop_at_eos=False, **_ids(model)
        )
        assert no_stop.shape[1] == 26
    finally:
        with torch.no_grad():
            decoder.head.bias.copy_(original)


def test_refinement_uses_the_cloze_mask_and_masks_after_eos(model, images):
    memory = model.clip_model.encode_image(images)
    previous = torch.randn(
        3, 5, model.tokenizer.num_classes, generator=torch.Generator().manual_seed(2)
    )
    previous[0, 2, model.tokenizer.eos_id] = (
        1e3  # sequence 0: EOS in slot 2 -> context position 3 on masked
    )
    refined = refine_decode(model.visual_decoder, memory, previous, 26, **_ids(model))
    assert refined.shape == (3, 26, model.tokenizer.num_classes)
    context = torch.cat(
        [torch.full((3, 1), model.tokenizer.bos_id), previous[:, :-1].argmax(-1)], dim=1
    )
    padding = torch.zeros(3, 5, dtype=torch.bool)
    padding[0, 3:] = True
    expected, _ = model.visual_decoder(
        context,
        memory,
        content_mask=causal_mask(5),
        query_mask=cloze_query_mask(26, 5),
        padding_mask=padding,
        query_slice=slice(0, 26),
    )
    torch.testing.assert_close(refined, expected)
    # tokens after the first EOS do not matter
    changed = previous.clone()
    changed[0, 3:] = torch.randn_like(changed[0, 3:])
    again = refine_decode(model.visual_decoder, memory, changed, 26, **_ids(model))
    torch.testing.assert_close(again[0], refined[0])


def _manual_predict(model, images, refine_iters):
    """The official VL4STR.forward order, spelled out with the building blocks."""
    ids = _ids(model)
    pad = model.tokenizer.pad_id
    memory = model.clip_model.encode_image(images)
    logits_v = autoregressive_decode(
        model.visual_decoder, memory, 26, pad_id=pad, stop_at_eos=True, **ids
    )
    logits_c = autoregressive_decode(
        model.cross_decoder,
        model.text_memory(memory, logits_v),
        logits_v.shape[1],
        pad_id=pad,
        stop_at_eos=False,
        **ids,
    )
    for _ in range(refine_iters):
        logits_v = refine_decode(model.visual_decoder, memory, logits_v, 26, **ids)
        logits_c = refine_decode(
            model.cross_decoder, model.text_memory(memory, logits_v), logits_c, 26, **ids
        )
    return logits_c


def test_zero_refinement_iterations_give_the_autoregressive_cross_modal_output(model, images):
    model.refine_iters = 0
    try:
        out = model(images)
    finally:
        model.refine_iters = 1
    torch.testing.assert_close(out, _manual_predict(model, images, 0))
    assert out.shape[1] <= 26


def test_predict_and_refine_order_and_output_shape(model, images):
    calls = []
    original = model.clip_model.encode_text
    model.clip_model.encode_text = lambda ids: calls.append(ids.shape) or original(ids)
    try:
        out = model(images)
    finally:
        model.clip_model.encode_text = original
    assert out.shape == (3, 26, model.tokenizer.num_classes)  # logits (B, 26, 95) after refinement
    assert calls == [(3, 16), (3, 16)]  # the text encoder runs twice, on 16 BPE tokens
    torch.testing.assert_close(out, _manual_predict(model, images, 1))


def test_recognize_returns_strings_and_confidences(model, images):
    texts, scores = model.recognize(images)
    assert len(texts) == 3 and scores.shape == (3,)
    assert all(set(t) <= set(model.charset) for t in texts)
    assert ((scores >= 0) & (scores <= 1)).all()
    probs = model(images).softmax(-1)
    _, char_scores, expected = model.tokenizer.decode(probs)
    torch.testing.assert_close(scores, expected)
    empty_texts, empty_scores = model.recognize(images[:0])
    assert empty_texts == [] and empty_scores.shape == (0,)
