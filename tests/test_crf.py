"""Dense-CRF refinement: accuracy gain on a synthetic photo, validation, size cap, missing backend."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest

from cam_core import crf
from cam_core.crf import CrfParams, crf_available, foreground_probability, refine_mask, refine_probability
from cam_core.errors import CrfUnavailableError, InvalidImageError, ParameterError


def _texture(rng: np.random.Generator, height: int, width: int, sigma: float) -> np.ndarray:
    """Smoothed colour noise with unit std: float32 (H, W, 3)."""
    noise = cv2.GaussianBlur(rng.normal(0, 1, (height, width, 3)).astype(np.float32), (0, 0), sigma)
    return noise / noise.std()


def _scene(height: int = 128, width: int = 160, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A textured orange ellipse on a textured, striped blue background, and a blurry, offset CAM.

    Returns:
        image uint8 (H, W, 3); cam float32 (H, W) in [0, 1]; truth bool (H, W).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    truth = ((yy - 0.5 * height) / (0.28 * height)) ** 2 + ((xx - 0.45 * width) / (0.25 * width)) ** 2 <= 1.0
    stripes = 20 * np.sin(xx / 6.0 + yy / 9.0)[..., None]
    background = np.array([90.0, 130.0, 170.0]) + 25 * _texture(rng, height, width, 3) + stripes
    foreground = np.array([170.0, 110.0, 80.0]) + 25 * _texture(rng, height, width, 2) + (30 * yy / height)[..., None]
    image = np.where(truth[..., None], foreground, background) + rng.normal(0, 10, (height, width, 3))
    # The CAM: the true mask shifted by (6, 8) px and blurred with sigma 10, then min-max normalised.
    cam = cv2.GaussianBlur(np.roll(truth.astype(np.float32), (6, 8), axis=(0, 1)), (0, 0), 10)
    cam = (cam - cam.min()) / (cam.max() - cam.min())
    return np.clip(image, 0, 255).astype(np.uint8), cam.astype(np.float32), truth


def _iou(mask: np.ndarray, truth: np.ndarray) -> float:
    return float((mask & truth).sum() / (mask | truth).sum())


def _boundary_error(mask: np.ndarray, truth: np.ndarray) -> float:
    """Median distance (px) from the mask's boundary pixels to the true boundary."""
    kernel = np.ones((3, 3), np.uint8)

    def boundary(m: np.ndarray) -> np.ndarray:
        return (m.astype(np.uint8) - cv2.erode(m.astype(np.uint8), kernel)).astype(bool)

    distance = cv2.distanceTransform((~boundary(truth)).astype(np.uint8), cv2.DIST_L2, 5)
    return float(np.median(distance[boundary(mask)]))


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _scene()


# --- accuracy (needs the backend) ---------------------------------------------------------------


@pytest.mark.parametrize("threshold", [0.2, 0.35, 0.5])
def test_crf_beats_thresholded_cam(scene: tuple[np.ndarray, np.ndarray, np.ndarray], threshold: float) -> None:
    pytest.importorskip("pydensecrf.densecrf")
    image, cam, truth = scene
    before = cam > threshold
    after = refine_mask(image, cam, threshold)
    assert after.dtype == np.bool_ and after.shape == truth.shape
    # Measured (seed 0): IoU 0.675 / 0.715 / 0.709 thresholded -> 0.982 / 0.981 / 0.978 with the CRF.
    assert _iou(before, truth) < 0.75
    assert _iou(after, truth) > 0.9
    assert _iou(after, truth) - _iou(before, truth) > 0.2
    # Sharper edges: the CRF boundary lies on the true one (median 0 px vs 6.4-7.8 px thresholded).
    assert _boundary_error(after, truth) < 1.0 < 4.0 < _boundary_error(before, truth)


