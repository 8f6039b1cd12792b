"""The app as an attacker sees it: raw HTTP against a real server (not only gradio_client), hostile values in
every event, and the limits that keep memory, disk and the model cache bounded. Issue #11."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import httpx
import numpy as np
import pytest
from gradio.utils import get_upload_folder
from PIL import Image

import cam_core
from app import api, controls, hosting, inputs, model_cache, state
from app.errors import with_notice, without_paths
from app.events import event
from app.explanation import start_session
from app.inputs import CRF, VIEW
from app.label_maps import SEG
from app.tabs import compare, weights, why_tap
from app.tabs import crf as crf_tab
from app.tabs import evaluate as ev
from app.tabs import segmentation as segmentation_tab
from app.tabs.segmentation import ID as SEGMENT_TAB
from tests.helpers import ROOT, call, queue_join

CAT = ROOT / "assets" / "examples" / "cat.jpg"
MODEL = cam_core.DEFAULT_MODEL
CONTROLS = [0.2, 0.35, 90, False, True, True]  # /explain's six controls (method: after the resolution)
RESOLUTION = inputs.DEFAULT_RESOLUTION.value  # the Resolution menu's value, "448/16"
SIZE_STRIDE = [448, 16]  # /explain's input_size, output_stride: raw HTTP sends every input (the clients fill defaults)
RAW_RENDER = event(compare.render_localization, VIEW)  # what Gradio calls: raw values, checked where they enter


# ------------------------------------------------------------------ item 1: no server file is reachable


def _outside_files(tmp_path: Path) -> dict[str, str]:
    photo = tmp_path / "server_photo.jpg"  # a real JPEG the server can read, outside the upload folder
    shutil.copy(CAT, photo)
    return {"jpeg outside": str(photo), "passwd": "/etc/passwd", "zero": "/dev/zero", "folder": str(ROOT),
            "missing": "/no/such/file.jpg", "traversal": f"{get_upload_folder()}/../../etc/passwd",
            "relative": "../../../../etc/passwd", "nul": "/etc/passwd\x00.jpg"}  # fmt: skip


@pytest.mark.parametrize("event", ["explain", "on_image"])
def test_a_path_outside_the_upload_folder_is_never_opened(
    event: str, http: httpx.Client, tmp_path: Path, uploads: Path
) -> None:
    link = uploads / "link.jpg"  # a symlink inside the upload folder that points out of it
    link.symlink_to(tmp_path / "server_photo.jpg")
    targets = {**_outside_files(tmp_path), "symlink out": str(link)}
    for label, path in targets.items():
        for payload in ({"path": path}, {"path": path, "meta": {"_type": "gradio.FileData"}}, path):
            data = [payload, MODEL, "", *CONTROLS, *SIZE_STRIDE] if event == "explain" else [payload, MODEL, RESOLUTION]
            kind, message = call(http, event, data)
            if isinstance(payload, dict) and "meta" not in payload:  # reaches our code (``preprocess=False``)
                assert (kind, message) == ("error", inputs.NOT_A_FILE), (label, payload, message)
            else:  # a real FileData or a bare string: Gradio's own checks refuse it first (no message, or theirs)
                assert (kind == "error" and message in (None, inputs.NOT_A_FILE)) or "Cannot move" in message


def test_the_same_check_on_the_pages_own_route(http: httpx.Client, demo: Any, tmp_path: Path) -> None:
    for path in _outside_files(tmp_path).values():
        output = queue_join(http, demo, "on_image", [{"path": path}, MODEL, RESOLUTION])
        assert output["error"] == inputs.NOT_A_FILE


def test_an_upload_in_the_upload_folder_and_the_examples_are_accepted(http: httpx.Client, uploads: Path) -> None:
    shutil.copy(CAT, uploads / "mine.jpg")
    for path in (str(uploads / "mine.jpg"), str(CAT)):
        kind, payload = call(http, "explain", [{"path": path}, MODEL, "", *CONTROLS, *SIZE_STRIDE])
        assert kind == "complete" and payload[0]["class"]["index"] == 285


# ------------------------------------------------------------------ item 4: events reachable over HTTP validate


@pytest.mark.parametrize(
    "model",
    [
        "../../tmp/gradio/x/evil",
        "vit_base_patch16_224",
        "resnet34",
        "/etc/passwd",
        "",
        None,
        ["tf_efficientnet_lite0"],
        3,
    ],
)
def test_models_only_from_the_menu(model: Any, http: httpx.Client) -> None:
    started = time.perf_counter()
    kind, message = call(http, "on_image", [{"path": str(CAT)}, model, RESOLUTION])
    assert kind == "error" and "`model` must be one of" in message
    assert time.perf_counter() - started < 10  # refused before any load or download starts


def test_an_uploaded_checkpoint_is_never_loaded(uploads: Path) -> None:
    shutil.copy(ROOT / "assets" / "checkpoints" / "lite0_tap_head.safetensors", uploads / "evil.safetensors")
    relative = os.path.relpath(uploads / "evil", state.CHECKPOINT_DIR)
    with pytest.raises(cam_core.UnknownModelError):
        state.get_model(relative)


@pytest.mark.parametrize(
    ("position", "value", "name"),
    [(3, "0.2", "theta_mas"), (4, None, "theta_pas"), (5, [90], "percentile"), (5, {"a": 1}, "percentile"),
     (3, float("nan"), "theta_mas"), (3, 1e308 * 10, "theta_mas"), (6, "false", "tap"), (7, 1, "nwc"),
     (8, None, "pas"), (5, 0, "percentile"), (3, True, "theta_mas")],
)  # fmt: skip
def test_explain_names_the_bad_parameter(position: int, value: Any, name: str) -> None:
    args: list[Any] = [{"path": str(CAT)}, MODEL, "", *CONTROLS]
    args[position] = value
    with pytest.raises(gr.Error) as error:
        api.explain(*args)
    assert f"`{name}`" in error.value.message and "Internal error" not in error.value.message


def test_bad_values_over_raw_http_get_readable_messages(http: httpx.Client) -> None:
    kind, message = call(http, "explain", [{"path": str(CAT)}, MODEL, "", "abc", *CONTROLS[1:], *SIZE_STRIDE])
    assert kind == "error" and message.startswith("`theta_mas` must be a number")
    kind, message = call(http, "explain", [{"path": str(CAT)}, MODEL, "²", *CONTROLS, *SIZE_STRIDE])
    assert kind == "error" and "Unknown class '²'" in message
    kind, message = call(http, "explain", [{"path": str(CAT)}, MODEL, "", 0.2, 0.35, 90, "false", True, True, 448, 16])
    assert kind == "error" and "`tap` must be true or false" in message


@pytest.mark.parametrize(
    ("size", "stride", "message"),
    [
        (300, 16, "`input_size` must be one of [224, 336, 448, 512], got 300"),
        ("448", 16, "`input_size` must be a number"),
        (10**12, 16, "`input_size` must be a number in [224, 512]"),
        (None, 16, "`input_size` must be a number"),
        (448, True, "`output_stride` must be a number"),
        (448, [16], "`output_stride` must be a number"),
        (448, 8, "`output_stride` must be a number in [16, 32], got 8"),
        (224, 16, "`input_size` 224 with `output_stride` 16 is not offered"),
    ],
)
def test_explain_refuses_resolutions_it_does_not_offer_over_raw_http(
    http: httpx.Client, size: Any, stride: Any, message: str
) -> None:
    """Issue #13: ``input_size`` and ``output_stride`` arrive as raw JSON; only the offered pairs pass."""
    started = time.perf_counter()
    kind, text = call(http, "explain", [{"path": str(CAT)}, MODEL, "", *CONTROLS, size, stride])
    assert kind == "error" and message in text and "Internal error" not in text
    assert time.perf_counter() - started < 10  # refused before any forward pass


