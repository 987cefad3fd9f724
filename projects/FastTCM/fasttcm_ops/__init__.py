"""FastTCM-D2's own implementations of the ops detectron2 compiles into ``detectron2._C``.

Pure PyTorch, vectorized, any device; no detectron2 or ``fasttcm`` import, so the ``.pth`` hook
(``dev/d2_ops_hook``) can serve them as ``detectron2._C`` while detectron2 itself is importing.
"""
