"""Serve ``detectron2._C`` from FastTCM-D2's own ops when detectron2 has no compiled extension.

Installed as a ``.pth`` hook by ``dev/build_detectron2.py``. At interpreter start-up it only appends
a finder to the *end* of ``sys.meta_path`` (no imports, no torch). That finder answers for the
single name ``detectron2._C`` and only after every regular finder has failed to find it, so a
detectron2 built from source with its compiled ``_C`` is always used untouched.

When it does answer, the module it provides is ``fasttcm_ops.detectron2_c_api``'s content: the
functions detectron2 v0.6 calls on ``_C`` (rotated IoU, ROIAlignRotated, deformable convolution,
fast COCOeval) and the registration of ``torch.ops.detectron2.nms_rotated``. ``fasttcm_ops`` imports
neither detectron2 nor ``fasttcm``, so serving it while detectron2 is half-imported is safe.
"""

import importlib.abc
import importlib.machinery
import importlib.util
import sys

TARGET = "detectron2._C"
PROVIDER = "fasttcm_ops.detectron2_c_api"


class _ProjectOpsLoader(importlib.abc.Loader):
    def create_module(self, spec):
        return None  # default module creation

    def exec_module(self, module):
        provider = importlib.import_module(PROVIDER)
        public = getattr(provider, "__all__", None) or [
            n for n in vars(provider) if not n.startswith("_")
        ]
        for name in public:
            setattr(module, name, getattr(provider, name))
        module.__doc__ = provider.__doc__
        module.FASTTCM_PROJECT_OPS = True


class _ProjectOpsFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname != TARGET:
            return None
        if importlib.util.find_spec(PROVIDER.split(".")[0]) is None:
            return None  # fasttcm_ops not installed: detectron2 reports the usual ImportError
        return importlib.machinery.ModuleSpec(fullname, _ProjectOpsLoader(), origin=PROVIDER)


def install():
    if not any(isinstance(f, _ProjectOpsFinder) for f in sys.meta_path):
        sys.meta_path.append(_ProjectOpsFinder())
