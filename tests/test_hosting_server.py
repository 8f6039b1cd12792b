"""Issue #22 item 7 on the server process: a refused request writes one log line, not a traceback; the render
folder goes with the server (SIGTERM to ``python app.py``, and ``demo.close()``).

``demo.close()`` removes the folder only when the last app of its process closes: that test runs in a process of its
own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import cam_core
from bench.gradio_raw import RawClient, ServerProcess, file_data
from bench.hostile_probes import SlowHub
from tests.helpers import CAT, ROOT

CONTROLS = [0.2, 0.35, 90, False, True, True]  # /explain's six controls (method: after the resolution)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    """``python app.py`` in its own process, its temp folder (hence its render folder) in a folder of ours, its hub
    downloads pointed at a loopback server that never finishes one (nothing leaves the machine)."""
    folder = tmp_path_factory.mktemp("served")
    (folder / "tmp").mkdir()
    hub = SlowHub(limit=120)
    env = {"TMPDIR": str(folder / "tmp"), "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": hub.url, "HF_HOME": str(folder / "hf")}
    server = ServerProcess(ROOT, folder / "server.log", env)
    try:
        server.wait_ready()
        yield server, folder / "tmp"
    finally:
        server.stop(timeout=5)
        hub.close()


def _event(server: ServerProcess, name: str) -> int:
    config = httpx.get(f"{server.url}/config", timeout=30).json()
    return next(i for i, d in enumerate(config["dependencies"]) if d.get("api_name") == name)


def test_each_refused_request_writes_one_log_line(served: tuple[ServerProcess, Path]) -> None:
    server, _ = served
    on_image = _event(server, "on_image")
    with RawClient(server.url, timeout=60) as client:
        (cat,) = client.upload([CAT])
        refused = {
            "server path": lambda: client.queued(
                on_image, [file_data("/etc/passwd", "x"), cam_core.DEFAULT_MODEL, "448/16"]
            ),
            "not a file": lambda: client.queued(on_image, ["/etc/passwd", cam_core.DEFAULT_MODEL, "448/16"]),
            "bad model": lambda: client.queued(on_image, [cat, "../../evil", "448/16"]),
            "too few values": lambda: client.queued(on_image, [cat]),
            "unknown event": lambda: client.join(10**6, []),
        }
        for name, send in refused.items():
            mark = server.log_size()
            with pytest.raises(Exception) as raised:
                send()
            deadline = 50
            while not server.log_since(mark).strip() and deadline:  # written just after the answer
                deadline -= 1
                httpx.get(f"{server.url}/config", timeout=10)
            logged = [line for line in server.log_since(mark).splitlines() if line.strip()]
            assert len(logged) == 1 and logged[0].startswith("refused "), (name, logged[:5])
            assert "Traceback" not in server.log_since(mark), (name, raised.value)
        assert client.queued(on_image, [cat, cam_core.DEFAULT_MODEL, "448/16"])  # and the app still works


def test_sigterm_removes_the_render_folder(served: tuple[ServerProcess, Path]) -> None:
    """Last test of the module: it stops the shared server (as a container stop does), while a hub download hangs
    in a worker thread (the process may then wait for it to exit; its pictures must not)."""
    server, tmp = served
    with RawClient(server.url, timeout=60) as client:
        (cat,) = client.upload([CAT])
        client.queued(_event(server, "explain"), [cat, cam_core.DEFAULT_MODEL, "", *CONTROLS, 448, 16])
        client.join(_event(server, "on_image"), [cat, "resnet50", "448/16"])  # its weights never arrive
    (folder,) = tmp.glob("cam-explainer-*")
    assert any(folder.rglob("*.png")) or any(folder.rglob("*.jpg"))  # the analysis drew its pictures there
    time.sleep(1.0)  # the load has started
    server.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not folder.exists()


CLOSE = """
import os
from pathlib import Path
import numpy as np
import cam_core
from app import files, hosting, views
from app.events import event
from app.explanation import start_session
from app.inputs import VIEW
from app.tabs import compare
from bench.gradio_raw import RawClient
from tests.helpers import CAT, load_app_module

CONTROLS = [0.2, 0.35, 90, False, True, True]
assert not hosting._RUNNING, "another app of this process still serves"
demo = load_app_module().demo
demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1")
try:
    with RawClient(demo.local_url) as client:
        (cat,) = client.upload([CAT])
        dependencies = demo.get_config_file()["dependencies"]
        explain = next(i for i, d in enumerate(dependencies) if d.get("api_name") == "explain")
        client.queued(explain, [cat, cam_core.DEFAULT_MODEL, "", *CONTROLS, 448, 16])
    session = start_session({"path": str(CAT)}, cam_core.DEFAULT_MODEL)
    event(compare.render_localization, VIEW)(session, "285", *CONTROLS, "cam", "")  # a slider view, as the page asks
    folder = Path(files.render_dir())
    assert len(views.STATICS._entries) > 0  # its pictures' URLs are cached
    files.save_png(np.zeros((4, 4, 3), np.uint8), keep=True)
    assert any(folder.iterdir())
finally:
    demo.close()
assert not folder.exists() and len(views.STATICS._entries) == 0
assert Path(files.render_dir()) != folder  # a later app gets a new folder (served: launch registers it)
assert os.path.isdir(files.output_dir())
"""
"""``demo.close()`` of the last app serving in a process, in a process of its own (the suite's server runs in the test
process: :func:`tests.conftest.demo`)."""


def test_demo_close_removes_the_render_folder_and_forgets_its_pictures(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", CLOSE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
