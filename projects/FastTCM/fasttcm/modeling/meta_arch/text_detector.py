"""FastTCMTextDetector: backbone (+ FastTCM instance-language matching) + DB head + polygon
post-processing."""

from typing import Dict, List, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, SEM_SEG_HEADS_REGISTRY, Backbone, build_backbone
from detectron2.structures import Boxes, ImageList, Instances

from ..tcm.instance_language_matching import balanced_bce_loss
from ..text_heads.postprocess import DBPostprocessor, polygons_to_masks

__all__ = ["FastTCMTextDetector", "DB_TARGET_KEYS"]

DB_TARGET_KEYS = ("shrink_map", "shrink_mask", "thresh_map", "thresh_mask")


@META_ARCH_REGISTRY.register()
class FastTCMTextDetector(nn.Module):
    """Segmentation-based scene text detector (DBNet) on a detectron2 backbone: FastTCM-CR50 + FPNC
    (``build_fasttcm_cr50_fpnc_backbone``, one fused map, the official TCM-DBNet neck), FastTCM-CR50
    + FPN, or any other FPN; the DB head reads the features named by MODEL.DB_HEAD.IN_FEATURES.

    Training: normalize and pad the images (``backbone.size_divisibility``), pad the DB targets
    the same way (padding masked out), run the backbone and the DB head, return the DB losses;
    when the backbone offers ``forward_with_aux`` (the FastTCM backbone) its instance-language
    score logits S / tau also get TCM's auxiliary loss ``loss_ilm`` = lambda * balanced BCE against
    the shrunk text kernels.

    Inference: DB probability map -> polygons (:class:`DBPostprocessor`) in original-image pixels.
    """

    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        text_head: nn.Module,
        postprocessor: DBPostprocessor,
        pixel_mean: Tuple[float, ...],
        pixel_std: Tuple[float, ...],
        aux_loss_weight: float = 1.0,
        aux_negative_ratio: float = 3.0,
        pred_masks: bool = False,
    ):
        """
        Args:
            backbone: a detectron2 backbone producing the head's input features (e.g. the FPNC
                "fused" map or FPN p2..p5);
                if it has ``forward_with_aux(x) -> (features, aux)``, ``aux["logits"]``
                (B, 1, H/32, W/32) receives the auxiliary loss.
            text_head: maps ``(features, targets)`` to ``(maps, losses)``, e.g.
                :class:`FastTCMDBHead`.
            postprocessor: probability map -> polygons and scores.
            pixel_mean, pixel_std: per-channel normalization of the input images (in INPUT.FORMAT
                order).
            aux_loss_weight: lambda, weight of the instance-language matching loss.
            aux_negative_ratio: hard negatives per positive in that loss.
            pred_masks: also return ``pred_masks`` (full-image bitmasks of the polygons) at
                inference, for consumers that read masks (detectron2's ``COCOEvaluator``).
        """
        super().__init__()
        self.backbone = backbone
        self.text_head = text_head
        self.postprocessor = postprocessor
        self.aux_loss_weight = aux_loss_weight
        self.aux_negative_ratio = aux_negative_ratio
        self.pred_masks = pred_masks
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)
        if self.pixel_mean.shape != self.pixel_std.shape:
            raise ValueError(
                f"text_detector.FastTCMTextDetector: pixel_mean {tuple(pixel_mean)} and pixel_std "
                f"{tuple(pixel_std)} have different lengths."
            )

    @classmethod
    def from_config(cls, cfg):
        backbone = build_backbone(cfg)
        text_head = SEM_SEG_HEADS_REGISTRY.get(cfg.MODEL.DB_HEAD.NAME)(cfg, backbone.output_shape())
        postprocessor = DBPostprocessor.from_config(cfg)
        return {
            "backbone": backbone,
            "text_head": text_head,
            "postprocessor": postprocessor,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "aux_loss_weight": cfg.MODEL.FASTTCM.AUX_LOSS_WEIGHT,
            "aux_negative_ratio": cfg.MODEL.FASTTCM.AUX_NEGATIVE_RATIO,
            "pred_masks": cfg.TEST.TEXT.PRED_MASKS,
        }

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def forward(self, batched_inputs: List[Dict]):
        """
        Args:
            batched_inputs: list of dicts from the dataset mapper, one per image:
                "image": (3, H, W) uint8/float Tensor in INPUT.FORMAT channel order;
                "height", "width" (optional, inference): size of the original image, the frame of
                the returned polygons (defaults to H, W);
                "db_targets" (training): dict of (H, W) float Tensors "shrink_map", "shrink_mask",
                "thresh_map", "thresh_mask" (from ``make_db_targets``), in the same pixel frame as
                "image".

        Returns:
            training: dict of scalar losses "loss_prob", "loss_binary", "loss_thresh" (and
            "loss_ilm" with an aux-producing backbone).
            inference: see :meth:`inference`.
        """
        if not self.training:
            return self.inference(batched_inputs)
        return self.training_losses(batched_inputs)[0]

    def training_losses(
        self, batched_inputs: List[Dict]
    ) -> Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
        """The training losses of :meth:`forward`, and the DB maps they were computed from.

        Returns:
            losses: as :meth:`forward` in training.
            maps: the head's maps, {"prob", "thresh", "binary"} each (B, 1, H_pad, W_pad) in the
                padded network-input frame (with gradients; detach before post-processing).
        """
        images = self.preprocess_image(batched_inputs)
        targets = self.prepare_targets(batched_inputs, images)
        features, aux = self.extract_features(images.tensor)
        maps, losses = self.text_head(features, targets)
        if self.aux_loss_weight and "logits" in aux:
            losses["loss_ilm"] = self.aux_loss_weight * self.instance_language_loss(
                aux["logits"], targets
            )
        return losses, maps

    def inference(self, batched_inputs: List[Dict], return_maps: bool = False) -> List[Dict]:
        """
        Args:
            batched_inputs: as in :meth:`forward`.
            return_maps: also return the DB maps resized to the original image, for visualization.

        Returns:
            one dict per image with
                "instances": :class:`Instances` of image_size (height, width) with fields
                    ``polygons`` (list of (N_i, 2) float32 numpy arrays, (x, y) in original-image
                    pixels, clockwise on the image), ``scores`` (Tensor (N,), mean probability),
                    ``pred_boxes`` (:class:`Boxes`, XYXY bounds of the polygons),
                    ``pred_classes`` (int64 Tensor (N,), all 0 = "text") and, with
                    ``pred_masks=True``, ``pred_masks`` (bool Tensor (N, height, width), the
                    polygons rasterized by :func:`polygons_to_masks`);
                "db_maps" (only if `return_maps`): {"prob", "thresh", "binary"} each
                    (1, height, width).
        """
        images = self.preprocess_image(batched_inputs)
        features, _ = self.extract_features(images.tensor)
        maps, _ = self.text_head(features, return_all_maps=return_maps)
        prob_maps = maps["prob"][:, 0].detach().float().cpu().numpy()

        results = []
        for index, (inputs, (h, w)) in enumerate(zip(batched_inputs, images.image_sizes)):
            height, width = int(inputs.get("height", h)), int(inputs.get("width", w))
            polygons, scores = self.postprocessor(
                prob_maps[index, :h, :w], output_size=(height, width)
            )
            result = {"instances": self._make_instances(polygons, scores, (height, width))}
            if return_maps:
                result["db_maps"] = {
                    name: F.interpolate(
                        maps[name][index : index + 1, :, :h, :w].float(),
                        size=(height, width),
                        mode="bilinear",
                        align_corners=False,
                    )[0]
                    for name in ("prob", "thresh", "binary")
                }
            results.append(result)
        return results

    def preprocess_image(self, batched_inputs: List[Dict]) -> ImageList:
        """Normalize the images and pad them to a common size divisible by
        ``backbone.size_divisibility``."""
        images = [
            (x["image"].to(self.device) - self.pixel_mean) / self.pixel_std for x in batched_inputs
        ]
        return ImageList.from_tensors(images, self.backbone.size_divisibility)

    def prepare_targets(
        self, batched_inputs: List[Dict], images: ImageList
    ) -> Dict[str, torch.Tensor]:
        """Pad each image's DB targets like its image; zero padding masks the padded pixels out.

        Returns:
            dict of (B, 1, H_pad, W_pad) float32 tensors, keys :data:`DB_TARGET_KEYS`.
        """
        for inputs, image_size in zip(batched_inputs, images.image_sizes):
            name = inputs.get("file_name", inputs.get("image_id", "<unnamed image>"))
            if "db_targets" not in inputs:
                raise ValueError(
                    "text_detector.FastTCMTextDetector: "
                    f"training input {name} has no 'db_targets'; "
                    "the dataset mapper must add make_db_targets(...) output."
                )
            for key in DB_TARGET_KEYS:
                shape = tuple(inputs["db_targets"][key].shape)
                if shape != tuple(image_size):
                    raise ValueError(
                        "text_detector.FastTCMTextDetector: "
                        f"db_targets['{key}'] of {name} has shape {shape}, "
                        f"the image {tuple(image_size)}."
                    )
        return {
            key: ImageList.from_tensors(
                [
                    torch.as_tensor(x["db_targets"][key], dtype=torch.float32, device=self.device)
                    for x in batched_inputs
                ],
                self.backbone.size_divisibility,
            ).tensor[:, None]
            for key in DB_TARGET_KEYS
        }

    def extract_features(
        self, images: torch.Tensor
    ) -> Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
        """Backbone features and, for backbones with ``forward_with_aux``, their aux outputs
        (else {})."""
        if hasattr(self.backbone, "forward_with_aux"):
            return self.backbone.forward_with_aux(images)
        return self.backbone(images), {}

    def instance_language_loss(
        self, logits: torch.Tensor, targets: Dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """Balanced BCE (3:1 OHEM) of S / tau, upsampled to the input, against the shrunk text
        kernels.

        Args:
            logits: (B, 1, H/32, W/32) score-map logits S / tau.
            targets: padded DB targets, (B, 1, H, W).
        """
        if logits.shape[1] != 1:
            raise ValueError(
                "text_detector.FastTCMTextDetector: the text detector expects one class prompt "
                f"(K = 1), the backbone's score map has K = {logits.shape[1]}."
            )
        return balanced_bce_loss(
            logits,
            targets["shrink_map"][:, 0],
            targets["shrink_mask"][:, 0],
            negative_ratio=self.aux_negative_ratio,
        )

    def _make_instances(
        self, polygons: List[np.ndarray], scores: np.ndarray, image_size: Tuple[int, int]
    ) -> Instances:
        """Instances with ``polygons``, ``scores``, ``pred_boxes`` (XYXY bounds), ``pred_classes``
        (0) and, if ``self.pred_masks``, ``pred_masks`` (N, height, width) bool, on this model's
        device."""
        instances = Instances(image_size)
        instances.polygons = polygons
        instances.scores = torch.as_tensor(scores, dtype=torch.float32, device=self.device)
        instances.pred_boxes = Boxes(torch.as_tensor(_polygon_bounds(polygons), device=self.device))
        instances.pred_classes = torch.zeros(len(polygons), dtype=torch.int64, device=self.device)
        if self.pred_masks:
            masks = polygons_to_masks(polygons, image_size)
            instances.pred_masks = torch.from_numpy(masks).to(self.device)
        return instances


def _polygon_bounds(polygons: List[np.ndarray]) -> np.ndarray:
    """(N, 4) float32 XYXY bounds of N polygons (vectorized with ``reduceat`` over the
    concatenated vertices)."""
    if not polygons:
        return np.zeros((0, 4), dtype=np.float32)
    vertices = np.concatenate(polygons, axis=0)
    starts = np.cumsum([0] + [len(p) for p in polygons[:-1]])
    mins = np.minimum.reduceat(vertices, starts, axis=0)
    maxs = np.maximum.reduceat(vertices, starts, axis=0)
    return np.concatenate([mins, maxs], axis=1).astype(np.float32)
