"""Data types shared by ``fasttcm.data``, ``fasttcm.modeling`` and ``fasttcm.evaluation``.

Like ``detectron2.structures``, this package sits at the bottom of the layers: it imports nothing
from the rest of ``fasttcm``, so the data pipeline and the models can both rely on it without
importing each other.
"""
