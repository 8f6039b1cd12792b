"""Issue #13, the app: the Resolution control, its checks, re-analysis of the current photo, the model cache by
``(name, output_stride)``, the presets' resolutions, and the TAP / GAP pair picked by resolution."""

from __future__ import annotations

import json
import math
import re
import shutil
import threading
import zipfile
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

import cam_core
from app import analyses, api, controls, inputs, model_cache, models, render, state, views
from app.explanation import explain_request
from app.inputs import DEFAULT_PRESET, DEFAULT_RESOLUTION, RESOLUTIONS
from app.models import Resolution
from app.state import ANALYSES, Session, get_analysis
from app.tabs import compare, export
from tests.helpers import view_request

ROOT = Path(__file__).resolve().parent.parent
CAT = str(ROOT / "assets" / "examples" / "cat.jpg")
MODEL = cam_core.DEFAULT_MODEL
R224, R336, R448 = Resolution(224, 32), Resolution(336, 16), Resolution(448, 16)


# ---------------------------------------------------------------- the offered choices and the default


def test_the_menu_offers_the_measured_settings_labelled_by_map_size() -> None:
    measured = json.loads((ROOT / "docs" / "bench_resolution.json").read_text())["settings"]
    labels = dict((value, label) for label, value in inputs.resolution_choices())
    assert labels["448/16"] == "448 px, stride 16 -> 28x28 map" and labels["224/32"] == "224 px, stride 32 -> 7x7 map"
    assert "28x28 x3.7" in inputs.resolution_info() and "7x7 x1.0" in inputs.resolution_info()
    for choice in RESOLUTIONS:  # the cost in the label is the measured one (docs/bench_resolution.json)
        assert choice.forward_cost == pytest.approx(measured[choice.resolution.value]["ratio"], abs=0.05)
        side = math.ceil(choice.resolution.input_size / choice.resolution.output_stride)
        assert f"-> {side}x{side} map" in labels[choice.resolution.value] and choice.resolution.map_side == side
    assert {"224/32", "336/16", "448/16", "512/16"} <= set(labels)


def test_the_default_is_the_sharp_preset_at_448_stride_16() -> None:
    preset = cam_core.PRESETS[DEFAULT_PRESET]
    assert DEFAULT_RESOLUTION == Resolution(preset.input_size, preset.output_stride) == R448
    # the numbers the default's docstring gives are the measured grid's (docs/resolution.md)
    source, grid = Path(inputs.__file__).read_text(), (ROOT / "docs" / "resolution.md").read_text()
    cited = source[source.index('DEFAULT_PRESET = "') : source.index("_START =")]
    for number in ("55.6", "48.3", "55.8", "60.0", "48.6", "60.8", "70.0", "156", "42"):
        assert number in cited and number in grid, number
    offered = {c.resolution for c in RESOLUTIONS}
    for name, p in cam_core.PRESETS.items():  # a preset can only set a resolution the menu offers
        assert Resolution(p.input_size, p.output_stride) in offered, name


@pytest.mark.parametrize(
    ("size", "stride", "message"),
    [
        (300, 16, "`input_size` must be one of [224, 336, 448, 512], got 300"),
        (2048, 16, "`input_size` must be a number in [224, 512], got 2048"),
        ("448", 16, "`input_size` must be a number"),
        (True, 16, "`input_size` must be a number"),
        (448.5, 16, "`input_size` must be a whole number"),
        (None, 16, "`input_size` must be a number"),
        (448, 8, "`output_stride` must be a number in [16, 32], got 8"),
        (448, 24, "`output_stride` must be one of [32, 16], got 24"),
        (224, 16, "`input_size` 224 with `output_stride` 16 is not offered"),
        (512, 32, "`input_size` 512 with `output_stride` 32 is not offered"),
    ],
)
def test_hostile_resolutions_are_refused_naming_the_parameter(size: object, stride: object, message: str) -> None:
    with pytest.raises(cam_core.ParameterError) as info:
        inputs.resolution(size, stride)
    assert message in str(info.value)