def test_an_explain_call_written_before_the_resolution_parameters_still_works_over_raw_http(
    http: httpx.Client,
) -> None:
    """Issue #13: ``input_size`` / ``output_stride`` were appended with defaults, so the 9 values an older raw
    caller sends get the default 28 x 28 map; 8 values (a required one missing) are still refused."""
    kind, payload = call(http, "explain", [{"path": str(CAT)}, MODEL, "", *CONTROLS])
    assert kind == "complete", payload
    assert payload[0]["resolution"]["feature_size"] == [28, 28]
    kind, payload = call(http, "explain", [{"path": str(CAT)}, MODEL, "", *CONTROLS, 224])  # only input_size given
    assert kind == "error" and "output_stride" in payload, payload  # 224 with the default stride 16: not offered
    kind, message = call(http, "explain", [{"path": str(CAT)}, MODEL, "", *CONTROLS[:-1]])
    assert kind == "error", message


def test_the_pages_resolution_event_refuses_what_the_menu_does_not_offer(http: httpx.Client, demo: Any) -> None:
    """The menu's own check (Gradio's, a value not among the choices) or ours (``None``) refuses, never a crash."""
    for value in ("1024/16", "448/8", ["448/16"], 448, None, "448/16\x00"):
        # no class: a fresh raw session offers none, so any class value is dropped as stale (app.sidebar) before the
        # resolution is looked at
        output = queue_join(http, demo, "on_resolution", [value, None, MODEL, None])
        status = json.dumps(output)
        refused = "`resolution` must be one of" in status or "is not in the list of choices" in status
        assert refused and "Internal error" not in status and "Traceback" not in status, value
    for value in ("1024/16", 448):
        kind, message = call(http, "on_image", [{"path": str(CAT)}, MODEL, value])
        assert kind == "error" and "`resolution` must be one of" in message


