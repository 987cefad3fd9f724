"""The rotated R-CNN (DOTA) with its backbone + FPN on onnxruntime and its heads in PyTorch.

Exported (graph ``features``): normalization, FastTCM-CR50 with the text-image interaction (text
branch folded into a constant), FPN p2..p6, and the class text embeddings the ROI classifier
scores against. Not exported, run in PyTorch: the rotated RPN (anchors, box decoding, top-k and
rotated NMS) and the rotated ROI heads (ROIAlignRotated, box head, class-wise rotated NMS), whose
data-dependent loops and the project's pure-PyTorch rotated ops have no ONNX form. Their weights
ship in the export folder (``heads.pth``, every ``proposal_generator.*`` and ``roi_heads.*``
tensor), so the folder plus the config is all the backend needs.
"""

import os
from typing import Any, Dict, List, Optional, Sequence

import torch
from torch import nn

from detectron2.layers import ShapeSpec
from detectron2.modeling import GeneralizedRCNN, build_proposal_generator, build_roi_heads
from detectron2.structures import ImageList

from .manifest import graph_path, read_manifest
from .sessions import OnnxGraph
from .text_models import _as_tensor, pad_pixels

__all__ = ["HEADS_FILE", "OnnxRotatedRCNN", "heads_state_dict"]

HEADS_FILE = "heads.pth"
_HEAD_PREFIXES = ("proposal_generator.", "roi_heads.")


def heads_state_dict(model: nn.Module) -> Dict[str, torch.Tensor]:
    """The rotated R-CNN tensors that run outside the graph (RPN and ROI heads), on the CPU."""
    return {
        key: value.detach().cpu().clone()
        for key, value in model.state_dict().items()
        if key.startswith(_HEAD_PREFIXES)
    }


class _Heads(nn.Module):
    def __init__(self, proposal_generator: nn.Module, roi_heads: nn.Module):
        super().__init__()
        self.proposal_generator = proposal_generator
        self.roi_heads = roi_heads


class OnnxRotatedRCNN:
    """``FastTCMRotatedRCNN`` inference with the exported backbone + FPN.

    Takes and returns what the PyTorch model does in eval mode (``instances`` with
    ``pred_boxes`` RotatedBoxes XYWHA in original-image pixels, angles in degrees
    counter-clockwise, ``scores``, ``pred_classes``).

    Args:
        directory: an export folder of task "dota".
        cfg: the model's config: it builds the RPN and the ROI heads, whose weights are read from
            the folder's ``heads.pth`` (weights only; every head tensor must be there).
        threads, providers, manifest: as :class:`~fasttcm.deploy.text_models.OnnxTextDetector`.

    Raises:
        ValueError: not a DOTA export, or ``heads.pth`` does not fit the config's heads.
    """

    def __init__(
        self,
        directory: str,
        cfg,
        *,
        threads: Optional[int] = None,
        providers: Optional[Sequence[str]] = None,
        manifest: Optional[Dict[str, Any]] = None,
    ):
        self.manifest = manifest if manifest is not None else read_manifest(directory)
        if self.manifest["task"] != "dota":
            raise ValueError(f"{directory}: not a DOTA export (task {self.manifest['task']!r})")
        settings = self.manifest["dota"]
        self.graph = OnnxGraph(
            graph_path(directory, self.manifest, "features"), threads=threads, providers=providers
        )
        self.pixel_mean = [float(v) for v in settings["pixel_mean"]]
        self.size_divisibility = int(settings["size_divisibility"])
        self.feature_names: List[str] = list(settings["feature_names"])
        self.with_text = bool(settings["with_text"])
        shapes = {
            name: ShapeSpec(channels=int(s["channels"]), stride=int(s["stride"]))
            for name, s in settings["feature_shapes"].items()
        }
        self.heads = _Heads(build_proposal_generator(cfg, shapes), build_roi_heads(cfg, shapes))
        path = os.path.join(directory, HEADS_FILE)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: the DOTA export has no head weights")
        state = torch.load(path, map_location="cpu", weights_only=True)
        incompatible = self.heads.load_state_dict(state, strict=False)
        if incompatible.missing_keys or incompatible.unexpected_keys:
            raise ValueError(
                f"{path} does not fit the heads of the config (MODEL.ROI_HEADS / MODEL.RPN): "
                f"missing {sorted(incompatible.missing_keys)[:20]}, "
                f"unexpected {sorted(incompatible.unexpected_keys)[:20]}"
            )
        self.heads.eval()

    def features(self, images: List[torch.Tensor]):
        """(ImageList of the padded pixels, {name: (B, C, h, w) feature}, text embeddings
        (B, K, D) or None) from the exported graph."""
        batch, sizes = pad_pixels(images, self.pixel_mean, self.size_divisibility)
        outputs = self.graph(image=batch)
        features = {name: torch.from_numpy(outputs[name]) for name in self.feature_names}
        text = torch.from_numpy(outputs["text_embeddings"]) if self.with_text else None
        return ImageList(torch.from_numpy(batch), sizes), features, text

    @torch.no_grad()
    def __call__(self, batched_inputs: List[Dict]) -> List[Dict]:
        images, features, text = self.features([_as_tensor(x["image"]) for x in batched_inputs])
        proposals, _ = self.heads.proposal_generator(images, features, None)
        results, _ = self.heads.roi_heads(images, features, proposals, None, text_embeddings=text)
        return GeneralizedRCNN._postprocess(results, batched_inputs, images.image_sizes)