def test_offered_resolutions_are_accepted_as_ints_or_whole_floats() -> None:
    assert inputs.resolution(448, 16) == inputs.resolution(448.0, 16.0) == R448
    assert inputs.resolution_choice("336/16") == R336
    for bad in ("448/8", "448", 448, None, "448/16 "):
        with pytest.raises(cam_core.ParameterError, match="`resolution` must be one of"):
            inputs.resolution_choice(bad)


# ---------------------------------------------------------------- re-analysis of the current photo


def test_a_new_resolution_reanalyses_the_display_copy_and_keeps_the_class(
    cat_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_decode(*args: object, **kwargs: object) -> None:
        raise AssertionError("a resolution change must not decode the upload again")

    monkeypatch.setattr(cam_core, "load_image_with_size", no_decode)
    monkeypatch.setattr(cam_core, "load_image", no_decode)
    assert cat_session.resolution == R448  # the photo's own analysis, at the default resolution
    switch = analyses.on_resolution("224/32", "281", MODEL, cat_session)  # tabby: not the top-1
    assert switch.resolution == gr.update() and switch.session is not None
    moved = switch.session
    assert (
        moved.resolution == R224 and moved.image_hash == cat_session.image_hash and moved.display is cat_session.display
    )
    assert switch.class_pick["value"] == "281" and "281" in [v for _, v in switch.class_pick["choices"]]
    assert "224 px, stride 32 -> 7x7 map" in switch.status and "tabby" in switch.status
    # the analysis is the display copy's at 224 px, bit for bit, cached under its own key
    small = ANALYSES.get(MODEL, R224, cat_session.image_hash)
    assert small is not None and small.feature_size == (7, 7)
    expected = cam_core.analyze(state.get_model(MODEL, 32), cat_session.display, input_size=224)
    np.testing.assert_array_equal(small.feature_maps, expected.feature_maps)
    large = ANALYSES.get(MODEL, R448, cat_session.image_hash)
    assert large is not None and large.feature_size == (28, 28)  # the upload's analysis stays
    # every view now reads the 7 x 7 analysis; back at 448 / 16 the upload's 28 x 28 one is found in the cache
    out = compare.render_localization(view_request(moved, "281"))
    assert out.payload["resolution"] == {"input_size": 224, "output_stride": 32, "feature_size": [7, 7],
                                         "label": "224 px, stride 32 -> 7x7 map"}  # fmt: skip
    assert out.payload["class"]["index"] == 281
    back = analyses.on_resolution("448/16", "281", MODEL, moved)
    assert back.session is not None and get_analysis(back.session, MODEL) is large


def test_the_heatmap_pictures_follow_the_resolution(cat_session: Session) -> None:
    """The panels' heatmap pictures are cached per analysis, resolution included: after a resolution change they
    show the new map (one model's entry used to serve every resolution: the 28 x 28 map's picture over 7 x 7 boxes)."""

    def heat(session: Session) -> tuple[str, np.ndarray, np.ndarray]:
        ex = explain_request(view_request(session, "281"))
        url = re.search(r'class="cam-heat" src="([^"]+)"', views.localization_views(ex, None).plain)
        assert url is not None
        shown = np.asarray(Image.open(url[1].removeprefix("gradio_api/file=")))
        return url[1], shown, render.grey_levels(ex.plain.heatmap)

    moved = analyses.on_resolution("224/32", "281", MODEL, cat_session).session
    assert isinstance(moved, Session)
    (url_448, shown_448, map_448), (url_224, shown_224, map_224) = heat(cat_session), heat(moved)
    assert url_224 != url_448 and not np.array_equal(map_224, map_448)
    np.testing.assert_array_equal(shown_448, map_448)
    np.testing.assert_array_equal(shown_224, map_224)


def test_a_photo_already_at_the_resolution_is_left_as_it_is(cat_session: Session) -> None:
    # a deep link's photo event analysed the photo at the link's resolution and picked the link's class; the
    # resolution event, whose class value is from before, must not put the top-1 back
    switch = analyses.on_resolution("448/16", None, MODEL, cat_session)
    assert switch.session == gr.skip() and switch.class_pick == gr.skip() and switch.status == gr.skip()
    assert switch.resolution == gr.update()


def test_the_caption_and_the_export_state_the_resolution(cat_session: Session) -> None:
    out = compare.render_localization(view_request(cat_session))
    verdicts = ("**Why the two boxes", "**The NWC+PaS mask covers")  # issue #14 item 4's and issue #23 item 4's lines
    lines = [line for line in out.caption.split("\n\n") if not line.startswith(verdicts)]
    assert lines[0].startswith("**Analysed at 448 px, stride 16 -> 28x28 map** (the photo stretched to 448 x 448")
    assert out.payload["resolution"]["feature_size"] == [28, 28]
    with zipfile.ZipFile(export.export_zip(view_request(cat_session))) as archive:
        exported = json.loads(archive.read("explanation.json"))
    assert exported["resolution"] == out.payload["resolution"]


def test_sliders_do_not_run_the_network_at_448(cat_session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """The idle path is unchanged: sliders re-threshold the cached, upsampled map."""
    monkeypatch.setattr(cam_core, "analyze", lambda *a, **k: pytest.fail("a slider ran the network"))
    for theta in (0.1, 0.5):
        assert (
            compare.render_localization(view_request(cat_session, theta_mas=theta)).payload["plain"]["theta"] == theta
        )


def test_without_a_photo_a_resolution_is_only_prepared(monkeypatch: pytest.MonkeyPatch) -> None:
    switch = analyses.on_resolution("336/16", "", MODEL, None)
    assert switch.session == gr.skip() and "336 px, stride 16 -> 21x21 map" in switch.status  # never clobbers a photo
    assert "upload a photo" in switch.status


def test_a_resolution_the_model_cannot_take_is_said_once_and_put_back(
    cat_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_get = state.MODELS.get

    def no_dilation(name: object, output_stride: int = 32) -> cam_core.LoadedModel:
        if output_stride != 32:
            raise cam_core.ParameterError(f"`output_stride` {output_stride} is not supported by 'densenet121'.")
        return real_get(name, output_stride)

    monkeypatch.setattr(state.MODELS, "get", no_dilation)
    switch = analyses.on_resolution("336/16", "285", MODEL, replace_resolution(cat_session, R224))
    assert switch.resolution == gr.update(value="224/32")  # the field shows the photo's resolution again
    assert switch.session == switch.class_pick == switch.tap == gr.skip()
    assert switch.status.count("is not supported") == 1 and switch.status.startswith("⚠️")
    bad = analyses.on_resolution("1024/16", "285", MODEL, cat_session)
    assert bad.resolution == gr.update(value="448/16") and "`resolution` must be one of" in bad.status


def replace_resolution(session: Session, resolution: Resolution) -> Session:
    from dataclasses import replace

    return replace(session, resolution=resolution)


def test_presets_set_the_resolution_too() -> None:
    assert controls.apply_preset("LID challenge") == (0.2, 0.35, 98.0, 0.05, "336/16")
    assert controls.apply_preset("paper code") == (0.2, 0.35, 90.0, 0.1, "224/32")
    assert controls.apply_preset("sharp (448 px)") == (0.2, 0.35, 90.0, 0.1, "448/16")
    assert controls.apply_preset("custom") == (gr.update(),) * 5


def test_explain_takes_the_resolution_last(cat_session: Session) -> None:
    old = api.explain({"path": CAT}, MODEL, "", 0.2, 0.35, 90, False, True, True)  # a call from before #13
    assert old.payload["resolution"]["feature_size"] == [28, 28]
    small = api.explain({"path": CAT}, MODEL, "", 0.2, 0.35, 90, False, True, True, 224, 32)
    assert small.payload["resolution"]["feature_size"] == [7, 7]
    assert small.payload["class"]["probability"] != old.payload["class"]["probability"]
    with pytest.raises(gr.Error, match="`output_stride` must be one of"):
        api.explain({"path": CAT}, MODEL, "", 0.2, 0.35, 90, False, True, True, 448, 24)


# ---------------------------------------------------------------- the model cache


def test_the_model_cache_is_keyed_by_name_and_stride(monkeypatch: pytest.MonkeyPatch) -> None:
    """Per-key futures and failure memory; a load that finishes at once (a refused stride) must not deadlock."""
    calls: list[tuple[str, int]] = []

    def fake_load(name: str, output_stride: int) -> object:
        calls.append((name, output_stride))
        if output_stride == 8:
            raise cam_core.ParameterError("no stride 8 here")
        return f"{name}@{output_stride}"

    monkeypatch.setattr(model_cache, "_load", fake_load)
    cache = model_cache.ModelCache()

    def body() -> None:
        assert cache.get("resnet18", 32) == "resnet18@32" and cache.get("resnet18", 16) == "resnet18@16"
        assert cache.get("resnet18", 32) == "resnet18@32"
        for _ in range(2):  # a failure is remembered per key: not retried, and the other strides keep working
            with pytest.raises(cam_core.ParameterError, match="no stride 8"):
                cache.get("resnet18", 8)
        assert calls == [("resnet18", 32), ("resnet18", 16), ("resnet18", 8)]
        with pytest.raises(cam_core.ParameterError, match="output_stride"):
            cache.get("resnet18", 12)
        with pytest.raises(cam_core.UnknownModelError):
            cache.get("../resnet18", 16)
        done.append(True)

    done: list[bool] = []
    worker = threading.Thread(target=body, daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "ModelCache.get deadlocked on a load that finished at once"
    assert done == [True]


def test_a_registered_model_is_never_rebuilt_at_another_stride(tiny_model: cam_core.LoadedModel) -> None:
    cache = model_cache.ModelCache()
    cache.register("tiny", tiny_model)
    assert cache.get("tiny", tiny_model.output_stride) is tiny_model
    other = 16 if tiny_model.output_stride == 32 else 32
    with pytest.raises(cam_core.ParameterError, match="registered with another output stride"):
        cache.get("tiny", other)


# ---------------------------------------------------------------- the TAP / GAP pair by resolution


@pytest.fixture
def pairs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped pair (cards without "resolution": 224 / 32) plus the same heads carded as trained at 448 / 16."""
    for pooling in ("gap", "tap"):
        source = models.CHECKPOINT_DIR / f"lite0_{pooling}_head"
        for suffix in (".safetensors", ".json"):
            shutil.copy(source.with_suffix(suffix), tmp_path / f"lite0_{pooling}_head{suffix}")
        shutil.copy(source.with_suffix(".safetensors"), tmp_path / f"lite0_{pooling}_head_448s16.safetensors")
        card = json.loads(source.with_suffix(".json").read_text())
        card["resolution"] = {"input_size": 448, "output_stride": 16}
        (tmp_path / f"lite0_{pooling}_head_448s16.json").write_text(json.dumps(card))
    (tmp_path / "broken.safetensors").write_bytes(b"")
    (tmp_path / "broken.json").write_text(json.dumps({**card, "resolution": {"input_size": "448"}}))
    monkeypatch.setattr(models, "CHECKPOINT_DIR", tmp_path)
    return tmp_path


def test_the_menu_lists_each_pair_family_once_with_its_resolutions(pairs: Path) -> None:
    assert models.checkpoint_names() == [
        "lite0_gap_head",
        "lite0_gap_head_448s16",
        "lite0_tap_head",
        "lite0_tap_head_448s16",
    ]  # "broken" has a malformed resolution: not listed
    experiments = [(label, value) for label, value in models.model_choices() if label.startswith("Experiment")]
    assert [value for _, value in experiments] == ["lite0_gap_head", "lite0_tap_head"]
    for label, _ in experiments:
        assert "at 224 px / 32:" in label and "at 448 px / 16:" in label
    # threshold-free, against the control: V2 59.8 - 60.0 (CAM), 60.0 - 60.1 (NWC+PaS), cards of 224 / 32
    assert "MaxBoxAccV2 -0.2 (CAM) / -0.1 (NWC+PaS), top-1 +5.2 vs its GAP control" in experiments[1][0]
    assert "no localisation gain measured" in experiments[1][0]
    assert experiments[1][0].count(" on ") >= 1  # the numbers name the set they were measured on


@pytest.mark.parametrize(
    ("resolution", "expected"),
    [
        (Resolution(448, 16), "_448s16"),  # trained there
        (Resolution(224, 32), ""),  # trained there (a card without the key)
        (Resolution(512, 16), "_448s16"),  # map 32: |32 - 28| = 4 < |32 - 7| = 25
        (Resolution(336, 16), "_448s16"),  # map 21: |21 - 28| = 7 < |21 - 7| = 14
        (Resolution(448, 32), ""),  # map 14: |14 - 7| = 7 < |14 - 28| = 14
        (Resolution(336, 32), ""),  # map 11: 4 < 17
    ],
)
def test_the_pair_trained_at_or_nearest_the_resolution_is_used(
    pairs: Path, resolution: Resolution, expected: str
) -> None:
    for pooling in ("gap", "tap"):
        for asked in (f"lite0_{pooling}_head", f"lite0_{pooling}_head_448s16"):  # any member names its family
            assert models.member(asked, resolution) == f"lite0_{pooling}_head{expected}"
    assert models.member(MODEL, resolution) == MODEL and models.member("resnet50", resolution) == "resnet50"
    note = models.pair_note("lite0_tap_head", resolution)
    trained = "448 px, stride 16" if expected else "224 px, stride 32"
    assert note.startswith(f"trained at {trained}")
    assert ("nearest" in note) == (resolution not in (Resolution(448, 16), Resolution(224, 32)))


def test_the_tap_panel_uses_the_pair_of_the_chosen_resolution_and_says_so(pairs: Path, cat_session: Session) -> None:
    assert models.tap_partner(MODEL) == "lite0_tap_head"
    toggle = models.tap_toggle(MODEL, R448)
    assert toggle == {"interactive": True, "info": "green panel: TAP head, 448/16"}
    assert models.tap_toggle(MODEL, R336)["info"] == "green panel: TAP head, 448/16 (nearest)"
    at_448 = compare.render_localization(view_request(cat_session, tap=True))
    assert at_448.payload["ours"]["trained_at"]["label"] == "448 px, stride 16 -> 28x28 map"
    assert "trained with TAP at 448 px, stride 16:" in at_448.caption
    switch = analyses.on_resolution("336/16", "285", MODEL, cat_session)
    assert "TAP panel: lite0_tap_head_448s16, trained at 448 px, stride 16: the nearest" in switch.status
    at_336 = compare.render_localization(view_request(switch.session, tap=True))
    assert at_336.payload["resolution"]["feature_size"] == [21, 21]
    assert at_336.payload["ours"]["trained_at"] == {"input_size": 448, "output_stride": 16,
                                                   "label": "448 px, stride 16 -> 28x28 map"}  # fmt: skip
    assert "trained with TAP at 448 px, stride 16 (the nearest trained head to this resolution)" in at_336.caption
    # the GAP control picked: both panels come from the 448 / 16 pair, the plain one the GAP head
    control = analyses.on_model("lite0_gap_head", cat_session)
    assert control.session is not None and "trained at 448 px, stride 16" in control.status
    both = compare.render_localization(view_request(control.session, tap=True))
    assert both.payload["plain"]["trained_at"]["input_size"] == both.payload["ours"]["trained_at"]["input_size"] == 448
    assert both.payload["plain"]["trained_with"] == "GAP" and both.payload["ours"]["trained_with"] == "TAP"
    small = compare.render_localization(view_request(replace_resolution(control.session, R224), tap=True))
    assert (
        small.payload["plain"]["trained_at"]["input_size"] == small.payload["ours"]["trained_at"]["input_size"] == 224
    )
