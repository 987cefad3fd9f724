"""Datasets, mappers and loaders. Importing this package registers the mappers (data/build.py)."""

from . import dota_mapper, mappers, str_mapper  # noqa: F401  (register_mapper decorators)
