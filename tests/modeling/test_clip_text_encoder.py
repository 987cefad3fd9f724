"""CLIPTextContextEncoder against open_clip's CLIP.encode_text on the same (tiny) weights."""

import pytest
import torch
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

from fasttcm.modeling.clip import CLIPTextContextEncoder, tokenize_prompts


@pytest.fixture(scope="module")
def clip_and_encoder():
    torch.manual_seed(0)
    clip = CLIP(
        64,
        CLIPVisionCfg(layers=(1, 1, 1, 1), width=8, image_size=224, head_width=32),
        CLIPTextCfg(width=32, heads=2, layers=2),
        quick_gelu=True,
    ).eval()
    encoder = CLIPTextContextEncoder(width=32, layers=2, heads=2, embed_dim=64).eval()
    text_keys = {
        k: v for k, v in clip.state_dict().items() if not k.startswith(("visual.", "logit_"))
    }
    encoder.load_state_dict(text_keys)
    return clip, encoder


def _open_clip_tokens(prompts):
    ids = tokenize_prompts(prompts)
    return torch.nn.functional.pad(ids, (0, 77 - ids.shape[1]))  # open_clip pads to 77


def test_without_context_equals_encode_text(clip_and_encoder):
    clip, encoder = clip_and_encoder
    prompts = ["the pixels of many arbitrary-shape text instances.", "a plane", "harbor"]
    ids = tokenize_prompts(prompts)
    with torch.no_grad():
        ours = encoder(ids, torch.zeros(1, 0, 32))
        reference = clip.encode_text(_open_clip_tokens(prompts))
    assert ours.shape == (1, 3, 64)
    torch.testing.assert_close(ours[0], reference, rtol=1e-4, atol=1e-5)


def test_context_vectors_act_as_tokens_after_sos(clip_and_encoder):
    """Context equal to the embeddings of 'a photo of' == encoding 'a photo of <prompt>'."""
    clip, encoder = clip_and_encoder
    words = tokenize_prompts(["a photo of"])[0, 1:4]  # 3 BPE tokens between SOS and EOS
    context = encoder.token_embedding.weight[words][None]  # (1, 3, 32)
    with torch.no_grad():
        ours = encoder(tokenize_prompts(["text", "a car"]), context)
        reference = clip.encode_text(_open_clip_tokens(["a photo of text", "a photo of a car"]))
    torch.testing.assert_close(ours[0], reference, rtol=1e-4, atol=1e-5)


def test_conditional_cue_is_added_to_every_position(clip_and_encoder):
    """Adding cc everywhere == shifting the whole token-embedding table by cc (context included)."""
    clip, encoder = clip_and_encoder
    cue = torch.randn(2, 32)
    words = tokenize_prompts(["a photo of"])[0, 1:4]
    context = encoder.token_embedding.weight[words][None]
    ids = tokenize_prompts(["text"])
    with torch.no_grad():
        ours = encoder(ids, context, cue)
        original = clip.token_embedding.weight.clone()
        for b in range(2):
            clip.token_embedding.weight.copy_(original + cue[b])
            torch.testing.assert_close(
                ours[b],
                clip.encode_text(_open_clip_tokens(["a photo of text"])),
                rtol=1e-4,
                atol=1e-5,
            )
        clip.token_embedding.weight.copy_(original)
    assert ours.shape == (2, 1, 64)


def test_frozen_but_differentiable_wrt_context_and_cue():
    torch.manual_seed(0)
    encoder = CLIPTextContextEncoder(width=32, layers=2, heads=2, embed_dim=64)
    assert not any(p.requires_grad for p in encoder.parameters())
    context = torch.randn(1, 4, 32, requires_grad=True)
    cue = torch.randn(3, 32, requires_grad=True)
    out = encoder(tokenize_prompts(["text"]), context, cue)
    assert out.shape == (3, 1, 64)
    out.square().sum().backward()
    assert context.grad.abs().sum() > 0 and cue.grad.abs().sum() > 0
    assert all(p.grad is None for p in encoder.parameters())


def test_random_init_follows_clip():
    torch.manual_seed(0)
    encoder = CLIPTextContextEncoder(width=512, layers=1, heads=8, embed_dim=1024, vocab_size=1000)
    assert encoder.positional_embedding.std().item() == pytest.approx(0.01, rel=0.05)
    assert encoder.text_projection.std().item() == pytest.approx(512**-0.5, rel=0.05)
    assert encoder.token_embedding.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert (
        torch.isfinite(encoder.positional_embedding).all()
        and torch.isfinite(encoder.text_projection).all()
    )


def test_trailing_padding_does_not_change_the_output(clip_and_encoder):
    _, encoder = clip_and_encoder
    ids = tokenize_prompts(["a plane"])
    padded = torch.nn.functional.pad(ids, (0, 5))
    context = torch.randn(1, 4, 32)
    with torch.no_grad():
        torch.testing.assert_close(encoder(ids, context), encoder(padded, context))


def test_too_long_prompt_is_an_error():
    encoder = CLIPTextContextEncoder(width=32, layers=1, heads=2, embed_dim=64, max_length=8)
    with pytest.raises(ValueError, match="exceeds the 8 positions"):
        encoder(tokenize_prompts(["a b c d"]), torch.zeros(1, 4, 32))
