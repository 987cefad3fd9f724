"""Drawing FastTCM predictions with detectron2's :class:`Visualizer`.

* text (detector / spotter): polygon outline, translucent fill, label ``"{text} {score:.2f}"``;
* oriented objects (DOTA): ``draw_rotated_box_with_label`` with the metadata's class names and
  colours; boxes are detectron2 XYWHA (cx, cy, w, h, angle in degrees, counter-clockwise).

Predictions are in absolute pixels of the original image; a `coord_scale` draws them on a
resized copy (:func:`downscale_for_drawing` makes one for images too large to draw in full:
matplotlib's canvas holds 4 bytes per pixel and copies of it).
"""

from typing import Optional, Tuple

import cv2
import numpy as np

from detectron2.utils.visualizer import ColorMode, Visualizer

__all__ = ["FastTCMVisualizer", "downscale_for_drawing", "instances_to_records"]

_TEXT_COLOR = (0.1, 0.9, 0.2)


class FastTCMVisualizer(Visualizer):
    """Visualizer that knows the ``polygons``/``texts`` and rotated-box outputs of FastTCM
    models."""

    def __init__(
        self, img_rgb: np.ndarray, metadata=None, scale: float = 1.0, instance_mode=ColorMode.IMAGE
    ):
        super().__init__(img_rgb, metadata, scale=scale, instance_mode=instance_mode)

    def draw_text_instances(
        self, instances, score_threshold: float = 0.0, coord_scale: float = 1.0
    ):
        """Draw ``instances.polygons`` (list of (N, 2) arrays) with score and, if present, text.

        Args:
            instances: predictions with ``polygons`` and optionally ``scores`` and ``texts``.
            score_threshold: predictions scored below it are not drawn.
            coord_scale: factor from the predictions' pixels to the drawn image's.
        """
        polygons = instances.polygons if instances.has("polygons") else []
        scores = instances.scores.tolist() if instances.has("scores") else [None] * len(polygons)
        texts = instances.texts if instances.has("texts") else [None] * len(polygons)
        for poly, score, text in zip(polygons, scores, texts):
            if score is not None and score < score_threshold:
                continue
            poly = np.asarray(poly, dtype=np.float64).reshape(-1, 2) * coord_scale
            if len(poly) < 3:
                continue
            self.draw_polygon(poly, color=_TEXT_COLOR, edge_color=_TEXT_COLOR, alpha=0.3)
            label = " ".join(
                s for s in ((text or ""), (f"{score:.2f}" if score is not None else "")) if s
            )
            if label:
                x, y = poly[:, 0].min(), poly[:, 1].min()
                self.draw_text(
                    label,
                    (x, y),
                    color=_TEXT_COLOR,
                    horizontal_alignment="left",
                    font_size=max(self._default_font_size * 0.8, 8),
                )
        return self.output

    def draw_rotated_instances(
        self, instances, score_threshold: float = 0.0, coord_scale: float = 1.0
    ):
        """Draw ``instances.pred_boxes`` (RotatedBoxes, XYWHA) with class names and scores.

        Args:
            instances: predictions with ``pred_boxes`` and optionally ``scores`` and
                ``pred_classes``.
            score_threshold: predictions scored below it are not drawn.
            coord_scale: factor from the predictions' pixels to the drawn image's (centre and
                size are scaled, the angle is kept).
        """
        boxes = instances.pred_boxes.tensor.cpu().numpy() if instances.has("pred_boxes") else []
        scores = instances.scores.tolist() if instances.has("scores") else [1.0] * len(boxes)
        classes = instances.pred_classes.tolist() if instances.has("pred_classes") else []
        names = self.metadata.get("thing_classes", None)
        colors = self.metadata.get("thing_colors", None)
        for i, (box, score) in enumerate(zip(boxes, scores)):
            if score < score_threshold:
                continue
            cls = classes[i] if i < len(classes) else None
            label = f"{names[cls] if names and cls is not None else cls} {score:.2f}"
            color = "g"
            if colors and cls is not None:
                color = tuple(c / 255.0 for c in colors[cls])
            box = [*(np.asarray(box[:4], dtype=np.float64) * coord_scale), float(box[4])]
            self.draw_rotated_box_with_label(box, edge_color=color, label=label)
        return self.output

    def draw_predictions(
        self, predictions: dict, score_threshold: float = 0.0, coord_scale: float = 1.0
    ):
        """Dispatch on what the model returned: text polygons or rotated boxes.

        Args:
            predictions: the model's output dict for one image (``"instances"``).
            score_threshold: predictions scored below it are not drawn.
            coord_scale: factor from the predictions' pixels to the drawn image's (see
                :func:`downscale_for_drawing`).

        Returns:
            the ``VisImage`` drawn on.
        """
        instances = predictions["instances"].to("cpu")
        if instances.has("polygons"):
            return self.draw_text_instances(instances, score_threshold, coord_scale)
        return self.draw_rotated_instances(instances, score_threshold, coord_scale)


def downscale_for_drawing(image: np.ndarray, max_side: int) -> Tuple[np.ndarray, float]:
    """A copy of `image` whose longer side is at most `max_side`, to draw predictions on.

    Args:
        image: ``(H, W, C)`` uint8.
        max_side: longest side drawn; 0 or less: no limit.

    Returns:
        ``(image, scale)``: `image` itself and 1.0 when it is small enough, else a copy resized by
        ``scale < 1`` (``cv2.INTER_AREA``); predictions are drawn with ``coord_scale=scale``.
    """
    height, width = image.shape[:2]
    if max_side <= 0 or max(height, width) <= max_side:
        return image, 1.0
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def instances_to_records(
    instances, score_threshold: float = 0.0, class_names: Optional[list] = None
):
    """JSON-serialisable list of predictions (polygons / rotated boxes, scores, texts, classes)."""
    instances = instances.to("cpu")
    records = []
    n = len(instances)
    scores = instances.scores.tolist() if instances.has("scores") else [1.0] * n
    for i in range(n):
        if scores[i] < score_threshold:
            continue
        rec = {"score": float(scores[i])}
        if instances.has("polygons"):
            rec["polygon"] = np.asarray(instances.polygons[i], dtype=float).reshape(-1, 2).tolist()
        elif instances.has("pred_boxes"):
            rec["rbox_xywha"] = [float(v) for v in instances.pred_boxes.tensor[i].tolist()]
        if instances.has("texts"):
            rec["text"] = instances.texts[i]
        if instances.has("pred_classes"):
            c = int(instances.pred_classes[i])
            rec["category_id"] = c
            if class_names:
                rec["category"] = class_names[c]
        records.append(rec)
    return records
