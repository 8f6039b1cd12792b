"""Fairness on loopback: how long a visitor's upload waits behind another client's long job or flood.

Run: ``python -m bench.bench_lanes [--quick] [--json F]``. The app runs in its own process (no
``HF_HUB_OFFLINE``: a hub model's load is as slow as this server's network makes it; with ``--quick``, about a
minute, the hub is a loopback one that answers one byte per second, :class:`~bench.hostile_probes.SlowHub`, so
nothing leaves the machine and the load stays slow). The attacker's client is
bound to 127.0.0.2, the victim's to 127.0.0.1, so per-address rules apply as they would to two visitors. Each
scenario starts the attacker's work, waits until it runs, then times the victim's upload + first analysis
(``on_image`` through ``queue/join`` and the event stream, as the page does):

* ``evaluate``: one Evaluate of ``--eval-photos`` photos of ``--eval-side``² at 512 / 16 (the issue's worst
  case is 64 photos of 4000²);
* ``crf``: three Segmentation CRFs (20 classes, 20 iterations), each from its own session;
* ``model_load``: a model switch to a hub model (resnet18) whose weights are not on this machine;
* ``join_flood``: 64 ``queue/join`` under fresh session hashes while a Segmentation CRF runs: the victim's
  join is answered (or ``503 Queue is full``);
* ``unqueued_flood``: the victim's slider p50 / p95 idle, then while the attacker turns TAP on in fresh
  sessions and moves a slider with the export tab open, as fast as ``--flood-threads`` threads can.

Every loop is bounded in count and time; the clients' traffic stays on loopback. Prints one line per scenario and, with
``--json``, writes them (seconds) for the closing note of issue #22.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from bench.bench_app import CAT, percentiles
from bench.hostile_probes import SlowHub

SERVER = """
import os, sys
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
from app.ui import build_demo
demo = build_demo(expose_ui_events=True)
demo.launch(server_name="127.0.0.1", server_port=int(sys.argv[1]), quiet=True)
"""
MODEL, RESOLUTION, WORST = "tf_efficientnet_lite0", "448/16", "512/16"
CONTROLS = [0.2, 0.35, 90, False, True, True, "cam"]  # theta_mas, theta_pas, percentile, tap, nwc, pas, method
CRF_WORST = [3.0, 3.0, 80.0, 13.0, 10.0, 20]  # the CRF sliders, 20 iterations
EXPORT_TAB = "JSON & export"
VICTIM, ATTACKER = "127.0.0.1", "127.0.0.2"
TIMEOUT_S = 240.0


class Client:
    """One client address speaking the page's raw protocol; each event under its own (or a given) session."""

    def __init__(self, url: str, address: str, indices: dict[str, int]) -> None:
        transport = httpx.HTTPTransport(local_address=address)
        self.http = httpx.Client(base_url=url, timeout=TIMEOUT_S, transport=transport)
        self.indices = indices

    def upload(self, path: Path) -> dict[str, Any]:
        """``POST /upload``; the FileData the page would send."""
        with path.open("rb") as handle:
            response = self.http.post("/gradio_api/upload", files={"files": (path.name, handle)})
        response.raise_for_status()
        return {"path": response.json()[0], "meta": {"_type": "gradio.FileData"}, "orig_name": path.name}

    def join(self, api_name: str, data: list[Any], session: str) -> httpx.Response:
        """``queue/join`` of the event named ``api_name``."""
        body = {"data": data, "fn_index": self.indices[api_name], "session_hash": session}
        return self.http.post("/gradio_api/queue/join", json=body)

    def result(self, session: str) -> dict[str, Any]:
        """The session's next ``process_completed`` output (``{"data": ...}`` or ``{"error": ...}``)."""
        with self.http.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:") and '"process_completed"' in line:
                    return dict(json.loads(line[5:])["output"])
        return {"error": "the event stream ended"}

    def run(self, api_name: str, data: list[Any], session: str | None = None) -> tuple[float, dict[str, Any]]:
        """Join and wait: ``(seconds, output)``; a refused join gives ``{"refused": status, "error": detail}``."""
        session = session or os.urandom(8).hex()
        start = time.perf_counter()
        response = self.join(api_name, data, session)
        if response.status_code != 200:
            return time.perf_counter() - start, {"refused": response.status_code, "error": response.text[:200]}
        output = self.result(session)
        return time.perf_counter() - start, output

    def direct(self, api_name: str, data: list[Any], session: str) -> tuple[float, dict[str, Any]]:
        """An unqueued event (``run/predict``): ``(seconds, response JSON)``."""
        body = {"data": data, "fn_index": self.indices[api_name], "session_hash": session}
        start = time.perf_counter()
        response = self.http.post("/gradio_api/run/predict", json=body)
        return time.perf_counter() - start, {"status": response.status_code, **_json(response)}


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {"text": response.text[:200]}
    return value if isinstance(value, dict) else {"value": value}


