"""Permutation language modelling (PARSeq / CLIP4STR training): orders and their attention masks.

PARSeq's training objective. A *permutation* of a batch whose longest label has T characters is a
LongTensor of T + 2 token positions ``[0, p_1 + 1, ..., p_T + 1, T + 1]``: position 0 is BOS,
positions 1..T the characters, T + 1 the EOS, and the order says in which sequence the characters
are generated. BOS always comes first and EOS last, except in the second permutation, where EOS is
placed right after BOS (see :func:`generate_permutations`).

Masks are additive float masks (0 = may attend, -inf = blocked) as ``nn.MultiheadAttention``
takes them. Rows are attending positions, columns attended positions, both over the decoder's
*content* tokens ``[BOS, c_1, ..., c_T]`` (the input sequence without its last token):

* content mask (T + 1, T + 1): token k is visible from token q iff k is not generated after q;
* query mask (T + 1, T + 1): row i is the query predicting position i + 1; it sees the content
  tokens generated before position i + 1 (itself excluded).
"""

import itertools
import math
from typing import List, Optional, Tuple

import torch

__all__ = ["generate_permutations", "permutation_attention_masks", "masks_from_blocked"]


def _one_per_mirror_pair(num_chars: int) -> torch.Tensor:
    """All orders of ``range(num_chars)`` keeping, of each order and its reverse, the smaller one.

    Returns:
        LongTensor (num_chars! / 2, num_chars) in lexicographic order; the identity comes first.
    """
    orders = [p for p in itertools.permutations(range(num_chars)) if p <= p[::-1]]
    return torch.tensor(orders, dtype=torch.long)


def generate_permutations(
    max_num_chars: int,
    *,
    num_perms: int = 6,
    forward: bool = True,
    mirrored: bool = True,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """The permutations shared by a training batch (official ``gen_tgt_perms``).

    * T = 1: only the canonical order.
    * Otherwise ``num_perms // 2`` orders (``num_perms`` without mirroring): the canonical one
      (when `forward`), then random ones. For T < 5 they are drawn without replacement from all
      orders, one per mirror pair (so there may be fewer, e.g. only the canonical order for T = 2);
      for T >= 5 each is a uniform random permutation.
    * With `mirrored`, each order is followed by its reverse.
    * The second permutation is replaced by ``[BOS, EOS, c_T, ..., c_1]``: EOS is predicted with an
      empty context, which non-autoregressive decoding needs.

    Args:
        max_num_chars: T, the longest label of the batch (>= 1).
        num_perms: permutations wanted (official ``perm_num``: 6).
        forward: include the canonical left-to-right order (``perm_forward``).
        mirrored: add the reverse of every order (``perm_mirrored``).
        generator: random generator (None: torch's global one).

    Returns:
        LongTensor (P, T + 2) of token positions, P <= `num_perms`.
    """
    if max_num_chars < 1:
        raise ValueError(f"generate_permutations: max_num_chars must be >= 1, got {max_num_chars}")
    if num_perms < 1:
        raise ValueError(f"generate_permutations: num_perms must be >= 1, got {num_perms}")
    num_chars = max_num_chars
    if num_chars == 1:
        return torch.arange(3).unsqueeze(0)

    orders: List[torch.Tensor] = [torch.arange(num_chars)] if forward else []
    max_orders = math.factorial(num_chars) // (2 if mirrored else 1)
    num_orders = min(num_perms // 2 if mirrored else num_perms, max_orders)
    num_random = max(num_orders - len(orders), 0)
    if num_chars < 5:
        pool = (
            _one_per_mirror_pair(num_chars)
            if mirrored
            else torch.tensor(list(itertools.permutations(range(num_chars))), dtype=torch.long)
        )
        if forward:
            pool = pool[1:]  # the identity is already in
        if len(pool) and num_random:
            picks = torch.randperm(len(pool), generator=generator)[:num_random]
            orders.extend(pool[picks])
    else:
        orders.extend(torch.randperm(num_chars, generator=generator) for _ in range(num_random))
    perms = torch.stack(orders)
    if mirrored:
        perms = torch.stack([perms, perms.flip(-1)], dim=1).reshape(-1, num_chars)

    bos = perms.new_zeros(len(perms), 1)
    eos = perms.new_full((len(perms), 1), num_chars + 1)
    perms = torch.cat([bos, perms + 1, eos], dim=1)
    if len(perms) > 1:
        perms[1, 1:] = num_chars + 1 - torch.arange(num_chars + 1)
    return perms


def masks_from_blocked(blocked: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """Boolean "blocked" matrix -> additive attention mask (0 or -inf)."""
    return torch.zeros(blocked.shape, dtype=dtype, device=blocked.device).masked_fill(
        blocked, float("-inf")
    )


def permutation_attention_masks(perm: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Content and query masks of one permutation (official ``generate_attn_masks``).

    Args:
        perm: LongTensor (T + 2,), a permutation from :func:`generate_permutations`.

    Returns:
        content_mask: (T + 1, T + 1) float, row q / column k over ``[BOS, c_1..c_T]``.
        query_mask: (T + 1, T + 1) float, row i = query of position i + 1, columns as above.
    """
    size = perm.numel()
    rank = torch.empty_like(perm)
    rank[perm] = torch.arange(size, device=perm.device)  # rank[k]: when position k is generated
    blocked = rank[None, :] > rank[:, None]  # [q, k]: k is generated after q
    content_mask = masks_from_blocked(blocked[:-1, :-1])
    eye = torch.eye(size, dtype=torch.bool, device=perm.device)
    query_mask = masks_from_blocked((blocked | eye)[1:, :-1])
    return content_mask, query_mask
