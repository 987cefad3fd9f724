"""Proposal generators: :class:`SparseMatchingRRPN` (detectron2's RRPN with sparse anchor
matching)."""

from .sparse_matching_rrpn import SparseMatchingRRPN, match_sparse_iou

__all__ = ["SparseMatchingRRPN", "match_sparse_iou"]
