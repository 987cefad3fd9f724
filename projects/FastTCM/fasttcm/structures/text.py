"""Conventions of text annotations shared by the data pipeline, the models and the evaluators."""

__all__ = ["DONT_CARE_TEXT"]

DONT_CARE_TEXT = "###"
"""The ICDAR "don't care" transcription: a region that is neither counted as ground truth nor
penalised when a detection covers it (unreadable or ignored text)."""
