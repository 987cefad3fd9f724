"""``FastTCMPredictor``: one image in, the model's predictions out (detectron2's DefaultPredictor,
with safe, complete weight loading)."""

import numpy as np
import torch

from detectron2.data import MetadataCatalog
from detectron2.modeling import build_model

from ..data.transforms import build_test_resize
from .checkpoint import AtomicDetectionCheckpointer

__all__ = ["FastTCMPredictor", "predict_image"]


def predict_image(model, aug, input_format: str, original_image: np.ndarray) -> dict:
    """One (H, W, 3) uint8 BGR image through the test resize `aug` and `model` (which sees
    `input_format`, "RGB" or "BGR"); the model's output dict, in the original image's pixels."""
    with torch.no_grad():
        if input_format == "RGB":
            original_image = original_image[:, :, ::-1]
        height, width = original_image.shape[:2]
        image = aug.get_transform(original_image).apply_image(original_image)
        image = torch.as_tensor(image.astype("float32").transpose(2, 0, 1))
        return model([{"image": image, "height": height, "width": width}])[0]


class FastTCMPredictor:
    """Build the model of `cfg`, load ``MODEL.WEIGHTS`` and run it on single images.

    Differs from detectron2's ``DefaultPredictor`` only in how weights are read:
    :meth:`AtomicDetectionCheckpointer.load_trained_weights` reads them without running code from
    the file and refuses weights that leave any model tensor missing or mis-shaped, so a model is
    never served half random.

    Args:
        cfg: a frozen or unfrozen config (cloned).

    Raises:
        IncompleteWeightsError: ``MODEL.WEIGHTS`` is empty or incomplete for this model.
    """

    def __init__(self, cfg):
        self.cfg = cfg.clone()
        self.model = build_model(self.cfg)
        self.model.eval()
        if len(cfg.DATASETS.TEST):
            self.metadata = MetadataCatalog.get(cfg.DATASETS.TEST[0])
        AtomicDetectionCheckpointer(self.model).load_trained_weights(cfg.MODEL.WEIGHTS)
        self.aug = build_test_resize(cfg)
        self.input_format = cfg.INPUT.FORMAT
        if self.input_format not in ("RGB", "BGR"):
            raise ValueError(f"INPUT.FORMAT must be RGB or BGR, got {self.input_format!r}")

    def __call__(self, original_image: np.ndarray) -> dict:
        """Predictions for one (H, W, 3) uint8 image in BGR channel order.

        Returns:
            the model's output dict for this image (e.g. ``{"instances": Instances}``), in the
            original image's pixel frame.
        """
        return predict_image(self.model, self.aug, self.input_format, original_image)
