"""``tools/benchmark.py --task inference``: per-image latency of the text detector and spotter
(the models, runners and timing helpers are shared with ``benchmark_profile.py``).

Models (paper widths, random weights, eval mode, CPU):

* ``detector``: the FastTCM-CR50 text detector of
  ``TextDetection/fasttcm_cr50_fpn_dbnet_ic15.yaml``;
* ``spotter``: the same detector plus the CPU-size CLIP4STR recognizer of
  ``TextRecognition/clip4str_tiny_synthetic_cpu.yaml``, joined as
  ``TextSpotting/fasttcm_cr50_fpn_spotter_ic15.yaml`` joins a detector and a recognizer (its
  ``MODEL.RECOGNIZER`` node is replaced by the tiny recognizer's). The detector rows run the
  spotter's detector part (``FastTCMTextDetector.inference``), so one model serves both.

One "image" is timed from an (H, W, 3) uint8 RGB array to the final ``Instances``: conversion
to a tensor, normalisation and padding, the network, DB post-processing and, for the spotter,
rectification and recognition of every detection. Sizes are network-input sizes (the image is
not resized): ``800x600``, ``1280x720`` and ``ic15``, an IC15 frame (1280 x 720) resized as the
IC15 config's test mapper does (``INPUT.MIN_SIZE_TEST`` / ``MAX_SIZE_TEST``: 1820 x 1024).

With random weights the DB probability map is noise, so the post-processing and the recognizer
would see an arbitrary number of regions. The benchmark therefore replaces the DB head's
probability map, after the head has run, by a map with exactly ``--instances`` word-sized
rectangles (80 x 20 pixels on a 112 x 40 grid), so every backend post-processes and recognises
the same known number of words; ``--instances-sweep`` times the spotter against that number.
The random recognizer never predicts the end token, so it decodes all ``max_label_length + 1``
steps: the recognizer rows are its worst case.

Backends: ``pytorch`` (the model as :class:`~fasttcm.engine.FastTCMPredictor` runs it, under
``torch.no_grad``), ``pytorch-opt`` (the same weights after
:func:`~fasttcm.modeling.inference_optimization.optimize_for_inference`: BatchNorm folding and
channels_last, under ``torch.inference_mode``), ``pytorch-bf16`` (``pytorch-opt`` under bfloat16
autocast, the API's ``backend="torch-bf16"``; fast where the CPU has bfloat16 matrix units) and
``onnxruntime`` (the same weights exported by
``fasttcm.deploy.export_onnx`` to a temporary folder, FastTCM's text embedding folded in as a
constant, run by ``fasttcm.deploy.OnnxTextSpotter`` with one session set per thread count; the
DB map is replaced after the graph. Default where onnx, onnxscript and onnxruntime are
installed; asked for elsewhere it fails with "not available"). The profile task times the
PyTorch backends only.

Timings alternate between the variants (model x backend x threads) within each repetition, so
load changes of a shared machine hit all of them alike; each figure is the median of
``--repeat`` timed runs after ``--warmup`` untimed ones.
"""

import copy
import functools
import os
import statistics
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "projects/FastTCM/configs"
SPOTTER_CONFIG = "TextSpotting/fasttcm_cr50_fpn_spotter_ic15.yaml"
RECOGNIZER_CONFIG = "TextRecognition/clip4str_tiny_synthetic_cpu.yaml"
IC15_FRAME = (720, 1280)  # (height, width) of an ICDAR 2015 test image
BACKENDS = ("pytorch", "pytorch-opt", "pytorch-bf16", "onnxruntime")
WORD_BOX = (20, 80)  # (height, width) of an injected word, pixels
WORD_CELL = (40, 112)  # grid cell per injected word


# ---------------------------------------------------------------------------------------------
# configs, models, images


def load_cfg(relative: str, *overrides):
    """get_cfg + FastTCM keys + a config under projects/FastTCM/configs, CPU, unfrozen."""
    from detectron2.config import get_cfg

    from fasttcm import add_fasttcm_config, merge_config_file

    cfg = get_cfg()
    add_fasttcm_config(cfg)
    merge_config_file(cfg, str(CONFIGS / relative))  # an absolute path stays as it is
    cfg.MODEL.DEVICE = "cpu"
    cfg.merge_from_list(list(overrides))
    return cfg


