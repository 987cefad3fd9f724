"""FastTCM-D2's own implementations of the ops detectron2 compiles into ``detectron2._C``.

Pure PyTorch (torchvision for deformable convolution, numpy for COCO evaluation), vectorized, any
device; no detectron2 or ``fasttcm`` import, so the ``.pth`` hook (``dev/d2_ops_hook``) can serve
them as ``detectron2._C`` while detectron2 itself is importing.

Modules: ``rotated_iou`` (box_iou_rotated), ``nms_rotated`` (nms_rotated and the
``torch.ops.detectron2.nms_rotated`` registration), ``roi_align_rotated`` (forward / backward),
``deform_conv`` (v1 / v2 via torchvision), ``coco_eval`` (COCOeval_opt kernels), ``build_info``
(collect_env), and ``detectron2_c_api``, the ``_C`` module the hook serves; ``openmp_env``, imported
first by the command-line tools, sets ``OMP_WAIT_POLICY=PASSIVE`` before torch loads (the ops, like
all PyTorch CPU code, slow down many times on a shared CPU while idle OpenMP threads spin).
Importing this package imports none of them and registers nothing.
"""
