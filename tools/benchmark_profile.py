"""``tools/benchmark.py --task profile`` and ``--task fasttcm-speedup``: where the time goes.

* ``profile``: torch.profiler's top operators (by self CPU time) and the time by part (image
  encoder, attention pool, text branch, neck, DB head, post-processing) of the detector of
  ``benchmark_inference.py`` at the first ``--sizes`` entry, for each PyTorch backend: the
  profile before (``pytorch``) and after (``pytorch-opt``) ``optimize_for_inference``.
* ``fasttcm-speedup``: the DOTA model (``DOTA/fasttcm_cr50_fpn_rrcnn_1x_dota10_ss.yaml``,
  K = 15 class prompts from the DOTA-v1.0 class names) in MODE fasttcm and MODE tcm with the same
  weights (every parameter the two modes share is copied), interleaved, at each
  ``--speedup-batch``: with the config's text branch (``LANGUAGE_PROMPT False``: no
  image-conditioned prompt, so both modes cache their text embeddings) and with the language
  prompt generator (TCM then runs the text encoder on the K prompts for every image, FastTCM
  once). The time by part of each mode shows where the difference comes from.

Parts are timed by forward hooks on submodules, or by wrapping the methods that the models call
directly (``forward_with_aux``) and the post-processor object.
"""

import statistics
import time
from typing import Callable, Dict, List

import torch
from benchmark_inference import (
    Runners,
    build_model,
    interleaved_medians,
    load_cfg,
    num_threads,
    parse_size,
    random_image,
    spotter_cfg,
    test_size,
    timed,
    with_threads,
)

DOTA_CONFIG = "DOTA/fasttcm_cr50_fpn_rrcnn_1x_dota10_ss.yaml"


# ---------------------------------------------------------------------------------------------
# module timers (the part breakdown of --task profile and --task fasttcm-speedup)


