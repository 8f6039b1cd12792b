"""``python -m cam_core.checkpoint PATH [--evaluation results.json]`` prints (and updates) a checkpoint's card.

A stable name for the command and for ``cam_core.checkpoint.<name>`` imports: the code is in
:mod:`cam_core.train.checkpoint` (and :mod:`cam_core.train.card`), the command in :mod:`cam_core.train.cli`.
"""

from __future__ import annotations

import sys

from cam_core.train.card import card_resolution, read_card
from cam_core.train.checkpoint import (
    attach_evaluation,
    build_base,
    load_checkpoint,
    save_checkpoint,
    summarize_evaluation,
    write_card_json,
)
from cam_core.train.cli import checkpoint_main

__all__ = [
    "attach_evaluation",
    "build_base",
    "card_resolution",
    "load_checkpoint",
    "read_card",
    "save_checkpoint",
    "summarize_evaluation",
    "write_card_json",
]

if __name__ == "__main__":
    sys.exit(checkpoint_main())
