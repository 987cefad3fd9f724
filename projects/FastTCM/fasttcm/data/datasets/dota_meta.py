"""DOTA class lists and dataset metadata (DOTA-v1.0: 15 classes, DOTA-v1.5: 16).

The class order is the DOTA devkit's; ``category_id`` in dataset dicts and ``pred_classes`` of
models index into it. Nothing here imports detectron2.
"""

from typing import Dict, List, Tuple

__all__ = [
    "DOTA_V1_0_CLASSES",
    "DOTA_V1_5_CLASSES",
    "DOTA_CLASS_COLORS",
    "canonical_dota_version",
    "dota_class_names",
    "dota_metadata",
]

DOTA_V1_0_CLASSES: Tuple[str, ...] = (
    "plane",
    "baseball-diamond",
    "bridge",
    "ground-track-field",
    "small-vehicle",
    "large-vehicle",
    "ship",
    "tennis-court",
    "basketball-court",
    "storage-tank",
    "soccer-ball-field",
    "roundabout",
    "harbor",
    "swimming-pool",
    "helicopter",
)
"""The 15 classes of DOTA-v1.0, in devkit order."""

DOTA_V1_5_CLASSES: Tuple[str, ...] = DOTA_V1_0_CLASSES + ("container-crane",)
"""DOTA-v1.5: the v1.0 classes plus ``container-crane``."""

DOTA_CLASS_COLORS: Dict[str, Tuple[int, int, int]] = {
    # RGB, chosen to be tellable apart when drawn on aerial images
    "plane": (255, 56, 56),
    "baseball-diamond": (255, 157, 151),
    "bridge": (255, 112, 31),
    "ground-track-field": (255, 178, 29),
    "small-vehicle": (207, 210, 49),
    "large-vehicle": (72, 249, 10),
    "ship": (146, 204, 23),
    "tennis-court": (61, 219, 134),
    "basketball-court": (26, 147, 52),
    "storage-tank": (0, 212, 187),
    "soccer-ball-field": (44, 153, 168),
    "roundabout": (0, 194, 255),
    "harbor": (52, 69, 147),
    "swimming-pool": (100, 115, 255),
    "helicopter": (0, 24, 236),
    "container-crane": (132, 56, 255),
}

_VERSION_ALIASES = {
    "1.0": "1.0",
    "v1.0": "1.0",
    "dota10": "1.0",
    "dota1.0": "1.0",
    "1.5": "1.5",
    "v1.5": "1.5",
    "dota15": "1.5",
    "dota1.5": "1.5",
}


def canonical_dota_version(version) -> str:
    """Return ``"1.0"`` or ``"1.5"`` for any accepted spelling (``1.0``, ``"dota10"``, ``"v1.5"``).

    Raises:
        ValueError: for an unknown version (DOTA-v2.0 is not supported).
    """
    key = str(version).strip().lower()
    if key not in _VERSION_ALIASES:
        raise ValueError(
            f"unknown DOTA version {version!r}; expected one of 1.0 / dota10 or 1.5 / dota15"
        )
    return _VERSION_ALIASES[key]


def dota_class_names(version) -> List[str]:
    """Class names of a DOTA version, in devkit order (a new list)."""
    v = canonical_dota_version(version)
    return list(DOTA_V1_0_CLASSES if v == "1.0" else DOTA_V1_5_CLASSES)


def dota_metadata(version) -> Dict[str, object]:
    """Metadata every DOTA split carries in ``MetadataCatalog``.

    Returns:
        dict with ``thing_classes`` (names), ``thing_colors`` (RGB tuples, same order),
        ``dota_version`` (``"1.0"`` / ``"1.5"``) and ``evaluator_type`` ``"dota"``.
    """
    classes = dota_class_names(version)
    return {
        "thing_classes": classes,
        "thing_colors": [DOTA_CLASS_COLORS[c] for c in classes],
        "dota_version": canonical_dota_version(version),
        "evaluator_type": "dota",
    }
