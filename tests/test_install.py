"""The install that `make install` produces: detectron2 0.6 without _C, served by our ops hook."""

import subprocess
import sys
from importlib import metadata

from tests.common import compiled_detectron2_c


def _fresh(code: str) -> str:
    """Run `code` in a fresh interpreter (nothing of ours imported first); return its stdout."""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_detectron2_version_is_0_6():
    assert metadata.version("detectron2") == "0.6"


def test_fresh_interpreter_imports_detectron2_modeling_and_layers():
    out = _fresh(
        "import sys, detectron2.modeling, detectron2.layers\nprint('fasttcm' in sys.modules)\n"
    )
    # detectron2 imports on its own; it does not need (nor import) the fasttcm package.
    assert out.strip().splitlines()[-1] == "False"


def test_compat_fixes_applied():
    out = _fresh(
        "import inspect, detectron2.data.transforms.transform as t, "
        "detectron2.structures.masks as m\n"
        "src = inspect.getsource(t) + inspect.getsource(m)\n"
        "print('Image.LINEAR' in src, 'np.bool)' in src)\n"
    )
    assert out.split() == ["False", "False"]


def test_hook_serves_c_only_as_a_last_resort():
    out = _fresh(
        "import sys, importlib.machinery as m, detectron2._C as c\n"
        "names = [type(f).__name__ for f in sys.meta_path]\n"
        "print(getattr(c, 'FASTTCM_PROJECT_OPS', False),"
        " names.index('_ProjectOpsFinder') > sys.meta_path.index(m.PathFinder))\n"
    )
    # The hook is always installed after the regular finders; it serves _C only when no compiled
    # extension exists (install A), so with a compiled one (install B) the real module is loaded.
    assert out.split() == [str(not compiled_detectron2_c()), "True"]
