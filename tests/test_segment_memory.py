"""Big photos in the Segmentation export and the CLI: bounded memory, the same labels (issue #22, item 1).

A label map is computed at :func:`cam_core.segment.label_size` (the photo's size up to 4 megapixels), one class map
at a time, and its uint8 labels are resized to the photo by nearest neighbour. Before, the download of a
12000 x 12000 upload made one 576 MB float map per class and rule: +8.4 GB for the automatic top-5.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
import zipfile
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cam_core
from app import label_maps as seg
from app.explanation import start_session
from app.inputs import Controls
from app.models import Resolution
from cam_core.errors import ParameterError
from cam_core.localize import CONFIGS, LocalizationConfig
from cam_core.segment import SegmentConfig, label_size, resize_labels, segment, slot_shares
from cam_core.segment import labels as segment_labels
from cam_core.segment.cli import main
from tests.bad_inputs import rgb_png
from tests.helpers import hand_analysis

ROOT = Path(__file__).resolve().parent.parent
ASTRONAUT = ROOT / "assets" / "examples" / "astronaut.jpg"
PEAK_LIMIT_MB = 300
"""Issue #22's budget for one request, above the server's level before it."""


# --- the same labels, in less memory ------------------------------------------------------------


@pytest.mark.parametrize("name", [*CONFIGS, "float"])
def test_one_map_at_a_time_gives_the_same_labels(default_model: cam_core.LoadedModel, name: str) -> None:
    analysis = cam_core.analyze(default_model, cam_core.load_image(ASTRONAUT))
    loc = LocalizationConfig(True, "pas", 0.35, 80.0, "float") if name == "float" else CONFIGS[name]
    config = SegmentConfig(loc, top_k=6, min_probability=0.0)
    kept = segment(analysis, config, (301, 397))
    streamed = segment(analysis, config, (301, 397), keep_maps=False)
    assert streamed.maps is None and kept.maps is not None and len(kept.classes) == 6
    np.testing.assert_array_equal(streamed.labels, kept.labels)
    np.testing.assert_array_equal(streamed.standards, kept.standards)
    assert streamed.legend() == kept.legend() and (kept.areas[1:] > 0).sum() >= 2
    with pytest.raises(ParameterError, match="kept no class maps"):
        streamed.with_theta(0.5)


def test_all_constant_maps_are_refused_either_way() -> None:
    flat = hand_analysis(np.ones((2, 2, 3)), np.array([[1.0, 0.0], [0.0, 1.0]]))
    for keep_maps in (True, False):
        with pytest.raises(ParameterError, match="every selected class map is constant"):
            segment(flat, SegmentConfig(classes=(0, 1)), keep_maps=keep_maps)


def test_label_size_is_the_size_a_photo_is_analysed_at(tmp_path: Path) -> None:
    assert label_size((3000, 1000)) == (3000, 1000)  # 3 MP: its own size
    for height, width in [(2600, 1800), (12000, 12000), (5000, 300)]:
        path = tmp_path / f"{height}x{width}.png"
        Image.new("L", (width, height)).save(path)
        image, size = cam_core.load_image_with_size(path)
        assert size == (height, width) and label_size(size) == image.shape[:2]


def test_nearest_resize_takes_each_pixel_from_the_label_under_its_centre() -> None:
    small = np.array([[0, 1], [2, 3]], np.uint8)
    np.testing.assert_array_equal(resize_labels(small, (4, 6)), np.kron(small, np.ones((2, 3), np.uint8)))
    # 2 -> 3 columns: centres 0.5, 1.5, 2.5 of 3 sit at 1/3, 1, 5/3 of 2: columns 0, 1, 1 (OpenCV's legacy
    # INTER_NEAREST would take 0, 0, 1)
    np.testing.assert_array_equal(resize_labels(small, (2, 3)), [[0, 1, 1], [2, 3, 3]])
    assert resize_labels(small, (2, 2)) is small
    with pytest.raises(ParameterError, match="`size`"):
        resize_labels(small, (0, 3))


def test_shares_are_counted_band_by_band(monkeypatch: pytest.MonkeyPatch) -> None:
    labels = np.random.default_rng(0).integers(0, 4, (37, 23)).astype(np.uint8)
    expected = np.bincount(labels.ravel(), minlength=5) / labels.size
    monkeypatch.setattr(segment_labels, "_COUNT_PIXELS", 50)  # two rows a band: 19 bands
    np.testing.assert_array_equal(slot_shares(labels, 4), expected)


# --- the app's download and the CLI: the same maps for the same photo ----------------------------


