"""CLIP4STR: a CLIP ViT image encoder, a visual and a cross-modal two-stream character decoder.

The official ``VL4STR`` model, built on PARSeq. Per image, with D the CLIP joint-embedding width
(512 for ViT-B/16) and C = 95 classes (EOS + 94 characters)::

    crop (3, H, W) --CLIP ViT, every token, ln_post, proj--> F_img (1 + HW/p^2, D)
    F_img --visual decoder--> y_v (<=26, C)
    argmax(y_v) -> string -> test-charset adapter -> CLIP BPE (16 tokens)
        --CLIP text encoder, every token, ln_final, text_projection--> F_txt (16, D)
    [stopgrad(F_img), F_txt] --cross-modal decoder--> y_c (<=26, C)   <- the output

The towers are :class:`~fasttcm.modeling.clip.vision_text_model.CLIPVisionTextModel`, the
decoders :class:`~fasttcm.modeling.recognition.decoder.CharacterDecoder`. Parameter names follow
the official checkpoints (``clip_model.visual.*``, ``clip_model.transformer.resblocks.*``,
``visual_decoder.layers.0.*``, ``cross_decoder.*``), so a CLIP4STR checkpoint maps onto
:class:`CLIP4STR` one to one. CLIP weights come from a local file
(``MODEL.RECOGNIZER.CLIP_WEIGHTS``); nothing is downloaded.
"""

import logging
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from detectron2.config import configurable
from detectron2.utils.events import get_event_storage
from detectron2.utils.logger import log_every_n_seconds

from ...structures.charset import CharsetAdapter, load_charset
from ..clip.tokenizer import bpe_tokenizer
from ..clip.vision_text_model import CLIPVisionTextModel
from ..clip.vision_text_weights import load_clip4str_clip_weights
from .ctc_aux import ColumnCTCHead, ctc_weighted_confidences
from .decoder import CharacterDecoder
from .decoding import autoregressive_decode, refine_decode
from .plm import generate_permutations, permutation_attention_masks
from .tokenizer import CharsetTokenizer

__all__ = ["CLIP4STR", "build_clip4str_recognizer"]

