"""What the predictors return: plain Python dataclasses, JSON in and out, and a drawing.

Coordinates are absolute pixels of the original image the caller passed (after EXIF orientation
for files), ``x`` to the right and ``y`` down, whatever size the model ran at. Polygons are lists
of ``(x, y)`` tuples, clockwise on the image. Rotated boxes are detectron2's XYWHA: ``(cx, cy, w,
h, angle)``, the angle in degrees, counter-clockwise.

A result iterates over its instances (``for word in spotter("photo.jpg"): print(word.text)``),
converts with :meth:`~TextResult.to_dict` / :meth:`~TextResult.to_json` and back with
``from_dict`` / ``from_json``, and draws itself on its image with
:meth:`~TextResult.draw` (:mod:`fasttcm.utils.visualizer`).
"""

import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from detectron2.data.catalog import Metadata
from detectron2.structures import Instances, RotatedBoxes

from ..utils.visualizer import FastTCMVisualizer
from .images import to_rgb

__all__ = [
    "TextInstance",
    "TextResult",
    "OrientedInstance",
    "OrientedResult",
    "Recognition",
]

Point = Tuple[float, float]


def _points(polygon) -> List[Point]:
    return [(float(x), float(y)) for x, y in np.asarray(polygon, dtype=np.float64).reshape(-1, 2)]


def _drop_none(record: Dict[str, Any]) -> Dict[str, Any]:
    return {key: value for key, value in record.items() if value is not None}


class _ImageResult:
    """Shared behaviour of the per-image results: a sequence of instances with JSON and drawing.

    The image a result was predicted on is kept for :meth:`draw`: for files only the path (read
    again when drawn); for arrays and PIL images the RGB array the prediction ran on, which is
    the caller's own array (not a copy) when that was already contiguous uint8 RGB. It is never
    part of the JSON.
    """

    instances: list
    image_size: Tuple[int, int]
    source: Optional[str]

    def __iter__(self):
        return iter(self.instances)

    def __len__(self) -> int:
        return len(self.instances)

    def __getitem__(self, index):
        return self.instances[index]

    def _attach_image(self, image: Optional[np.ndarray]) -> "_ImageResult":
        self._image = image
        return self

    def to_json(self, **kwargs) -> str:
        """:meth:`to_dict` as a JSON string (`kwargs` go to ``json.dumps``, e.g. ``indent=1``)."""
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_json(cls, text: str):
        """The result a :meth:`to_json` string describes (without its image: pass one to
        :meth:`draw`)."""
        return cls.from_dict(json.loads(text))

    def _image_to_draw(self, image, channel_order: str) -> np.ndarray:
        max_pixels = None  # the reader's limit in force for a path given here
        if image is None:
            image = getattr(self, "_image", None)
            if image is None and self.source is not None:
                image, max_pixels = self.source, float("inf")  # read once already, under a limit
        if image is None:
            raise ValueError(
                "draw(): this result holds no image (it was read from JSON); pass image=..."
            )
        rgb, _ = to_rgb(image, channel_order, max_pixels=max_pixels, name="draw image")
        if tuple(rgb.shape[:2]) != tuple(self.image_size):
            raise ValueError(
                f"draw(): the image is {rgb.shape[0]} x {rgb.shape[1]} (H x W), the predictions "
                f"are for {self.image_size[0]} x {self.image_size[1]}"
            )
        return rgb


@dataclass
class TextInstance:
    """One detected (and, by a spotter, read) text instance.

    Attributes:
        polygon: ``[(x, y), ...]`` outline in original-image pixels, clockwise; 4 points for
            quads, more for curved text.
        score: detection confidence, the mean text probability inside the polygon.
        text: the transcription (spotters; None for detectors).
        text_score: recognition confidence, the product of the per-character maximum
            probabilities (spotters; None for detectors).
    """

    polygon: List[Point]
    score: float
    text: Optional[str] = None
    text_score: Optional[float] = None

    def to_dict(self) -> Dict[str, Any]:
        return _drop_none(
            {
                "polygon": [list(p) for p in self.polygon],
                "score": self.score,
                "text": self.text,
                "text_score": self.text_score,
            }
        )

    @classmethod
    def from_dict(cls, record: Dict[str, Any]) -> "TextInstance":
        return cls(
            polygon=_points(record["polygon"]),
            score=float(record["score"]),
            text=record.get("text"),
            text_score=None if record.get("text_score") is None else float(record["text_score"]),
        )


