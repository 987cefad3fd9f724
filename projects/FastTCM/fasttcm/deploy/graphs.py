"""The tensor-in / tensor-out modules that are exported to ONNX, one per graph.

Each wraps the parts of a trained PyTorch model that run inside the exported graph; everything
else (resizing, padding, DB polygons, crop rectification, character decoding, rotated R-CNN heads)
runs outside it, in the code both backends share (see docs/deployment.md). Pixel normalization is
inside the graphs, so every graph takes pixels in 0-255.

* :class:`DetectorGraph`: image (B, 3, H, W) -> DB probability and threshold maps (B, 1, H, W);
* :class:`FeatureGraph`: image -> the backbone + FPN features (and, with a text branch, the class
  text embeddings the rotated ROI heads read);
* :class:`RecognizerImageGraph`: crops (N, 3, h, w) -> CLIP4STR image tokens (N, S, D);
* :class:`RecognizerTextGraph`: BPE ids (N, L) -> CLIP4STR text tokens (N, L, D);
* :class:`DecoderGraph`: one call of a CLIP4STR character decoder (visual or cross-modal);
* :class:`RecognizerCTCGraph`: image tokens (N, S, D) -> the CTC head's column log-probabilities
  (exported when the recognizer's confidences use them).

:func:`fold_text_embeddings` replaces the FastTCM text branch of a model copy by its cached
output, a constant, so that no text encoder is exported or run at inference.
"""

from typing import List, Tuple

import torch
from torch import nn

from ..modeling.recognition.decoder import CharacterDecoder
from ..modeling.tcm.backbone import FastTCMBackbone

__all__ = [
    "ConstantTextEmbedding",
    "DecoderGraph",
    "DetectorGraph",
    "FeatureGraph",
    "RecognizerCTCGraph",
    "RecognizerImageGraph",
    "RecognizerTextGraph",
    "fold_text_embeddings",
    "image_conditioned_text",
]


class ConstantTextEmbedding:
    """Stands in for a backbone's text-embedding cache in an export copy: always the same value.

    :class:`FastTCMBackbone` asks its cache for the image-independent text embedding t (1, K, D)
    (``get(dependencies, compute)``); this one never computes, so the text encoder, the prompts and
    the language prompt generator are not traced and t becomes a constant of the graph.
    """

    def __init__(self, value: torch.Tensor):
        self.value = value

    def get(self, dependencies, compute) -> torch.Tensor:
        return self.value

    def clear(self) -> None:
        pass


class _FoldedAway(nn.Module):
    """An empty module in place of a text-branch part whose output was folded into a constant."""

    def forward(self, *args, **kwargs):
        raise RuntimeError(
            "deploy.graphs: this text-branch module was folded into a constant for export and "
            "must not run"
        )


def image_conditioned_text(backbone: FastTCMBackbone) -> bool:
    """Whether the backbone's text embedding depends on the image (MODE "tcm" with the LPG):
    then the text encoder runs for every image and cannot be folded."""
    return backbone.mode == "tcm" and backbone.language_prompt_generator is not None


@torch.no_grad()
def fold_text_embeddings(model: nn.Module) -> Tuple[int, int]:
    """Fold the cached text branch of every :class:`FastTCMBackbone` in `model` into a constant.

    Call it on an eval-mode copy that is about to be exported (it edits `model` in place). For each
    backbone whose text embedding does not depend on the image (MODE "fasttcm", or no language
    prompt generator), the embedding is computed once exactly as the eval-mode cache computes it,
    stored as a constant, and the text encoder, the prompt learner and the language prompt
    generator are replaced by empty modules, so none of their weights reaches the graph. In MODE
    "fasttcm" the bimodal similarity matching with each image's I-bar still runs in the graph.

    Returns:
        (number of backbones folded, number left with an image-conditioned text encoder).
    """
    folded = kept = 0
    for module in model.modules():
        if not isinstance(module, FastTCMBackbone) or module.mode == "none":
            continue
        if image_conditioned_text(module):
            kept += 1
            continue
        if module.training:
            raise ValueError("deploy.graphs.fold_text_embeddings: put the model in eval mode first")
        value = module._text_cache.get(
            module._text_dependencies(), module._shared_text_embeddings
        ).detach()
        module._text_cache = ConstantTextEmbedding(value.clone())
        module.text_encoder = _FoldedAway()
        module.prompt_learner = _FoldedAway()
        if module.language_prompt_generator is not None:
            module.language_prompt_generator = _FoldedAway()
        folded += 1
    return folded, kept


