"""Frozen CLIP text transformer that takes learnable context vectors and a conditional cue.

The text encoder of TCM / FastTCM. The layers are open_clip's
(``open_clip.transformer.Transformer``, ``LayerNorm``, ``QuickGELU``) and the parameter names match
CLIP state dicts (``token_embedding``, ``positional_embedding``, ``transformer.resblocks.*``,
``ln_final``, ``text_projection``).
"""

from typing import Optional

import torch
from open_clip.transformer import LayerNorm, QuickGELU, Transformer
from torch import nn

__all__ = ["CLIPTextContextEncoder", "init_clip_text_tower"]


def init_clip_text_tower(tower: nn.Module) -> None:
    """OpenAI CLIP's random init of a text tower.

    `tower` holds CLIP's text-tower names: ``token_embedding``, ``positional_embedding``,
    ``transformer`` (open_clip ``Transformer``) and ``text_projection``.
    """
    width, layers = tower.transformer.width, tower.transformer.layers
    proj_std = width**-0.5 * (2 * layers) ** -0.5
    nn.init.normal_(tower.token_embedding.weight, std=0.02)
    nn.init.normal_(tower.positional_embedding, std=0.01)
    for block in tower.transformer.resblocks:
        nn.init.normal_(block.attn.in_proj_weight, std=width**-0.5)
        nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
        nn.init.normal_(block.mlp.c_fc.weight, std=(2 * width) ** -0.5)
        nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)
    nn.init.normal_(tower.text_projection, std=width**-0.5)


class CLIPTextContextEncoder(nn.Module):
    """CLIP text encoder over ``[SOS, ctx_1..ctx_n, class-prompt tokens, EOS]``.

    The learnable context vectors are inserted right after SOS, a conditional cue (the language
    prompt, "cc") is added to every position, and the output is the projected hidden state at EOS.
    With ``freeze=True`` (the default) every parameter has ``requires_grad=False``; gradients still
    flow *through* the encoder to the context vectors and the cue. With ``freeze=False`` the token
    table stays frozen unless ``freeze_token_embedding=False``: the prompts use a few dozen of its
    ``vocab_size`` rows, yet a trainable table gets a dense (vocab_size, width) gradient and
    optimizer update every step (on the CPU, ~0.1 s of a 1.2 s DOTA step at width 128) and weight
    decay shrinks every unused row.
    """

    def __init__(
        self,
        *,
        vocab_size: int = 49408,
        max_length: int = 77,
        width: int = 512,
        layers: int = 12,
        heads: int = 8,
        embed_dim: int = 1024,
        quick_gelu: bool = True,
        freeze: bool = True,
        freeze_token_embedding: bool = True,
    ):
        """
        Args:
            vocab_size: BPE vocabulary size (CLIP: 49408).
            max_length: rows of the positional table (CLIP: 77); prompt plus context must fit.
            width: transformer width, also the token-embedding dimension (RN50: 512).
            layers, heads: transformer depth and heads (RN50: 12 and 8).
            embed_dim: D, output dimension of ``text_projection`` (RN50: 1024).
            quick_gelu: QuickGELU activations as in OpenAI's CLIP (else ``nn.GELU``).
            freeze: set ``requires_grad=False`` on every parameter.
            freeze_token_embedding: with ``freeze=False``, still keep ``token_embedding`` frozen.
        """
        super().__init__()
        self.max_length = max_length
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.positional_embedding = nn.Parameter(torch.empty(max_length, width))
        self.transformer = Transformer(
            width=width,
            layers=layers,
            heads=heads,
            act_layer=QuickGELU if quick_gelu else nn.GELU,
            norm_layer=LayerNorm,
            batch_first=True,
        )
        self.ln_final = LayerNorm(width)
        self.text_projection = nn.Parameter(torch.empty(width, embed_dim))
        self.init_parameters()
        if freeze:
            self.requires_grad_(False)
        elif freeze_token_embedding:
            self.token_embedding.requires_grad_(False)

    @property
    def width(self) -> int:
        return self.token_embedding.embedding_dim

    @property
    def embed_dim(self) -> int:
        return self.text_projection.shape[1]

    def init_parameters(self) -> None:
        """CLIP's random init (no tensor may stay uninitialised)."""
        init_clip_text_tower(self)

    def forward(
        self,
        token_ids: torch.Tensor,
        context: torch.Tensor,
        conditional_cue: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """
        Args:
            token_ids: (K, L) LongTensor of K class prompts ``[SOS, words..., EOS, 0...]`` (see
                :func:`~fasttcm.modeling.clip.tokenizer.tokenize_prompts`).
            context: (1 or B, n_ctx, width) learnable context vectors; n_ctx may be 0.
            conditional_cue: optional (1 or B, width) language prompt added to every position.

        Returns:
            (N, K, D) text embeddings, N = the larger batch of `context` and `conditional_cue`.
        """
        num_prompts, prompt_length = token_ids.shape
        n_ctx = context.shape[1]
        length = prompt_length + n_ctx
        if length > self.max_length:
            raise ValueError(
                f"prompt of {prompt_length} tokens plus {n_ctx} context vectors exceeds the "
                f"{self.max_length} positions of the text encoder"
            )
        batch = (
            context.shape[0]
            if conditional_cue is None
            else max(context.shape[0], conditional_cue.shape[0])
        )
        words = self.token_embedding(token_ids)  # (K, L, width)
        x = torch.cat(
            [
                words[None, :, :1].expand(batch, -1, -1, -1),  # SOS
                context[:, None].expand(batch, num_prompts, -1, -1),
                words[None, :, 1:].expand(batch, -1, -1, -1),  # class-prompt tokens, EOS, padding
            ],
            dim=2,
        )  # (N, K, L + n_ctx, width)
        if conditional_cue is not None:
            x = x + conditional_cue[:, None, None, :]
        x = x + self.positional_embedding[:length]
        x = x.flatten(0, 1)  # (N * K, L + n_ctx, width)
        causal_mask = torch.full(
            (length, length), float("-inf"), device=x.device, dtype=x.dtype
        ).triu_(1)
        x = self.ln_final(self.transformer(x, attn_mask=causal_mask))
        eos_index = (token_ids.argmax(dim=-1) + n_ctx).repeat(batch)  # EOS has the largest token id
        x = x[torch.arange(x.shape[0], device=x.device), eos_index]  # (N * K, width)
        return (x @ self.text_projection).unflatten(0, (batch, num_prompts))
