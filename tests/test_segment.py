"""Multi-class label maps: hand-computed maps, the single-class equivalence with localize, CRF, files, mIoU."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

import cam_core
from cam_core.cam import Analysis
from cam_core.crf import CrfParams, refine_labels
from cam_core.errors import ClassIndexError, InvalidImageError, ParameterError
from cam_core.localize import CONFIGS, LocalizationConfig, localize
from cam_core.segment import (
    SegmentConfig,
    class_maps,
    colorize,
    label_map,
    label_probabilities,
    palette,
    segment,
    standards,
)
from tests.helpers import hand_analysis

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"


@pytest.fixture
def hand() -> Analysis:
    """F_0 = [[4,2,0],[0,0,0]], F_1 = [[0,0,1],[3,0,0]]; W rows: class 0 = F_0, class 1 = F_1, class 2 = F_0 - F_1.

    Normalised maps at the feature size (2, 3): h_0 = [[1, .5, 0], [0, 0, 0]], h_1 = [[0, 0, 1/3], [1, 0, 0]],
    h_2 = (F_0 - F_1 + 3) / 7 = [[1, 5/7, 2/7], [0, 3/7, 3/7]].
    """
    features = np.array([[[4, 2, 0], [0, 0, 0]], [[0, 0, 1], [3, 0, 0]]])
    return hand_analysis(features, np.array([[1, 0], [0, 1], [1, -1]]))


# --- hand-computed label maps -------------------------------------------------------------------


def test_maps_are_hand_values(hand: Analysis) -> None:
    maps = class_maps(hand, (0, 1, 2), size=(2, 3))
    expected = [[[1, 0.5, 0], [0, 0, 0]], [[0, 0, 1 / 3], [1, 0, 0]], [[1, 5 / 7, 2 / 7], [0, 3 / 7, 3 / 7]]]
    np.testing.assert_allclose(maps, expected, atol=1e-6)
    np.testing.assert_allclose(class_maps(hand, (2,), nwc=True, size=(2, 3))[0], expected[0], atol=1e-6)  # W+ = [1, 0]


@pytest.mark.parametrize(
    ("classes", "theta", "expected"),
    [
        ((0, 1), 0.2, [[1, 1, 2], [2, 0, 0]]),
        ((0, 1), 0.4, [[1, 1, 0], [2, 0, 0]]),  # h_1(0, 2) = 1/3 <= 0.4: background
        ((0, 2), 0.2, [[1, 2, 2], [0, 2, 2]]),  # (0, 0): tie 1 = 1 goes to the earlier class
        ((2, 0), 0.2, [[1, 1, 1], [0, 1, 1]]),  # same maps, other order: the tie now goes to class 2
        ((0, 1), 1.0, [[0, 0, 0], [0, 0, 0]]),  # strict: nothing exceeds the maximum
    ],
)
def test_mas_label_map_is_hand_computed(
    hand: Analysis, classes: tuple[int, ...], theta: float, expected: list[list[int]]
) -> None:
    config = SegmentConfig(LocalizationConfig(theta=theta), classes=classes)
    result = segment(hand, config, size=(2, 3))
    assert result.labels.dtype == np.uint8
    np.testing.assert_array_equal(result.labels, expected)


def test_pas_standards_scores_and_labels_are_hand_computed(hand: Analysis) -> None:
    # P90 of 6 pixels (linear): sorted h_0 = [0,0,0,0,.5,1] -> .5 + .5 · .5 = .75;
    # sorted h_2 = [0, 2/7, 3/7, 3/7, 5/7, 1] -> 5/7 + .5 · 2/7 = 6/7.
    config = SegmentConfig(LocalizationConfig(rule="pas", theta=0.35, percentile=90.0), classes=(0, 2))
    result = segment(hand, config, size=(2, 3))
    np.testing.assert_allclose(result.standards, [0.75, 6 / 7], rtol=1e-6)
    # s_0 = h_0 / .75 = [4/3, 2/3, 0, ...]; s_2 = h_2 · 7/6 = [7/6, 5/6, 1/3, 0, 1/2, 1/2]; threshold 0.35:
    # (0,0) 4/3 > 7/6 -> class 0; (0,1) 5/6 > 2/3 -> class 2; (0,2) 1/3 <= .35 -> bg; (1,1), (1,2) 1/2 -> class 2.
    np.testing.assert_array_equal(result.labels, [[1, 2, 0], [0, 2, 2]])


def test_areas_class_map_and_legend(hand: Analysis) -> None:
    result = segment(hand, SegmentConfig(classes=(0, 1)), size=(2, 3))  # labels [[1, 1, 2], [2, 0, 0]]
    np.testing.assert_allclose(result.areas, [2 / 6, 2 / 6, 2 / 6])
    np.testing.assert_array_equal(result.class_map(), [[1, 1, 2], [2, 0, 0]])  # class index + 1
    legend = result.legend()
    assert [row["name"] for row in legend] == ["background", "class0", "class1"]
    assert [row["colour"] for row in legend] == [[0, 0, 0], [128, 0, 0], [0, 128, 0]]
    np.testing.assert_allclose(result.confidences, hand.probabilities[[0, 1]])
    assert result.refined is None and result.refined_areas is None
    with pytest.raises(ParameterError, match="`refined`"):
        result.class_map(refined=True)


def test_label_probabilities_formula() -> None:
    maps = np.array([[[0.6, 0.0]], [[0.3, 0.0]]], np.float32)  # 2 classes, 1 x 2 pixels
    p = label_probabilities(maps, np.array([1.0, 1.0]), 0.2)
    eps = 1e-6
    total = 0.2 + 0.6 + 0.3 + 3 * eps
    np.testing.assert_allclose(p[:, 0, 0], [(0.2 + eps) / total, (0.6 + eps) / total, (0.3 + eps) / total], rtol=1e-5)
    np.testing.assert_allclose(p[:, 0, 1], [(0.2 + eps) / (0.2 + 3 * eps), eps / (0.2 + 3 * eps), eps / 0.2], rtol=1e-4)
    one = label_probabilities(maps[:1], np.array([1.0]), 0.2)[1, 0, 0]
    assert one == pytest.approx(0.6 / (0.6 + 0.2), rel=1e-5)  # one class, MaS: p_fg = h / (h + theta)


def test_palette_is_the_voc_colour_map() -> None:
    colours = palette(255)
    assert colours.shape == (256, 3) and colours.dtype == np.uint8
    expected = [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128], [128, 0, 128], [0, 128, 128]]
    np.testing.assert_array_equal(colours[:7], expected)
    np.testing.assert_array_equal(colours[8], [64, 0, 0])  # bit 3 -> bit 6 of red
    assert len({tuple(c) for c in colours}) == 256
    np.testing.assert_array_equal(colorize(np.array([[0, 2]], np.uint8)), [[[0, 0, 0], [0, 128, 0]]])


# --- a colour-detector network on a synthetic photo ---------------------------------------------


class ColourNet(nn.Module):
    """Channel 0 = relu(r - (g + b) / 2), channel 1 = relu(g - (r + b) / 2), 4 x 4 average pooled; fc = identity."""

    def __init__(self) -> None:
        super().__init__()
        self.detect = nn.Conv2d(3, 2, 1, bias=False)
        self.detect.weight.data = torch.tensor([[1.0, -0.5, -0.5], [-0.5, 1.0, -0.5]]).view(2, 3, 1, 1)
        self.pool = nn.AvgPool2d(4)
        self.global_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.fc = nn.Linear(2, 2)
        self.fc.weight.data, self.fc.bias.data = torch.eye(2), torch.zeros(2)
        self.pretrained_cfg = {"input_size": (3, 32, 32), "mean": (0.5,) * 3, "std": (0.5,) * 3,
                               "interpolation": "bilinear", "crop_pct": 1.0}  # fmt: skip

    def get_classifier(self) -> nn.Module:
        return self.fc

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.relu(self.detect(x)))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.global_pool(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _colour_photo() -> np.ndarray:
    """32 x 32 grey photo (the network's input size: no resampling), red square rows/cols 4:12, green 20:28 x 16:28."""
    photo = np.full((32, 32, 3), 128, np.uint8)
    photo[4:12, 4:12] = (255, 0, 0)
    photo[20:28, 16:28] = (0, 255, 0)
    return photo


@pytest.fixture(scope="module")
def colour_analysis() -> Analysis:
    return cam_core.analyze(cam_core.wrap_model(ColourNet(), "colour", "hand-set"), _colour_photo())


def test_colour_net_label_map_is_the_painted_regions(colour_analysis: Analysis) -> None:
    # Feature grid 8 x 8 (4 px cells): red on cells 1:3 x 1:3, green on 5:7 x 4:7, both value 2, grey 0.
    expected = np.zeros((8, 8), np.uint8)
    expected[1:3, 1:3], expected[5:7, 4:7] = 1, 2
    for config in CONFIGS.values():
        result = segment(colour_analysis, SegmentConfig(config, classes=(0, 1)), size=(8, 8))
        np.testing.assert_array_equal(result.labels, expected, err_msg=config.name)
    # At the photo's size (bicubic): the squares' centres and the far corner are right.
    labels = segment(colour_analysis, SegmentConfig(classes=(0, 1))).labels
    assert labels.shape == (32, 32)
    assert (labels[6:10, 6:10] == 1).all() and (labels[22:26, 19:25] == 2).all() and labels[30:, :3].max() == 0


def test_top_k_over_the_floor(colour_analysis: Analysis) -> None:
    # logits = GAP of the maps: red 2 · 4/64 = 0.125, green 2 · 6/64 = 0.1875 -> p = 0.4844 / 0.5156.
    np.testing.assert_allclose(colour_analysis.probabilities, [0.484375, 0.515625], atol=1e-4)
    assert segment(colour_analysis).classes == (1, 0)  # most probable first
    assert segment(colour_analysis, SegmentConfig(min_probability=0.5)).classes == (1,)
    assert segment(colour_analysis, SegmentConfig(top_k=1)).classes == (1,)
    with pytest.raises(
        ParameterError, match=r"`min_probability` 0.6: no class reaches it \(best: class 1, class 1, p = 0.516\)"
    ):
        segment(colour_analysis, SegmentConfig(min_probability=0.6))


# --- the single-class case is localize's binary mask ---------------------------------------------


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("size", [None, (97, 131)])
def test_one_class_is_localize_mask_tiny(tiny_model: cam_core.LoadedModel, name: str, size: tuple | None) -> None:
    rng = np.random.default_rng(1)
    analysis = cam_core.analyze(tiny_model, rng.integers(0, 256, (60, 80, 3), dtype=np.uint8))
    for c in range(analysis.num_classes):
        labels = segment(analysis, SegmentConfig(CONFIGS[name], classes=(c,)), size).labels
        mask = localize(analysis, c, CONFIGS[name], size).mask
        np.testing.assert_array_equal(labels == 1, mask)
        assert 0.0 < mask.mean() < 1.0


@pytest.mark.parametrize("name", list(CONFIGS))
def test_one_class_is_localize_mask_real(default_model: cam_core.LoadedModel, name: str) -> None:
    analysis = cam_core.analyze(default_model, cam_core.load_image(EXAMPLES / "astronaut.jpg"))
    for c, _, _ in analysis.top_k(3):
        labels = segment(analysis, SegmentConfig(CONFIGS[name], classes=(c,)), (384, 384)).labels
        np.testing.assert_array_equal(labels == 1, localize(analysis, c, CONFIGS[name], (384, 384)).mask)


def test_several_classes_on_a_real_photo(default_model: cam_core.LoadedModel) -> None:
    analysis = cam_core.analyze(default_model, cam_core.load_image(EXAMPLES / "astronaut.jpg"))
    result = segment(analysis, SegmentConfig(CONFIGS["nwc+pas"], top_k=5, min_probability=0.01))
    assert len(result.classes) >= 3 and result.labels.shape == analysis.image_size
    assert (result.areas[1:] > 0.01).sum() >= 2  # at least two classes own a visible region
    assert result.areas.sum() == pytest.approx(1.0)
    # Every labelled pixel is over its own class's single-class threshold.
    for slot, c in enumerate(result.classes, start=1):
        assert not ((result.labels == slot) & ~localize(analysis, c, CONFIGS["nwc+pas"]).mask).any()


# --- bad inputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"classes": (1, 2, 1)}, "`classes` names class 1 more than once"),
        ({"classes": ()}, "`classes` must name 1 to 255"),
        ({"classes": tuple(range(256))}, "`classes` must name 1 to 255"),
        ({"classes": (0, 1.5)}, "`classes` must hold ints"),
        ({"classes": "0"}, "`classes` must be a sequence"),
        ({"top_k": 0}, "`top_k`"),
        ({"top_k": True}, "`top_k`"),
        ({"min_probability": 1.5}, "`min_probability`"),
        ({"localization": "cam"}, "`localization`"),
    ],
)
def test_config_is_validated(kwargs: dict, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        SegmentConfig(**kwargs)


def test_bad_inputs_get_typed_errors(hand: Analysis) -> None:
    with pytest.raises(ClassIndexError, match="`class_index` 7"):
        segment(hand, SegmentConfig(classes=(0, 7)))
    with pytest.raises(ParameterError, match="`config`"):
        segment(hand, CONFIGS["cam"])  # type: ignore[arg-type]
    flat = hand_analysis(np.ones((2, 2, 3)), np.array([[1, 0], [0, 1]]))
    with pytest.raises(ParameterError, match="`classes`: every selected class map is constant"):
        segment(flat)
    with pytest.raises(ParameterError, match="`rule`"):
        standards(np.zeros((1, 2, 2)), "max")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="`theta`"):
        label_map(np.zeros((1, 2, 2), np.float32), np.ones(1), 1.5)
    assert SegmentConfig(classes=[3, np.int64(1)]).classes == (3, 1)  # lists and numpy ints are accepted