class _Normalize(nn.Module):
    """(x - mean) / std with per-channel buffers of shape (C, 1, 1)."""

    def __init__(self, pixel_mean: torch.Tensor, pixel_std: torch.Tensor):
        super().__init__()
        self.register_buffer("pixel_mean", pixel_mean.detach().clone().float().reshape(-1, 1, 1))
        self.register_buffer("pixel_std", pixel_std.detach().clone().float().reshape(-1, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return (pixels - self.pixel_mean) / self.pixel_std


class DetectorGraph(nn.Module):
    """DB text detector: pixels -> probability and threshold maps.

    Input ``image``: (B, 3, H, W) float32 pixels in 0-255, in the model's INPUT.FORMAT channel
    order, H and W multiples of the backbone's size divisibility (32). Pad a smaller image with
    the pixel mean: after the in-graph normalization the padding is 0, as in the PyTorch model
    (``ImageList.from_tensors`` pads the normalized image with zeros).

    Outputs ``prob`` and ``thresh``: (B, 1, H, W) sigmoid maps in the padded input's pixel frame.
    """

    def __init__(self, detector: nn.Module):
        """
        Args:
            detector: a :class:`~fasttcm.modeling.meta_arch.text_detector.FastTCMTextDetector` (or
                the spotter) in eval mode (``extract_features``, ``text_head``, ``pixel_mean``,
                ``pixel_std``).
        """
        super().__init__()
        self.normalize = _Normalize(detector.pixel_mean, detector.pixel_std)
        self.detector = detector

    def forward(self, image: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        features, _ = self.detector.extract_features(self.normalize(image))
        maps, _ = self.detector.text_head(features, return_all_maps=True)
        return maps["prob"], maps["thresh"]


class FeatureGraph(nn.Module):
    """Backbone + FPN of a detectron2 meta-architecture (the rotated R-CNN): pixels -> features.

    Input ``image`` as :class:`DetectorGraph`. Outputs: the backbone's features in
    ``feature_names`` order (e.g. p2..p6, (B, C, H/s, W/s)) and, when ``with_text`` is set, the
    class text embeddings ``text_embeddings`` (B, K, D) the rotated ROI heads score against.
    """

    def __init__(self, model: nn.Module, feature_names: List[str], with_text: bool):
        super().__init__()
        self.normalize = _Normalize(model.pixel_mean, model.pixel_std)
        self.backbone = model.backbone
        self.feature_names = list(feature_names)
        self.with_text = with_text

    def forward(self, image: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        x = self.normalize(image)
        if hasattr(self.backbone, "forward_with_aux"):
            features, aux = self.backbone.forward_with_aux(x)
        else:
            features, aux = self.backbone(x), {}
        outputs = tuple(features[name] for name in self.feature_names)
        if self.with_text:
            outputs = outputs + (aux["text_embeddings"],)
        return outputs


class RecognizerImageGraph(nn.Module):
    """CLIP4STR image tower: crops (N, 3, h, w) RGB 0-255 pixels -> image tokens (N, S, D)
    (S = 1 + h w / patch area), normalized with the recognizer's own pixel statistics."""

    def __init__(self, recognizer: nn.Module):
        super().__init__()
        self.normalize = _Normalize(recognizer.pixel_mean, recognizer.pixel_std)
        self.clip_model = recognizer.clip_model

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self.clip_model.encode_image(self.normalize(crops))


class RecognizerCTCGraph(nn.Module):
    """CLIP4STR's auxiliary CTC head: image tokens (N, S, D) -> log-probabilities (T, N, C), T the
    columns of the patch grid (:class:`~fasttcm.modeling.recognition.ctc_aux.ColumnCTCHead`)."""

    def __init__(self, recognizer: nn.Module):
        super().__init__()
        self.ctc_head = recognizer.ctc_head
        self.grid = tuple(int(g) for g in recognizer.clip_model.visual.grid_size)

    def forward(self, image_tokens: torch.Tensor) -> torch.Tensor:
        return self.ctc_head(image_tokens, self.grid)


class RecognizerTextGraph(nn.Module):
    """CLIP4STR text tower: BPE ids (N, L) int64 -> text tokens (N, L, D)."""

    def __init__(self, recognizer: nn.Module):
        super().__init__()
        self.clip_model = recognizer.clip_model

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        return self.clip_model.encode_text(token_ids)


class DecoderGraph(nn.Module):
    """One call of a two-stream character decoder, with every mask an input.

    Inputs: ``tokens`` (N, L) int64 context ``[BOS, t_1..t_{L-1}]``; ``memory`` (N, S, D);
    ``content_mask`` (L, L) and ``query_mask`` (Lq, L) additive float masks (0 or -inf);
    ``padding_mask`` (N, L) bool, True = ignore that context token; ``query_positions`` (Lq,)
    int64, the output slots queried (slot i predicts the token at position i + 1).
    Output ``logits``: (N, Lq, C).
    """

    def __init__(self, decoder: CharacterDecoder):
        super().__init__()
        self.decoder = decoder

    def forward(
        self,
        tokens: torch.Tensor,
        memory: torch.Tensor,
        content_mask: torch.Tensor,
        query_mask: torch.Tensor,
        padding_mask: torch.Tensor,
        query_positions: torch.Tensor,
    ) -> torch.Tensor:
        logits, _ = self.decoder(
            tokens,
            memory,
            content_mask=content_mask,
            query_mask=query_mask,
            padding_mask=padding_mask,
            query_slice=query_positions,  # a position tensor indexes pos_queries like a slice
        )
        return logits
