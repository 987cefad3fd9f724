"""CLIP4STR: a CLIP ViT image encoder, a visual and a cross-modal two-stream character decoder.

clip4str.md section 1 (official ``VL4STR``, built on PARSeq). Per image, with D the CLIP
joint-embedding width (512 for ViT-B/16) and C = 95 classes (EOS + 94 characters)::

    crop (3, H, W) --CLIP ViT, every token, ln_post, proj--> F_img (1 + HW/p^2, D)
    F_img --visual decoder--> y_v (<=26, C)
    argmax(y_v) -> string -> test-charset adapter -> CLIP BPE (16 tokens)
        --CLIP text encoder, every token, ln_final, text_projection--> F_txt (16, D)
    [stopgrad(F_img), F_txt] --cross-modal decoder--> y_c (<=26, C)   <- the output

Parameter names follow the official checkpoints (``clip_model.visual.*``,
``clip_model.transformer.resblocks.*``, ``visual_decoder.layers.0.*``, ``cross_decoder.*``), so
a CLIP4STR checkpoint maps onto :class:`CLIP4STR` one to one. CLIP weights come from a local file
(``MODEL.RECOGNIZER.CLIP_WEIGHTS``); nothing is downloaded.
"""

import logging
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from open_clip.transformer import LayerNorm, QuickGELU, Transformer, VisionTransformer
from torch import nn

from detectron2.config import configurable
from detectron2.utils.events import get_event_storage
from detectron2.utils.logger import log_every_n_seconds

from ..clip.image_encoder import resize_attnpool_positional_embedding
from ..clip.text_encoder import init_clip_text_tower
from ..clip.tokenizer import bpe_tokenizer
from ..clip.weights import CLIPLoadResult, read_clip_state_dict
from ...structures.charset import CharsetAdapter, load_charset
from .tokenizer import CharsetTokenizer
from .conv_stem import ConvPatchStem
from .ctc_aux import ColumnCTCHead
from .decoding import autoregressive_decode, refine_decode
from .plm import generate_permutations, permutation_attention_masks

__all__ = [
    "CLIPVisionTextModel",
    "TokenEmbedding",
    "TwoStreamDecoderLayer",
    "CharacterDecoder",
    "CLIP4STR",
    "build_clip4str_recognizer",
    "load_clip4str_clip_weights",
    "clip4str_param_groups",
    "clip4str_param_groups_from_config",
]

logger = logging.getLogger(__name__)

