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


def test_a_download_name_is_readable_and_safe() -> None:
    """Issue #23: the name a zip downloads under follows the unguessable prefix, made safe."""
    from app.files import DOWNLOAD_SEPARATOR, new_path, readable_name

    assert readable_name("cam-explanation ILSVRC2012_val_00000001") == "cam-explanation-ilsvrc2012-val-00000001"
    assert readable_name("../../etc/passwd\x00<script>") == "etc-passwd-script"
    assert readable_name("日本") == "file" and len(readable_name("a" * 500)) == 60
    path = Path(new_path(".zip", name="cam-explanation cat"))
    prefix, name = path.name.split(DOWNLOAD_SEPARATOR)
    assert name == "cam-explanation-cat.zip" and len(prefix) == 12 + 1 + 32