@dataclass
class TextResult(_ImageResult):
    """Text instances of one image (a :class:`TextDetector` or :class:`TextSpotter` output),
    sorted by decreasing detection score.

    Attributes:
        instances: the :class:`TextInstance` list; the result iterates over it.
        image_size: ``(height, width)`` of the original image.
        source: the image's path when a path was given, else None.
    """

    instances: List[TextInstance]
    image_size: Tuple[int, int]
    source: Optional[str] = None

    @property
    def texts(self) -> List[Optional[str]]:
        """The transcriptions, in instance order."""
        return [instance.text for instance in self.instances]

    def to_dict(self) -> Dict[str, Any]:
        """``{"image_size": [h, w], "source": path (if any), "instances": [{"polygon": [[x, y],
        ...], "score", "text", "text_score"}, ...]}``; keys whose value is None are left out."""
        return _drop_none(
            {
                "image_size": list(self.image_size),
                "source": self.source,
                "instances": [instance.to_dict() for instance in self.instances],
            }
        )

    @classmethod
    def from_dict(cls, record: Dict[str, Any]) -> "TextResult":
        return cls(
            instances=[TextInstance.from_dict(r) for r in record["instances"]],
            image_size=tuple(int(s) for s in record["image_size"]),
            source=record.get("source"),
        )

    def to_instances(self) -> Instances:
        """The detectron2 form: ``Instances`` with ``polygons`` ((K, 2) float32 arrays),
        ``scores`` and, for spotters, ``texts`` and ``text_scores``."""
        result = Instances(tuple(self.image_size))
        result.polygons = [np.asarray(i.polygon, dtype=np.float32) for i in self.instances]
        result.scores = torch.tensor([i.score for i in self.instances], dtype=torch.float32)
        if self.instances and all(i.text is not None for i in self.instances):
            result.texts = [i.text for i in self.instances]
            result.text_scores = torch.tensor(
                [i.text_score or 0.0 for i in self.instances], dtype=torch.float32
            )
        return result

    def draw(self, image=None, *, score_threshold: float = 0.0, channel_order: str = "RGB"):
        """The image with the polygons (and transcriptions) drawn on it.

        Args:
            image: what to draw on (a path, array or PIL image of the original size); default:
                the image this result was predicted on.
            score_threshold: instances scored below it are not drawn.
            channel_order: channel order of an `image` array.

        Returns:
            ``(H, W, 3)`` uint8 RGB array of the original image's size.
        """
        rgb = self._image_to_draw(image, channel_order)
        visualizer = FastTCMVisualizer(rgb)
        return visualizer.draw_text_instances(self.to_instances(), score_threshold).get_image()


@dataclass
class OrientedInstance:
    """One oriented object (DOTA-style aerial detection).

    Attributes:
        polygon: the box's 4 corners ``[(x, y), ...]`` in original-image pixels, clockwise on
            the image, in the order ``(-w/2, -h/2), (w/2, -h/2), (w/2, h/2), (-w/2, h/2)`` of the
            box frame.
        score: class confidence.
        class_id: index into the predictor's class names.
        class_name: the class's name (e.g. ``"small-vehicle"``).
        rbox: XYWHA ``(cx, cy, w, h, angle)``: centre and size in original-image pixels, angle
            in degrees, counter-clockwise (detectron2's ``RotatedBoxes``).
    """

    polygon: List[Point]
    score: float
    class_id: int
    class_name: str
    rbox: Tuple[float, float, float, float, float]

    def to_dict(self) -> Dict[str, Any]:
        return {
            "polygon": [list(p) for p in self.polygon],
            "score": self.score,
            "class_id": self.class_id,
            "class_name": self.class_name,
            "rbox_xywha": list(self.rbox),
        }

    @classmethod
    def from_dict(cls, record: Dict[str, Any]) -> "OrientedInstance":
        return cls(
            polygon=_points(record["polygon"]),
            score=float(record["score"]),
            class_id=int(record["class_id"]),
            class_name=str(record["class_name"]),
            rbox=tuple(float(v) for v in record["rbox_xywha"]),
        )


