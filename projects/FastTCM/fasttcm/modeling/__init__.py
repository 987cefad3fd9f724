"""Model components. Importing this module registers them with detectron2's registries."""
