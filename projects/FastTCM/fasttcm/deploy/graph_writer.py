"""``GraphWriter``: exports PyTorch modules as ONNX graphs into one folder, recording each graph's
file, input and output signature (names, element types, shapes with symbolic dimensions) and the
opsets used, which :mod:`.export` writes into the manifest.

The exporter is ``torch.onnx.export(..., dynamo=True)`` (``torch.export`` + onnxscript).
"""

import logging
import os
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

__all__ = ["GraphWriter"]

logger = logging.getLogger(__name__)


def _graph_signature(proto) -> Dict[str, List[Dict[str, Any]]]:
    """Input and output names, element types and shapes (ints or symbolic names) of a graph."""
    import onnx

    def describe(values):
        out = []
        for value in values:
            tensor_type = value.type.tensor_type
            shape = [
                d.dim_param if d.HasField("dim_param") else int(d.dim_value)
                for d in tensor_type.shape.dim
            ]
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
            out.append({"name": value.name, "dtype": str(np.dtype(dtype)), "shape": shape})
        return out

    return {"inputs": describe(proto.graph.input), "outputs": describe(proto.graph.output)}


class GraphWriter:
    """Exports graphs into one folder and records their signatures and opset."""

    def __init__(
        self, folder: str, opset: Optional[int], progress: Optional[Callable[[str], None]] = None
    ):
        self.folder = folder
        self.opset = opset
        self.progress = progress
        self.graphs: Dict[str, Dict[str, Any]] = {}
        self.opsets = set()

    def export(
        self,
        name: str,
        module: nn.Module,
        args: Tuple[torch.Tensor, ...],
        input_names: List[str],
        output_names: List[str],
        dynamic_shapes: Dict[str, Dict[int, Any]],
    ) -> None:
        try:
            import onnxscript  # noqa: F401  (the dynamo exporter needs it)
        except ImportError as e:
            raise ImportError(
                "fasttcm.deploy: ONNX export needs onnx and onnxscript; install them with "
                "`pip install .[onnx]`"
            ) from e
        start = time.perf_counter()
        module.eval()
        with torch.no_grad():
            program = torch.onnx.export(
                module,
                args,
                None,
                dynamo=True,
                input_names=input_names,
                output_names=output_names,
                dynamic_shapes=dynamic_shapes,
                opset_version=self.opset,
                verbose=False,
            )
        file_name = f"{name}.onnx"
        program.save(os.path.join(self.folder, file_name))
        proto = program.model_proto
        self.opsets.update(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
        self.graphs[name] = {"file": file_name, **_graph_signature(proto)}
        message = f"exported {file_name} in {time.perf_counter() - start:.1f}s"
        logger.info(message)
        if self.progress is not None:
            self.progress(message)