class ModuleTimer:
    """Wall-clock time spent in named parts of a model, each a submodule's forward (hooks) or one
    of its methods (``"path:method"``, wrapped on the instance, e.g. ``forward_with_aux``, which
    forward hooks do not see). Nested parts are timed independently (a parent's time includes its
    children's).
    """

    def __init__(self, model: torch.nn.Module, parts: Dict[str, str]):
        """parts: label -> dotted attribute path under `model`, optionally ``:method`` (missing
        paths are skipped)."""
        self.totals: Dict[str, float] = {}
        self._undo: List[Callable[[], None]] = []
        for label, spec in parts.items():
            path, _, method = spec.partition(":")
            module = _get_path(model, path)
            if module is None or (method and not hasattr(module, method)):
                continue
            if not method and not isinstance(module, torch.nn.Module):
                continue
            self.totals[label] = 0.0
            if method == "__call__":  # called as obj(...): replace obj in its parent
                parent_path, _, name = path.rpartition(".")
                parent = _get_path(model, parent_path) if parent_path else model
                self._wrap_call(parent, name, module, label)
            elif method:
                self._wrap_method(module, method, label)
            else:
                self._hook_forward(module, label)

    def _hook_forward(self, module: torch.nn.Module, label: str) -> None:
        starts: List[float] = []
        pre = module.register_forward_pre_hook(lambda m, i: starts.append(time.perf_counter()))
        post = module.register_forward_hook(lambda m, i, o: self._add(label, starts.pop()))
        self._undo += [pre.remove, post.remove]

    def _wrap_method(self, module: torch.nn.Module, method: str, label: str) -> None:
        original = getattr(module, method)

        def timed_method(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self._add(label, start)

        setattr(module, method, timed_method)
        self._undo.append(lambda: delattr(module, method))

    def _wrap_call(self, parent, name: str, obj, label: str) -> None:
        timer = self

        class Timed:
            def __call__(self, *args, **kwargs):
                start = time.perf_counter()
                try:
                    return obj(*args, **kwargs)
                finally:
                    timer._add(label, start)

            def __getattr__(self, attr):
                return getattr(obj, attr)

        if isinstance(parent, torch.nn.Module) and isinstance(obj, torch.nn.Module):
            return  # a module's forward is hooked instead
        object.__setattr__(parent, name, Timed())
        self._undo.append(lambda: object.__setattr__(parent, name, obj))

    def _add(self, label: str, start: float) -> None:
        self.totals[label] += time.perf_counter() - start

    def reset(self) -> None:
        self.totals = dict.fromkeys(self.totals, 0.0)

    def remove(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo = []


def _get_path(model, path: str):
    """The object at a dotted attribute path under `model`, or None."""
    obj = model
    for name in path.split("."):
        obj = getattr(obj, name, None)
        if obj is None:
            return None
    return obj


#: label -> part of a FastTCM model (FPN or FPNC neck over FastTCMBackbone "bottom_up")
PARTS = {
    "backbone + neck": "backbone:forward_with_aux",
    "  FastTCM-CR50 (image + text branch)": "backbone.bottom_up:forward_with_aux",
    "    image encoder (stem + res2..res5 + pool)": "backbone.bottom_up.visual",
    "      attention pool": "backbone.bottom_up.visual.attnpool",
    "    text encoder": "backbone.bottom_up.text_encoder",
    "    language prompt generator": "backbone.bottom_up.language_prompt_generator",
    "    bimodal similarity matching": "backbone.bottom_up.bimodal_similarity_matching",
    "    visual prompt generator": "backbone.bottom_up.visual_prompt_generator",
    "    text context decoder": "backbone.bottom_up.text_context_decoder",
    "DB head": "text_head",
    "DB post-processing": "postprocessor:__call__",
    "recognizer": "recognizer",
    "proposal generator": "proposal_generator",
    "ROI heads": "roi_heads",
}


def part_breakdown(model, fn: Callable[[], object], runs: int) -> Dict[str, float]:
    """Median seconds per part of `PARTS` over `runs` calls of `fn`."""
    timer = ModuleTimer(model, PARTS)
    samples: Dict[str, List[float]] = {label: [] for label in timer.totals}
    samples["total"] = []
    try:
        for _ in range(runs):
            timer.reset()
            total = timed(fn)
            for label, seconds in timer.totals.items():
                samples[label].append(seconds)
            samples["total"].append(total)
    finally:
        timer.remove()
    return {label: statistics.median(values) for label, values in samples.items() if values}


# ---------------------------------------------------------------------------------------------
# --task profile


def benchmark_profile(args) -> List[Dict]:
    """torch.profiler top ops and the part breakdown of the detector at the first --sizes entry,
    per backend, at the largest --threads count."""
    from torch.profiler import ProfilerActivity, profile

    cfg = spotter_cfg(args.spotter_config, args.recognizer_config)
    ic15 = test_size(cfg)
    size_name = args.sizes[0]
    size = parse_size(size_name, ic15)
    image = random_image(size)
    threads = max(args.threads)
    rows = []
    backends = [b for b in (args.backend or ["pytorch", "pytorch-opt"]) if b != "onnxruntime"]
    for backend, runner in Runners(cfg, backends, [threads]).torch_runners().items():

        def run(runner=runner):
            return runner(image, True, args.instances)

        with num_threads(threads):
            for _ in range(args.warmup):
                run()
            parts = part_breakdown(runner.model, run, max(1, args.repeat))
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                run()
        averages = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in averages) or 1.0
        print(f"\n== detector {backend} {threads}t {size_name}: top ops by self CPU time")
        for event in averages[: args.top_ops]:
            share = event.self_cpu_time_total / total
            print(
                f"  {event.key[:48]:48s} {event.self_cpu_time_total / 1e6:8.3f} s "
                f"{share:6.1%} {event.count:6d} calls"
            )
            rows.append(
                {
                    "task": "profile",
                    "op": f"{backend} op {event.key[:40]}",
                    "size": f"{share:.1%} of self CPU, {event.count} calls",
                    "seconds": event.self_cpu_time_total / 1e6,
                    "key": f"profile/{backend}/{threads}t/{size_name}/op/{event.key}",
                }
            )
        print(f"== detector {backend} {threads}t {size_name}: time by part (median)")
        for label, seconds in parts.items():
            print(f"  {label:40s} {seconds:8.3f} s")
            rows.append(
                {
                    "task": "profile",
                    "op": f"{backend} part {label.strip()}",
                    "size": f"{size[1]}x{size[0]}",
                    "seconds": seconds,
                    "key": f"profile/{backend}/{threads}t/{size_name}/part/{label.strip()}",
                }
            )
    return rows


# ---------------------------------------------------------------------------------------------
# --task fasttcm-speedup


def _dota_models(language_prompt: bool, size: int):
    """(fasttcm model, tcm model) of the DOTA config with the same weights, and the keys that
    exist in one mode only."""
    models = {}
    for mode in ("fasttcm", "tcm"):
        cfg = load_cfg(
            DOTA_CONFIG,
            "MODEL.FASTTCM.MODE",
            mode,
            "MODEL.FASTTCM.LANGUAGE_PROMPT",
            language_prompt,
            "INPUT.MIN_SIZE_TEST",
            size,
            "INPUT.MAX_SIZE_TEST",
            size,
        )
        models[mode] = build_model(cfg)
    source = models["fasttcm"].state_dict()
    target = models["tcm"].state_dict()
    shared = {k: v for k, v in source.items() if k in target and target[k].shape == v.shape}
    models["tcm"].load_state_dict(shared, strict=False)
    only = sorted({k.split(".")[2] for k in set(source) ^ set(target) if k.count(".") >= 2})
    num_prompts = models["fasttcm"].backbone.bottom_up.num_prompts
    return models["fasttcm"], models["tcm"], only, num_prompts


def benchmark_fasttcm_speedup(args) -> List[Dict]:
    """fasttcm/tcm inference time of the DOTA model (K = its class prompts) at each
    ``--speedup-batch``, with the DOTA config's text branch (no LPG) and with the LPG, same
    weights, interleaved.

    Timed: the backbone (FastTCM-CR50 + FPN) on a preprocessed batch, the only part that differs
    between the modes; with ``--speedup-full-model`` also the whole model (rotated RPN and ROI
    heads included, whose cost with random weights depends on how many random boxes pass the
    score threshold, so it only dilutes the ratio).
    """
    size = args.speedup_size
    rows = []
    scopes = ("backbone", "model") if args.speedup_full_model else ("backbone",)
    for language_prompt in (False, True):
        fast, slow, only, num_prompts = _dota_models(language_prompt, size)
        lpg = "LPG on" if language_prompt else "LPG off (DOTA config)"
        for batch in args.speedup_batch:
            images = [
                torch.as_tensor(random_image((size, size), seed=i).transpose(2, 0, 1)).float()
                for i in range(batch)
            ]
            inputs = [{"image": im, "height": size, "width": size} for im in images]
            with torch.no_grad():
                tensor = fast.preprocess_image(inputs).tensor

            def call(model, scope):
                if scope == "backbone":
                    return _no_grad(lambda: model.backbone.forward_with_aux(tensor))
                return _no_grad(lambda: model(inputs))

            variants = {}
            for scope in scopes:
                for threads in args.threads:
                    for mode, model in (("fasttcm", fast), ("tcm", slow)):
                        variants[(scope, mode, threads)] = with_threads(threads, call(model, scope))
            medians = interleaved_medians(variants, args.repeat, args.warmup)
            for scope in scopes:
                for threads in args.threads:
                    base = (
                        f"speedup/{scope}/{'lpg' if language_prompt else 'nolpg'}/b{batch}/"
                        f"{threads}t"
                    )
                    for mode in ("fasttcm", "tcm"):
                        rows.append(
                            {
                                "task": "fasttcm-speedup",
                                "op": f"{scope} {mode} {lpg} batch {batch} {threads}t",
                                "size": f"{size}x{size}, K = {num_prompts}, per image",
                                "seconds": medians[(scope, mode, threads)] / batch,
                                "key": f"{base}/{mode}",
                            }
                        )
                    ratio = medians[(scope, "fasttcm", threads)] / medians[(scope, "tcm", threads)]
                    rows.append(
                        {
                            "task": "fasttcm-speedup",
                            "op": f"{scope} ratio fasttcm/tcm {lpg} batch {batch} {threads}t",
                            "size": f"paper: 1/1.47 = {1 / 1.47:.3f}",
                            "seconds": ratio,
                            "unit": "ratio",
                            "key": f"{base}/ratio",
                        }
                    )
            threads = max(args.threads)
            with num_threads(threads):
                for mode, model in (("fasttcm", fast), ("tcm", slow)):
                    parts = part_breakdown(model, call(model, scopes[-1]), max(1, args.repeat))
                    print(f"\n== {mode} {lpg} batch {batch} {threads}t: time by part (median)")
                    for label, seconds in parts.items():
                        print(f"  {label:44s} {seconds:8.3f} s")
                        rows.append(
                            {
                                "task": "fasttcm-speedup",
                                "op": f"part {mode} {lpg} b{batch} {label.strip()}",
                                "size": f"{size}x{size}, whole batch",
                                "seconds": seconds,
                                "key": (
                                    f"speedup/part/{'lpg' if language_prompt else 'nolpg'}/"
                                    f"b{batch}/{threads}t/{mode}/{label.strip()}"
                                ),
                            }
                        )
        if only:
            print(f"(modules in one mode only, not shared: {', '.join(only)})")
        fast = slow = None
    return rows


def _no_grad(fn: Callable[[], object]) -> Callable[[], object]:
    def run():
        with torch.no_grad():
            return fn()

    return run