logger = logging.getLogger(__name__)


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
        ctc_confidence_weight: float = 0.0,
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
            ctc_confidence_weight: w; at inference a reading's confidence is the decoder's
                times the CTC head's probability of that string to the power w (0 = the
                decoder's alone; needs the CTC head, ``ctc_loss_weight > 0``).
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
                    f"{name} has {decoder.num_positions} position queries, "
                    f"expected {max_label_length + 1}"
                )
        self.max_label_length = max_label_length
        self.text_context_length = text_context_length
        self.perm_num = perm_num
        self.perm_forward = perm_forward
        self.perm_mirrored = perm_mirrored
        self.refine_iters = refine_iters
        if refine_iters > 0 and perm_forward and perm_num <= 2:
            logger.warning(
                f"CLIP4STR: refine_iters={refine_iters} with perm_num={perm_num}: the decoders "
                "train on the left-to-right (and right-to-left) context only, never on the cloze "
                "context that refinement reads; on the tiny synthetic model refinement lowered "
                "word accuracy (87.0 -> 83.6 %). Set MODEL.RECOGNIZER.REFINE_ITERS 0, or train "
                "with more permutations"
            )
        self.image_detach = image_detach
        self.cross_loss_weight = cross_loss_weight
        if ctc_loss_weight < 0:
            raise ValueError(f"ctc_loss_weight must be >= 0, got {ctc_loss_weight}")
        self.ctc_loss_weight = ctc_loss_weight
        self.ctc_head = (
            ColumnCTCHead(clip_model.embed_dim, self.tokenizer.num_classes)
            if ctc_loss_weight > 0
            else None
        )
        if ctc_confidence_weight < 0:
            raise ValueError(f"ctc_confidence_weight must be >= 0, got {ctc_confidence_weight}")
        if ctc_confidence_weight > 0 and self.ctc_head is None:
            raise ValueError(
                f"ctc_confidence_weight={ctc_confidence_weight} needs the CTC head, which is "
                "built only with ctc_loss_weight > 0 (MODEL.RECOGNIZER.CTC_LOSS_WEIGHT)"
            )
        self.ctc_confidence_weight = float(ctc_confidence_weight)
        self.register_buffer(
            "pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32).view(-1, 1, 1), False
        )
        self.register_buffer(
            "pixel_std", torch.tensor(pixel_std, dtype=torch.float32).view(-1, 1, 1), False
        )

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
                f"MODEL.RECOGNIZER.CLIP_WEIGHTS={rc.CLIP_WEIGHTS!r} with "
                f"PATCH_EMBED={rc.PATCH_EMBED!r}: CLIP checkpoints hold a linear patch embedding; "
                "set PATCH_EMBED 'linear' to load them"
            )
        if rc.CLIP_WEIGHTS:
            load_clip4str_clip_weights(rc.CLIP_WEIGHTS, clip_model)
        else:
            logger.warning(
                "MODEL.RECOGNIZER.CLIP_WEIGHTS is empty: the recognizer's CLIP ViT and text "
                "encoder keep their random init (fine for the synthetic CPU configs, not for the "
                "paper's results)"
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
            "ctc_confidence_weight": rc.CTC_CONFIDENCE_WEIGHT,
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
        """Keys of :meth:`recognition_losses`: visual, cross-modal, and CTC if the head is built."""
        return ("loss_visual", "loss_cross_modal") + (
            ("loss_ctc",) if self.ctc_head is not None else ()
        )

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
        token_ids = bpe_tokenizer()(texts, context_length=self.text_context_length).to(
            image_features.device
        )
        text_features = self.clip_model.encode_text(token_ids)
        if self.image_detach:
            image_features = image_features.detach()
        return torch.cat([image_features, text_features], dim=1)

    def prepare_labels(self, labels: Sequence[str]) -> Tuple[List[str], torch.Tensor]:
        """Adapt labels to the charset; drop (with a counted warning) empty or too long ones.

        Args:
            labels: B transcriptions.

        Returns:
            (kept labels, bool mask (B,) of the kept samples).
        """
        adapted = [self.label_adapter("".join(label.split())) for label in labels]
        keep = [0 < len(label) <= self.max_label_length for label in adapted]
        num_dropped = len(keep) - sum(keep)
        if num_dropped:
            log_every_n_seconds(
                logging.WARNING,
                f"{num_dropped} of {len(labels)} training labels dropped: empty after removing "
                f"characters outside the charset, or longer than {self.max_label_length} (e.g. "
                f"{[lab for lab, k in zip(labels, keep) if not k][:3]})",
                n=30,
                name=__name__,
            )
            try:
                get_event_storage().put_scalar(
                    "recognizer/dropped_labels", num_dropped, smoothing_hint=False
                )
            except AssertionError:  # no EventStorage outside a trainer
                pass
        return [label for label, k in zip(adapted, keep) if k], torch.tensor(keep, dtype=torch.bool)

    def recognition_losses(
        self,
        images: torch.Tensor,
        labels: Sequence[str],
        generator: Optional[torch.Generator] = None,
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
            raise ValueError(
                f"recognition_losses: {images.shape[0]} images but {len(labels)} labels"
            )
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
            chars = torch.where(
                (chars >= 1) & (chars <= len(self.charset)), chars, torch.zeros_like(chars)
            )
            losses["loss_ctc"] = self.ctc_loss_weight * self.ctc_head.loss(
                memory, self.clip_model.visual.grid_size, chars
            )
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
        return self._decode(images)[0]

    def _decode(self, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward`, also returning the image tokens F_img (B, S, D) it decoded from."""
        ids = dict(bos_id=self.tokenizer.bos_id, eos_id=self.tokenizer.eos_id)
        memory = self.clip_model.encode_image(images)
        logits_v = autoregressive_decode(
            self.visual_decoder,
            memory,
            self.num_steps,
            pad_id=self.tokenizer.pad_id,
            stop_at_eos=True,
            **ids,
        )
        cross_memory = self.text_memory(memory, logits_v)
        logits_c = autoregressive_decode(
            self.cross_decoder,
            cross_memory,
            logits_v.shape[1],
            pad_id=self.tokenizer.pad_id,
            stop_at_eos=False,
            **ids,
        )
        for _ in range(self.refine_iters):
            logits_v = refine_decode(self.visual_decoder, memory, logits_v, self.num_steps, **ids)
            cross_memory = self.text_memory(memory, logits_v)
            logits_c = refine_decode(
                self.cross_decoder, cross_memory, logits_c, self.num_steps, **ids
            )
        return logits_c, memory

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> Tuple[List[str], torch.Tensor, List[torch.Tensor]]:
        """Strings, confidences and per-character scores (see :meth:`CharsetTokenizer.decode`).

        Args:
            images: (N, 3, H, W) normalized crops; N may be 0.

        Returns:
            texts (N strings over the training charset), scores (N,), char_scores (N tensors).
            With ``ctc_confidence_weight`` w > 0 a score is the decoder's confidence times the
            CTC head's probability of the same string to the power w
            (:func:`~.ctc_aux.ctc_weighted_confidences`); char_scores stay the decoder's.
        """
        if images.shape[0] == 0:
            return [], images.new_zeros(0), []
        logits, memory = self._decode(images)
        probs = logits.softmax(-1)
        texts, char_scores, scores = self.tokenizer.decode(probs)
        if self.ctc_confidence_weight > 0:
            _, ids, lengths = self.tokenizer.greedy_ids(probs)
            log_probs = self.ctc_head(memory, self.clip_model.visual.grid_size)
            scores = ctc_weighted_confidences(
                scores, ids, lengths, log_probs, self.ctc_confidence_weight
            )
        return texts, scores, char_scores

    def recognize(self, images: torch.Tensor) -> Tuple[List[str], torch.Tensor]:
        """
        Args:
            images: (N, 3, H, W) normalized crops of :attr:`input_size`; N may be 0.

        Returns:
            (N strings over the training charset, (N,) confidences: the product of the
            per-character maximum probabilities, EOS included, times the CTC support of
            :meth:`predict` when ``ctc_confidence_weight`` > 0).
        """
        texts, scores, _ = self.predict(images)
        return texts, scores


def build_clip4str_recognizer(cfg) -> CLIP4STR:
    """The CLIP4STR recognizer of ``cfg.MODEL.RECOGNIZER`` (CLIP weights loaded when configured)."""
    return CLIP4STR(cfg)
