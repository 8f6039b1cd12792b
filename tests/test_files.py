"""The app's written files (app/files.py): one-shot outputs bounded, kept pictures kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app import (
    files,
)


def test_one_shot_outputs_are_bounded_and_kept_pictures_are_not(monkeypatch: pytest.MonkeyPatch) -> None:
    pixel = np.zeros((2, 2, 3), dtype=np.uint8)
    kept = files.save_jpeg(pixel, keep=True)
    assert Path(kept).parent == Path(files.render_dir())
    files.prune_outputs(keep=0)
    monkeypatch.setattr(files, "MAX_OUTPUTS", 7)
    monkeypatch.setattr(files, "_PRUNE_EVERY", 5)
    paths = [files.save_png(pixel) for _ in range(23)]
    assert all(Path(p).parent == Path(files.output_dir()) for p in paths)
    left = sorted(Path(files.output_dir()).iterdir())
    assert 7 <= len(left) <= 7 + 5  # pruned to the newest 7 before every 5th write
    assert Path(paths[-1]) in left and Path(paths[0]) not in left
    assert files.prune_outputs(keep=3) == len(left) - 3 and len(list(Path(files.output_dir()).iterdir())) == 3
    assert Path(kept).is_file()  # pictures that views refer to are not the prune's business
