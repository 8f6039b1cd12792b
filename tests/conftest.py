"""Shared fixtures, for the whole suite: tiny hand-built models, the real offline default model, license-clean
photos; the app built once, launched once (an in-process server), one Chromium, the cat example analysed.

Helpers that are not fixtures are in ``tests/helpers.py``: test modules never import one another.
"""

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

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never download: a hub call fails fast instead
# events wait for a local model load as long as it takes (a busy test machine builds one in seconds); the tests of
# the "loading, about N s" path set app.model_cache.LOAD_WAIT_S themselves
os.environ.setdefault("CAM_LOAD_WAIT_S", "60")

import cam_core
from tests.helpers import TinyCNN


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


# ---------------------------------------------------------------- the app: one build, one server, one browser


@pytest.fixture(scope="session")
def app_module() -> Any:
    """The root ``app.py`` imported once: it builds the demo as ``python app.py`` does, and does not launch it."""
    from tests.helpers import load_app_module

    return load_app_module()


@pytest.fixture(scope="session")
def config(app_module: Any) -> dict[str, Any]:
    """The page's Gradio config (components and dependencies)."""
    return app_module.demo.get_config_file()


@pytest.fixture(scope="session")
def demo(app_module: Any) -> Iterator[Any]:
    """The app launched on 127.0.0.1 for the whole session (an in-process server: tests may patch its modules)."""
    demo = app_module.demo
    demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1")
    try:
        yield demo
    finally:
        demo.close()


@pytest.fixture(scope="session")
def app_url(demo: Any) -> str:
    """The launched app's URL."""
    return str(demo.local_url)


@pytest.fixture(scope="session")
def client(app_url: str) -> Iterator[Any]:
    """gradio_client on the launched app (``/explain``, the only public endpoint)."""
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def http(app_url: str) -> Iterator[Any]:
    """Raw HTTP to the launched app (httpx, from 127.0.0.1)."""
    import httpx

    with httpx.Client(base_url=app_url, timeout=120) as http:
        yield http


@pytest.fixture
def cat_session() -> Any:
    """The cat example analysed by the default model at the default resolution, as the page's photo event does it."""
    from app import analyses
    from tests.helpers import CAT

    session, _, status = analyses.on_image({"path": str(CAT)}, cam_core.DEFAULT_MODEL)
    assert session is not None and "Egyptian cat" in status
    return session


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One Debian Chromium for the session, driven by Playwright (skipped where it is not installed)."""
    from tests.helpers import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    sync_api.expect.set_options(timeout=60_000)  # as the pages' own: a loaded CI machine is slow, never wrong
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def open_page(browser: Any, app_url: str) -> Iterator[Any]:
    """``open_page(url=None, csp_checked=True, wait_opening=True, **context)``: a page in a browser context of its
    own (desktop viewport unless ``context`` says otherwise) at ``url`` (default: the app), once its opening photo
    is analysed and drawn (unless ``wait_opening`` is false: :data:`tests.helpers.OPENED_JS`); at the end, no page
    that is ``csp_checked`` may have violated the Content-Security-Policy."""
    from tests.helpers import DESKTOP, OPENED_JS, csp_violations, watch_csp

    opened: list[tuple[Any, Any, list[str] | None]] = []

    def open_(url: str | None = None, csp_checked: bool = True, wait_opening: bool = True, **context: Any) -> Any:
        browser_context = browser.new_context(**{"viewport": DESKTOP, **context})
        page = browser_context.new_page()
        page.set_default_timeout(60_000)
        seen = watch_csp(page)
        opened.append((browser_context, page, seen if csp_checked else None))
        page.goto(url or app_url)
        if wait_opening:  # the page opens on an analysed photo: wait for it, so the test's own events never race it
            page.wait_for_function(OPENED_JS)
        return page

    try:
        yield open_
        violations = [v for _, page, seen in opened if seen is not None for v in csp_violations(page, seen)]
        assert violations == [], violations
    finally:
        for browser_context, _, _ in opened:
            browser_context.close()


@pytest.fixture
def page(open_page: Any) -> Any:
    """The app in Chromium at the desktop size (no CSP violation allowed)."""
    return open_page()
