"""Check that the class prompts give distinguishable text embeddings.

Every class score of FastTCM (the ILM score map S = I t^T / tau, and the text-embedding classifier
of ``FastTCMRROIHeads``) compares image features with the K class-prompt embeddings t. If two
prompts map to nearly the same t, no training of the image side can tell those classes apart.
With CLIP weights that does not happen; with a randomly initialised text encoder it can: the LPG's
cue cc, added to every token, has ~15x the norm of a CLIP-initialised token embedding (std 0.02), so
after the encoder's pre-LN every class-name position looks like the cue, and the 15 DOTA class
prompts came out at mean cosine 0.996-0.998 (measured; without the cue 0.77-0.85, hence
``MODEL.FASTTCM.LANGUAGE_PROMPT False`` in the DOTA configs).
"""

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F

__all__ = ["overlapping_prompt_pairs"]


@torch.no_grad()
def overlapping_prompt_pairs(
    text_encoder,
    prompt_learner,
    conditional_cue: Optional[torch.Tensor] = None,
    threshold: float = 0.98,
) -> List[Tuple[str, str, float]]:
    """Pairs of class prompts whose embeddings have cosine >= `threshold`.

    Args:
        text_encoder: a :class:`~fasttcm.modeling.clip.text_encoder.CLIPTextContextEncoder`.
        prompt_learner: a :class:`~fasttcm.modeling.tcm.prompts.PromptLearner` with K prompts.
        conditional_cue: (1, width) cue added to every prompt position (the LPG's cc in MODE
            "fasttcm"), or None.
        threshold: cosine similarity from which two prompts count as indistinguishable.

    Returns:
        ``(prompt_a, prompt_b, cosine)`` for each such pair, most similar first.
    """
    token_ids, contexts = prompt_learner()
    if token_ids.shape[0] < 2:
        return []
    embeddings = F.normalize(
        text_encoder(token_ids, contexts, conditional_cue)[0].float(), dim=-1
    )  # (K, D)
    cosine = embeddings @ embeddings.t()
    rows, cols = torch.triu_indices(len(cosine), len(cosine), offset=1)
    values = cosine[rows, cols]
    keep = (values >= threshold).nonzero().squeeze(1)
    prompts = prompt_learner.class_prompts
    pairs = [(prompts[rows[i]], prompts[cols[i]], float(values[i])) for i in keep.tolist()]
    return sorted(pairs, key=lambda pair: -pair[2])