def photo(folder: Path, name: str, size: tuple[int, int], quality: int = 80) -> Path:
    """The example cat resized to ``size`` (w, h), a JPEG whose pixels differ from every other size's."""
    path = folder / f"{name}.jpg"
    Image.open(CAT).convert("RGB").resize(size).save(path, quality=quality)
    return path


class Victim:
    """The visitor: a fresh photo each time (no cache hit), timed from join to its analysis."""

    def __init__(self, client: Client, folder: Path) -> None:
        self.client, self.folder, self.count = client, folder, 0

    def upload_and_analyse(self) -> dict[str, Any]:
        self.count += 1
        path = photo(self.folder, f"victim{self.count}", (400 + self.count, 300 + self.count))
        start = time.perf_counter()
        payload = self.client.upload(path)
        _, output = self.client.run("on_image", [payload, MODEL, RESOLUTION])
        return {
            "wait_s": round(time.perf_counter() - start, 2),
            "ok": "data" in output,
            "refused": output.get("refused"),
            "error": str(output.get("error") or "")[:160],
        }


def in_background(fn: Callable[[], Any]) -> concurrent.futures.Future[Any]:
    """Run ``fn`` in a daemon thread (the attacker), returning its future."""
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def target() -> None:
        try:
            future.set_result(fn())
        except Exception as exc:  # reported by the scenario
            future.set_exception(exc)

    threading.Thread(target=target, daemon=True).start()
    return future


def attacker_session(attacker: Client, payload: dict[str, Any]) -> tuple[str, str]:
    """A session with a photo analysed (what a CRF or a TAP toggle needs), and the class picked (its top-1)."""
    session = os.urandom(8).hex()
    _, output = attacker.run("on_image", [payload, MODEL, RESOLUTION], session)
    if "data" not in output:
        raise RuntimeError(f"attacker's photo refused: {output}")
    return session, str(output["data"][1]["value"])


CLASSES = [str(c) for c in range(280, 300)]  # 20 classes, cats among them


def crf_session(attacker: Client, payload: dict[str, Any]) -> str:
    """A session whose Segmentation picker holds the 20 :data:`CLASSES` (added one by one, as a user does)."""
    session, _ = attacker_session(attacker, payload)
    for k, value in enumerate(CLASSES):
        _, response = attacker.direct("add_class", [None, *CONTROLS, CLASSES[:k], 10, 0.0, value], session)
        if response["status"] != 200:
            raise RuntimeError(f"add_class refused: {response}")
    return session


def finish(job: concurrent.futures.Future[Any], started: float) -> dict[str, Any]:
    """The attacker's outcome: how long its job took from its join to its answer, or how it was refused."""
    del started
    try:
        seconds, output = job.result(timeout=TIMEOUT_S)
    except Exception as exc:
        return {"attacker": f"{type(exc).__name__}: {exc}"[:160]}
    refused = output.get("refused") or ("error" in output and "data" not in output)
    return {"attacker_s": round(seconds, 1), "attacker_refused": bool(refused),
            "attacker_says": str(output.get("error") or "")[:200]}  # fmt: skip