_TEXT_KEYS = ("token_embedding.", "positional_embedding", "transformer.", "ln_final.", "text_projection")


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
            quick_gelu: QuickGELU in both towers (the official code always uses it, P10).
            text_freeze_layers: frozen lower text blocks (official ``text_freeze_nlayer``: 6); the
                token and positional embeddings are frozen too unless it is -1 (all trainable).
            patch_embed: "linear": CLIP's patchify convolution ``visual.conv1`` (what CLIP weights
                fill); "conv": a :class:`ConvPatchStem` in its place, for towers trained from
                random weights (it converges much sooner; no CLIP checkpoint fits it).
        """
        super().__init__()
        image_size, patch_size = tuple(image_size), tuple(patch_size)
        if image_size[0] % patch_size[0] or image_size[1] % patch_size[1]:
            raise ValueError(f"CLIP ViT input {image_size} is not a multiple of the patch size {patch_size}")
        if not -1 <= text_freeze_layers <= text_layers:
            raise ValueError(f"text_freeze_layers={text_freeze_layers} must be in [-1, text_layers={text_layers}]")
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
            width=text_width, layers=text_layers, heads=text_heads, act_layer=act_layer, norm_layer=LayerNorm
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
        10000^(-k / (width / 4)). The table stays learnable; CLIP weights replace it.
        """
        table = self.visual.positional_embedding
        width = table.shape[1]
        if width % 4:
            return  # keep open_clip's random init
        rows, cols = self.visual.grid_size
        omega = 10000.0 ** (-torch.arange(width // 4, dtype=torch.float32) / (width // 4))
        r, c = torch.meshgrid(
            torch.arange(rows, dtype=torch.float32), torch.arange(cols, dtype=torch.float32), indexing="ij"
        )
        r, c = r.reshape(-1, 1) * omega, c.reshape(-1, 1) * omega
        with torch.no_grad():
            table[0].zero_()
            table[1:] = torch.cat([r.sin(), r.cos(), c.sin(), c.cos()], dim=1)

    def frozen_text_modules(self) -> List[nn.Module]:
        """The token embedding and the frozen lower text blocks (none when text_freeze_layers is -1)."""
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
                f"CLIP ViT expects {self.input_size} (H, W) inputs, got {tuple(images.shape[-2:])}; "
                "resize the crops first"
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
                f"{length} text tokens exceed the {self.positional_embedding.shape[0]} positions of the text encoder"
            )
        x = self.token_embedding(token_ids) + self.positional_embedding[:length]
        mask = torch.full((length, length), float("-inf"), device=x.device, dtype=x.dtype).triu_(1)
        x = self.ln_final(self.transformer(x, attn_mask=mask))
        return x @ self.text_projection


class TokenEmbedding(nn.Module):
    """Character-token embedding scaled by sqrt(D) (official ``TokenEmbedding``)."""

    def __init__(self, num_tokens: int, dim: int):
        super().__init__()
        self.embedding = nn.Embedding(num_tokens, dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) LongTensor -> (B, L, D)."""
        return math.sqrt(self.embedding.embedding_dim) * self.embedding(tokens)


class TwoStreamDecoderLayer(nn.Module):
    """Pre-LN two-stream decoder layer of PARSeq (official ``DecoderLayer``).

    For a stream x (query or content), with keys/values from the normalized content::

        x = x + SelfAttn(norm(x), norm_c(content), norm_c(content), mask)
        x = x + CrossAttn(norm1(x), memory, memory)
        x = x + FFN(norm2(x))

    The query stream uses ``norm_q``, the content stream ``norm_c`` for its own queries.
    """

    def __init__(
        self, d_model: int, nhead: int, dim_feedforward: int, dropout: float = 0.1, layer_norm_eps: float = 1e-5
    ):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm_q = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm_c = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward_stream(
        self,
        x: torch.Tensor,
        x_norm: torch.Tensor,
        content_norm: torch.Tensor,
        memory: torch.Tensor,
        attn_mask: Optional[torch.Tensor],
        padding_mask: Optional[torch.Tensor],
    ) -> torch.Tensor:
        x = x + self.dropout1(
            self.self_attn(
                x_norm,
                content_norm,
                content_norm,
                attn_mask=attn_mask,
                key_padding_mask=padding_mask,
                need_weights=False,
            )[0]
        )
        x = x + self.dropout2(self.cross_attn(self.norm1(x), memory, memory, need_weights=False)[0])
        return x + self.dropout3(self.linear2(self.dropout(F.gelu(self.linear1(self.norm2(x))))))

    def forward(
        self,
        query: torch.Tensor,
        content: torch.Tensor,
        memory: torch.Tensor,
        query_mask: Optional[torch.Tensor] = None,
        content_mask: Optional[torch.Tensor] = None,
        padding_mask: Optional[torch.Tensor] = None,
        update_content: bool = True,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            query: (B, Lq, D) position queries; content: (B, Lc, D) context embeddings.
            memory: (B, S, D) cross-attention memory.
            query_mask: (Lq, Lc) additive; content_mask: (Lc, Lc) additive.
            padding_mask: (B, Lc) additive key padding of the content.
            update_content: also update the content stream (all but the last layer).

        Returns:
            (query, content) after the layer.
        """
        content_norm = self.norm_c(content)
        query = self.forward_stream(query, self.norm_q(query), content_norm, memory, query_mask, padding_mask)
        if update_content:
            content = self.forward_stream(content, content_norm, content_norm, memory, content_mask, padding_mask)
        return query, content


class CharacterDecoder(nn.Module):
    """PARSeq/CLIP4STR character decoder (official ``Decoder``): embedding, queries, layers, head.

    The content stream is ``[E(BOS), pos_q[0:L-1] + E(tokens 1..L-1)]`` (no position on BOS);
    the query stream is a slice of the learned position queries ``pos_queries`` (1, max_len + 1, D).
    Output: final LayerNorm and a linear head over EOS + the characters.
    """

    def __init__(
        self,
        *,
        embed_dim: int,
        num_tokens: int,
        num_classes: int,
        max_label_length: int = 25,
        num_layers: int = 1,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        dropout: float = 0.1,
    ):
        """
        Args:
            embed_dim: D, the decoder width (= CLIP joint-embedding width).
            num_tokens: size of the token vocabulary (EOS, characters, BOS, PAD: 97 for 94 chars).
            num_classes: head outputs (EOS + characters: 95).
            max_label_length: longest label; there are max_label_length + 1 position queries.
            num_layers, num_heads, mlp_ratio, dropout: decoder depth (1), heads (8), FFN ratio (4),
                dropout (0.1).
        """
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"decoder width {embed_dim} is not divisible by {num_heads} heads")
        self.layers = nn.ModuleList(
            [
                TwoStreamDecoderLayer(embed_dim, num_heads, int(embed_dim * mlp_ratio), dropout)
                for _ in range(num_layers)
            ]
        )
        self.text_embed = TokenEmbedding(num_tokens, embed_dim)
        self.pos_queries = nn.Parameter(torch.empty(1, max_label_length + 1, embed_dim))
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """PARSeq's init: truncated normal (std 0.02) for linear and embedding weights, zero biases."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.trunc_normal_(module.weight, std=0.02)
        nn.init.trunc_normal_(self.pos_queries, std=0.02)

    @property
    def num_positions(self) -> int:
        return self.pos_queries.shape[1]

    def forward(
        self,
        tokens: torch.Tensor,
        memory: torch.Tensor,
        *,
        content_mask: Optional[torch.Tensor] = None,
        query_mask: Optional[torch.Tensor] = None,
        padding_mask: Optional[torch.Tensor] = None,
        query_slice: Optional[slice] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            tokens: (B, Lc) context ``[BOS, t_1, ..., t_{Lc-1}]``.
            memory: (B, S, D) cross-attention memory (image tokens, or image + text tokens).
            content_mask: (Lc, Lc) additive mask of the content stream.
            query_mask: (Lq, Lc) additive mask of the query stream.
            padding_mask: (B, Lc) bool, True = ignore that context token.
            query_slice: which position queries to use (default ``0:Lc``); slot i predicts the
                token at position i + 1.

        Returns:
            logits: (B, Lq, num_classes); features: (B, Lq, D) after the final LayerNorm.
        """
        batch, length = tokens.shape
        bos = self.text_embed(tokens[:, :1])
        context = self.pos_queries[:, : length - 1] + self.text_embed(tokens[:, 1:])
        content = self.dropout(torch.cat([bos, context], dim=1))
        query = self.pos_queries[:, query_slice if query_slice is not None else slice(0, length)]
        query = self.dropout(query.expand(batch, -1, -1))
        if padding_mask is not None:  # additive, like the attention masks
            padding_mask = torch.zeros(padding_mask.shape, dtype=content.dtype, device=content.device).masked_fill(
                padding_mask, float("-inf")
            )
        for i, layer in enumerate(self.layers):
            last = i == len(self.layers) - 1
            query, content = layer(
                query, content, memory, query_mask, content_mask, padding_mask, update_content=not last
            )
        features = self.norm(query)
        return self.head(features), features


