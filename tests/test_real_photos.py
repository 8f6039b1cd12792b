"""The real default model on real, license-clean photos (scikit-image's CC0 / public-domain set)."""

from __future__ import annotations

import numpy as np

import cam_core

CAT_CLASSES = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def test_cat_is_recognised_and_boxed(default_model: cam_core.LoadedModel, photos: dict) -> None:
    image = photos["chelsea"]  # 451 x 300; the cat fills the middle, its head centre right
    analysis = cam_core.analyze(default_model, image)
    top = analysis.top_k(1)[0][0]
    assert top in CAT_CLASSES
    for config in cam_core.CONFIGS.values():
        loc = cam_core.localize(analysis, top, config)
        x0, y0, x1, y1 = loc.box
        assert loc.heatmap.shape == image.shape[:2]
        # the cat's face (around x 240-330, y 60-200 in the original) lies inside every box
        assert x0 <= 240 and y0 <= 60 and x1 >= 330 and y1 >= 200, (config.name, loc.box)


def test_coffee_cup(default_model: cam_core.LoadedModel, photos: dict) -> None:
    analysis = cam_core.analyze(default_model, photos["coffee"])
    top = analysis.top_k(1)[0][0]
    assert analysis.class_names[top].startswith(("espresso", "cup", "coffee mug"))
    loc = cam_core.localize(analysis, top, cam_core.CONFIGS["cam"])
    # the cup occupies roughly x 100-460, y 20-330 of the 600 x 400 photo
    iou = cam_core.box_iou(loc.box, [100, 20, 460, 330])[0, 0]
    assert iou > 0.5, (loc.box, iou)


def test_nwc_map_is_positive_part(default_model: cam_core.LoadedModel, photos: dict) -> None:
    analysis = cam_core.analyze(default_model, photos["rocket"])
    c = analysis.top_k(1)[0][0]
    np.testing.assert_allclose(analysis.cam(c, "nwc"), analysis.cam(c, "positive"))
    np.testing.assert_allclose(analysis.cam(c, "positive") - analysis.cam(c, "negative"), analysis.cam(c), atol=1e-3)