def spotter_cfg(spotter_config: str = SPOTTER_CONFIG, recognizer_config: str = RECOGNIZER_CONFIG):
    """The spotter config (default: paper-size, IC15) with the MODEL.RECOGNIZER node of the
    recognizer config (default: the CPU-size CLIP4STR); paths absolute or relative to
    projects/FastTCM/configs."""
    cfg = load_cfg(spotter_config)
    cfg.MODEL.RECOGNIZER = load_cfg(recognizer_config).MODEL.RECOGNIZER.clone()
    return cfg


def test_size(cfg, frame: Tuple[int, int] = IC15_FRAME) -> Tuple[int, int]:
    """(height, width) of `frame` after the config's test resize (the test mappers',
    :func:`fasttcm.data.transforms.build_test_resize`: INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST)."""
    from fasttcm.data.transforms import build_test_resize

    transform = build_test_resize(cfg).get_transform(np.empty((*frame, 1), dtype=np.uint8))
    return transform.new_h, transform.new_w


def parse_size(name: str, ic15: Tuple[int, int]) -> Tuple[int, int]:
    """'WxH' or 'ic15' -> (height, width)."""
    if name == "ic15":
        return ic15
    try:
        width, height = (int(v) for v in name.lower().split("x"))
    except ValueError:
        raise ValueError(f"--sizes: {name!r} is not WIDTHxHEIGHT or 'ic15'") from None
    if width < 32 or height < 32:
        raise ValueError(f"--sizes: {name!r} is smaller than 32 pixels")
    return height, width


def random_image(size: Tuple[int, int], seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 RGB noise."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)


@functools.lru_cache(maxsize=16)
def word_map(height: int, width: int, count: int) -> torch.Tensor:
    """(height, width) float32 map with `count` separate word rectangles of 0.9 on 0 (cached:
    callers copy it, never write to it).

    Raises:
        ValueError: the image has fewer grid cells than `count`.
    """
    rows, cols = height // WORD_CELL[0], width // WORD_CELL[1]
    if count > rows * cols:
        raise ValueError(
            f"{count} words do not fit a {width}x{height} image ({rows * cols} cells of "
            f"{WORD_CELL[1]}x{WORD_CELL[0]})"
        )
    prob = torch.zeros(height, width)
    for k in range(count):
        top = (k // cols) * WORD_CELL[0] + (WORD_CELL[0] - WORD_BOX[0]) // 2
        left = (k % cols) * WORD_CELL[1] + (WORD_CELL[1] - WORD_BOX[1]) // 2
        prob[top : top + WORD_BOX[0], left : left + WORD_BOX[1]] = 0.9
    return prob


@contextmanager
def injected_words(model, count: Optional[int], image_sizes: Sequence[Tuple[int, int]]):
    """Within the block, the DB head's "prob" map holds `count` words per image (see the module
    docstring); None leaves the model alone."""
    if count is None:
        yield
        return

    def hook(module, inputs, output):
        maps, losses = output
        prob = torch.zeros_like(maps["prob"], memory_format=torch.contiguous_format)
        for index, (height, width) in enumerate(image_sizes):
            prob[index, 0, :height, :width] = word_map(height, width, count)
        maps = dict(maps, prob=prob, prob_logits=torch.logit(prob.clamp(1e-6, 1 - 1e-6)))
        return maps, losses

    handle = model.text_head.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def build_model(cfg, seed: int = 0):
    """The model of `cfg` with seeded random weights, eval mode."""
    from detectron2.modeling import build_model as d2_build_model

    torch.manual_seed(seed)
    return d2_build_model(cfg).eval()


def _inputs(image: np.ndarray) -> List[Dict]:
    height, width = image.shape[:2]
    tensor = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1))).float()
    return [{"image": tensor, "height": height, "width": width}]