def test_one_constant_map_among_others_just_gets_no_pixels(hand: Analysis) -> None:
    flat_class = hand_analysis(np.stack([np.ones((2, 3)), hand.feature_maps[0]]), np.array([[1, 0], [0, 1]]))
    result = segment(flat_class, SegmentConfig(classes=(0, 1)), size=(2, 3))
    assert result.areas[1] == 0.0 and result.areas[2] > 0.0


# --- dense CRF ----------------------------------------------------------------------------------


def _two_object_scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Red and blue rectangles on textured grey, and blurry, shifted maps of each.

    Returns:
        image uint8 (96, 128, 3); maps float32 (2, 96, 128) in [0, 1]; truth uint8 (96, 128) slots.
    """
    rng = np.random.default_rng(0)
    truth = np.zeros((96, 128), np.uint8)
    truth[20:70, 10:55], truth[30:85, 70:120] = 1, 2
    colours = np.array([[120, 120, 110], [200, 50, 40], [40, 70, 200]], np.float64)
    image = np.clip(colours[truth] + rng.normal(0, 12, (96, 128, 3)), 0, 255).astype(np.uint8)
    maps = []
    for slot in (1, 2):  # the region shifted by (5, 6) px and blurred with sigma 8, min-max normalised
        blurred = cv2.GaussianBlur(np.roll(truth == slot, (5, 6), axis=(0, 1)).astype(np.float32), (0, 0), 8)
        maps.append((blurred - blurred.min()) / (blurred.max() - blurred.min()))
    return image, np.stack(maps).astype(np.float32), truth


def _miou(labels: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean([((labels == s) & (truth == s)).sum() / ((labels == s) | (truth == s)).sum() for s in range(3)])
    )


def test_crf_moves_label_edges_onto_colour_edges() -> None:
    pytest.importorskip("pydensecrf.densecrf")
    image, maps, truth = _two_object_scene()
    before = label_map(maps, np.ones(2), 0.35)
    after = refine_labels(image, label_probabilities(maps, np.ones(2), 0.35))  # default CrfParams
    assert after.dtype == np.uint8 and after.shape == truth.shape
    # Measured (seed 0): mIoU 0.676 thresholded -> 1.000 after the CRF; wrong pixels 18.5 % -> 0 %.
    assert _miou(before, truth) < 0.8 < 0.95 < _miou(after, truth)
    assert (after != truth).mean() < 0.01 < 0.1 < (before != truth).mean()


def test_crf_without_pairwise_terms_is_the_label_map() -> None:
    pytest.importorskip("pydensecrf.densecrf")
    image, maps, _ = _two_object_scene()
    params = CrfParams(gaussian_compat=0.0, bilateral_compat=0.0)
    for theta in (0.2, 0.5):
        probabilities = label_probabilities(maps, np.ones(2), theta)
        np.testing.assert_array_equal(refine_labels(image, probabilities, params), label_map(maps, np.ones(2), theta))


def test_refine_at_display_size_and_size_cap(colour_analysis: Analysis) -> None:
    pytest.importorskip("pydensecrf.densecrf")
    result = segment(colour_analysis, SegmentConfig(classes=(0, 1)), size=(64, 64)).refine(colour_analysis.image)
    assert result.refined is not None and result.refined.shape == (64, 64)  # the 32 px photo is resized to it
    assert (result.refined[12:20, 12:20] == 1).all() and (result.refined[44:52, 38:50] == 2).all()
    assert result.refined_areas is not None and result.refined_areas.sum() == pytest.approx(1.0)
    image, maps, truth = _two_object_scene()
    capped = refine_labels(image, label_probabilities(maps, np.ones(2), 0.35), CrfParams(max_side=64))
    assert capped.shape == truth.shape and _miou(capped, truth) > _miou(label_map(maps, np.ones(2), 0.35), truth)


def test_refine_labels_validates() -> None:
    image = np.zeros((4, 5, 3), np.uint8)
    with pytest.raises(InvalidImageError, match="`probabilities` must have shape"):
        refine_labels(image, np.ones((1, 4, 5), np.float32))
    with pytest.raises(InvalidImageError, match=r"`probabilities` \(H, W\)"):
        refine_labels(image, np.ones((2, 4, 4), np.float32))
    with pytest.raises(InvalidImageError, match=">= 0"):
        refine_labels(image, -np.ones((2, 4, 5), np.float32))
    with pytest.raises(InvalidImageError, match="`image`"):
        refine_labels(image[..., 0], np.ones((2, 4, 5), np.float32))


@pytest.mark.parametrize("name", ["cam", "nwc+pas"])
def test_with_theta_equals_a_fresh_segment(colour_analysis: Analysis, name: str) -> None:
    config = SegmentConfig(CONFIGS[name], classes=(0, 1))
    result = segment(colour_analysis, config)
    for theta in (0.0, 0.3, 0.7):
        fresh = segment(
            colour_analysis, SegmentConfig(LocalizationConfig(**{**vars(CONFIGS[name]), "theta": theta}), (0, 1))
        )
        moved = result.with_theta(theta)
        np.testing.assert_array_equal(moved.labels, fresh.labels)
        assert moved.config == fresh.config and moved.refined is None
    assert not np.array_equal(result.with_theta(0.0).labels, result.with_theta(0.7).labels)
    with pytest.raises(ParameterError, match="`theta`"):
        result.with_theta(1.5)


def test_overclaims_by_hand() -> None:
    """Issue #23 item 2: flagged when the share is >= 5 % and more than 5x the probability (the lifeboat photo's
    "speedboat": p 0.7 %, 62.6 % of the photo); a likely class, a tiny claim or the background never is."""
    from cam_core.segment import overclaims

    assert overclaims(0.007, 0.626)
    assert overclaims(0.05, 0.30)  # 0.30 > 5 x 0.05 = 0.25
    assert not overclaims(0.07, 0.30)  # 0.30 < 0.35
    assert not overclaims(0.01, 0.05)  # 0.05 is not > 5 x 0.01
    assert not overclaims(0.001, 0.04)  # under 5 % of the photo
    assert not overclaims(0.6, 0.6) and not overclaims(None, 0.9) and not overclaims(0.01, None)