class CLIP4STR(nn.Module):
    """The CLIP4STR recognizer as a plain module: training losses and predict-and-refine decoding.

    Inputs are normalized crops (B, 3, H, W), (H, W) = :attr:`input_size`; normalize 0-255 RGB
    pixels with :meth:`normalize` (``pixel_mean`` / ``pixel_std`` are the statistics the weights
    expect). Outputs are over the training charset (94 characters by default).

    * :meth:`recognition_losses` (training): permutation language modelling, losses
      ``loss_visual`` and ``loss_cross_modal`` (their sum is the official loss).
    * :meth:`forward` (inference): dual predict-and-refine, logits (B, L, C).
    * :meth:`recognize`: strings and confidences.
    """

    @configurable
    def __init__(
        self,
        *,
        clip_model: CLIPVisionTextModel,
        visual_decoder: CharacterDecoder,
        cross_decoder: CharacterDecoder,
        charset: str,
        test_charset: str,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        max_label_length: int = 25,
        text_context_length: int = 16,
        perm_num: int = 6,
        perm_forward: bool = True,
        perm_mirrored: bool = True,
        refine_iters: int = 1,
        image_detach: bool = True,
        cross_loss_weight: float = 1.0,
        ctc_loss_weight: float = 0.0,
    ):
        """
        Args:
            clip_model: the CLIP image and text towers.
            visual_decoder, cross_decoder: two :class:`CharacterDecoder` of equal settings.
            charset: training charset (the decoders' output characters, in id order).
            test_charset: charset of the adapter applied to the visual prediction before it is
                given to the text encoder (official: the 36-character test charset).
            pixel_mean, pixel_std: RGB statistics in 0-255 units that :meth:`normalize` uses.
            max_label_length: longest label (25); decoding has max_label_length + 1 slots.
            text_context_length: BPE tokens of the cross-modal text (16).
            perm_num, perm_forward, perm_mirrored: permutation language modelling (6, True, True).
            refine_iters: cloze refinement passes at inference (1). Refinement reads each slot with
                every other slot as context, which the decoders only learn from random orders:
                with perm_num <= 2 (canonical and reverse only) it hurts, and a warning says so.
            image_detach: the cross-modal loss sends no gradient into the image encoder (True).
            cross_loss_weight: weight of the cross-modal loss (1.0).
            ctc_loss_weight: weight of the auxiliary CTC loss on the image-token columns
                (:class:`ColumnCTCHead`; not in CLIP4STR, for towers trained from random weights);
                0 (default) builds no CTC head.
        """
        super().__init__()
        self.clip_model = clip_model
        self.visual_decoder = visual_decoder
        self.cross_decoder = cross_decoder
        self.tokenizer = CharsetTokenizer(charset)
        self.label_adapter = CharsetAdapter(charset)
        self.text_adapter = CharsetAdapter(test_charset)
        for name, decoder in (("visual_decoder", visual_decoder), ("cross_decoder", cross_decoder)):
            if decoder.head.out_features != self.tokenizer.num_classes:
                raise ValueError(
                    f"{name} predicts {decoder.head.out_features} classes; the charset needs "
                    f"{self.tokenizer.num_classes} (EOS + {len(charset)} characters)"
                )
            if decoder.num_positions != max_label_length + 1:
                raise ValueError(
                    f"{name} has {decoder.num_positions} position queries, expected {max_label_length + 1}"
                )
        self.max_label_length = max_label_length
        self.text_context_length = text_context_length
        self.perm_num = perm_num
        self.perm_forward = perm_forward
        self.perm_mirrored = perm_mirrored
        self.refine_iters = refine_iters
        if refine_iters > 0 and perm_forward and perm_num <= 2:
            logger.warning(
                f"CLIP4STR: refine_iters={refine_iters} with perm_num={perm_num}: the decoders train on the "
                "left-to-right (and right-to-left) context only, never on the cloze context that refinement "
                "reads; on the tiny synthetic model refinement lowered word accuracy (87.0 -> 83.6 %). "
                "Set MODEL.RECOGNIZER.REFINE_ITERS 0, or train with more permutations"
            )
        self.image_detach = image_detach
        self.cross_loss_weight = cross_loss_weight
        if ctc_loss_weight < 0:
            raise ValueError(f"ctc_loss_weight must be >= 0, got {ctc_loss_weight}")
        self.ctc_loss_weight = ctc_loss_weight
        self.ctc_head = (
            ColumnCTCHead(clip_model.embed_dim, self.tokenizer.num_classes) if ctc_loss_weight > 0 else None
        )
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std, dtype=torch.float32).view(-1, 1, 1), False)

    @classmethod
    def from_config(cls, cfg):
        rc = cfg.MODEL.RECOGNIZER
        charset = load_charset(rc.CHARSET)
        clip_model = CLIPVisionTextModel(
            image_size=tuple(rc.IMAGE_SIZE),
            patch_size=tuple(rc.PATCH_SIZE),
            vision_width=rc.VISION_WIDTH,
            vision_layers=rc.VISION_LAYERS,
            vision_heads=rc.VISION_HEADS,
            embed_dim=rc.EMBED_DIM,
            text_width=rc.TEXT_WIDTH,
            text_layers=rc.TEXT_LAYERS,
            text_heads=rc.TEXT_HEADS,
            text_max_length=rc.TEXT_MAX_LENGTH,
            vocab_size=rc.VOCAB_SIZE,
            quick_gelu=rc.QUICK_GELU,
            text_freeze_layers=rc.TEXT_FREEZE_LAYERS,
            patch_embed=rc.PATCH_EMBED,
        )
        if rc.CLIP_WEIGHTS and rc.PATCH_EMBED != "linear":
            raise ValueError(
                f"MODEL.RECOGNIZER.CLIP_WEIGHTS={rc.CLIP_WEIGHTS!r} with PATCH_EMBED={rc.PATCH_EMBED!r}: CLIP "
                "checkpoints hold a linear patch embedding; set PATCH_EMBED 'linear' to load them"
            )
        if rc.CLIP_WEIGHTS:
            load_clip4str_clip_weights(rc.CLIP_WEIGHTS, clip_model)
        else:
            logger.warning(
                "MODEL.RECOGNIZER.CLIP_WEIGHTS is empty: the recognizer's CLIP ViT and text encoder keep "
                "their random init (fine for the synthetic CPU configs, not for the paper's results)"
            )

        def decoder():
            return CharacterDecoder(
                embed_dim=clip_model.embed_dim,
                num_tokens=len(charset) + 3,
                num_classes=len(charset) + 1,
                max_label_length=rc.MAX_LABEL_LENGTH,
                num_layers=rc.DECODER_LAYERS,
                num_heads=rc.DECODER_HEADS,
                mlp_ratio=rc.DECODER_MLP_RATIO,
                dropout=rc.DECODER_DROPOUT,
            )

        return {
            "clip_model": clip_model,
            "visual_decoder": decoder(),
            "cross_decoder": decoder(),
            "charset": charset,
            "test_charset": load_charset(rc.TEST_CHARSET),
            "pixel_mean": rc.PIXEL_MEAN,
            "pixel_std": rc.PIXEL_STD,
            "max_label_length": rc.MAX_LABEL_LENGTH,
            "text_context_length": rc.TEXT_CONTEXT_LENGTH,
            "perm_num": rc.PERM_NUM,
            "perm_forward": rc.PERM_FORWARD,
            "perm_mirrored": rc.PERM_MIRRORED,
            "refine_iters": rc.REFINE_ITERS,
            "image_detach": rc.IMAGE_DETACH,
            "cross_loss_weight": rc.CROSS_LOSS_WEIGHT,
            "ctc_loss_weight": rc.CTC_LOSS_WEIGHT,
        }

    # ---------------------------------------------------------------------------------------------
    @property
    def input_size(self) -> Tuple[int, int]:
        """(H, W) of the crops the image encoder takes."""
        return self.clip_model.input_size

    @property
    def charset(self) -> str:
        return self.tokenizer.charset

    @property
    def num_steps(self) -> int:
        """Decoding slots: max label length + 1 (EOS)."""
        return self.max_label_length + 1

    @property
    def loss_names(self) -> Tuple[str, ...]:
        """Keys of :meth:`recognition_losses`: visual, cross-modal, and CTC when the head is built."""
        return ("loss_visual", "loss_cross_modal") + (("loss_ctc",) if self.ctc_head is not None else ())

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB in 0-255 (any dtype) -> normalized float crops."""
        return (images.to(self.pixel_mean.dtype) - self.pixel_mean) / self.pixel_std

    def text_memory(self, image_features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Cross-modal memory ``[F_img, F_txt]`` from image tokens and a visual prediction.

        Args:
            image_features: (B, N, D) image tokens.
            logits: (B, L, C) visual logits; their greedy strings, adapted to the test charset and
                BPE-tokenized to ``text_context_length`` tokens, feed the text encoder.

        Returns:
            (B, N + text_context_length, D); the image part is detached when ``image_detach``.
        """
        texts, _, _ = self.tokenizer.decode(logits.detach())
        texts = [self.text_adapter(t) for t in texts]
        token_ids = bpe_tokenizer()(texts, context_length=self.text_context_length).to(image_features.device)
        text_features = self.clip_model.encode_text(token_ids)
        if self.image_detach:
            image_features = image_features.detach()
        return torch.cat([image_features, text_features], dim=1)

    def prepare_labels(self, labels: Sequence[str]) -> Tuple[List[str], torch.Tensor]:
        """Adapt labels to the charset; drop (with a counted warning) those that are empty or too long.

        Returns:
            (kept labels, bool mask (B,) of the kept samples).
        """
        adapted = [self.label_adapter("".join(label.split())) for label in labels]
        keep = [0 < len(label) <= self.max_label_length for label in adapted]
        num_dropped = len(keep) - sum(keep)
        if num_dropped:
            log_every_n_seconds(
                logging.WARNING,
                f"{num_dropped} of {len(labels)} training labels dropped: empty after removing characters "
                f"outside the charset, or longer than {self.max_label_length} (e.g. "
                f"{[l for l, k in zip(labels, keep) if not k][:3]})",
                n=30,
                name=__name__,
            )
            try:
                get_event_storage().put_scalar("recognizer/dropped_labels", num_dropped, smoothing_hint=False)
            except AssertionError:  # no EventStorage outside a trainer
                pass
        return [label for label, k in zip(adapted, keep) if k], torch.tensor(keep, dtype=torch.bool)

    def recognition_losses(
        self, images: torch.Tensor, labels: Sequence[str], generator: Optional[torch.Generator] = None
    ) -> Dict[str, torch.Tensor]:
        """Permutation language modelling losses of both decoders (official ``training_step``).

        For each permutation: the visual decoder reads the ground-truth context under the
        permutation's masks; the cross-modal decoder reads the same context, its memory holding
        the text of that teacher-forced visual prediction. Each CE term is weighted by n, the
        number of non-padding targets; after the first two permutations EOS targets become padding.

        Args:
            images: (B, 3, H, W) normalized crops.
            labels: B transcriptions; characters outside the charset are removed, and labels that
                end up empty or longer than ``max_label_length`` are left out (counted, logged).
            generator: random generator of the permutations.

        Returns:
            {"loss_visual": sum_p n_p CE_v / sum_p n_p,
             "loss_cross_modal": cross_loss_weight * sum_p n_p CE_c / sum_p n_p},
            plus "loss_ctc" (ctc_loss_weight x CTC per character) when the CTC head is built.
        """
        if len(labels) != images.shape[0]:
            raise ValueError(f"recognition_losses: {images.shape[0]} images but {len(labels)} labels")
        labels, keep = self.prepare_labels(labels)
        if not labels:
            zero = sum(p.sum() for p in self.visual_decoder.head.parameters()) * 0.0
            zero = zero + sum(p.sum() for p in self.cross_decoder.head.parameters()) * 0.0
            losses = {"loss_visual": zero, "loss_cross_modal": zero.clone()}
            if self.ctc_head is not None:
                losses["loss_ctc"] = sum(p.sum() for p in self.ctc_head.parameters()) * 0.0
            return losses
        images = images[keep.to(images.device)]
        tokens = self.tokenizer.encode(labels, device=images.device)  # (B, T + 2)
        memory = self.clip_model.encode_image(images)
        perms = generate_permutations(
            tokens.shape[1] - 2,
            num_perms=self.perm_num,
            forward=self.perm_forward,
            mirrored=self.perm_mirrored,
            generator=generator,
        ).to(images.device)
        tokens_in, targets = tokens[:, :-1], tokens[:, 1:]
        pad_id, eos_id = self.tokenizer.pad_id, self.tokenizer.eos_id
        padding = (tokens_in == pad_id) | (tokens_in == eos_id)
        num_targets = (targets != pad_id).sum()
        loss_visual = loss_cross = total = 0
        for i, perm in enumerate(perms):
            content_mask, query_mask = permutation_attention_masks(perm)
            masks = dict(content_mask=content_mask, query_mask=query_mask, padding_mask=padding)
            logits_v, _ = self.visual_decoder(tokens_in, memory, **masks)
            loss_visual = loss_visual + num_targets * F.cross_entropy(
                logits_v.flatten(0, 1), targets.flatten(), ignore_index=pad_id
            )
            logits_c, _ = self.cross_decoder(tokens_in, self.text_memory(memory, logits_v), **masks)
            loss_cross = loss_cross + num_targets * F.cross_entropy(
                logits_c.flatten(0, 1), targets.flatten(), ignore_index=pad_id
            )
            total = total + num_targets
            if i == 1:  # EOS is learned from the canonical and the reverse order only
                targets = torch.where(targets == eos_id, pad_id, targets)
                num_targets = (targets != pad_id).sum()
        losses = {
            "loss_visual": loss_visual / total,
            "loss_cross_modal": self.cross_loss_weight * loss_cross / total,
        }
        if self.ctc_head is not None:
            chars = tokens[:, 1:-1]
            chars = torch.where((chars >= 1) & (chars <= len(self.charset)), chars, torch.zeros_like(chars))
            losses["loss_ctc"] = self.ctc_loss_weight * self.ctc_head.loss(memory, self.clip_model.visual.grid_size, chars)
        return losses

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Dual predict-and-refine decoding (official ``VL4STR.forward`` order).

        1. F_img = encode(images).
        2. Visual decoder, greedy autoregressive, early stop once every sequence has an EOS: y_v
           with L <= max_label_length + 1 slots.
        3. Cross decoder, greedy autoregressive for the same L slots (no early stop), memory
           ``[F_img, F_txt(y_v)]``: y_c.
        4. ``refine_iters`` times: visual cloze refinement of y_v (all slots queried); the text
           encoder runs again on the refined y_v; cross cloze refinement of y_c with that memory.
        5. Output y_c (the visual prediction is not fused with it).

        Args:
            images: (B, 3, H, W) normalized crops.

        Returns:
            (B, L, C) logits of the cross-modal decoder; L = max_label_length + 1 when
            ``refine_iters > 0``.
        """
        ids = dict(bos_id=self.tokenizer.bos_id, eos_id=self.tokenizer.eos_id)
        memory = self.clip_model.encode_image(images)
        logits_v = autoregressive_decode(
            self.visual_decoder, memory, self.num_steps, pad_id=self.tokenizer.pad_id, stop_at_eos=True, **ids
        )
        cross_memory = self.text_memory(memory, logits_v)
        logits_c = autoregressive_decode(
            self.cross_decoder, cross_memory, logits_v.shape[1], pad_id=self.tokenizer.pad_id, stop_at_eos=False, **ids
        )
        for _ in range(self.refine_iters):
            logits_v = refine_decode(self.visual_decoder, memory, logits_v, self.num_steps, **ids)
            cross_memory = self.text_memory(memory, logits_v)
            logits_c = refine_decode(self.cross_decoder, cross_memory, logits_c, self.num_steps, **ids)
        return logits_c

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> Tuple[List[str], torch.Tensor, List[torch.Tensor]]:
        """Strings, confidences and per-character scores (see :meth:`CharsetTokenizer.decode`).

        Args:
            images: (N, 3, H, W) normalized crops; N may be 0.

        Returns:
            texts (N strings over the training charset), scores (N,), char_scores (N tensors).
        """
        if images.shape[0] == 0:
            return [], images.new_zeros(0), []
        texts, char_scores, scores = self.tokenizer.decode(self(images).softmax(-1))
        return texts, scores, char_scores

    def recognize(self, images: torch.Tensor) -> Tuple[List[str], torch.Tensor]:
        """
        Args:
            images: (N, 3, H, W) normalized crops of :attr:`input_size`; N may be 0.

        Returns:
            (N strings over the training charset, (N,) confidences: the product of the
            per-character maximum probabilities, EOS included).
        """
        texts, scores, _ = self.predict(images)
        return texts, scores


def build_clip4str_recognizer(cfg) -> CLIP4STR:
    """The CLIP4STR recognizer of ``cfg.MODEL.RECOGNIZER`` (CLIP weights loaded when configured)."""
    return CLIP4STR(cfg)


def load_clip4str_clip_weights(path: str, clip_model: CLIPVisionTextModel) -> CLIPLoadResult:
    """Load a CLIP ViT checkpoint (OpenAI TorchScript ``ViT-B-16.pt`` or open_clip state dict).

    The ViT positional table is resized bilinearly when the checkpoint's patch grid differs from
    the model's; the text positional table is cut to the model's rows. Any other shape mismatch
    is an error.

    Returns:
        :class:`CLIPLoadResult` with names relative to `clip_model`.

    Raises:
        FileNotFoundError, ValueError: unreadable file or mismatching shapes (the message names the file).
    """
    state_dict = read_clip_state_dict(path)
    own = clip_model.state_dict()
    fitted, unexpected = {}, []
    for key, value in state_dict.items():
        if not (key.startswith("visual.") or key.startswith(_TEXT_KEYS)) or key not in own:
            unexpected.append(key)
            continue
        target = own[key].shape
        if value.shape != target:
            if key == "visual.positional_embedding" and value.shape[1] == target[1]:
                grid = clip_model.visual.grid_size
                value = resize_attnpool_positional_embedding(value, grid[0], grid[1])
                logger.info(f"Resized {key} of {path} to the {grid[0]}x{grid[1]} patch grid")
            elif key == "positional_embedding" and value.shape[0] >= target[0] and value.shape[1] == target[1]:
                value = value[: target[0]]
            else:
                raise ValueError(
                    f"CLIP weights file {path!r}: '{key}' has shape {tuple(value.shape)}, the recognizer expects "
                    f"{tuple(target)}; check MODEL.RECOGNIZER.{{VISION,TEXT}}_* / EMBED_DIM / PATCH_SIZE"
                )
        fitted[key] = value
    result = clip_model.load_state_dict(fitted, strict=False)
    if not any(k.startswith("visual.") for k in fitted):
        raise ValueError(f"CLIP weights file {path!r} holds no ViT image tower ('visual.conv1.weight', ...)")
    if result.missing_keys:
        logger.warning(
            f"CLIP weights {path}: {len(result.missing_keys)} missing keys (random init): {result.missing_keys}"
        )
    if unexpected:
        logger.info(f"CLIP weights {path}: {len(unexpected)} entries unused by the recognizer: {unexpected[:10]}")
    logger.info(f"Loaded the recognizer's CLIP weights from {path}")
    return CLIPLoadResult(list(result.missing_keys), unexpected)


def clip4str_param_groups_from_config(model: CLIP4STR, cfg) -> List[Dict]:
    """:func:`clip4str_param_groups` with ``SOLVER.BASE_LR``, ``SOLVER.WEIGHT_DECAY`` and ``SOLVER.RECOGNIZER.*``."""
    return clip4str_param_groups(
        model,
        base_lr=cfg.SOLVER.BASE_LR,
        weight_decay=cfg.SOLVER.WEIGHT_DECAY,
        decoder_lr_factor=cfg.SOLVER.RECOGNIZER.DECODER_LR_FACTOR,
        betas=tuple(cfg.SOLVER.RECOGNIZER.BETAS),
        eps=cfg.SOLVER.RECOGNIZER.EPS,
    )


def clip4str_param_groups(
    model: CLIP4STR,
    *,
    base_lr: float,
    weight_decay: float,
    decoder_lr_factor: float = 19.0,
    betas: Tuple[float, float] = (0.9, 0.98),
    eps: float = 1e-6,
) -> List[Dict]:
    """The official four AdamW groups: CLIP {no decay, decay} at `base_lr`, decoders at x19.

    Weight decay applies to trainable parameters with ndim >= 2 except ``pos_queries`` and the
    character embedding ``text_embed``; norms, biases and embeddings of ndim < 2 get none.
    ``betas`` / ``eps`` ride along in every group (used by Adam-type optimizers).

    Returns:
        list of ``{"params", "lr", "weight_decay", "betas", "eps"}``, empty groups left out.
    """
    groups = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        is_decoder = name.startswith(("visual_decoder.", "cross_decoder."))
        no_decay = param.ndim < 2 or "pos_queries" in name or "text_embed" in name
        groups.setdefault((is_decoder, no_decay), []).append(param)
    return [
        {
            "params": params,
            "lr": base_lr * (decoder_lr_factor if is_decoder else 1.0),
            "weight_decay": 0.0 if no_decay else weight_decay,
            "betas": tuple(betas),
            "eps": eps,
        }
        for (is_decoder, no_decay), params in sorted(groups.items())
    ]
