"""Auxiliary CTC loss on the image tokens, for recognizers trained from random weights.

Not part of CLIP4STR (its image encoder starts from CLIP, whose tokens already describe the crop).
From random weights the decoders learn the language prior first: their cross-attention over the
image tokens starts uniform, so what it reads is the mean token, nearly the same for every crop,
and training shrinks that input instead of learning to read it (measured on the tiny CPU model:
image-token std 0.06, cross-attention entropy = log(#tokens) after 1100 iterations, one predicted
word for every crop). A CTC loss on the token columns gives every token a direct, position-specific
character target from the first step (as in hybrid CTC-attention recognizers), so the tokens become
character evidence the decoders' attention can find. It only adds a loss term; inference and the
decoders are unchanged, and it is off unless ``MODEL.RECOGNIZER.CTC_LOSS_WEIGHT > 0``.

At inference the trained head is a second reader of the same image tokens. Its probability of
the decoders' reading, summed over all CTC alignments (:func:`ctc_string_probabilities`), can
sharpen the reading's confidence (:func:`ctc_weighted_confidences`, as hybrid CTC-attention
speech recognizers rescore attention hypotheses with CTC): a reading the column classifier does
not support, e.g. a character the decoders' language prior added or dropped, loses confidence.
The spotter's framing vote and reading gate use that confidence
(``MODEL.RECOGNIZER.CTC_CONFIDENCE_WEIGHT``).
"""

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ColumnCTCHead", "ctc_string_probabilities", "ctc_weighted_confidences"]


class ColumnCTCHead(nn.Module):
    """Per-column character classifier over the ViT patch tokens, trained with CTC.

    The patch tokens (class token dropped) are averaged over each column of the (g_h, g_w) grid,
    giving g_w time steps left to right; a linear layer scores blank (id 0, the EOS id of the
    decoders, which never appears inside a label) and the characters (ids 1..N, the decoders' ids).
    """

    def __init__(self, embed_dim: int, num_classes: int):
        """
        Args:
            embed_dim: D, width of the image tokens.
            num_classes: blank + N characters (the decoders' head size: EOS + N).
        """
        super().__init__()
        self.norm = nn.LayerNorm(embed_dim)
        self.classifier = nn.Linear(embed_dim, num_classes)

    def forward(self, image_tokens: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        """
        Args:
            image_tokens: (B, 1 + g_h * g_w, D) encoder output, class token first, row-major
                patches.
            grid: (g_h, g_w).

        Returns:
            (g_w, B, num_classes) log-probabilities (time first, as ``F.ctc_loss`` takes them).
        """
        rows, cols = grid
        batch, count, dim = image_tokens.shape
        if count != 1 + rows * cols:
            raise ValueError(
                f"ColumnCTCHead: {count} tokens do not match a class token + {rows}x{cols} grid"
            )
        columns = image_tokens[:, 1:].reshape(batch, rows, cols, dim).mean(dim=1)  # (B, g_w, D)
        return self.classifier(self.norm(columns)).log_softmax(-1).transpose(0, 1)

    def loss(
        self, image_tokens: torch.Tensor, grid: Tuple[int, int], targets: torch.Tensor
    ) -> torch.Tensor:
        """Mean CTC loss per target character.

        Args:
            image_tokens, grid: as in :meth:`forward`.
            targets: (B, L) character ids (1..N), padded with values < 1 beyond each label.

        Returns:
            scalar; labels longer than g_w (no CTC alignment exists) contribute zero.
        """
        log_probs = self(image_tokens, grid)
        lengths = (targets > 0).sum(dim=1)
        input_lengths = torch.full(
            (targets.shape[0],), log_probs.shape[0], dtype=torch.long, device=targets.device
        )
        loss = F.ctc_loss(
            log_probs,
            targets.clamp(min=0),
            input_lengths,
            lengths,
            blank=0,
            reduction="sum",
            zero_infinity=True,
        )
        return loss / lengths.sum().clamp(min=1)


def ctc_string_probabilities(
    log_probs: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor
) -> torch.Tensor:
    """P_CTC(y | x) of given strings: the probability of each, summed over its CTC alignments.

    Args:
        log_probs: (T, B, C) log-probabilities of :meth:`ColumnCTCHead.forward` (blank = 0).
        targets: (B, L) character ids (1..C-1) of the strings; entries at or beyond a string's
            length are ignored.
        lengths: (B,) string lengths (<= L; 0 = the empty string, all blanks).

    Returns:
        (B,) float32 probabilities in [0, 1]; 0 for a string no alignment of T steps produces
        (more characters, counting a blank between equal neighbours, than T).
    """
    batch = targets.shape[0]
    if batch == 0:
        return log_probs.new_zeros(0, dtype=torch.float32)
    inside = torch.arange(targets.shape[1], device=targets.device)[None] < lengths[:, None]
    targets = torch.where(inside, targets, torch.ones_like(targets))  # padding: any valid id
    input_lengths = torch.full((batch,), log_probs.shape[0], dtype=torch.long)
    nll = F.ctc_loss(
        log_probs.float(),
        targets.long(),
        input_lengths.to(targets.device),
        lengths.long(),
        blank=0,
        reduction="none",
        zero_infinity=False,
    )
    return torch.exp(-nll)  # an impossible alignment has nll = inf -> 0


def ctc_weighted_confidences(
    scores: torch.Tensor,
    ids: torch.Tensor,
    lengths: torch.Tensor,
    log_probs: torch.Tensor,
    weight: float,
) -> torch.Tensor:
    """Decoder confidences times the CTC head's probability of the same readings, ``** weight``.

    Args:
        scores: (B,) confidences of the decoder's readings.
        ids, lengths: (B, L) character ids and (B,) lengths of those readings
            (``CharsetTokenizer.greedy_ids`` of the decoder's probabilities).
        log_probs: (T, B, C) the CTC head's log-probabilities of the same crops.
        weight: w >= 0; 0 returns `scores` unchanged.

    Returns:
        (B,) ``scores * P_CTC(reading) ** weight``.
    """
    if weight == 0 or scores.numel() == 0:
        return scores
    support = ctc_string_probabilities(log_probs, ids, lengths).to(scores)
    return scores * support.pow(weight)
