"""End to end through a real server: gradio_client against `demo.launch(prevent_thread_lock=True)`."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

ROOT = Path(__file__).resolve().parent.parent
CAT = ROOT / "assets" / "examples" / "cat.jpg"


def load_app_module():
    """Import the root ``app.py`` (shadowed by the ``app`` package for plain imports)."""
    spec = importlib.util.spec_from_file_location("app_main", ROOT / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    demo = load_app_module().demo  # importing app.py builds the demo but must not launch it
    assert not getattr(demo, "is_running", False)
    demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1")
    try:
        yield Client(demo.local_url, verbose=False)
    finally:
        demo.close()


def test_only_explain_is_public(client: Client) -> None:
    api = client.view_api(print_info=False, return_format="dict")
    assert set(api["named_endpoints"]) == {"/explain"}
    assert not api["unnamed_endpoints"]
    parameters = api["named_endpoints"]["/explain"]["parameters"]
    names = [p["parameter_name"] for p in parameters]
    assert names == ["image", "model", "class_name", "theta_mas", "theta_pas", "percentile", "tap", "nwc", "pas",
                     "input_size", "output_stride"]  # fmt: skip
    defaults = {p["parameter_name"]: p.get("parameter_default") for p in parameters[-2:]}
    assert defaults == {"input_size": 448, "output_stride": 16}  # appended last, with defaults: old calls still work


def test_an_old_call_still_works_and_a_new_one_changes_the_map(client: Client) -> None:
    """Issue #13: a call written before ``input_size`` / ``output_stride`` existed gets the default 28 x 28 map;
    naming them (positionally or by keyword) gives the map asked for."""
    old = client.predict(handle_file(str(CAT)), "tf_efficientnet_lite0", "", 0.2, 0.35, 90, False, True, True,
                         api_name="/explain")[0]  # fmt: skip
    assert old["resolution"] == {"input_size": 448, "output_stride": 16, "feature_size": [28, 28],
                                 "label": "448 px, stride 16 -> 28x28 map"}  # fmt: skip
    positional = client.predict(handle_file(str(CAT)), "tf_efficientnet_lite0", "", 0.2, 0.35, 90, False, True, True,
                                224, 32, api_name="/explain")[0]  # fmt: skip
    assert positional["resolution"]["feature_size"] == [7, 7] and positional["resolution"]["input_size"] == 224
    keyword = client.predict(handle_file(str(CAT)), input_size=336, output_stride=16, api_name="/explain")[0]
    assert keyword["resolution"]["label"] == "336 px, stride 16 -> 21x21 map"
    assert old["image_size"] == positional["image_size"] == keyword["image_size"]  # boxes stay in the photo's pixels
    with pytest.raises(Exception, match="output_stride"):
        client.predict(handle_file(str(CAT)), input_size=448, output_stride=8, api_name="/explain")


def test_explain_end_to_end(client: Client) -> None:
    payload, plain, ours = client.predict(handle_file(str(CAT)), api_name="/explain")
    assert payload["class"]["name"] == "Egyptian cat"
    assert payload["image_size"] == {"height": 300, "width": 451}
    assert Path(plain).is_file() and Path(ours).is_file()
    tight = client.predict(handle_file(str(CAT)), "tf_efficientnet_lite0", "", 0.7, api_name="/explain")[0]
    assert tight["plain"]["foreground_fraction"] < payload["plain"]["foreground_fraction"]
    assert tight["ours"]["box"] == payload["ours"]["box"]


def test_bad_input_gets_the_message_not_a_stack_trace(client: Client, tmp_path: Path) -> None:
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"hello, I am text")
    with pytest.raises(Exception, match="not an image format"):
        client.predict(handle_file(str(fake)), api_name="/explain")
    with pytest.raises(Exception, match="percentile"):
        client.predict(handle_file(str(CAT)), "tf_efficientnet_lite0", "", 0.2, 0.35, 0.0, api_name="/explain")
    assert client.predict(handle_file(str(CAT)), api_name="/explain")[0]["class"]["index"] == 285  # still serving


def test_slider_events_stay_cheap_in_the_browser() -> None:
    """Latency guard (structure, not timing): Gradio's browser code copies the props of every component that
    was ever an event output, on each status update; a 1000-choice class list among them cost a slider move
    ~100 ms in Chromium. And the slider-speed events run unqueued (one request, no status stream)."""
    config = load_app_module().demo.get_config_file()
    components = {c["id"]: c for c in config["components"]}
    # browser-only (js) events do not touch the loading statuses, so only server events count
    outputs = {i for dep in config["dependencies"] if dep["backend_fn"] for i in dep["outputs"]}
    for i in outputs:
        assert len(components[i]["props"].get("choices") or []) <= 50, components[i]["props"].get("label")
    search = next(c for c in config["components"] if c["props"].get("elem_id") == "class-search")
    assert len(search["props"]["choices"]) == 1000 and search["id"] not in outputs
    sliders = [c["id"] for c in config["components"] if c["type"] == "slider"]
    theta_mas = next(i for i in sliders if components[i]["props"]["label"].startswith("θ for MaS"))
    updates = [
        dep
        for dep in config["dependencies"]
        if [theta_mas, "change"] in map(list, dep["targets"]) and dep["backend_fn"]
    ]  # fmt: skip  (the deep link's URL writer is browser-only)
    # one request per move: the main views' update; the Segmentation tab's check runs in its browser step (a
    # request only while that tab is open, when the main panels are hidden), and so does the URL writer
    (update,) = updates
    assert update["api_name"] == "update_theta_mas" and update["queue"] is False
    assert "#seg-follow" in update["js"] and "window.__camLink" in update["js"]
    index = config["dependencies"].index(update)
    # nothing chained but the queued rerun after a cache miss (issue #22: it runs only when the update failed)
    chained = [dep for dep in config["dependencies"] if dep.get("trigger_after") == index]
    assert [(dep["trigger_only_on_failure"], dep["queue"]) for dep in chained] == [(True, True)]
    follow = next(c["id"] for c in config["components"] if c["props"].get("elem_id") == "seg-follow")
    (live,) = [dep for dep in config["dependencies"] if [follow, "click"] in map(list, dep["targets"])]
    assert live["api_name"].startswith("segmentation_live") and live["queue"] is False
