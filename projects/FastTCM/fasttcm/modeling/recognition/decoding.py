"""Inference with one two-stream character decoder: greedy autoregressive decoding and refinement.

Follows PARSeq's ``forward``. The decoder is any module called as
``decoder(tokens, memory, content_mask=..., query_mask=..., padding_mask=..., query_slice=...)``
returning ``(logits, features)``
(:class:`~fasttcm.modeling.recognition.decoder.CharacterDecoder`).
Positions are output slots 0..L-1: slot i predicts the (i + 1)-th token after BOS (a character
or EOS). CLIP4STR's dual predict-and-refine order, which chains two decoders and the text
encoder, is :meth:`~fasttcm.modeling.recognition.clip4str.CLIP4STR.forward`.
"""

import torch
from torch import nn

from .plm import masks_from_blocked

__all__ = ["causal_mask", "cloze_query_mask", "autoregressive_decode", "refine_decode"]


def causal_mask(size: int, device=None) -> torch.Tensor:
    """(size, size) additive mask: row i sees columns 0..i (left-to-right order)."""
    blocked = torch.ones(size, size, dtype=torch.bool, device=device).triu(1)
    return masks_from_blocked(blocked)


def cloze_query_mask(num_queries: int, context_length: int, device=None) -> torch.Tensor:
    """(num_queries, context_length) additive mask of the refinement (cloze) step.

    Query i (predicting slot i, the token at position i + 1) sees every context token except
    position i + 1, the one it predicts (official: the causal mask with ``triu(2)`` cleared).
    """
    rows = torch.arange(num_queries, device=device)[:, None]
    cols = torch.arange(context_length, device=device)[None, :]
    return masks_from_blocked(cols == rows + 1)


@torch.no_grad()
def autoregressive_decode(
    decoder: nn.Module,
    memory: torch.Tensor,
    num_steps: int,
    *,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    stop_at_eos: bool = True,
) -> torch.Tensor:
    """Greedy left-to-right decoding, one query per step (official ``decode_ar``).

    Step i queries slot i with the context ``[BOS, argmax of slots 0..i-1]`` under a causal mask;
    its argmax becomes the next context token. With `stop_at_eos`, decoding ends after the first
    step at which every sequence of the batch holds an EOS (official test-time early stop).

    Args:
        decoder: the character decoder.
        memory: (B, S, D) the tokens the decoder cross-attends to.
        num_steps: the most slots to decode (max label length + 1).
        bos_id, eos_id, pad_id: special token ids of the charset tokenizer.
        stop_at_eos: stop early once every sequence has an EOS.

    Returns:
        (B, L, C) logits of slots 0..L-1, L <= `num_steps`.
    """
    batch = memory.shape[0]
    mask = causal_mask(num_steps, device=memory.device)
    tokens = torch.full((batch, num_steps), pad_id, dtype=torch.long, device=memory.device)
    tokens[:, 0] = bos_id
    logits = []
    for i in range(num_steps):
        j = i + 1
        step_logits, _ = decoder(
            tokens[:, :j],
            memory,
            content_mask=mask[:j, :j],
            query_mask=mask[i:j, :j],
            query_slice=slice(i, j),
        )
        logits.append(step_logits)
        if j < num_steps:
            tokens[:, j] = step_logits[:, 0].argmax(-1)
            if stop_at_eos and (tokens == eos_id).any(dim=-1).all():
                break
    return torch.cat(logits, dim=1)


@torch.no_grad()
def refine_decode(
    decoder: nn.Module,
    memory: torch.Tensor,
    logits: torch.Tensor,
    num_queries: int,
    *,
    bos_id: int,
    eos_id: int,
) -> torch.Tensor:
    """One cloze refinement pass (official ``refine_iters`` loop body).

    The context is ``[BOS, argmax(logits)[:, :-1]]``; tokens from the first EOS on are
    key-padding masked; all `num_queries` slots are queried at once with the cloze mask of
    :func:`cloze_query_mask`. The content stream keeps the causal mask; the official code edits
    one tensor aliased as both masks (so the cloze edit changes its content mask too), which only
    matters for decoders deeper than one layer (the last layer never updates the content stream).

    Args:
        decoder: the character decoder.
        memory: (B, S, D) cross-attention memory.
        logits: (B, L, C) the previous prediction.
        num_queries: slots to predict (max label length + 1).
        bos_id, eos_id: special token ids.

    Returns:
        (B, num_queries, C) refined logits.
    """
    batch, length, _ = logits.shape
    bos = torch.full((batch, 1), bos_id, dtype=torch.long, device=logits.device)
    tokens = torch.cat([bos, logits[:, :-1].argmax(-1)], dim=1)  # (B, L)
    padding = (tokens == eos_id).int().cumsum(-1) > 0
    refined, _ = decoder(
        tokens,
        memory,
        content_mask=causal_mask(length, device=logits.device),
        query_mask=cloze_query_mask(num_queries, length, device=logits.device),
        padding_mask=padding,
        query_slice=slice(0, num_queries),
    )
    return refined
