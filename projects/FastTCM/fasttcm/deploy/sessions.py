"""onnxruntime sessions: one exported graph, run on numpy arrays with a chosen number of threads.

onnxruntime is an optional dependency (``pip install .[onnx]``); it is imported when the first
session is made, so ``import fasttcm.deploy`` works without it.
"""

import os
from typing import Dict, List, Optional, Sequence

import numpy as np

__all__ = ["OnnxGraph", "import_onnxruntime", "onnxruntime_available"]

_INSTALL_HINT = (
    "install the optional ONNX dependencies with `pip install .[onnx]` (or `make install`)"
)


def onnxruntime_available() -> bool:
    """Whether onnxruntime can be imported."""
    try:
        import_onnxruntime()
    except ImportError:
        return False
    return True


def import_onnxruntime():
    """The ``onnxruntime`` module, or an ImportError that says how to install it."""
    try:
        import onnxruntime
    except ImportError as e:
        raise ImportError(f"fasttcm.deploy: onnxruntime is not installed; {_INSTALL_HINT}") from e
    return onnxruntime


class OnnxGraph:
    """An onnxruntime inference session over one ``.onnx`` file.

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads of the session (None: onnxruntime's default, one per physical
            core); the inter-op pool has one thread (the graphs are sequential).
        providers: onnxruntime execution providers in order of preference (default: CPU only).

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: `threads` is not a positive integer.
    """

    def __init__(
        self,
        path: str,
        *,
        threads: Optional[int] = None,
        providers: Optional[Sequence[str]] = None,
    ):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"fasttcm.deploy: no ONNX graph {path}")
        if threads is not None and (int(threads) != threads or threads < 1):
            raise ValueError(f"fasttcm.deploy: threads must be a positive integer, got {threads!r}")
        ort = import_onnxruntime()
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = path
        self.threads = threads
        self.session = ort.InferenceSession(
            path, options, providers=list(providers or ["CPUExecutionProvider"])
        )
        self.input_names: List[str] = [i.name for i in self.session.get_inputs()]
        self.output_names: List[str] = [o.name for o in self.session.get_outputs()]

    def __call__(self, **inputs: np.ndarray) -> Dict[str, np.ndarray]:
        """Run the graph.

        Args:
            inputs: one numpy array per graph input, by name.

        Returns:
            {output name: numpy array}.

        Raises:
            ValueError: an input is missing or unknown (the message lists the graph's inputs).
        """
        if set(inputs) != set(self.input_names):
            raise ValueError(
                f"fasttcm.deploy: {os.path.basename(self.path)} takes the inputs "
                f"{self.input_names}, got {sorted(inputs)}"
            )
        outputs = self.session.run(self.output_names, inputs)
        return dict(zip(self.output_names, outputs))
