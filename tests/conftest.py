"""Shared fixtures: tiny hand-built models, the real offline default model, license-clean photos."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never download: a hub call fails fast instead
# events wait for a local model load as long as it takes (a busy test machine builds one in seconds); the tests of
# the "loading, about N s" path set app.model_cache.LOAD_WAIT_S themselves
os.environ.setdefault("CAM_LOAD_WAIT_S", "60")

import cam_core


class TinyCNN(nn.Module):
    """Conv -> ReLU -> Conv -> ReLU -> GAP -> Linear, with timm's forward_features / forward_head API."""

    def __init__(self, channels: int = 6, classes: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, channels, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.global_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.fc = nn.Linear(channels, classes)
        self.pretrained_cfg = {"input_size": (3, 32, 32), "mean": (0.5,) * 3, "std": (0.5,) * 3,
                               "interpolation": "bilinear", "crop_pct": 1.0}  # fmt: skip

    def get_classifier(self) -> nn.Module:
        return self.fc

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.global_pool(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@pytest.fixture
def tiny_model() -> cam_core.LoadedModel:
    torch.manual_seed(0)
    return cam_core.wrap_model(TinyCNN(), "tiny", "random init (not pretrained)")


@pytest.fixture(scope="session")
def default_model() -> cam_core.LoadedModel:
    """The real offline default: tf_efficientnet_lite0 with the bundled ImageNet weights."""
    return cam_core.load_model()


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """CC0 / public-domain photos shipped by scikit-image (see its data/README.txt)."""
    data = pytest.importorskip("skimage.data")
    return {name: cam_core.to_rgb_array(getattr(data, name)()) for name in ("chelsea", "coffee", "rocket")}


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def uploads() -> Iterator[Path]:
    """A fresh folder inside Gradio's upload folder: the only place (with the examples) the app reads files from."""
    from gradio.utils import get_upload_folder

    folder = Path(get_upload_folder()) / f"test-{uuid.uuid4().hex}"
    folder.mkdir(parents=True)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def demo() -> Iterator[Any]:
    """The app as ``python app.py`` builds it (the root ``app.py``), launched on 127.0.0.1 for one test module."""
    from tests.test_app_server import load_app_module

    demo = load_app_module().demo
    demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1")
    try:
        yield demo
    finally:
        demo.close()


@pytest.fixture(scope="module")
def app_url(demo: Any) -> str:
    """The launched app's URL (browser tests)."""
    return demo.local_url


@pytest.fixture(scope="session")
def config() -> dict[str, Any]:
    """The page's Gradio config (components and dependencies), as ``python app.py`` builds it."""
    from tests.test_app_server import load_app_module

    return load_app_module().demo.get_config_file()