def test_hostile_values_in_the_slider_events(http: httpx.Client) -> None:
    session = start_session({"path": str(CAT)}, MODEL)
    for box in ("inf, 0, 10, 10", "1e999, 0, 5, 5", "0,0,5,5\x00", "1, 2, 3"):
        with pytest.raises(gr.Error, match=r"[Gg]round-truth box"):
            RAW_RENDER(session, "", *CONTROLS, "cam", box)
    for choice in ("²", "١٢", [285], {"x": 1}, "9" * 50):
        with pytest.raises(gr.Error) as error:
            RAW_RENDER(session, choice, *CONTROLS, "cam", "")
        assert "Internal error" not in error.value.message
    assert controls.apply_preset(["not", "hashable"]) == (gr.update(),) * 5


def test_the_analysis_tabs_check_their_inputs() -> None:
    session = start_session({"path": str(CAT)}, MODEL)
    with pytest.raises(gr.Error, match="`tau`"):
        why_tap.render_p1(session, "", "0.1", None)
    with pytest.raises(gr.Error, match="`scale`"):
        weights.render_weights(session, "", ["shared"])
    with pytest.raises(gr.Error, match="`iterations`"):
        event(crf_tab.render_crf, VIEW, CRF)(session, "", *CONTROLS, "cam", "", 3, 3, 80, 13, 10, 10**9)


def test_the_segmentation_tab_refuses_hostile_values_over_the_pages_route(http: httpx.Client, demo: Any) -> None:
    """Issue #16: the tab's events are reachable with ``queue/join`` too; lists, strings and bools are refused."""
    session = start_session({"path": str(CAT)}, MODEL)
    raw = with_notice(event(segmentation_tab.render_segmentation, SEG), 4)
    hostile = [(8, "285", "seg_classes"), (8, [[285]], "seg_classes"), (9, "5", "top_k"), (9, [5], "top_k"),
               (10, True, "min_probability"), (1, ["0.2"], "theta_mas"), (7, "../cam", "method")]  # fmt: skip
    for position, value, name in hostile:
        args: list[Any] = [session, *CONTROLS, "cam", ["285"], 5, 0.05, SEGMENT_TAB]
        args[position] = value
        notice = raw(*args)[-1]
        assert f"`{name}`" in notice and "Internal error" not in notice
    output = queue_join(http, demo, "segmentation_open", [None, *CONTROLS, "cam", "285", 5, 0.05])
    assert "Internal error" not in json.dumps(output)


# ------------------------------------------------------------------ item 3 (app side): instant events never decode


def test_slider_events_never_decode_even_after_eviction(monkeypatch: pytest.MonkeyPatch) -> None:
    session = start_session({"path": str(CAT)}, MODEL)
    monkeypatch.setattr(state, "ANALYSES", state.AnalysisCache())  # everything evicted

    def no_decode(*args: object, **kwargs: object) -> None:
        raise AssertionError("an instant event decoded a file")

    monkeypatch.setattr(cam_core, "load_image", no_decode)
    payload = RAW_RENDER(session, "285", *CONTROLS, "cam", "").payload
    assert payload["image_size"] == {"height": 300, "width": 451}  # boxes stay in the photo's frame
    x0, y0, x1, y1 = payload["plain"]["box"]
    assert 0 <= x0 < x1 < 451 and 0 <= y0 < y1 < 300
    assert session.display.nbytes <= 512 * 512 * 3