class TorchRunner:
    """A PyTorch backend: ``__call__(image (H, W, 3) uint8 RGB, detector_only, words)`` ->
    ``Instances``; the thread count is torch's current one."""

    def __init__(self, model, backend: str):
        self.model = model
        self.backend = backend
        self.grad_mode = torch.no_grad if backend == "pytorch" else torch.inference_mode

    def precision(self):
        """bfloat16 autocast for "pytorch-bf16", else nothing."""
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.backend == "pytorch-bf16")

    def __call__(self, image: np.ndarray, detector_only: bool, words: Optional[int]):
        from fasttcm.modeling.meta_arch.text_detector import FastTCMTextDetector

        with self.grad_mode(), self.precision():
            with injected_words(self.model, words, [image.shape[:2]]):
                inputs = _inputs(image)
                if detector_only:
                    return FastTCMTextDetector.inference(self.model, inputs)[0]["instances"]
                return self.model.inference(inputs)[0]["instances"]


class OnnxRunner:
    """The onnxruntime backend (``fasttcm.deploy``) of an exported spotter, with `threads`
    intra-op threads per session; same call as :class:`TorchRunner`."""

    def __init__(self, export_dir: str, threads: int):
        from fasttcm.deploy import OnnxTextSpotter

        self.model = OnnxTextSpotter(export_dir, threads=threads)
        self.backend = "onnxruntime"

    def __call__(self, image: np.ndarray, detector_only: bool, words: Optional[int]):
        from fasttcm.deploy import OnnxTextDetector

        original = self.model.maps
        if words is not None:
            height, width = image.shape[:2]

            def maps(images):  # the exported graph's maps, "prob" replaced as for PyTorch
                out = dict(original(images))
                prob = np.zeros_like(out["prob"])
                prob[:, 0, :height, :width] = word_map(height, width, words).numpy()
                out["prob"] = prob
                return out

            self.model.maps = maps
        try:
            with torch.no_grad():
                inputs = _inputs(image)
                if detector_only:
                    return OnnxTextDetector.inference(self.model, inputs)[0]["instances"]
                return self.model.inference(inputs)[0]["instances"]
        finally:
            if words is not None:
                del self.model.maps


