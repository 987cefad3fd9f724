"""``TextRecognizer``: the transcription of word crops."""

from typing import List

import numpy as np
import torch
from PIL import Image

from .base import LoadedImage, Predictor
from .results import Recognition

__all__ = ["TextRecognizer"]


class TextRecognizer(Predictor):
    """Strings of cropped words (CLIP4STR).

    Example::

        from fasttcm import TextRecognizer
        reader = TextRecognizer("TextRecognition/clip4str_vitb16_real", "model_final.pth")
        for crop in reader(["word1.png", "word2.png"]): print(crop.text, crop.score)

    Each crop is squashed to the recognizer's input size (``MODEL.RECOGNIZER.IMAGE_SIZE``) with
    PIL's bicubic resize, as the recognition test mapper does, and the crops of a call are read
    together, ``batch_size`` at a time (default 64 here: crops are small).

    Arguments: those of :class:`~fasttcm.api.base.Predictor`. Serves recognizer configs
    (``TextRecognition/``) and spotter configs (their recognizer).

    Returns (a call):
        a :class:`~fasttcm.api.results.Recognition` (``text``, ``score``) per crop.
    """

    architectures = ("FastTCMTextRecognizer", "FastTCMTextSpotter")

    def __init__(self, config, weights, *, batch_size: int = 64, **kwargs):
        super().__init__(config, weights, batch_size=batch_size, **kwargs)

    def crop_tensor(self, rgb: np.ndarray) -> torch.Tensor:
        """``(3, h, w)`` float32 RGB 0-255 of a crop at the recognizer's input size."""
        height, width = self.runner.recognizer_input_size
        if rgb.shape[:2] != (height, width):
            rgb = np.asarray(Image.fromarray(rgb).resize((width, height), Image.BICUBIC))
        return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float()

    def _predict(self, images: List[LoadedImage]) -> List[Recognition]:
        crops = torch.stack([self.crop_tensor(rgb) for rgb, _ in images])
        texts, scores = self.runner.read(crops)
        return [
            Recognition(text, float(score), source)
            for text, score, (_, source) in zip(texts, scores, images)
        ]