# ------------------------------------------------------------------ item 5: the model lock


def test_a_slow_model_load_blocks_nobody_else(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue #11 item 5, and issue #22 item 2: a slow load holds no caller; it is said at once ("loading, about N s")
    and goes on in the background."""
    cache = model_cache.ModelCache()
    release = threading.Event()
    real_load = model_cache._load

    def slow_load(name: str, output_stride: int) -> cam_core.LoadedModel:
        if name == "resnet50":
            release.wait(30)
            raise cam_core.WeightsUnavailableError("resnet50: offline")
        return real_load(name, output_stride)

    monkeypatch.setattr(model_cache, "_load", slow_load)
    monkeypatch.setattr(model_cache, "LOAD_WAIT_S", 0.5)
    started = time.perf_counter()
    with pytest.raises(model_cache.ModelLoading, match=r"Loading resnet50 \(.*\): about \d+ s") as loading:
        cache.get("resnet50")
    assert time.perf_counter() - started < 5 and loading.value.remaining_s >= 1
    # the default loads while resnet50 still hangs (its own load may take seconds on a busy machine)
    monkeypatch.setattr(model_cache, "LOAD_WAIT_S", 60.0)
    assert cache.get(MODEL).name == MODEL and not release.is_set()
    release.set()
    time.sleep(0.2)
    with pytest.raises(cam_core.WeightsUnavailableError, match="offline"):  # remembered, not retried
        cache.get("resnet50")


# ------------------------------------------------------------------ item 6 and per-request bounds


def test_request_bodies_are_bounded(http: httpx.Client) -> None:
    big = b"x" * (hosting.MAX_BODY_BYTES + 1)
    assert http.post("/gradio_api/queue/join", content=big).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams; 5 files of 15 MB (each allowed)
        for i in range(5):
            yield (f'--b\r\nContent-Disposition: form-data; name="files"; filename="f{i}.bin"\r\n'
                   "Content-Type: application/octet-stream\r\n\r\n").encode()  # fmt: skip
            for _ in range(15):
                yield b"y" * 2**20
            yield b"\r\n"
        yield b"--b--\r\n"

    response = http.post(
        "/gradio_api/upload", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code == 413
    host, port = http.base_url.host, http.base_url.port
    with socket.create_connection((host, port), timeout=30) as raw:  # declares 10 GB, sends nothing more
        raw.sendall(f"POST /gradio_api/upload HTTP/1.1\r\nHost: {host}\r\nContent-Length: {10 * 2**30}\r\n"
                    "Content-Type: multipart/form-data; boundary=b\r\n\r\n".encode())  # fmt: skip
        assert raw.recv(100).startswith(b"HTTP/1.1 413")


def test_the_upload_folder_stays_within_its_budget(
    http: httpx.Client, demo: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hosting, "UPLOAD_BUDGET_BYTES", 3 * 2**20)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(12):  # 12 MB of incompressible uploads
        files = {"files": (f"noise{i}.bin", rng.bytes(2**20), "application/octet-stream")}
        response = http.post("/gradio_api/upload", files=files)
        assert response.status_code == 200
        paths += response.json()
    deadline = time.monotonic() + 5  # the last upload's pruning runs just after its response
    # a copy (one C call: atomic under the GIL): the server's pruning thread changes the set while we count
    while (held := sum(os.path.getsize(p) for p in demo.upload_file_set.copy() if os.path.exists(p))) > 3 * 2**20:
        assert time.monotonic() < deadline, f"{held} bytes held"
        time.sleep(0.05)
    assert os.path.exists(paths[-1]) and not os.path.exists(paths[0])  # oldest deleted first
    assert demo.delete_cache is not None  # and Gradio's age-based cleaning is on


# ------------------------------------------------------------------ items 2, 8, 9: Evaluate and messages


def _csv(folder: Path, rows: list[str]) -> str:
    path = folder / "boxes.csv"
    path.write_text("filename,class_index,x0,y0,x1,y1\n" + "\n".join(rows) + "\n")
    return str(path)


def test_evaluate_matches_csv_names_by_base_name_only(uploads: Path) -> None:
    photo = uploads / "cat.jpg"
    shutil.copy(CAT, photo)
    secret = uploads.parent / "secret.jpg"  # a server file next to the upload: never read
    rows = ["cat.jpg,285,20,0,450,299", f"{CAT},285,0,0,5,5", "../secret.jpg,285,0,0,5,5", "./cat.jpg,285,0,0,5,5",
            "/etc/passwd,1,0,0,5,5", "ghost.jpg,1,0,0,5,5", "a\x00b.jpg,1,0,0,5,5"]  # fmt: skip
    table, _, gallery, payload = ev.run_evaluation(
        [str(photo), {"path": str(photo)}], _csv(uploads, rows), False, MODEL, progress=lambda *a, **k: None
    )
    assert payload["n_images"] == 1 and len(gallery) == 1
    reasons = {s["file"]: s["reason"] for s in payload["skipped"]}
    assert len(reasons) == 6 and str(secret) not in json.dumps(payload)
    assert reasons["../secret.jpg"].startswith("line 4: the filename has a path component")
    assert reasons["./cat.jpg"].startswith("line 5: the filename has a path component")
    assert reasons["ghost.jpg"] == "line 7: no uploaded photo has this name" and "a\\x00b.jpg" in reasons
    assert str(uploads) not in table and str(uploads) not in json.dumps(payload)


def test_evaluate_counts_distinct_photos_and_refuses_name_clashes(
    uploads: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (uploads / "a").mkdir()
    (uploads / "b").mkdir()
    shutil.copy(CAT, uploads / "a" / "cat.jpg")
    Image.open(CAT).rotate(90, expand=True).save(uploads / "b" / "cat.jpg")
    csv = _csv(uploads, ["cat.jpg,285,20,0,450,299"])
    with pytest.raises(gr.Error, match=r"Two different uploaded photos are named 'cat\.jpg'"):
        ev.run_evaluation([str(uploads / "a" / "cat.jpg"), str(uploads / "b" / "cat.jpg")], csv, False, MODEL)
    monkeypatch.setattr(ev, "MAX_IMAGES", 1)  # aliases of one file count once
    one = [str(uploads / "a" / "cat.jpg"), str(uploads / "a" / ".." / "a" / "cat.jpg")]
    assert ev.run_evaluation(one, csv, False, MODEL, progress=lambda *a, **k: None)[3]["n_images"] == 1
    with pytest.raises(gr.Error, match="upload it again"):
        ev.run_evaluation(["/etc/passwd"], csv, False, MODEL)


def test_messages_never_reveal_server_paths(uploads: Path) -> None:
    assert without_paths("Cannot read /tmp/gradio/abc/x.jpg: gone") == "Cannot read <path>: gone"
    assert without_paths("`theta` must be in [0, 1], got 2/3") == "`theta` must be in [0, 1], got 2/3"
    broken = uploads / "broken.csv"
    broken.write_bytes(b"filename,class_index,x0,y0,x1,y1\ncat.jpg,285,1,2,oops,4\n")
    shutil.copy(CAT, uploads / "cat.jpg")
    with pytest.raises(gr.Error) as error:
        ev.run_evaluation([str(uploads / "cat.jpg")], str(broken), False, MODEL)
    assert "line 2" in error.value.message and str(uploads) not in error.value.message
    assert get_upload_folder() not in error.value.message


def test_evaluate_skips_photos_too_large_to_decode_whole(uploads: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Evaluation decodes photos whole (boxes are in their pixels): the app refuses the huge ones from the header."""
    shutil.copy(CAT, uploads / "cat.jpg")
    Image.new("L", (6000, 3000)).save(uploads / "huge.png")  # 18 MP, a few kB on disk
    csv = _csv(uploads, ["cat.jpg,285,20,0,450,299", "huge.png,1,0,0,5,5"])
    decoded: list[str] = []
    real_load = ev.evaluate.__globals__["load_stored_image"]
    monkeypatch.setitem(
        ev.evaluate.__globals__, "load_stored_image", lambda p, *a: decoded.append(Path(p).name) or real_load(p, *a)
    )
    _, _, _, payload = ev.run_evaluation(
        [str(uploads / "cat.jpg"), str(uploads / "huge.png")], csv, False, MODEL, progress=lambda *a, **k: None
    )
    assert payload["n_images"] == 1 and decoded == ["cat.jpg"]
    assert payload["skipped"] == [
        {"file": "huge.png", "reason": "6000x3000 is over the in-app limit of 16 MP per photo; use the CLI"}
    ]
