"""FastTCMTextRecognizer: the CLIP4STR scene-text recognizer as a detectron2 meta-architecture."""

from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY

from ..recognition.clip4str import CLIP4STR, build_clip4str_recognizer

__all__ = ["FastTCMTextRecognizer"]


@META_ARCH_REGISTRY.register()
class FastTCMTextRecognizer(nn.Module):
    """Word-crop CLIP4STR recognizer (docs/recognizer.md): batched detectron2 dicts in, losses or
    strings out.

    Each input dict holds ``"image"``, a (3, H, W) uint8 RGB crop (the STR mapper resizes crops to
    the recognizer's input size; other sizes are resized here, bicubic), and in training
    ``"text"``, its transcription. Crops are normalized with the recognizer's ``pixel_mean`` /
    ``pixel_std`` (``MODEL.RECOGNIZER.PIXEL_MEAN/STD``), not ``MODEL.PIXEL_MEAN/STD``.
    """

    @configurable
    def __init__(self, *, recognizer: CLIP4STR, input_format: str = "RGB"):
        """
        Args:
            recognizer: the CLIP4STR module.
            input_format: channel order of ``"image"``: "RGB" or "BGR" (flipped to RGB).
        """
        super().__init__()
        if input_format not in ("RGB", "BGR"):
            raise ValueError(
                f"FastTCMTextRecognizer: INPUT.FORMAT must be RGB or BGR, got {input_format!r}"
            )
        self.recognizer = recognizer
        self.input_format = input_format

    @classmethod
    def from_config(cls, cfg):
        return {"recognizer": build_clip4str_recognizer(cfg), "input_format": cfg.INPUT.FORMAT}

    @property
    def device(self) -> torch.device:
        return self.recognizer.pixel_mean.device

    @property
    def input_size(self) -> Tuple[int, int]:
        return self.recognizer.input_size

    def preprocess_image(self, batched_inputs: List[Dict]) -> torch.Tensor:
        """Stack, resize to the input size when needed, flip BGR->RGB, normalize:
        (B, 3, H, W) float."""
        size = self.input_size
        images = []
        for i, inp in enumerate(batched_inputs):
            image = inp["image"].to(self.device)
            if image.ndim != 3 or image.shape[0] != 3 or image.shape[1] == 0 or image.shape[2] == 0:
                raise ValueError(
                    f"FastTCMTextRecognizer: input {i} (image_id {inp.get('image_id')!r}) "
                    f"has an image of shape {tuple(image.shape)}; "
                    "expected a non-empty (3, H, W) crop"
                )
            image = image.float()
            if tuple(image.shape[1:]) != size:
                image = F.interpolate(image[None], size=size, mode="bicubic", align_corners=False)[
                    0
                ].clamp_(0, 255)
            images.append(image)
        images = torch.stack(images)
        if self.input_format == "BGR":
            images = images.flip(1)
        return self.recognizer.normalize(images)

    def forward(self, batched_inputs: List[Dict]):
        """
        Args:
            batched_inputs: dicts with "image" ((3, H, W) uint8 crop) and, in training, "text"
                (str).

        Returns:
            training: {"loss_visual", "loss_cross_modal"} (scalars).
            inference: one dict per input: "text" (str over the training charset), "score"
            (float, product of the per-character max probabilities, EOS included) and
            "char_scores" ((len(text) + 1,) float Tensor, the last entry the EOS probability).
        """
        images = self.preprocess_image(batched_inputs)
        if self.training:
            missing = [i for i, inp in enumerate(batched_inputs) if "text" not in inp]
            if missing:
                raise KeyError(
                    f"FastTCMTextRecognizer: training inputs {missing[:5]} have no 'text' label"
                )
            return self.recognizer.recognition_losses(
                images, [inp["text"] for inp in batched_inputs]
            )
        texts, scores, char_scores = self.recognizer.predict(images)
        return [
            {"text": text, "score": float(score), "char_scores": chars}
            for text, score, chars in zip(texts, scores.tolist(), char_scores)
        ]
