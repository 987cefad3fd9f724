"""Where an evaluator writes its files when the caller names no folder."""

import os

__all__ = ["default_output_dir"]


def default_output_dir(cfg, dataset_name: str) -> str:
    """``cfg.OUTPUT_DIR/inference/<dataset_name>``: detectron2's ``DefaultTrainer`` convention."""
    return os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
