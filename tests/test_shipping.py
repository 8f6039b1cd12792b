"""Shipping: the Space's front matter, requirements vs pyproject, and the library wheel (issue #24, items 1-3)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

import cam_core
from app import model_cache

ROOT = Path(__file__).resolve().parent.parent


def _front_matter() -> dict:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


def _requirements(name: str) -> dict[str, Requirement]:
    lines = (ROOT / name).read_text(encoding="utf-8").splitlines()
    reqs = [Requirement(line) for line in lines if line.strip() and not line.startswith(("#", "-r"))]
    return {r.name: r for r in reqs}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _hub_repos() -> list[str]:
    """The Hugging Face repos of the menu's downloadable models (what timm loads them from)."""
    import timm

    hub = [spec.arch for spec in cam_core.MODELS.values() if spec.weights == "hub"]
    return [timm.models.get_pretrained_cfg(arch).hf_hub_id for arch in hub]


def test_front_matter_preloads_exactly_the_menus_hub_models() -> None:
    meta = _front_matter()
    repos = _hub_repos()
    assert len(repos) == 7
    preload = [line.split() for line in meta["preload_from_hub"]]
    assert [p[0] for p in preload] == repos
    assert all(p[1:] == ["model.safetensors"] for p in preload)  # timm reads this file first
    assert meta["models"] == repos


def test_front_matter_fields_match_the_spaces_reference() -> None:
    meta = _front_matter()
    import gradio

    assert meta["sdk"] == "gradio" and meta["sdk_version"] == gradio.__version__
    assert meta["suggested_hardware"] == "cpu-basic"  # 2 vCPU / 16 GB: base RSS + 137 MB per request fits
    assert meta["app_file"] == "app.py" and (ROOT / meta["app_file"]).is_file()
    assert all(isinstance(tag, str) and tag == tag.lower() for tag in meta["tags"])
    assert len(meta["short_description"]) <= 60


def test_hub_weights_cached_reads_the_preloaded_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A preloaded ``model.safetensors`` in the HF cache means "from this server's cache", not "download"."""
    import huggingface_hub

    repo = _hub_repos()[0]
    seen: list[tuple[str, str]] = []

    def fake_cache(repo_id: str, filename: str) -> str | None:
        seen.append((repo_id, filename))
        return str(tmp_path / filename) if filename == "model.safetensors" else None

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", fake_cache)
    assert model_cache.hub_weights_cached("resnet50")
    assert (repo, "model.safetensors") in seen
    assert not model_cache.downloads("resnet50")


def test_requirements_txt_names_no_sdist_only_package() -> None:
    """requirements.txt (what a Space installs) holds no sdist-only package; the CRF lives in its own file. (The install
    itself, in a fresh venv with no compiler on PATH, was run by hand: docs/shipping.md; about 4 minutes and 5.8 GB.)"""
    runtime = _requirements("requirements.txt")
    assert "pydensecrf2" not in runtime
    crf_file = (ROOT / "requirements-crf.txt").read_text(encoding="utf-8")
    assert "-r requirements.txt" in crf_file and "pydensecrf2==" in crf_file
    assert "-r requirements-crf.txt" in (ROOT / "requirements-dev.txt").read_text(encoding="utf-8")


def test_requirements_and_pyproject_agree() -> None:
    """Every pin in requirements*.txt satisfies pyproject's range for the same package, and vice versa in names."""
    project = _pyproject()["project"]
    extras = project["optional-dependencies"]
    declared = [Requirement(r) for r in project["dependencies"] + extras["demo"] + extras["crf"]]
    ranges = {r.name: r for r in declared}
    pins = _requirements("requirements.txt") | _requirements("requirements-crf.txt")
    assert set(pins) == set(ranges)
    for name, pin in pins.items():
        versions = [spec.version for spec in pin.specifier if spec.operator == "=="]
        for version in versions:
            assert ranges[name].specifier.contains(version), f"{name}=={version} outside pyproject's {ranges[name]}"
    test_pins = _requirements("requirements-dev.txt")
    test_ranges = {Requirement(r).name: Requirement(r) for r in extras["test"] + extras["quality"]}
    assert set(test_pins) == set(test_ranges)
    for name, pin in test_pins.items():
        version = next(iter(pin.specifier)).version
        assert test_ranges[name].specifier.contains(version), name


CLIS = {
    "cam-evaluate": "evaluate",
    "cam-segment": "segment",
    "cam-train": "train",
    "cam-checkpoint": "checkpoint",
    "cam-calibrate": "calibration",
}


@pytest.mark.slow
def test_wheel_ships_cam_core_alone_with_working_commands(tmp_path: Path) -> None:
    """``pip wheel .`` holds ``cam_core`` (no ``app``) and each console command answers ``--help`` from the wheel
    alone (unzipped on a path of its own, run from another folder, no checkout on ``sys.path``)."""
    src = tmp_path / "src"  # a clean copy: setuptools' in-tree build/ could hold stale files from older builds
    shutil.copytree(ROOT / "cam_core", src / "cam_core", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    out = tmp_path / "dist"
    cmd = [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-w", str(out), "-q"]
    subprocess.run(cmd, check=True, timeout=240, cwd=tmp_path)
    (wheel,) = out.glob("cam_explainer-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        tops = {name.split("/")[0] for name in zf.namelist()}
        zf.extractall(site)
    assert "cam_core" in tops and "app" not in tops and "tests" not in tops and "bench" not in tops
    (dist_info,) = site.glob("cam_explainer-*.dist-info")
    entry = (dist_info / "entry_points.txt").read_text(encoding="utf-8")
    scripts = dict(line.replace(" ", "").split("=", 1) for line in entry.splitlines() if "=" in line)
    assert set(CLIS) <= set(scripts)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for command in CLIS:
        module, func = scripts[command].split(":")
        code = (
            f"import sys, {module}; assert {module}.__file__.startswith({str(site)!r}), {module}.__file__; "
            f"sys.argv[0] = {command!r}; from {module} import {func}; sys.exit({func}(['--help']))"
        )
        env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "GRADIO_ANALYTICS_ENABLED": "False"}
        run = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr[-2000:]
        assert "usage:" in run.stdout
    code = "from cam_core.calibration import temperature; print(temperature('tf_efficientnet_lite0', 448, 16))"
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert run.returncode == 0 and 0 < float(run.stdout) < 1, run.stderr[-2000:]  # temperatures.json is package data
