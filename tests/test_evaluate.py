"""The evaluation library and CLI end to end on a tiny generated data set (offline, default model)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cam_core
from cam_core.errors import DatasetError, ParameterError
from cam_core.evaluate import (
    ConfigSpec,
    Sample,
    default_configs,
    evaluate,
    prepare,
    read_boxes_csv,
    read_wsol_metadata,
)
from cam_core.evaluate import cli as evaluate_cli
from cam_core.evaluate.cli import main
from cam_core.localize import CONFIGS
from cam_core.models import DataConfig

HEADER = "filename,class_index,x0,y0,x1,y1\n"


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """Three 96x64 photos-to-be (a bright square on noise), one listed but missing, and boxes.csv."""
    rng = np.random.default_rng(0)
    rows = [HEADER]
    for i, (x0, y0) in enumerate(((10, 8), (40, 20), (60, 30))):
        pixels = rng.integers(0, 80, (64, 96, 3), dtype=np.uint8)
        pixels[y0 : y0 + 24, x0 : x0 + 30] = (230, 180, 40)
        Image.fromarray(pixels).save(tmp_path / f"img{i}.png")
        rows.append(f"img{i}.png,{i},{x0},{y0},{x0 + 29},{y0 + 23}\n")
    rows.append("img1.png,1,0,0,5.5,5.5\n")  # a second box of the same image
    rows.append("missing.png,2,0,0,10,10\n")
    (tmp_path / "boxes.csv").write_text("".join(rows))
    return tmp_path


def test_read_boxes_csv_groups_rows(dataset: Path) -> None:
    samples = read_boxes_csv(dataset / "boxes.csv", dataset)
    assert [s.path.name for s in samples] == ["img0.png", "img1.png", "img2.png", "missing.png"]
    assert samples[1].class_index == 1 and samples[1].boxes.shape == (2, 4)
    np.testing.assert_array_equal(samples[1].boxes[1], [0, 0, 5.5, 5.5])


@pytest.mark.parametrize(
    ("text", "line", "match"),
    [
        ("file,cls,x0,y0,x1,y1\na.png,0,0,0,1,1\n", 1, "header"),
        (HEADER + "a.png,0,0,0,1,1\na.png,0,0,0,1\n", 3, "expected 6 fields"),
        (HEADER + "a.png,0,zero,0,1,1\n", 2, "numbers"),
        (HEADER + "a.png,-1,0,0,1,1\n", 2, "class_index"),
        (HEADER + "a.png,0,5,0,1,1\n", 2, "flipped"),
        (HEADER + "a.png,0,0,0,nan,1\n", 2, "finite"),
        (HEADER + "\na.png,0,0,0,1,1\nb.png,1,0,0,1,1\na.png,3,0,0,1,1\n", 5, "conflicts with class 0 on line 3"),
    ],
)
def test_malformed_csv_names_the_line(tmp_path: Path, text: str, line: int, match: str) -> None:
    path = tmp_path / "boxes.csv"
    path.write_text(text)
    with pytest.raises(DatasetError, match=rf"line {line}: .*{match}"):
        read_boxes_csv(path, tmp_path)


def test_read_wsol_metadata(tmp_path: Path) -> None:
    (tmp_path / "image_ids.txt").write_text("val/a.JPEG\nval/b.JPEG\n")
    (tmp_path / "class_labels.txt").write_text("val/a.JPEG,3\nval/b.JPEG,7\n")
    (tmp_path / "localization.txt").write_text("val/a.JPEG,1,2,30,40\nval/b.JPEG,0,0,5,5\nval/a.JPEG,5,5,9,9\n")
    samples = read_wsol_metadata(tmp_path, "/data")
    assert [(str(s.path), s.class_index, len(s.boxes)) for s in samples] == [
        ("/data/val/a.JPEG", 3, 2),
        ("/data/val/b.JPEG", 7, 1),
    ]
    (tmp_path / "class_labels.txt").write_text("val/a.JPEG,3\n")
    with pytest.raises(DatasetError, match=r"image_ids.txt, line 2: 'val/b.JPEG' has no entry in class_labels"):
        read_wsol_metadata(tmp_path, "/data")


def test_prepare_geometry() -> None:
    image = np.zeros((100, 200, 3), np.uint8)  # H = 100, W = 200
    config = DataConfig((224, 224), (0.5,) * 3, (0.5,) * 3, "bilinear", 0.875)
    view, boxes = prepare(image, np.array([[0, 0, 99.0, 49.0]]), config, "stretch")
    assert view.shape == (224, 224, 3)
    np.testing.assert_array_equal(boxes, [[0, 0, 110, 109]])  # int(99 * 224 / 200), int(49 * 224 / 100): truncated
    # official: shorter side 100 -> floor(224 / 0.875) = 256, so 512 x 256; crop offsets left 144, top 16.
    view, boxes = prepare(
        image, np.array([[0, 0, 199.0, 99.0], [0, 0, 40.0, 40.0], [100, 50, 110, 60]]), config, "official"
    )
    assert view.shape == (224, 224, 3)
    np.testing.assert_array_equal(
        boxes, [[0, 0, 223, 223], [256 - 144, 128 - 16, int(110 * 2.56 - 144), int(60 * 2.56 - 16)]]
    )


def test_default_configs_names() -> None:
    assert list(default_configs()) == ["cam", "pas", "nwc", "nwc+pas"]
    assert list(default_configs("tap", crf=True)) == [
        "tap",
        "tap+pas",
        "tap+nwc",
        "tap+nwc+pas",
        "tap+crf",
        "tap+nwc+pas+crf",
    ]
    assert default_configs("tap")["tap+nwc"].localization == CONFIGS["nwc"]


def test_family_configs_names_and_refusal() -> None:
    names = list(default_configs(methods=("cam", "gradcam", "layercam")))
    assert names == ["cam", "pas", "nwc", "nwc+pas", "gradcam", "gradcam+pas", "gradcam+nwc", "gradcam+nwc+pas",
                     "layercam", "layercam+pas"]  # fmt: skip
    assert default_configs(methods=("gradcam",))["gradcam+nwc+pas"].localization == CONFIGS["nwc+pas"]
    with pytest.raises(ParameterError, match="unknown methods"):
        default_configs(methods=("scorecam",))


def test_gradcam_nwc_scores_as_nwc_on_a_gap_head(tiny_model: cam_core.LoadedModel, dataset: Path) -> None:
    """ReLU features, GAP head: Grad-CAM+NWC = NWC CAM / (h w), so after min-max every hit is the same."""
    samples = read_boxes_csv(dataset / "boxes.csv", dataset)
    specs = {n: s for n, s in default_configs(methods=("gradcam",)).items() if n in ("nwc", "gradcam+nwc")}
    result = evaluate(tiny_model, samples, specs, per_image=True)
    assert result.configs["gradcam+nwc"] == result.configs["nwc"]
    assert result.to_dict()["configs"]["gradcam+nwc"]["settings"]["method"] == "gradcam"


def test_gradcampp_is_evaluated_without_nwc(tiny_model: cam_core.LoadedModel, dataset: Path) -> None:
    """Grad-CAM++ (cam_core's corrected torchcam class) gets ``m`` and ``m+pas``; NWC is undefined for it."""
    specs = default_configs(methods=("gradcampp",))
    assert [n for n in specs if n.startswith("gradcampp")] == ["gradcampp", "gradcampp+pas"]
    samples = read_boxes_csv(dataset / "boxes.csv", dataset)
    result = evaluate(tiny_model, samples, {n: specs[n] for n in ("gradcampp", "gradcampp+pas")})
    assert result.to_dict()["configs"]["gradcampp+pas"]["settings"]["method"] == "gradcampp"
    assert 0.0 <= result.configs["gradcampp"].maxboxacc_v2 <= 100.0


def test_evaluate_library_with_progress_and_skips(tiny_model: cam_core.LoadedModel, dataset: Path) -> None:
    samples = read_boxes_csv(dataset / "boxes.csv", dataset)
    samples.append(Sample(dataset / "img0.png", 99, np.array([[0.0, 0.0, 5.0, 5.0]])))  # tiny model has 4 classes
    calls: list[tuple[int, int]] = []
    result = evaluate(tiny_model, samples, {"pas": ConfigSpec(CONFIGS["pas"])}, batch_size=2,
                      progress=lambda done, total: calls.append((done, total)))  # fmt: skip
    assert calls == [(2, 5), (4, 5), (5, 5)]
    assert result.n_images == 3 and list(result.configs) == ["pas"]
    reasons = {Path(s["file"]).name: s["reason"] for s in result.skipped}
    assert set(reasons) == {"missing.png", "img0.png"} and "out of range" in reasons["img0.png"]
    metrics = result.configs["pas"]
    assert 0.0 <= metrics.maxboxacc_v2 <= 100.0 and metrics.n_images == 3
    with pytest.raises(DatasetError, match="No image"):
        evaluate(tiny_model, samples[3:4])


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main([*args, "--no-progress"])
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_end_to_end(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "results.json"
    args = ["--images", str(dataset), "--boxes", str(dataset / "boxes.csv"), "--out", str(out_file)]
    status, out, err = run_cli([*args, "--batch-size", "2"], capsys)
    assert status == 0, err
    assert "missing.png" in err and "GT-known" in out and "nwc+pas" in out
    result = json.loads(out_file.read_text())
    assert result["model"] == "tf_efficientnet_lite0" and result["protocol"] == "stretch"
    assert result["n_images"] == 3 and 0.0 <= result["top1"] <= 100.0
    assert [Path(s["file"]).name for s in result["skipped"]] == ["missing.png"]
    assert list(result["configs"]) == ["cam", "pas", "nwc", "nwc+pas"]
    for metrics in result["configs"].values():
        for key in ("gt_known_loc", "top1_loc", "maxboxacc_v1", "maxboxacc_v2"):
            assert 0.0 <= metrics[key] <= 100.0
        assert set(metrics["maxboxacc_v2_by_iou"]) == {"30", "50", "70"}
        assert (
            len(metrics["curves"]["thresholds"]) == len(metrics["curves"]["v1"]) == len(metrics["curves"]["70"]) == 100
        )
        assert metrics["maxboxacc_v1"] == max(metrics["curves"]["v1"])


def test_cli_official_limit_and_errors(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--images", str(dataset), "--boxes", str(dataset / "boxes.csv")]
    status, out, _ = run_cli([*base, "--protocol", "official", "--limit", "2"], capsys)
    assert status == 0 and "2 images" in out
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "img0.png,0,0,0,1,1\nimg1.png,1,0,0,1\n")
    status, _, err = run_cli(["--images", str(dataset), "--boxes", str(bad)], capsys)
    assert status == 2 and "line 3" in err
    status, _, err = run_cli([*base, "--model", "no_such_model_xyz"], capsys)
    assert status == 2 and "no_such_model_xyz" in err


def test_cli_checkpoint_without_module(
    dataset: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "cam_core.train.checkpoint", None)  # import fails as if the file were absent
    args = ["--images", str(dataset), "--boxes", str(dataset / "boxes.csv"), "--checkpoint", "x.safetensors"]
    status, _, err = run_cli(args, capsys)
    assert status == 2 and "checkpoint.py" in err


def test_cli_crf(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    crf = pytest.importorskip("cam_core.crf")
    if not crf.crf_available():
        pytest.skip("pydensecrf2 is not installed")
    out_file = tmp_path / "crf.json"
    args = [
        "--images",
        str(dataset),
        "--boxes",
        str(dataset / "boxes.csv"),
        "--crf",
        "--limit",
        "2",
        "--out",
        str(out_file),
    ]
    status, out, err = run_cli(args, capsys)
    assert status == 0, err
    configs = json.loads(out_file.read_text())["configs"]
    assert configs["cam+crf"]["sweep"] is False and configs["nwc+pas+crf"]["curves"] == {"thresholds": []}
    assert "no sweep" in out


def test_cli_with_ground_truth_masks(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    masks = tmp_path / "masks"
    masks.mkdir()
    for i, (x0, y0) in enumerate(((10, 8), (40, 20))):  # img2 has no mask: it is skipped, and says why
        mask = np.zeros((64, 96), np.uint8)
        mask[y0 : y0 + 24, x0 : x0 + 30] = 255
        Image.fromarray(mask).save(masks / f"img{i}.png")
    out = tmp_path / "r.json"
    code = main(["--images", str(dataset), "--boxes", str(dataset / "boxes.csv"), "--masks", str(masks),
                 "--out", str(out), "--no-progress"])  # fmt: skip
    assert code == 0
    result = json.loads(out.read_text())
    assert result["n_images"] == 2
    assert {s["file"].rsplit("/", 1)[-1] for s in result["skipped"]} == {"img2.png", "missing.png"}
    for metrics in result["configs"].values():
        assert 0.0 <= metrics["mask_iou"] <= 100.0 and 0.0 <= metrics["pxap"] <= 100.0
    assert "mask IoU" in capsys.readouterr().out


def test_prepare_mask_follows_the_image_geometry() -> None:
    from cam_core.evaluate import prepare_mask

    config = DataConfig((32, 32), (0.5,) * 3, (0.5,) * 3, "bicubic", 0.875)
    mask = np.zeros((64, 128), bool)
    mask[:, :64] = True  # left half
    stretched = prepare_mask(mask, config, "stretch")
    assert stretched.shape == (32, 32) and stretched[:, :16].all() and not stretched[:, 16:].any()
    cropped = prepare_mask(mask, config, "official")  # shorter side 36, centre crop 32 of a 72-wide image
    assert cropped.shape == (32, 32) and cropped[:, 0].all() and not cropped[:, -1].any()


def test_library_errors_are_typed(
    tiny_model: cam_core.LoadedModel, dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import argparse

    from cam_core.errors import CheckpointError, CrfUnavailableError, ParameterError
    from cam_core.evaluate import run as ev

    samples = read_boxes_csv(dataset / "boxes.csv", dataset)[:1]
    with pytest.raises(ParameterError, match="batch_size"):
        evaluate(tiny_model, samples, batch_size=0)
    with pytest.raises(ParameterError, match="protocol"):
        prepare(np.zeros((8, 8, 3), np.uint8), np.zeros((1, 4)), tiny_model.data_config, "crop")  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "cam_core.crf", None)
    with pytest.raises(CrfUnavailableError, match=r"crf\.py"):
        ev._crf_refiner()
    monkeypatch.setitem(sys.modules, "cam_core.train.checkpoint", None)
    with pytest.raises(CheckpointError, match=r"checkpoint\.py"):
        evaluate_cli._load_model(argparse.Namespace(checkpoint=Path("x.safetensors"), model="tiny"))


def test_exif_orientation_is_ignored_in_evaluation(tiny_model: cam_core.LoadedModel, tmp_path: Path) -> None:
    """Boxes are in stored pixels: a photo tagged orientation 6 must score exactly as the untagged file."""
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 60, (40, 24, 3), dtype=np.uint8)  # stored sideways: 24 wide, 40 tall
    pixels[4:20, 6:18] = (240, 200, 30)
    exif = Image.Exif()
    exif[0x0112] = 6  # viewers rotate it 90 degrees clockwise
    Image.fromarray(pixels).save(tmp_path / "plain.jpg", quality=95)
    Image.fromarray(pixels).save(tmp_path / "tagged.jpg", quality=95, exif=exif.tobytes())
    box = np.array([[6.0, 4.0, 17.0, 19.0]])
    views: dict[str, np.ndarray] = {}
    results = {}
    for name in ("plain", "tagged"):
        sample = Sample(tmp_path / f"{name}.jpg", 1, box)
        on_image = lambda s, analysis, gt, n=name: views.setdefault(n, analysis.image)  # noqa: E731
        results[name] = evaluate(tiny_model, [sample], on_image=on_image).to_dict()["configs"]
    np.testing.assert_array_equal(views["plain"], views["tagged"])
    assert results["plain"] == results["tagged"]
    assert cam_core.datasets.load_stored_image(tmp_path / "tagged.jpg").shape == (40, 24, 3)


def test_cli_threshold_step_and_thresholding_are_recorded(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "fine.json"
    args = ["--images", str(dataset), "--boxes", str(dataset / "boxes.csv"), "--limit", "2"]
    status, _, err = run_cli(
        [*args, "--threshold-step", "0.001", "--thresholding", "float", "--out", str(out_file)], capsys
    )
    assert status == 0, err
    result = json.loads(out_file.read_text())
    assert result["threshold_step"] == 0.001 and "resize_bbox" in result["conventions"]["gt_box_scaling"]
    cam, pas = result["configs"]["cam"], result["configs"]["pas"]
    assert len(cam["curves"]["thresholds"]) == 1000 and cam["settings"]["thresholding"] == "float"
    assert "project extension" in pas["settings"]["sweep_map"] and pas["settings"]["percentile"] == 90.0
    status, _, err = run_cli([*args, "--out", str(out_file)], capsys)
    result = json.loads(out_file.read_text())
    assert result["threshold_step"] == 0.01 and result["configs"]["cam"]["settings"]["thresholding"] == "8bit"


def test_cli_checks_out_before_the_run(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--images", str(dataset), "--boxes", str(dataset / "boxes.csv"), "--model", "no_such_model_xyz"]
    for out, reason in ((tmp_path, "is a folder"), (tmp_path / "absent" / "r.json", "does not exist")):
        status, _, err = run_cli([*base, "--out", str(out)], capsys)
        assert status == 2 and reason in err and "no_such_model_xyz" not in err  # refused before the model


def test_no_image_lists_the_first_reasons(tiny_model: cam_core.LoadedModel, tmp_path: Path) -> None:
    samples = [Sample(tmp_path / f"gone{i}.png", 0, np.array([[0.0, 0, 1, 1]])) for i in range(5)]
    with pytest.raises(DatasetError, match=r"5 skipped; first: gone0\.png: .*; gone1\.png: .*; gone2\.png: [^;]*\)"):
        evaluate(tiny_model, samples)


def test_cli_records_the_resolution(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "r.json"
    args = ["--images", str(dataset), "--boxes", str(dataset / "boxes.csv"), "--out", str(out_file)]
    status, out, err = run_cli([*args, "--input-size", "96", "--output-stride", "16", "--limit", "2"], capsys)
    assert status == 0, err
    result = json.loads(out_file.read_text())
    assert (result["input_size"], result["output_stride"], result["feature_size"]) == ([96, 96], 16, [6, 6])
    assert "96 px, stride 16 -> 6x6 map" in out
    status, _, err = run_cli([*args, "--input-size", "8"], capsys)
    assert status == 2 and "input_size" in err
    status, _, err = run_cli([*args, "--model", "densenet121", "--output-stride", "8"], capsys)
    assert status == 2 and "output_stride" in err


def test_boxes_are_read_in_the_stored_photos_pixels(tiny_model: cam_core.LoadedModel, tmp_path: Path) -> None:
    """A 4.3-megapixel photo is not downscaled on reading (the app's 4 MP cap does not apply), so its
    GT boxes, given in the stored file's pixels, are scaled from that frame into the analysis frame."""
    from cam_core.boxes import scale_boxes

    pixels = np.full((1800, 2400, 3), 40, np.uint8)
    pixels[1200:1700, 1600:2300] = (230, 180, 40)
    Image.fromarray(pixels).save(tmp_path / "big.png")
    box = np.array([[1600.0, 1200.0, 2299.0, 1699.0]])
    seen: list[tuple[tuple[int, int], np.ndarray]] = []
    loaded = cam_core.models.with_input_size(tiny_model, 48)
    result = evaluate(loaded, [Sample(tmp_path / "big.png", 0, box)], per_image=True,
                      on_image=lambda _s, analysis, gt: seen.append((analysis.image_size, gt)))  # fmt: skip
    ((frame, gt),) = seen
    assert frame == (48, 48) and result.input_size == (48, 48) and result.feature_size == (12, 12)
    np.testing.assert_array_equal(gt, scale_boxes(box, (1800, 2400), (48, 48), "truncate"))
    np.testing.assert_array_equal(gt, [[32, 32, 45, 45]])
    assert result.evaluated == [str(tmp_path / "big.png")] and len(result.per_image["cam"]) == 1


def test_per_image_hits_reproduce_the_metrics(tiny_model: cam_core.LoadedModel, dataset: Path) -> None:
    from cam_core.evaluate.bootstrap import hits_array, sweep_accuracy

    samples = read_boxes_csv(dataset / "boxes.csv", dataset)[:3]
    result = evaluate(tiny_model, samples, per_image=True)
    assert result.to_dict()["input_size"] == [32, 32] and "per_image" not in result.to_dict()
    for name, metrics in result.configs.items():
        hits = result.per_image[name]
        assert len(hits) == result.n_images == 3
        assert sweep_accuracy(hits_array(hits, "maxboxacc_v2")) == pytest.approx(metrics.maxboxacc_v2)
        assert sweep_accuracy(hits_array(hits, "top1_loc")) == pytest.approx(metrics.top1_loc)
    assert evaluate(tiny_model, samples).per_image == {}