@dataclass
class OrientedResult(_ImageResult):
    """Oriented objects of one image (an :class:`OrientedDetector` output), sorted by decreasing
    score.

    Attributes:
        instances: the :class:`OrientedInstance` list; the result iterates over it.
        image_size: ``(height, width)`` of the original image.
        class_names: every class the model knows, indexed by ``class_id``.
        source: the image's path when a path was given, else None.
        num_patches: how many patches the image was cut into (1 when it ran whole).
    """

    instances: List[OrientedInstance]
    image_size: Tuple[int, int]
    class_names: List[str]
    source: Optional[str] = None
    num_patches: int = 1

    def to_dict(self) -> Dict[str, Any]:
        """``{"image_size", "class_names", "source" (if any), "num_patches", "instances":
        [{"polygon", "score", "class_id", "class_name", "rbox_xywha"}, ...]}``."""
        return _drop_none(
            {
                "image_size": list(self.image_size),
                "class_names": list(self.class_names),
                "source": self.source,
                "num_patches": self.num_patches,
                "instances": [instance.to_dict() for instance in self.instances],
            }
        )

    @classmethod
    def from_dict(cls, record: Dict[str, Any]) -> "OrientedResult":
        return cls(
            instances=[OrientedInstance.from_dict(r) for r in record["instances"]],
            image_size=tuple(int(s) for s in record["image_size"]),
            class_names=[str(n) for n in record["class_names"]],
            source=record.get("source"),
            num_patches=int(record.get("num_patches", 1)),
        )

    def to_instances(self) -> Instances:
        """The detectron2 form: ``Instances`` with ``pred_boxes`` (RotatedBoxes), ``scores`` and
        ``pred_classes``."""
        result = Instances(tuple(self.image_size))
        boxes = torch.tensor([i.rbox for i in self.instances], dtype=torch.float32)
        result.pred_boxes = RotatedBoxes(boxes.reshape(-1, 5))
        result.scores = torch.tensor([i.score for i in self.instances], dtype=torch.float32)
        result.pred_classes = torch.tensor([i.class_id for i in self.instances], dtype=torch.int64)
        return result

    def draw(self, image=None, *, score_threshold: float = 0.0, channel_order: str = "RGB"):
        """The image with the rotated boxes, class names and scores drawn on it (arguments and
        return value as :meth:`TextResult.draw`)."""
        rgb = self._image_to_draw(image, channel_order)
        visualizer = FastTCMVisualizer(rgb, Metadata(thing_classes=list(self.class_names)))
        return visualizer.draw_rotated_instances(self.to_instances(), score_threshold).get_image()


@dataclass
class Recognition:
    """The transcription of one word crop (a :class:`TextRecognizer` output).

    Attributes:
        text: the string, over the recognizer's charset.
        score: confidence, the product of the per-character maximum probabilities (EOS
            included).
        source: the crop's path when a path was given, else None.
    """

    text: str
    score: float
    source: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        return _drop_none({"text": self.text, "score": self.score, "source": self.source})

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, record: Dict[str, Any]) -> "Recognition":
        return cls(str(record["text"]), float(record["score"]), record.get("source"))

    @classmethod
    def from_json(cls, text: str) -> "Recognition":
        return cls.from_dict(json.loads(text))


def text_result(
    polygons: Sequence[np.ndarray],
    scores: Sequence[float],
    image_size: Tuple[int, int],
    *,
    texts: Optional[Sequence[str]] = None,
    text_scores: Optional[Sequence[float]] = None,
    source: Optional[str] = None,
) -> TextResult:
    """A :class:`TextResult` from the post-processing's arrays (polygons ``(K_i, 2)``)."""
    instances = []
    for i, (polygon, score) in enumerate(zip(polygons, scores)):
        instances.append(
            TextInstance(
                polygon=_points(polygon),
                score=float(score),
                text=None if texts is None else str(texts[i]),
                text_score=None if text_scores is None else float(text_scores[i]),
            )
        )
    return TextResult(instances, (int(image_size[0]), int(image_size[1])), source)
