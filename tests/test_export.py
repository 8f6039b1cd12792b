"""cam_core.export: the ONNX graph against cam_core.analyze on the same pixels, its CLI, the README snippet."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

import cam_core
from cam_core.export import DEFAULT_INPUT_SIZE, DEFAULT_OUTPUT_STRIDE, export_onnx, main
from tests.helpers import CAT, EXAMPLES, ROOT

FULLRES = Path("/work/shared/data/imagenet_val_fullres_dev")
FULLRES_COUNT = 8


@pytest.fixture(scope="module")
def app_graph(tmp_path_factory: pytest.TempPathFactory) -> tuple[cam_core.LoadedModel, Path]:
    """The default export (the app's model at the app's starting resolution) and its model."""
    loaded = cam_core.load_model(output_stride=DEFAULT_OUTPUT_STRIDE, input_size=DEFAULT_INPUT_SIZE)
    return loaded, export_onnx(loaded, tmp_path_factory.mktemp("onnx") / "cam.onnx")


def _square(image: np.ndarray, loaded: cam_core.LoadedModel) -> np.ndarray:
    """uint8 (N, N, 3): the pixels analyze's own resize feeds the network (an N x N image is not resized again)."""
    height, width = loaded.data_config.input_size
    resample = Image.Resampling[loaded.data_config.interpolation.upper()]
    return np.asarray(Image.fromarray(image).resize((width, height), resample))


def _photos() -> dict[str, np.ndarray]:
    paths = sorted(EXAMPLES.glob("*.jpg"))
    if FULLRES.is_dir():  # research-only photos: never in the repository; skipped where absent
        paths += sorted(FULLRES.glob("*.JPEG"))[:FULLRES_COUNT]
    return {path.name: cam_core.load_image(path) for path in paths}


def test_defaults_are_the_apps_starting_resolution() -> None:
    from app.inputs import DEFAULT_RESOLUTION

    assert (
        DEFAULT_RESOLUTION.input_size,
        DEFAULT_RESOLUTION.output_stride,
    ) == (DEFAULT_INPUT_SIZE, DEFAULT_OUTPUT_STRIDE)


def test_onnx_matches_analyze_on_real_photos(app_graph: tuple[cam_core.LoadedModel, Path]) -> None:
    """Same top-1 and CAM correlation >= 0.999 for the top class, photo by photo (examples + full-res if present)."""
    loaded, path = app_graph
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    correlations = {}
    for name, photo in _photos().items():
        square = _square(photo, loaded)
        analysis = cam_core.analyze(loaded, square)
        logits, cams = session.run(None, {"image": square[None]})
        assert logits.shape == (1, loaded.num_classes) and cams.shape[:2] == (1, loaded.num_classes)
        top = int(np.argmax(analysis.logits))
        assert int(np.argmax(logits[0])) == top, name
        reference = analysis.cam(top)
        assert cams.shape[2:] == reference.shape
        correlations[name] = float(np.corrcoef(reference.ravel(), cams[0, top].ravel())[0, 1])
        np.testing.assert_allclose(logits[0], analysis.logits, atol=1e-2 * np.abs(analysis.logits).max())
        # the exact-CAM identity inside the graph: mean_hw(M_c) + b_c is the logit of the GAP head
        np.testing.assert_allclose(cams[0].mean(axis=(1, 2)) + analysis.bias, logits[0], atol=1e-3, rtol=1e-4)
    print("1 - CAM correlation per photo:", {k: f"{1 - v:.1e}" for k, v in correlations.items()})
    assert min(correlations.values()) >= 0.999, correlations


def test_cli_writes_the_requested_resolution(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sub" / "cam.onnx"
    assert main(["--out", str(out), "--input-size", "224", "--output-stride", "32"]) == 0
    assert str(out) in capsys.readouterr().out
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (image,) = session.get_inputs()
    assert (image.name, image.type, image.shape) == ("image", "tensor(uint8)", [1, 224, 224, 3])
    logits, cams = session.run(None, {"image": np.zeros((1, 224, 224, 3), np.uint8)})
    assert logits.shape == (1, 1000) and cams.shape == (1, 1000, 7, 7)


def test_cli_refuses_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", str(tmp_path / "x.onnx"), "--output-stride", "12"]) == 2
    assert "cam-export:" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


def test_readme_snippet_runs(
    app_graph: tuple[cam_core.LoadedModel, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's onnxruntime example, run as written next to an exported cam.onnx and cat.jpg."""
    loaded, path = app_graph
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Export to ONNX", 1)[1]
    snippet = re.search(r"```python\n(.*?)```", section, re.S)
    assert snippet is not None
    assert len(snippet.group(1).strip().splitlines()) <= 12
    shutil.copy(path, tmp_path / "cam.onnx")
    shutil.copy(CAT, tmp_path / "cat.jpg")
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(snippet.group(1), "README.md", "exec"), {})
    expected = int(np.argmax(cam_core.analyze(loaded, cam_core.load_image(CAT)).logits))
    assert printed.getvalue().split()[0] == str(expected)
    assert "(28, 28)" in printed.getvalue()