def test_without_pairwise_terms_crf_is_the_threshold(scene: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    pytest.importorskip("pydensecrf.densecrf")
    image, cam, _ = scene
    params = CrfParams(gaussian_compat=0.0, bilateral_compat=0.0)
    np.testing.assert_array_equal(refine_mask(image, cam, 0.35, params), cam > 0.35)


def test_probability_agrees_with_mask(scene: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    pytest.importorskip("pydensecrf.densecrf")
    image, cam, _ = scene
    probability = refine_probability(image, cam, 0.35)
    assert probability.dtype == np.float32 and probability.shape == cam.shape
    assert probability.min() >= 0.0 and probability.max() <= 1.0
    np.testing.assert_array_equal(probability > 0.5, refine_mask(image, cam, 0.35))


def test_size_cap_returns_original_size(scene: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    pytest.importorskip("pydensecrf.densecrf")
    image, cam, truth = scene
    params = CrfParams(max_side=64, bilateral_sxy=40.0)  # 160 x 128 -> 64 x 51 for the CRF
    mask = refine_mask(image, cam, 0.35, params)
    probability = refine_probability(image, cam, 0.35, params)
    assert mask.shape == truth.shape and mask.dtype == np.bool_
    assert probability.shape == truth.shape and probability.dtype == np.float32
    assert _iou(mask, truth) > _iou(cam > 0.35, truth) + 0.1


def test_default_cap_on_a_large_image() -> None:
    pytest.importorskip("pydensecrf.densecrf")
    image, cam, truth = _scene(height=600, width=700)
    mask = refine_mask(image, cam, 0.35, CrfParams(iterations=2))
    assert mask.shape == (600, 700)
    assert _iou(mask, truth) > _iou(cam > 0.35, truth)


def test_extreme_thresholds_are_usable(scene: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    pytest.importorskip("pydensecrf.densecrf")
    image, cam, _ = scene
    assert refine_mask(image, cam, 0.0).shape == cam.shape
    assert not refine_mask(image, cam, 1.0).any()  # p <= 0.5 everywhere: nothing beats background


# --- unary (pure numpy) -------------------------------------------------------------------------


def test_foreground_probability_matches_formula() -> None:
    heatmap = np.linspace(0.0, 1.0, 101, dtype=np.float32).reshape(1, -1)
    t = 0.3
    expected = [0.5 * h / t if h <= t else 0.5 + 0.5 * (h - t) / (1 - t) for h in heatmap[0].astype(float)]
    expected = np.clip(expected, 1e-5, 1 - 1e-5)
    probability = foreground_probability(heatmap, t)
    assert probability.dtype == np.float32
    np.testing.assert_allclose(probability[0], expected, rtol=1e-6, atol=1e-7)
    assert foreground_probability(np.array([[t]]), t)[0, 0] == pytest.approx(0.5)
    assert np.all(np.diff(probability[0]) >= 0)


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("gaussian_sxy", 0.0),
        ("gaussian_compat", -1.0),
        ("bilateral_sxy", -5.0),
        ("bilateral_srgb", 0),
        ("bilateral_compat", float("nan")),
        ("iterations", 0),
        ("iterations", 2.5),
        ("iterations", True),
        ("max_side", 8),
        ("gaussian_sxy", "3"),
    ],
)
def test_params_are_validated(field: str, value: object) -> None:
    with pytest.raises(ParameterError, match=f"`{field}`"):
        CrfParams(**{field: value})  # type: ignore[arg-type]


def test_default_params() -> None:
    params = CrfParams()
    assert (params.gaussian_sxy, params.gaussian_compat) == (3, 3)
    assert (params.bilateral_sxy, params.bilateral_srgb, params.bilateral_compat) == (80, 13, 10)
    assert (params.iterations, params.max_side) == (10, 512)


def _bad_inputs() -> list[tuple[str, np.ndarray, np.ndarray, float, type[Exception], str]]:
    image = np.zeros((8, 10, 3), np.uint8)
    cam = np.full((8, 10), 0.5, np.float32)
    nan = cam.copy()
    nan[0, 0] = np.nan
    return [
        ("float image", image.astype(np.float32), cam, 0.5, InvalidImageError, "`image`"),
        ("grey image", image[..., 0], cam, 0.5, InvalidImageError, "`image`"),
        ("rgba image", np.zeros((8, 10, 4), np.uint8), cam, 0.5, InvalidImageError, "`image`"),
        ("int heatmap", image, (cam * 2).astype(np.int64), 0.5, InvalidImageError, "`heatmap`"),
        ("3-d heatmap", image, cam[..., None], 0.5, InvalidImageError, "`heatmap`"),
        ("shape mismatch", image, cam[:, :9], 0.5, InvalidImageError, "`heatmap` shape"),
        ("non-finite", image, nan, 0.5, InvalidImageError, "NaN"),
        ("out of range", image, cam * 3, 0.5, InvalidImageError, r"\[0, 1\]"),
        ("threshold > 1", image, cam, 1.5, ParameterError, "`threshold`"),
        ("threshold nan", image, cam, float("nan"), ParameterError, "`threshold`"),
    ]


@pytest.mark.parametrize(
    ("image", "heatmap", "threshold", "error", "match"),
    [case[1:] for case in _bad_inputs()],
    ids=[case[0] for case in _bad_inputs()],
)
@pytest.mark.parametrize("refine", [refine_mask, refine_probability])
def test_inputs_are_validated(
    refine: object, image: np.ndarray, heatmap: np.ndarray, threshold: float, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        refine(image, heatmap, threshold)  # type: ignore[operator]


def test_params_type_is_checked() -> None:
    image, cam = np.zeros((8, 10, 3), np.uint8), np.zeros((8, 10), np.float32)
    with pytest.raises(ParameterError, match="`params`"):
        refine_mask(image, cam, 0.5, {"iterations": 3})  # type: ignore[arg-type]


# --- missing backend (runs without pydensecrf) --------------------------------------------------


@pytest.mark.parametrize("refine", [refine_mask, refine_probability])
def test_unavailable_backend_raises_typed_error(monkeypatch: pytest.MonkeyPatch, refine: object) -> None:
    monkeypatch.setattr(crf, "crf_available", lambda: False)
    image, cam = np.zeros((8, 10, 3), np.uint8), np.zeros((8, 10), np.float32)
    with pytest.raises(CrfUnavailableError, match="pip install pydensecrf2") as info:
        refine(image, cam, 0.5)  # type: ignore[operator]
    assert "C++ compiler" in str(info.value)
    assert isinstance(info.value, RuntimeError)


def test_crf_available_reports_a_failed_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pydensecrf.densecrf", None)  # makes the import raise ImportError
    crf_available.cache_clear()
    try:
        assert crf_available() is False
    finally:
        crf_available.cache_clear()
    monkeypatch.undo()
    assert isinstance(crf_available(), bool)


def test_read_only_image_is_accepted() -> None:
    pytest.importorskip("pydensecrf.densecrf")
    image = np.full((32, 40, 3), 128, np.uint8)
    image.setflags(write=False)  # e.g. np.asarray of a PIL image
    heatmap = np.zeros((32, 40), np.float32)
    heatmap[8:24, 10:30] = 1.0
    mask = crf.refine_mask(image, heatmap, 0.5)
    assert mask.shape == (32, 40) and mask[16, 20] and not mask[0, 0]


def test_label_grid_keeps_labels_times_pixels_within_the_budget() -> None:
    assert crf.MAX_LABEL_PIXELS == 8 * 512 * 512
    assert crf.label_grid(512, 512, 8) == (512, 512)  # 8 labels: the size cap alone
    assert crf.label_grid(512, 384, 21) == (364, 273)  # sqrt(2097152 / (21 * 512 * 384)) = 0.7116: floored
    assert crf.label_grid(1024, 512, 2) == (512, 256)  # the size cap binds: rounded as before
    for labels in (2, 6, 21, 256):
        h, w = crf.label_grid(480, 640, labels)
        assert labels * h * w <= crf.MAX_LABEL_PIXELS and abs(w / h - 640 / 480) < 0.02


def test_a_many_label_crf_runs_on_the_budgeted_grid_and_comes_back_full_size() -> None:
    """21 labels on 512 x 512 (the Segmentation tab's 20 classes): the runner sees the shrunk grid."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    probabilities = rng.random((21, 512, 512)).astype(np.float32)
    seen = []

    def runner(grid: np.ndarray, unary: np.ndarray, params: CrfParams) -> np.ndarray:
        seen.append((grid.shape, unary.shape))
        return np.exp(-unary)  # no pairwise term: the marginals are the unary's distribution

    labels = crf.refine_labels(image, probabilities, runner=runner)
    assert seen == [((316, 316, 3), (21, 316 * 316))]
    assert labels.shape == (512, 512) and labels.dtype == np.uint8 and labels.max() < 21
