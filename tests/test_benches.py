"""Every bench in ``bench/`` runs against the code of this tree (issue #26, item 6): each entry point has a ``--quick``
mode, and each quick mode, run as ``python -m bench.NAME --quick``, exits 0 having printed the lines that only a
finished run prints (its figures, measured in that run: the patterns check their form, never their values).

``bench_hostile``'s ``--quick`` takes about 10 minutes: ``tests/test_bench_hostile.py`` runs its ``--smoke`` mode.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cam_core.crf import crf_available
from tests.helpers import ROOT

CHROMIUM = Path("/usr/bin/chromium")  # the path bench/bench_browser.py launches
QUICK: dict[str, list[str]] = {
    # name: patterns (multi-line regexes) that each must be found in the output of ``--quick``
    "bench_app": [r"^tf_efficientnet_lite0\s+analysis\s+\d+\.\d", r"^resnet50\s+slider / no-op p50 ratio: \d+\.\d\d"],
    "bench_browser": [r"^  page clock:\s+input -> moved box drawn:\s+p50 \d+\.\d ms"],
    "bench_calibration": [
        r"^\| 224/32 \| \d+\.\d{3} \| \d+ \| \d+\.\d{3} -> \d+\.\d{3} \| [+-]\d+\.\d{3} \[",
        r"^label map shown at 448/16, calibrated: \d+/\d+ = \d+\.\d %$",
    ],
    "bench_crf": [r"^1024x768, no cap / cap \d+: \d+\.\dx"],
    "bench_decode": [
        r"^gray16\.png\s+\d+ kB\s+\d+\s+[\d.]+\s+[\d.]+\s+\[\d+, \d+, 3\]$",
        r"^large\.jpg\s+\d+ kB\s+\d+\s+[\d.]+\s+[\d.]+\s+\[\d+, \d+, 3\]$",
    ],
    "bench_evaluate": [r"^images: 3, ", r"^\[ cpu\] ratio full / bare : \d+\.\d\d"],
    "bench_lanes": [
        r"^unqueued_flood \{.*\"p95_ratio\"",
        r"^loopback hub, first requests: \['(HEAD|GET) /timm/",
        r"^victim idle: \{'wait_s': [\d.]+, 'ok': True",
    ],
    "bench_load": [r"^errors: 0  mixed-up responses: 0$", r"^slider load / idle\s+\d+\.\dx"],
    "bench_methods": [
        r"^\| gradcam \| \d+\.\d \| \d+\.\d \| \d+\.\d \| \d+\.\d \| \d+\.\d\d \| \d+\.\d\d \(\d\.\d{3}x\) \|$",
        r"^\| layercam - nwc \| [+-]\d+\.\d \[",
    ],
    "bench_resolution": [r"^512/8\s+\d+ \(x\s*\d+\.\d\)"],
    "bench_segment": [
        r"with_theta .*: median\s+\d+\.\d ms",
        r"^mIoU on 3 box-level single photos",
        r"^\s+nwc\+pas: mIoU\s+\d+\.\d",
    ],
    "compare_checkpoints": [r"^\| TAP - GAP \(tap@224/32\) \| [+-]\d+\.\d \["],
    "grid_resolution": [r"^\| 448 px, stride 16 -> 28x28 map \| \d+\.\d \|"],
}
"""Each bench's quick run: about 3 minutes in all on 2 cores (bench_lanes, the longest, about a minute)."""
MORE = {"bench_segment": ["--miou"]}
"""Arguments after ``--quick`` (``--miou`` on the example photos)."""
ELSEWHERE = {"bench_hostile": "tests/test_bench_hostile.py runs its --smoke mode (its --quick takes ~10 minutes)"}
"""Benches whose short run another test makes."""


def entry_points() -> list[str]:
    """The modules of ``bench/`` that run as ``python -m bench.NAME``."""
    return sorted(p.stem for p in (ROOT / "bench").glob("*.py") if 'if __name__ == "__main__":' in p.read_text())


def test_every_bench_is_run_by_a_test() -> None:
    assert not set(QUICK) & set(ELSEWHERE)
    assert entry_points() == sorted([*QUICK, *ELSEWHERE])  # a new bench needs a line above


@pytest.mark.parametrize("name", entry_points())
def test_every_bench_has_a_quick_mode(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = importlib.import_module(f"bench.{name}")
    monkeypatch.setattr(sys, "argv", [f"bench.{name}", "--help"])
    with pytest.raises(SystemExit) as ended:
        module.main()
    assert ended.value.code == 0
    assert re.search(r"^\s+--quick\b", capsys.readouterr().out, re.MULTILINE), f"bench.{name} has no --quick"


def _needs(name: str) -> list[pytest.MarkDecorator]:
    if name == "bench_browser":
        reason = f"{CHROMIUM} is not installed"
        return [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason=reason)]
    if name == "bench_crf":
        return [pytest.mark.skipif(not crf_available(), reason="pydensecrf2 is not installed")]
    return []


@pytest.mark.slow
@pytest.mark.parametrize("name", [pytest.param(name, marks=_needs(name)) for name in QUICK])
def test_quick_mode_runs_to_the_end(name: str) -> None:
    arguments, patterns = MORE.get(name, []), QUICK[name]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    done = subprocess.run([sys.executable, "-m", f"bench.{name}", "--quick", *arguments],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    said = f"exit {done.returncode}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    assert done.returncode == 0, said
    for pattern in patterns:
        assert re.search(pattern, done.stdout, re.MULTILINE), f"{pattern!r} not printed\n{said}"