def onnxruntime_backend_available() -> bool:
    """Whether the project's onnxruntime backend (``fasttcm.deploy``, onnx, onnxruntime) can
    run here."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401

        from fasttcm.deploy import onnxruntime_available
    except ImportError:
        return False
    return onnxruntime_available()


def default_backends() -> List[str]:
    """pytorch, pytorch-opt and pytorch-bf16, plus onnxruntime where it is available."""
    torch_backends = ["pytorch", "pytorch-opt", "pytorch-bf16"]
    return torch_backends + (["onnxruntime"] if onnxruntime_backend_available() else [])


class Runners:
    """The backends of one spotter (same weights): ``get(backend, threads)`` -> runner called
    with torch set to `threads` threads (onnxruntime sessions are built per thread count)."""

    def __init__(self, cfg, backends: Sequence[str], threads: Sequence[int]):
        for backend in backends:
            if backend not in BACKENDS:
                raise ValueError(f"--backend {backend!r}: choose from {', '.join(BACKENDS)}")
        if "onnxruntime" in backends and not onnxruntime_backend_available():
            raise SystemExit(
                "--backend onnxruntime: not available (needs fasttcm.deploy with onnx, "
                "onnxscript and onnxruntime: pip install .[onnx])"
            )
        self.backends = list(backends)
        base = build_model(cfg)
        self._torch: Dict[str, TorchRunner] = {}
        self._onnx: Dict[int, OnnxRunner] = {}
        self._tmp = None
        for backend in self.backends:
            if backend == "onnxruntime":
                import tempfile

                from fasttcm.deploy import export_onnx

                self._tmp = tempfile.TemporaryDirectory(prefix="fasttcm_benchmark_onnx_")
                export_dir = os.path.join(self._tmp.name, "export")
                export_onnx(base, cfg, export_dir, task="spotter", verify=False)
                self._onnx = {t: OnnxRunner(export_dir, t) for t in threads}
                continue
            model = base if backend == "pytorch" else copy.deepcopy(base)
            if backend in ("pytorch-opt", "pytorch-bf16"):
                from fasttcm.modeling.inference_optimization import optimize_for_inference

                optimize_for_inference(model)
            self._torch[backend] = TorchRunner(model, backend)

    def get(self, backend: str, threads: int):
        if backend == "onnxruntime":
            return self._onnx[threads]
        return self._torch[backend]

    def torch_runners(self) -> Dict[str, TorchRunner]:
        return dict(self._torch)


# ---------------------------------------------------------------------------------------------
# timing


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved_medians(
    variants: Dict[str, Callable[[], object]], repeat: int, warmup: int
) -> Dict[str, float]:
    """Median seconds of each variant over `repeat` rounds; each round runs every variant once,
    in turn (after `warmup` untimed rounds)."""
    times: Dict[str, List[float]] = {name: [] for name in variants}
    for round_index in range(warmup + repeat):
        for name, fn in variants.items():
            seconds = timed(fn)
            if round_index >= warmup:
                times[name].append(seconds)
    return {name: statistics.median(values) for name, values in times.items()}


@contextmanager
def num_threads(threads: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def with_threads(threads: int, fn: Callable[[], object]) -> Callable[[], object]:
    def run():
        with num_threads(threads):
            return fn()

    return run


# ---------------------------------------------------------------------------------------------
# --task inference


def benchmark_inference(args) -> List[Dict]:
    """Per-image latency rows for every model x backend x threads x size, and the spotter
    against the number of words."""
    cfg = spotter_cfg(args.spotter_config, args.recognizer_config)
    ic15 = test_size(cfg)
    sizes = [(name, parse_size(name, ic15)) for name in args.sizes]
    runners = Runners(cfg, args.backend or default_backends(), args.threads)
    rows = []

    def variants_for(image, count, models):
        out = {}
        for model_name in models:
            for backend in runners.backends:
                for threads in args.threads:
                    runner = runners.get(backend, threads)

                    def run(runner=runner, detector_only=model_name == "detector"):
                        return runner(image, detector_only, count)

                    out[(model_name, backend, threads)] = with_threads(threads, run)
                _check_count(out[(model_name, backend, args.threads[0])](), count, model_name)
        return out

    for size_name, size in sizes:
        image = random_image(size)
        variants = variants_for(image, args.instances, args.models)
        medians = interleaved_medians(variants, args.repeat, args.warmup)
        for (model_name, backend, threads), seconds in medians.items():
            rows.append(
                _latency_row(model_name, backend, threads, size_name, size, args.instances, seconds)
            )

    if args.instances_sweep and "spotter" in args.models:
        size_name = args.sweep_size
        size = parse_size(size_name, ic15)
        image = random_image(size)
        variants = {}  # every word count in every round, so load drifts hit them alike
        for count in args.instances_sweep:
            for key, fn in variants_for(image, count, ["spotter"]).items():
                variants[(count, *key)] = fn
        medians = interleaved_medians(variants, args.repeat, args.warmup)
        for (count, model_name, backend, threads), seconds in medians.items():
            row = _latency_row(model_name, backend, threads, size_name, size, count, seconds)
            row["key"] += f"/n{count}"
            row["op"] += f", {count} words"
            rows.append(row)
    return rows


def _check_count(instances, count: int, model_name: str) -> None:
    """The injected words must come out as exactly `count` detections (and texts)."""
    if len(instances) != count or (model_name == "spotter" and len(instances.texts) != count):
        raise RuntimeError(
            f"benchmark: {count} injected words gave {len(instances)} {model_name} results; "
            "the post-processing settings (TEST.TEXT, TEST.SPOTTER) drop or split them"
        )


def _latency_row(model_name, backend, threads, size_name, size, count, seconds) -> Dict:
    height, width = size
    return {
        "task": "inference",
        "op": f"{model_name} {backend} {threads}t {size_name}",
        "size": f"{width}x{height} input, {count} words",
        "seconds": seconds,
        "key": f"{model_name}/{backend}/{threads}t/{size_name}",
    }
