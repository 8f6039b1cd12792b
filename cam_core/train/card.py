"""The model card of a checkpoint: its format, its validation (field by field) and reading it from a file.

The card is JSON in the safetensors string metadata under :data:`CARD_KEY` (fields: see
:mod:`cam_core.train.checkpoint`, which re-exports every public name here). Errors name the field and the file by
its base name only, never a server path. No pickle is ever read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open

from cam_core.errors import CheckpointError
from cam_core.resolution import INPUT_SIZE_RANGE, OUTPUT_STRIDES

FORMAT = "cam-explainer/1"
CARD_KEY = "card"
_CARD_FIELDS = ("format", "architecture", "base_weights", "pooling", "tau", "trained")
DEFAULT_RESOLUTION: dict[str, int] = {"input_size": 224, "output_stride": 32}
"""The resolution of a card without a ``resolution`` key (every checkpoint written before that key existed)."""

MAX_CLASSES = 100_000
"""Largest ``num_classes`` a card may ask for (a 100k x 2048 fp32 head is 0.8 GB)."""


def _fail(path: Path, field: str, rule: str, value: object) -> CheckpointError:
    """A card error naming the field; ``path`` appears by base name only (never a server path)."""
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return CheckpointError(f"{path.name}: `{field}` must be {rule}, got {shown}")


def _is_int(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _check_base(base: object, path: Path) -> None:
    """Validate the card's ``base_weights`` entry (types and ranges)."""
    if not isinstance(base, Mapping):
        raise _fail(path, "base_weights", "an object with 'name' and 'sha256'", base)
    if not isinstance(base.get("name"), str) or not base["name"]:
        raise _fail(path, "base_weights.name", "a non-empty string", base.get("name"))
    sha = base.get("sha256")
    if not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
        raise _fail(path, "base_weights.sha256", "64 lower-case hex digits", sha)
    if "pretrained" in base and not isinstance(base["pretrained"], bool):
        raise _fail(path, "base_weights.pretrained", "true or false (a JSON boolean)", base["pretrained"])
    if "init_seed" in base and not _is_int(base["init_seed"], 0, 2**63 - 1):
        raise _fail(path, "base_weights.init_seed", "an integer >= 0", base["init_seed"])
    if base.get("hash_of", "file") not in ("file", "state_dict"):
        raise _fail(path, "base_weights.hash_of", "'file' or 'state_dict'", base["hash_of"])


def _check_resolution(resolution: object, path: Path) -> None:
    """Validate the card's ``resolution`` entry: ``{"input_size": N, "output_stride": S}``, nothing else."""
    low, high = INPUT_SIZE_RANGE
    if not isinstance(resolution, Mapping) or set(resolution) != {"input_size", "output_stride"}:
        raise _fail(path, "resolution", "an object with exactly 'input_size' and 'output_stride'", resolution)
    if not _is_int(resolution["input_size"], low, high):
        raise _fail(path, "resolution.input_size", f"an integer in [{low}, {high}]", resolution["input_size"])
    stride = resolution["output_stride"]
    if not _is_int(stride, 1, 64) or stride not in OUTPUT_STRIDES:
        raise _fail(path, "resolution.output_stride", f"one of {', '.join(map(str, OUTPUT_STRIDES))}", stride)


def card_resolution(card: Mapping[str, Any]) -> dict[str, int]:
    """``{"input_size": N, "output_stride": S}`` a checkpoint was trained at; :data:`DEFAULT_RESOLUTION`
    (224 px, stride 32) for a card without the key. Validate the card first (:func:`read_card` does)."""
    return dict(card.get("resolution") or DEFAULT_RESOLUTION)


def _check_card(card: Mapping[str, Any], path: Path) -> None:
    """Validate a model card's fields, types and ranges; raise :class:`CheckpointError` naming the field."""
    missing = [f for f in _CARD_FIELDS if f not in card]
    if missing:
        raise CheckpointError(f"{path.name}: model card lacks {', '.join(f'`{m}`' for m in missing)}")
    if card["format"] != FORMAT:
        raise _fail(path, "format", repr(FORMAT), card["format"])
    if not isinstance(card["architecture"], str) or not card["architecture"]:
        raise _fail(path, "architecture", "a non-empty timm model name", card["architecture"])
    _check_base(card["base_weights"], path)
    if card["pooling"] not in ("gap", "tap"):
        raise _fail(path, "pooling", "'gap' or 'tap'", card["pooling"])
    tau = card["tau"]
    tau_ok = isinstance(tau, (int, float)) and not isinstance(tau, bool) and 0.0 <= tau < 1.0
    if (card["pooling"] == "tap" and not tau_ok) or (tau is not None and not tau_ok):
        raise _fail(path, "tau", "a number in [0, 1) (required for 'tap', null for 'gap')", tau)
    trained = card["trained"]
    if not isinstance(trained, list) or not all(isinstance(x, str) for x in trained):
        raise _fail(path, "trained", "a list of module-name strings", trained)
    if "num_classes" in card and card["num_classes"] is not None and not _is_int(card["num_classes"], 1, MAX_CLASSES):
        raise _fail(path, "num_classes", f"an integer in [1, {MAX_CLASSES}]", card["num_classes"])
    if "name" in card and card["name"] is not None and not isinstance(card["name"], str):
        raise _fail(path, "name", "a string", card["name"])
    if "resolution" in card:
        _check_resolution(card["resolution"], path)


def _no_path(exc: Exception, path: Path) -> str:
    """``exc``'s message with the file's directory removed (messages name files by base name only)."""
    return str(exc).replace(str(path.parent) + "/", "").replace(str(path.parent), "")


def _open_checked(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(
            f"{path.name}: not a .safetensors file; only safetensors checkpoints are read (never pickle: .pth/.pt)"
        )
    if not path.is_file():
        raise CheckpointError(f"{path.name}: checkpoint file not found")
    return path


def read_card(path: str | Path) -> dict[str, Any]:
    """Read and validate a checkpoint's model card without building the model.

    Raises:
        CheckpointError: not ``.safetensors``, missing, corrupt, without a card, or an invalid card.
    """
    path = _open_checked(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path.name}: corrupt or unreadable safetensors file ({_no_path(exc, path)})") from exc
    if CARD_KEY not in metadata:
        raise CheckpointError(f"{path.name}: no model card in the safetensors metadata (key {CARD_KEY!r})")
    try:
        card = json.loads(metadata[CARD_KEY])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path.name}: the model card is not valid JSON ({exc})") from exc
    if not isinstance(card, dict):
        raise CheckpointError(f"{path.name}: the model card must be a JSON object")
    _check_card(card, path)
    return card
