"""The ``detectron2._C`` API (v0.6) implemented by the project's ops. Placeholder, being filled."""
__all__ = []