def scenario_evaluate(attacker: Client, victim: Victim, folder: Path, photos: int, side: int) -> dict[str, Any]:
    files, rows = [], ["filename,class_index,x0,y0,x1,y1"]
    for i in range(photos):
        path = photo(folder, f"eval{i:02d}", (side - i, side), quality=60)  # <= 16 MP: none skipped
        files.append(attacker.upload(path))
        rows.append(f"{path.name},285,{side // 4},{side // 4},{side // 2},{side // 2}")
    (folder / "boxes.csv").write_text("\n".join(rows) + "\n")
    csv = attacker.upload(folder / "boxes.csv")
    started = time.perf_counter()
    job = in_background(lambda: attacker.run("run_evaluation", [files, csv, None, MODEL, WORST, []]))
    time.sleep(2.0)  # running by now
    first = victim.upload_and_analyse()
    waits = [first["wait_s"]]
    while not job.done() and len(waits) < 8:  # more uploads while it runs: the median, not one sample
        waits.append(victim.upload_and_analyse()["wait_s"])
    waits.sort()
    more = {"victim_uploads": len(waits), "wait_p50_s": waits[len(waits) // 2], "wait_max_s": waits[-1]}
    return {"photos": photos, "side": side, **first, **more, **finish(job, started)}


def scenario_crf(attacker: Client, victim: Victim, payload: dict[str, Any], count: int) -> dict[str, Any]:
    # from three addresses (127.0.0.2-4): one address may hold only one long job at a time
    attackers = [Client(str(attacker.http.base_url), f"127.0.0.{2 + k}", attacker.indices) for k in range(count)]
    sessions = [(a, crf_session(a, payload)) for a in attackers]
    data = [None, *CONTROLS, CLASSES, 10, 0.0, *CRF_WORST]
    started = time.perf_counter()
    jobs = [in_background(lambda a=a, s=s: a.run("segmentation_crf", data, s)) for a, s in sessions]
    time.sleep(2.0)
    outcome = victim.upload_and_analyse()
    results = [finish(job, started) for job in jobs]
    refused = sum(bool(r.get("attacker_refused")) for r in results)
    longest = max(r.get("attacker_s", 0) for r in results)
    return {"crfs": count, **outcome, "attacker_refused": refused, "attacker_s": longest}


def scenario_model_load(attacker: Client, victim: Victim, payload: dict[str, Any]) -> dict[str, Any]:
    session, _ = attacker_session(attacker, payload)
    started = time.perf_counter()
    job = in_background(lambda: attacker.run("on_model", ["resnet18", None, RESOLUTION], session))
    time.sleep(2.0)
    return {**victim.upload_and_analyse(), **finish(job, started)}


def scenario_join_flood(attacker: Client, victim: Victim, payload: dict[str, Any], joins: int) -> dict[str, Any]:
    sessions = [crf_session(attacker, payload) for _ in range(3)]  # long jobs ahead: the joins stay queued
    data = [None, *CONTROLS, CLASSES, 10, 0.0, *CRF_WORST]
    started = time.perf_counter()
    jobs = [in_background(lambda s=s: attacker.run("segmentation_crf", data, s)) for s in sessions]
    time.sleep(1.0)
    statuses = [attacker.join("on_image", [payload, MODEL, RESOLUTION], os.urandom(8).hex()).status_code
                for _ in range(joins)]  # fmt: skip
    outcome = victim.upload_and_analyse()
    crfs = [finish(job, started) for job in jobs]
    return {"joins": joins, "attacker_accepted": statuses.count(200), "attacker_statuses": sorted(set(statuses)),
            **outcome, "crfs_refused": sum(bool(c.get("attacker_refused")) for c in crfs)}  # fmt: skip


def slider_moves(client: Client, session: str, picked: str, moves: int, tab: str = "") -> list[float]:
    """``moves`` threshold-slider events of one session; seconds each."""
    times = []
    for i in range(moves):
        data = [None, picked, 0.1 + 0.05 * (i % 10), *CONTROLS[1:], "", tab]
        seconds, response = client.direct("update_theta_mas", data, session)
        if response["status"] != 200:
            raise RuntimeError(f"slider refused: {response}")
        times.append(seconds)
    return times


def scenario_unqueued_flood(
    attacker: Client, victim_client: Client, folder: Path, sessions: int, threads: int, seconds: float
) -> dict[str, Any]:
    victim_session = os.urandom(8).hex()
    _, output = victim_client.run("on_image", [victim_client.upload(CAT), MODEL, RESOLUTION], victim_session)
    picked = str(output["data"][1]["value"])
    slider_moves(victim_client, victim_session, picked, 3)
    idle = slider_moves(victim_client, victim_session, picked, 20)
    own = [
        attacker_session(attacker, attacker.upload(photo(folder, f"flood{i}", (500 + i, 380)))) for i in range(sessions)
    ]  # fmt: skip  (each its own photo: its TAP analysis is not cached)
    stop, answered, statuses = time.perf_counter() + seconds, [0], set()

    def flood(k: int) -> None:
        n = 0
        while time.perf_counter() < stop and n < 400:
            session, picked = own[(k + n) % len(own)]
            tap = [None, picked, 0.2 + 0.01 * (n % 30), 0.35, 90, n % 2 == 0, True, True, "cam", "", EXPORT_TAB]
            name = "update_tap" if n % 2 == 0 else "update_theta_mas"
            _, response = attacker.direct(name, tap, session)
            statuses.add(response["status"])
            answered[0] += 1
            n += 1

    workers = [threading.Thread(target=flood, args=(k,), daemon=True) for k in range(threads)]
    for worker in workers:
        worker.start()
    time.sleep(0.5)
    loaded = slider_moves(victim_client, victim_session, picked, 20)
    for worker in workers:
        worker.join(seconds + TIMEOUT_S)
    (idle_p50, idle_p95), (load_p50, load_p95) = percentiles(idle), percentiles(loaded)
    return {"idle_p50_ms": round(idle_p50), "idle_p95_ms": round(idle_p95), "flood_p50_ms": round(load_p50),
            "flood_p95_ms": round(load_p95), "p95_ratio": round(load_p95 / idle_p95, 1),
            "attacker_requests": answered[0], "attacker_statuses": sorted(statuses)}  # fmt: skip


def calibrate(folder: Path, photos: int) -> dict[str, Any]:
    """The Evaluate cost model's constants on this machine, with the slow lane's torch threads: decode seconds per
    megapixel (a 4000² JPEG and PNG, decoded and stretched as Evaluate does) and seconds per photo at each offered
    resolution (``photos`` small photos through the app's own evaluation loop, decode included)."""
    import numpy as np
    import torch

    import cam_core
    from app import lanes, models
    from app.inputs import RESOLUTIONS
    from app.state import get_model
    from app.tabs import evaluate as evaluation
    from cam_core.datasets import Sample, load_stored_image
    from cam_core.evaluate import evaluate
    from cam_core.evaluate.protocol import prepare

    torch.set_num_threads(max(1, lanes.SLOW_THREADS))
    out: dict[str, Any] = {"threads": torch.get_num_threads()}
    loaded = get_model(MODEL, 32)
    for kind in ("jpg", "png"):
        path = folder / f"big.{kind}"
        Image.open(CAT).convert("RGB").resize((4000, 4000)).save(path, **({"quality": 60} if kind == "jpg" else {}))
        start = time.perf_counter()
        for _ in range(2):
            prepare(load_stored_image(path), np.zeros((0, 4)), loaded.data_config)
        out[f"decode_s_per_mp_{kind}"] = round((time.perf_counter() - start) / 2 / 16, 4)
    small = [photo(folder, f"small{i}", (500 - i, 375)) for i in range(photos)]
    samples = [Sample(path, 285, np.array([[100.0, 80.0, 300.0, 250.0]])) for path in small]
    for choice in RESOLUTIONS:
        at = choice.resolution
        model = cam_core.with_input_size(get_model(models.member(MODEL, at), at.output_stride), at.input_size)
        start = time.perf_counter()
        evaluate(model, samples, batch_size=8, on_image=lambda s, a, g: evaluation._outcome(s, a, g))
        out[f"s_per_photo_{at.value}"] = round((time.perf_counter() - start) / photos, 4)
        out |= {f"method_s_per_photo_{at.value}_{m}": s for m, s in method_costs(model, samples).items()}
    return out


def method_costs(model: Any, samples: list[Any]) -> dict[str, float]:
    """Seconds per photo that each CAM-family method adds to an evaluation (issue #25): its rules alone
    (``m, m+pas[, m+nwc, m+nwc+pas]``: the head's forward and backward, upsampling, thresholds, sweeps) scored on
    analyses made once, through the evaluation's own per-photo step; the forward pass is plain CAM's, not counted."""
    import numpy as np

    from cam_core.cam import analyze_batch
    from cam_core.datasets import load_stored_image
    from cam_core.evaluate import default_configs
    from cam_core.evaluate.metrics import Evaluator
    from cam_core.evaluate.protocol import prepare
    from cam_core.evaluate.run import _score
    from cam_core.family import METHODS

    views = [prepare(load_stored_image(s.path), s.boxes, model.data_config) for s in samples]
    analyses = analyze_batch(model, [view for view, _ in views])
    costs = {}
    for method in METHODS:
        specs = {n: c for n, c in default_configs(model.pooling, methods=(method,)).items() if c.method == method}
        evaluators = {name: Evaluator() for name in specs}
        start = time.perf_counter()
        for sample, (_, boxes), analysis in zip(samples, views, analyses, strict=True):
            _score(model, analysis, sample.class_index, np.asarray(boxes), specs, evaluators)
        costs[method] = round((time.perf_counter() - start) / len(samples), 4)
    return costs


class Rss:
    """The server's resident memory, sampled every 0.2 s (peak in MB)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self.running = pid, 0.0, True
        threading.Thread(target=self._sample, daemon=True).start()

    def now(self) -> float:
        try:
            text = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return 0.0
        return next(float(line.split()[1]) / 1024 for line in text.splitlines() if line.startswith("VmRSS"))

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.now())
            time.sleep(0.2)


def start_server(folder: Path, hub: str | None) -> tuple[subprocess.Popen[bytes], str]:
    """The app in its own process on a free loopback port, its output in ``folder/server.log``, its temporary files
    in ``folder``; with ``hub`` (a URL) its model downloads go there, into an empty hub cache in ``folder`` (else to
    the real hub, as configured)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    (folder / "server-tmp").mkdir()
    env["TMPDIR"] = str(folder / "server-tmp")  # its pictures: removed with ``folder`` even if it must be killed
    if hub is not None:
        env |= {"HF_ENDPOINT": hub, "HF_HOME": str(folder / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    with (folder / "server.log").open("wb") as log:  # the child keeps its own copy of the descriptor
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], stdout=log, stderr=log, env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if httpx.get(f"{url}/config", timeout=2).status_code == 200:
                return server, url
        except httpx.HTTPError:
            time.sleep(0.5)
    server.kill()
    tail = (folder / "server.log").read_text(errors="replace")[-2000:]
    raise RuntimeError(f"the app did not start within 2 minutes: {tail}")


def stop_server(server: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` s (a model download still retrying keeps the process alive)."""
    server.terminate()
    try:
        server.wait(timeout)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(30)


def run_scenarios(args: argparse.Namespace, url: str, folder: Path, rss: Rss, eval_photos: int) -> dict[str, Any]:
    """The victim idle, then every scenario (or those named); one line printed each; the figures."""
    config = httpx.get(f"{url}/config").json()
    indices = {dep["api_name"]: i for i, dep in enumerate(config["dependencies"]) if dep.get("api_name")}
    results: dict[str, Any] = {"idle_rss_mb": round(rss.now())}
    attacker, victim_client = Client(url, ATTACKER, indices), Client(url, VICTIM, indices)
    victim = Victim(victim_client, folder)
    victim.upload_and_analyse()  # warm-up
    results["victim_idle"] = victim.upload_and_analyse()
    cat = attacker.upload(CAT)
    square = attacker.upload(photo(folder, "square", (2048, 2048)))  # a 512 x 512 display copy: CRF's most
    scenarios: dict[str, Callable[[], dict[str, Any]]] = {
        "evaluate": lambda: scenario_evaluate(attacker, victim, folder, eval_photos, args.eval_side),
        "crf": lambda: scenario_crf(attacker, victim, square, 1 if args.quick else 3),
        "model_load": lambda: scenario_model_load(attacker, victim, cat),
        "join_flood": lambda: scenario_join_flood(attacker, victim, square, 64),
        "unqueued_flood": lambda: scenario_unqueued_flood(
            attacker, victim_client, folder, 4 if args.quick else 16, args.flood_threads, 8.0 if args.quick else 20.0
        ),
    }
    for name, scenario in scenarios.items():
        if args.only is None or name in args.only:
            results[name] = scenario()
            print(name, json.dumps(results[name]), flush=True)
            time.sleep(1.0)
    return results


def main() -> None:
    """Run every scenario (or those named) and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="16 photos in Evaluate, 1 CRF, a short flood, a loopback hub: about a minute",
    )
    parser.add_argument("--eval-photos", type=int, default=None)
    parser.add_argument("--eval-side", type=int, default=4000)
    parser.add_argument("--flood-threads", type=int, default=16)
    parser.add_argument("--only", nargs="*", default=None, help="evaluate crf model_load join_flood unqueued_flood")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--calibrate", action="store_true", help="the Evaluate cost model's constants, then exit")
    args = parser.parse_args()
    if args.calibrate:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(calibrate(Path(tmp), 8 if args.quick else 24), indent=1))
        return
    eval_photos = args.eval_photos or (16 if args.quick else 64)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        hub = SlowHub() if args.quick else None  # --quick: the model load trickles from a loopback hub
        server, url = start_server(folder, hub.url if hub else None)
        rss = Rss(server.pid)
        try:
            results = run_scenarios(args, url, folder, rss, eval_photos)
        finally:
            rss.running = False
            if hub is not None:
                hub.close()
            stop_server(server, 30.0)
    if hub is not None:
        results["hub_requests"] = hub.requests[:3]
        print("loopback hub, first requests:", hub.requests[:3])
    results["peak_rss_mb"] = round(rss.peak)
    print("victim idle:", results["victim_idle"], " server RSS idle / peak MB:", results["idle_rss_mb"], rss.peak)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
