"""CLIP ViT image tower and text tower with OpenAI CLIP parameter names (the CLIP4STR encoders).

Per image, with D the CLIP joint-embedding width (512 for ViT-B/16)::

    crop (3, H, W) --ViT, every token, ln_post, proj--> (1 + HW / (ph * pw), D)
    BPE ids (L,) --causal text transformer, every token, ln_final, text_projection--> (L, D)

Parameter names are those of OpenAI CLIP (``visual.*``, ``token_embedding.weight``,
``positional_embedding``, ``transformer.resblocks.*``, ``ln_final.*``, ``text_projection``), so
CLIP ViT checkpoints load onto :class:`CLIPVisionTextModel` by name.
"""

from typing import List, Tuple

import torch
from open_clip.transformer import LayerNorm, QuickGELU, Transformer, VisionTransformer
from torch import nn

from .conv_stem import ConvPatchStem
from .text_encoder import init_clip_text_tower

__all__ = ["CLIPVisionTextModel"]


class CLIPVisionTextModel(nn.Module):
    """The CLIP ViT image tower and text tower, with OpenAI CLIP parameter names.

    Image tower: open_clip's :class:`VisionTransformer` with ``pool_type="none"``: every token
    (class token first) goes through ``ln_post`` and ``proj``. Text tower: ``token_embedding``,
    ``positional_embedding`` (``text_max_length`` rows, sliced to the input length at run time),
    a causal ``transformer``, ``ln_final`` and ``text_projection``; every token is returned, not
    only the EOT one. The first ``text_freeze_layers`` text blocks, the token and the positional
    embeddings are frozen (``requires_grad=False``) and stay in eval mode.
    """

    def __init__(
        self,
        *,
        image_size: Tuple[int, int] = (224, 224),
        patch_size: Tuple[int, int] = (16, 16),
        vision_width: int = 768,
        vision_layers: int = 12,
        vision_heads: int = 12,
        embed_dim: int = 512,
        text_width: int = 512,
        text_layers: int = 12,
        text_heads: int = 8,
        text_max_length: int = 77,
        vocab_size: int = 49408,
        quick_gelu: bool = True,
        text_freeze_layers: int = 6,
        patch_embed: str = "linear",
    ):
        """
        Args:
            image_size: (H, W) of the input crops; multiples of `patch_size`.
            patch_size: (h, w) of a ViT patch (16 for ViT-B/16).
            vision_width, vision_layers, vision_heads: ViT width, depth and heads (768, 12, 12).
            embed_dim: D, width of ``visual.proj`` and ``text_projection`` outputs (512).
            text_width, text_layers, text_heads: text transformer (512, 12, 8).
            text_max_length: rows of the text positional table (CLIP: 77).
            vocab_size: BPE vocabulary (CLIP: 49408).
            quick_gelu: QuickGELU in both towers (the official CLIP4STR code hard-wires it, also
                when OpenCLIP weights are loaded).
            text_freeze_layers: frozen lower text blocks (official ``text_freeze_nlayer``: 6); the
                token and positional embeddings are frozen too unless it is -1 (all trainable).
            patch_embed: "linear": CLIP's patchify convolution ``visual.conv1`` (what CLIP weights
                fill); "conv": a :class:`ConvPatchStem` in its place, for towers trained from
                random weights (it converges much sooner; no CLIP checkpoint fits it).
        """
        super().__init__()
        image_size, patch_size = tuple(image_size), tuple(patch_size)
        if image_size[0] % patch_size[0] or image_size[1] % patch_size[1]:
            raise ValueError(
                f"CLIP ViT input {image_size} is not a multiple of the patch size {patch_size}"
            )
        if not -1 <= text_freeze_layers <= text_layers:
            raise ValueError(
                f"text_freeze_layers={text_freeze_layers} must be in "
                f"[-1, text_layers={text_layers}]"
            )
        act_layer = QuickGELU if quick_gelu else nn.GELU
        self.visual = VisionTransformer(
            image_size=image_size,
            patch_size=patch_size,
            width=vision_width,
            layers=vision_layers,
            heads=vision_heads,
            mlp_ratio=4.0,
            output_dim=embed_dim,
            pool_type="none",
            act_layer=act_layer,
        )
        if patch_embed == "conv":
            self.visual.conv1 = ConvPatchStem(patch_size, vision_width)
        elif patch_embed != "linear":
            raise ValueError(f"patch_embed must be 'linear' or 'conv', got {patch_embed!r}")
        self.patch_embed = patch_embed
        self.token_embedding = nn.Embedding(vocab_size, text_width)
        self.positional_embedding = nn.Parameter(torch.empty(text_max_length, text_width))
        self.transformer = Transformer(
            width=text_width,
            layers=text_layers,
            heads=text_heads,
            act_layer=act_layer,
            norm_layer=LayerNorm,
        )
        self.ln_final = LayerNorm(text_width)
        self.text_projection = nn.Parameter(torch.empty(text_width, embed_dim))
        self._init_vision_positional_embedding()
        init_clip_text_tower(self)  # CLIP's random init; CLIP weights replace it
        self.text_freeze_layers = text_freeze_layers
        for module in self.frozen_text_modules():
            module.requires_grad_(False)
        if text_freeze_layers >= 0:
            self.positional_embedding.requires_grad_(False)

    def _init_vision_positional_embedding(self) -> None:
        """2-D sine-cosine init of the ViT positional table (used when no weights file is given).

        open_clip draws it at random; a fixed 2-D code (as in MAE) lets a tiny ViT trained from
        scratch tell patch positions apart from the first step. Row 0 (class token) is zero;
        row 1 + r * W + c holds [sin, cos](r * omega) and [sin, cos](c * omega), omega_k =
        10000^(-k / (width / 4)). The table, (1 + rows * cols, width), stays learnable; CLIP
        weights replace it.
        """
        table = self.visual.positional_embedding
        width = table.shape[1]
        if width % 4:
            return  # keep open_clip's random init
        rows, cols = self.visual.grid_size
        omega = 10000.0 ** (-torch.arange(width // 4, dtype=torch.float32) / (width // 4))
        r, c = torch.meshgrid(
            torch.arange(rows, dtype=torch.float32),
            torch.arange(cols, dtype=torch.float32),
            indexing="ij",
        )
        r, c = r.reshape(-1, 1) * omega, c.reshape(-1, 1) * omega
        with torch.no_grad():
            table[0].zero_()
            table[1:] = torch.cat([r.sin(), r.cos(), c.sin(), c.cos()], dim=1)

    def frozen_text_modules(self) -> List[nn.Module]:
        """The token embedding and the frozen lower text blocks ([] if text_freeze_layers is -1)."""
        if self.text_freeze_layers < 0:
            return []
        return [self.token_embedding, *self.transformer.resblocks[: self.text_freeze_layers]]

    def train(self, mode: bool = True):
        super().train(mode)
        for module in self.frozen_text_modules():
            module.eval()
        return self

    @property
    def input_size(self) -> Tuple[int, int]:
        return tuple(self.visual.image_size)

    @property
    def embed_dim(self) -> int:
        return self.text_projection.shape[1]

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """
        Args:
            images: (B, 3, H, W) normalized RGB crops of size :attr:`input_size`.

        Returns:
            (B, 1 + HW / (ph * pw), D) projected tokens, the class token first.
        """
        if tuple(images.shape[-2:]) != self.input_size:
            raise ValueError(
                f"CLIP ViT expects {self.input_size} (H, W) inputs, got "
                f"{tuple(images.shape[-2:])}; resize the crops first"
            )
        return self.visual(images)

    def encode_text(self, token_ids: torch.Tensor) -> torch.Tensor:
        """
        Args:
            token_ids: (B, L) BPE ids ``[SOT, ..., EOT, 0...]``, L <= ``text_max_length``.

        Returns:
            (B, L, D) projected features of every position (padding included).
        """
        length = token_ids.shape[1]
        if length > self.positional_embedding.shape[0]:
            raise ValueError(
                f"{length} text tokens exceed the {self.positional_embedding.shape[0]} "
                "positions of the text encoder"
            )
        x = self.token_embedding(token_ids) + self.positional_embedding[:length]
        mask = torch.full((length, length), float("-inf"), device=x.device, dtype=x.dtype)
        mask = mask.triu_(1)
        x = self.ln_final(self.transformer(x, attn_mask=mask))
        return x @ self.text_projection
