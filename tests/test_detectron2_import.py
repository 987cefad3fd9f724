"""detectron2 works in a fresh interpreter with the project's ops as its ``_C``, and a real
compiled ``_C`` takes precedence over them."""

import subprocess
import sys
import textwrap

import pytest

from tests.common import compiled_detectron2_c

COMPILED_C = compiled_detectron2_c()


def run_fresh(code: str) -> str:
    """Run ``code`` in a new interpreter (nothing of ours imported first); return its stdout."""
    res = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    return res.stdout.strip().splitlines()[-1]


def test_detectron2_ops_and_collect_env_work_without_importing_fasttcm():
    out = run_fresh("""
        import sys, torch
        import detectron2.modeling
        import detectron2._C
        from detectron2.layers import ROIAlignRotated, batched_nms_rotated, nms_rotated
        from detectron2.structures import RotatedBoxes, pairwise_iou_rotated

        boxes = RotatedBoxes(torch.tensor([[0., 0, 2, 2, 0], [1, 0, 2, 2, 0], [0, 0, 2, 2, 90]]))
        iou = pairwise_iou_rotated(boxes, boxes)
        assert torch.allclose(iou[0], torch.tensor([1.0, 1 / 3, 1.0])), iou
        scores = torch.tensor([0.9, 0.8, 0.7])
        assert nms_rotated(boxes.tensor, scores, 0.3).tolist() == [0]
        labels = torch.tensor([0, 1, 0])
        assert batched_nms_rotated(boxes.tensor, scores, labels, 0.3).tolist() == [0, 1]

        # A 2x2 roi at angle 0 over a ramp reads the ramp at the sample points.
        ramp = torch.arange(36.0).view(1, 1, 6, 6)
        out = ROIAlignRotated((1, 1), 1.0, 1)(ramp, torch.tensor([[0, 3.0, 3.0, 2.0, 2.0, 0.0]]))
        assert torch.allclose(out.flatten(), ramp[0, 0, 2:4, 2:4].mean().view(1)), out

        from detectron2.utils.collect_env import collect_env_info
        assert ("FastTCM-D2 pure-PyTorch ops" in collect_env_info()) == (
            getattr(detectron2._C, "FASTTCM_PROJECT_OPS", False))
        print(getattr(detectron2._C, "FASTTCM_PROJECT_OPS", False), "fasttcm" in sys.modules)
        """)
    # Install A serves the project's ops as detectron2._C; install B (compiled) uses its own.
    assert out == ("False False" if COMPILED_C else "True False")


@pytest.mark.skipif(
    COMPILED_C,
    reason="a compiled detectron2._C is installed: it is the module that wins, as the test above "
    "checks; the stand-in on detectron2's path cannot be shadowed-tested over it",
)
def test_a_compiled_c_module_wins_over_the_project_ops(tmp_path):
    """A ``detectron2/_C`` that the regular import system finds (here a stand-in module on
    detectron2's package path) is used untouched, and the project's ops stay unloaded."""
    (tmp_path / "_C.py").write_text(
        "REAL_EXTENSION = True\n"
        "def box_iou_rotated(boxes1, boxes2):\n"
        "    return 'from the real _C'\n"
    )
    out = run_fresh(f"""
        import sys, torch, detectron2
        detectron2.__path__.append({str(tmp_path)!r})
        import detectron2._C as C
        from detectron2.layers.rotated_boxes import pairwise_iou_rotated
        assert C.REAL_EXTENSION and not hasattr(C, "FASTTCM_PROJECT_OPS")
        assert pairwise_iou_rotated(torch.zeros(1, 5), torch.zeros(1, 5)) == "from the real _C"
        assert "fasttcm_ops.detectron2_c_api" not in sys.modules
        assert not hasattr(torch.ops.detectron2, "nms_rotated")
        print("real _C used")
        """)
    assert out == "real _C used"


def test_the_project_op_steps_aside_when_a_compiled_c_is_installed(tmp_path, monkeypatch):
    """A compiled ``_C`` registers ``torch.ops.detectron2.nms_rotated`` itself when it loads; a
    registration by the project first would make that load abort the process ("duplicate
    registration"), so the project only registers when no compiled extension file is installed."""
    import importlib.machinery
    import importlib.util

    from fasttcm_ops import nms_rotated as ops

    package = tmp_path / "detectron2"
    package.mkdir()
    spec = importlib.machinery.ModuleSpec("detectron2", None, is_package=True)
    spec.submodule_search_locations = [str(package)]
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: spec if name == "detectron2" else real_find_spec(name, *a),
    )
    assert not ops.compiled_detectron2_c_installed()
    (package / ("_C" + importlib.machinery.EXTENSION_SUFFIXES[0])).write_bytes(b"")
    assert ops.compiled_detectron2_c_installed()

    monkeypatch.setattr(ops, "_REGISTERED_OP", None)
    monkeypatch.setattr(ops, "_op_exists", lambda: False)
    registered = []
    monkeypatch.setattr(
        ops.torch.library, "custom_op", lambda *a, **k: registered.append(a) or _NoFake()
    )
    ops.register_nms_rotated_op()
    assert registered == []  # the compiled extension will provide the op
    (package / ("_C" + importlib.machinery.EXTENSION_SUFFIXES[0])).unlink()
    ops.register_nms_rotated_op()
    assert len(registered) == 1 and registered[0][0] == "detectron2::nms_rotated"


class _NoFake:
    def register_fake(self, fn):
        return fn