def test_the_download_and_the_cli_write_the_same_maps_for_a_big_photo(uploads: Path, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    big = Image.open(ASTRONAUT).convert("RGB").resize((2600, 1800), Image.Resampling.BICUBIC)  # 4.7 MP
    big.save(uploads / "astronaut.png", compress_level=1)
    (photos / "astronaut.png").symlink_to(uploads / "astronaut.png")
    session = start_session({"path": str(uploads / "astronaut.png")}, cam_core.DEFAULT_MODEL, Resolution(224, 32))
    classes = [str(i) for i, _, _ in seg.get_analysis(session, session.model).top_k(3)]
    path = seg.export_zip(seg.SEG.convert(session, *astuple(Controls()), classes, 5, 0.0))
    with zipfile.ZipFile(path) as archive:
        app = {stem: _read_map(archive, stem) for stem in ("plain", "improved")}
    controls = Controls()
    cli = {"plain": ["--theta", str(controls.theta_mas)],
           "improved": ["--nwc", "--rule", "pas", "--theta", str(controls.theta_pas), "--percentile",
                        str(controls.percentile)]}  # fmt: skip
    for stem, options in cli.items():
        out = tmp_path / stem
        assert main(["--images", str(photos), "--out", str(out), "--classes", *classes, *options]) == 0
        labels = np.asarray(Image.open(out / "astronaut.png"))
        record = json.loads((out / "astronaut.json").read_text())
        assert labels.shape == (1800, 2600) and record["size"] == [1800, 2600]
        np.testing.assert_array_equal(labels, app[stem][0], err_msg=stem)
        assert record["slots"] == app[stem][1]["slots"] and record["config"] == app[stem][1]["config"]
        assert len(np.unique(labels)) >= 2, stem


def _read_map(archive: zipfile.ZipFile, stem: str) -> tuple[np.ndarray, dict]:
    with archive.open(f"{stem}.png") as png:
        labels = np.asarray(Image.open(png))
    return labels, json.loads(archive.read(f"{stem}.json"))


# --- the download of a 12000 x 12000 upload, measured in a fresh interpreter ----------------------

MEASURE = """
import gc, json, os, resource, shutil, sys, time
import cam_core
from app import label_maps as seg
from app.explanation import start_session
from app.state import get_analysis

def mb(field):
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith(field)).split()[1]) / 1024

session = start_session({"path": sys.argv[1]}, cam_core.DEFAULT_MODEL)  # the app's default resolution
top = get_analysis(session, session.model).top_k(int(sys.argv[2]) or 1)
picked = [str(i) for i, _, _ in top] if sys.argv[2] != "0" else []  # [] = the automatic top-5
request = seg.SEG.convert(session, 0.2, 0.35, 90, False, True, True, "cam", picked, 5, 0.0)
gc.collect()
idle = mb("VmRSS")
# at most 3 GB more address space: code that needs gigabytes fails here instead of taking the machine
resource.setrlimit(resource.RLIMIT_AS, (int((mb("VmSize") + 3072) * 2**20), resource.RLIM_INFINITY))
try:  # reset the high-water mark: the decode's own peak does not count
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
except OSError:
    pass
start, cpu = time.perf_counter(), time.process_time()
try:
    path, error = seg.export_zip(request), None
    shutil.copy(path, sys.argv[3])  # the render folder goes with this process
except Exception as exc:
    path, error = None, f"{type(exc).__name__}: {str(exc)[:200]}"
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
peak = min(mb("VmHWM"), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(json.dumps({"peak_mb": peak - idle, "seconds": seconds, "cpu_seconds": cpu, "error": error}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
@pytest.mark.parametrize("classes", [0, 20], ids=["automatic top-5", "20 picked"])
def test_the_download_of_a_12000_pixel_upload_stays_within_the_budget(
    classes: int, uploads: Path, tmp_path: Path
) -> None:
    photo = rgb_png(uploads / "big.png")  # 12000 x 12000, 6 MB
    made = tmp_path / "segmentation.zip"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(photo), str(classes), str(made)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["error"] is None, result["error"]
    assert result["peak_mb"] <= PEAK_LIMIT_MB, f"{result['peak_mb']:.0f} MB above idle"
    with zipfile.ZipFile(made) as archive:
        for stem in ("plain", "improved"):
            with archive.open(f"{stem}.png") as png, warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                assert Image.open(png).size == (12000, 12000)  # the header only: still the photo's own size
            slots = json.loads(archive.read(f"{stem}.json"))["slots"]
            assert len(slots) == 1 + (classes or 5) and abs(sum(s["area"] for s in slots) - 1) < 1e-9
