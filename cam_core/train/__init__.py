"""TAP training: fine-tune a timm CNN's head (or more) with GAP or TAP pooling and save a small checkpoint.

Modules: :mod:`~cam_core.train.recipe` (the recipe, trainable parts, loss, optimiser),
:mod:`~cam_core.train.finetune` (the loop, cached augmented views), :mod:`~cam_core.train.data` (training photos
and labels), :mod:`~cam_core.train.checkpoint` (safetensors checkpoints of the trained tensors, loaded back as
a CAM-exact model) with their JSON model cards (:mod:`~cam_core.train.card`). ``python -m cam_core.train`` and
``python -m cam_core.checkpoint PATH`` are the command lines (:mod:`cam_core.train.cli`). The public names are
re-exported here (the loop is :func:`cam_core.train.finetune.finetune`).
"""

from __future__ import annotations

from cam_core.train.card import card_resolution, read_card
from cam_core.train.checkpoint import (
    attach_evaluation,
    build_base,
    load_checkpoint,
    save_checkpoint,
    summarize_evaluation,
    write_card_json,
)
from cam_core.train.recipe import Recipe

__all__ = [
    "Recipe",
    "attach_evaluation",
    "build_base",
    "card_resolution",
    "load_checkpoint",
    "read_card",
    "save_checkpoint",
    "summarize_evaluation",
    "write_card_json",
]
