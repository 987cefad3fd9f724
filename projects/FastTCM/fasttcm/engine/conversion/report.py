"""What a checkpoint conversion did: keys consumed, keys left unused (with reasons), project
parameters left unfilled, and the config values the converted weights need.

:class:`ConversionReport` is filled by the converters (``tcm.py``, ``clip4str.py``, ``clip.py``)
and printed by ``tools/convert_checkpoint.py``, whose last stdout line is
:meth:`ConversionReport.summary` as one JSON object.
"""

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List

__all__ = ["ConversionError", "ConversionReport"]


class ConversionError(ValueError):
    """A file that cannot be converted; the message names the file, the key and the problem."""


@dataclass
class ConversionReport:
    """The outcome of one conversion.

    Attributes:
        source: the format converted from ("tcm", "clip4str", "openai-clip", "open_clip").
        input: the file read.
        output: the detectron2 checkpoint written ("" before it is written).
        consumed: names in the input file whose tensors went into the output.
        unused: name in the input file -> why it was not used.
        unfilled: project parameters and buffers (model names) the input did not provide.
        config: config key -> value the converted weights need (derived from the file); the
            model the output loads into must be built with these values.
        notes: adaptations made on the way (transposes, padded tables, dropped scalars, ...).
    """

    source: str
    input: str
    output: str = ""
    consumed: List[str] = field(default_factory=list)
    unused: Dict[str, str] = field(default_factory=dict)
    unfilled: List[str] = field(default_factory=list)
    config: Dict[str, Any] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)

    def summary(self) -> Dict[str, Any]:
        """A JSON-serialisable dict: the three counts first, then the lists and the config."""
        return {
            "source": self.source,
            "input": self.input,
            "output": self.output,
            "consumed": len(self.consumed),
            "unused": len(self.unused),
            "unfilled": len(self.unfilled),
            "unused_keys": dict(sorted(self.unused.items())),
            "unfilled_keys": sorted(self.unfilled),
            "consumed_keys": sorted(self.consumed),
            "config": self.config,
            "notes": list(self.notes),
        }

    def to_json(self) -> str:
        """:meth:`summary` as a one-line JSON string."""
        return json.dumps(self.summary(), ensure_ascii=False, sort_keys=False)

    def config_snippet(self) -> str:
        """The derived config values as YAML lines (``MODEL.FASTTCM.MODE: tcm`` -> nested keys)."""
        if not self.config:
            return ""
        tree: Dict[str, Any] = {}
        for dotted, value in self.config.items():
            node = tree
            *parents, leaf = dotted.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        lines: List[str] = []
        _yaml_lines(tree, 0, lines)
        return "\n".join(lines)


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_scalar(v) for v in value) + "]"
    if isinstance(value, bool) or value is None or isinstance(value, (int, float)):
        return json.dumps(value)
    return json.dumps(str(value), ensure_ascii=False)  # quoted: charsets hold YAML syntax


def _yaml_lines(tree: Dict[str, Any], depth: int, lines: List[str]) -> None:
    for key, value in tree.items():
        if isinstance(value, dict):
            lines.append("  " * depth + f"{key}:")
            _yaml_lines(value, depth + 1, lines)
        else:
            lines.append("  " * depth + f"{key}: {_yaml_scalar(value)}")
