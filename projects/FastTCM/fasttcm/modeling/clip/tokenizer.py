"""CLIP byte-pair tokenizer for class prompts, read from the vocabulary bundled with open_clip.

open_clip_torch ships ``bpe_simple_vocab_16e6.txt.gz`` inside its package; this module only reads
that file, so tokenizing never touches the network.
"""

import functools
import os
from typing import List, Sequence

import torch
from open_clip.tokenizer import SimpleTokenizer, default_bpe

__all__ = ["bpe_tokenizer", "tokenize_prompts"]


@functools.lru_cache(maxsize=1)
def bpe_tokenizer() -> SimpleTokenizer:
    """The CLIP BPE tokenizer (vocabulary 49408: 49406 = SOS, 49407 = EOS), built once per process.

    Raises:
        FileNotFoundError: if the vocabulary file bundled with open_clip_torch is missing.
    """
    vocab_path = default_bpe()
    if not os.path.isfile(vocab_path):
        raise FileNotFoundError(
            f"CLIP BPE vocabulary {vocab_path!r} is missing: "
            "reinstall open_clip_torch, which bundles it"
        )
    return SimpleTokenizer(bpe_path=vocab_path, context_length=None)


def tokenize_prompts(prompts: Sequence[str], max_length: int = 77) -> torch.Tensor:
    """Tokenize class prompts as ``[SOS, tokens..., EOS]``, zero-padded to the longest prompt.

    Unlike ``open_clip.tokenize`` the result is not padded to 77: its length is that of the longest
    prompt, so the text transformer runs over as few positions as possible. The EOS token has the
    largest id of the vocabulary, so ``ids.argmax(-1)`` is its position in every row.

    Args:
        prompts: K non-empty strings.
        max_length: the longest allowed row (SOS and EOS included).

    Returns:
        LongTensor of shape (K, L), L = max over prompts of (number of BPE tokens + 2)
        <= max_length.

    Raises:
        ValueError: if `prompts` is empty, a prompt is blank, or a prompt needs more than
            `max_length` tokens (it is never silently truncated).
    """
    if isinstance(prompts, str):
        raise ValueError(f"tokenize_prompts expects a list of prompts, got the string {prompts!r}")
    if len(prompts) == 0:
        raise ValueError("tokenize_prompts: no class prompts given")
    tokenizer = bpe_tokenizer()
    rows: List[List[int]] = []
    for prompt in prompts:
        if not prompt.strip():
            raise ValueError(f"tokenize_prompts: blank class prompt {prompt!r}")
        row = [tokenizer.sot_token_id] + tokenizer.encode(prompt) + [tokenizer.eot_token_id]
        if len(row) > max_length:
            raise ValueError(
                f"class prompt {prompt!r} has {len(row)} tokens (SOS and EOS included); "
                f"at most {max_length} fit next to the learnable context"
            )
        rows.append(row)
    ids = torch.zeros(len(rows), max(len(r) for r in rows), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return ids
