"""Fine-tuned CAM checkpoints: only the trained tensors, in ``.safetensors``, with a JSON model card.

A checkpoint never holds a whole model. It stores the tensors that fine-tuning changed (fp16) and, in the
safetensors string metadata under the key ``"card"``, a JSON model card::

    {"format": "cam-explainer/1", "architecture": "tf_efficientnet_lite0",
     "base_weights": {"name": ..., "pretrained": true, "hash_of": "file" | "state_dict", "sha256": ...},
     "pooling": "gap" | "tap", "tau": 0.1 | null, "trained": ["conv_head", "bn2", "classifier"],
     "resolution": {"input_size": 448, "output_stride": 16},
     "name": ..., "data": {...}, "recipe": {...}, "evaluation": {...}}

``resolution`` is the analysis resolution the head was trained at (a card without it: 224 px, stride 32;
see :func:`card_resolution`).

:func:`load_checkpoint` rebuilds the base model with :func:`cam_core.models.load_model`, checks the
base weights' SHA-256 (of the weights file for the bundled default, of the freshly built state dict
otherwise: random init is seeded with ``base_weights["init_seed"]``), swaps in TAP when the card says
so, loads the tensors (cast to fp32) and re-checks CAM exactness through :func:`~cam_core.models.wrap_model`.
By default it rebuilds the model at the card's ``resolution`` (output stride and input size).
No pickle is ever read or written.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from cam_core.errors import CamError, CheckpointError
from cam_core.models import (
    LoadedModel,
    classifier_weights,
    load_model,
    resolve_spec,
    set_pooling,
    wrap_model,
)
from cam_core.resolution import INPUT_SIZE_RANGE, OUTPUT_STRIDES, with_input_size

FORMAT = "cam-explainer/1"
CARD_KEY = "card"
_CARD_FIELDS = ("format", "architecture", "base_weights", "pooling", "tau", "trained")
DEFAULT_RESOLUTION: dict[str, int] = {"input_size": 224, "output_stride": 32}
"""The resolution of a card without a ``resolution`` key (every checkpoint written before that key existed)."""


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_state_dict(model: nn.Module) -> str:
    """Hex SHA-256 over a model's state dict: sorted names, dtypes, shapes and raw tensor bytes."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def build_base(
    name: str, pretrained: bool = True, init_seed: int = 0, output_stride: int = 32
) -> tuple[LoadedModel, dict[str, Any]]:
    """Build a base model and describe its weights for a model card.

    Args:
        name: registry or timm name (see :func:`cam_core.models.load_model`).
        pretrained: ImageNet weights (``True``) or a random init seeded with ``init_seed`` (tests).
        init_seed: torch seed of the random init; the global RNG state is restored afterwards.
        output_stride: 32, or 16 / 8 (dilated last stages: same weights, same SHA-256).

    Returns:
        ``(loaded, base_weights)``: the model, and the card's ``base_weights`` dict with ``name``,
        ``pretrained``, ``init_seed`` (random init only), ``hash_of`` and ``sha256``.

    Raises:
        UnknownModelError, WeightsUnavailableError, NotCamExactError: see :func:`load_model`.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        loaded = load_model(name, pretrained=pretrained, output_stride=output_stride)
    info: dict[str, Any] = {"name": name, "pretrained": pretrained}
    if not pretrained:
        info["init_seed"] = init_seed
    bundled = resolve_spec(name).bundled
    if pretrained and bundled is not None:
        path = bundled.path()
        info.update(file=path.name, hash_of="file", sha256=sha256_file(path))
    else:
        info.update(hash_of="state_dict", sha256=sha256_state_dict(loaded.model))
    return loaded, info


def _in_prefixes(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def trained_tensors(model: nn.Module, trained_prefixes: Sequence[str]) -> dict[str, torch.Tensor]:
    """The parameters under ``trained_prefixes`` (module-boundary prefix match), as contiguous fp16 CPU tensors.

    Raises:
        CheckpointError: a prefix matches no parameter.
    """
    params = dict(model.named_parameters())
    for prefix in trained_prefixes:
        if prefix != "" and not any(_in_prefixes(n, [prefix]) for n in params):
            raise CheckpointError(f"`trained_prefixes`: {prefix!r} matches no parameter of the model")
    every = "" in trained_prefixes
    return {
        n: p.detach().to("cpu", torch.float16).contiguous()
        for n, p in params.items()
        if every or _in_prefixes(n, trained_prefixes)
    }


def save_checkpoint(
    path: str | Path, model: nn.Module, trained_prefixes: Sequence[str], card: Mapping[str, Any]
) -> dict[str, Any]:
    """Write the trained tensors of ``model`` (fp16) and ``card`` to ``path`` (``.safetensors``).

    Args:
        path: output file, must end in ``.safetensors``; parent folders are created.
        model: the fine-tuned timm model (any device, fp32).
        trained_prefixes: module prefixes whose parameters were trained (``""`` = every parameter).
        card: model card; must hold ``architecture``, ``base_weights`` (``name``, ``sha256``), ``pooling``
            and ``tau``. ``format`` and ``trained`` are filled in here.

    Returns:
        The card as written.

    Raises:
        CheckpointError: wrong suffix, missing card fields, or a prefix that matches nothing.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"`path` {path.name!r} must end in .safetensors")
    full = {**card, "format": FORMAT, "trained": list(trained_prefixes)}
    _check_card(full, path)
    tensors = trained_tensors(model, trained_prefixes)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={CARD_KEY: json.dumps(full, sort_keys=True)})
    return full


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


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path.name}: corrupt safetensors tensor data ({_no_path(exc, path)})") from exc


def _apply_tensors(model: nn.Module, tensors: Mapping[str, torch.Tensor], trained: Sequence[str], path: Path) -> None:
    state = model.state_dict()
    unknown = [k for k in tensors if k not in state]
    if unknown:
        raise CheckpointError(f"{path.name}: unknown tensor keys for this architecture: {', '.join(unknown[:5])}")
    outside = [k for k in tensors if "" not in trained and not _in_prefixes(k, trained)]
    if outside:
        raise CheckpointError(f"{path.name}: tensors outside the card's trained prefixes: {', '.join(outside[:5])}")
    for key, tensor in tensors.items():
        if tuple(tensor.shape) != tuple(state[key].shape):
            raise CheckpointError(
                f"{path.name}: shape mismatch for {key!r}: file {tuple(tensor.shape)}, model {tuple(state[key].shape)}"
            )
    with torch.no_grad():
        for key, tensor in tensors.items():
            state[key].copy_(tensor.to(state[key].dtype))


def describe(card: Mapping[str, Any]) -> str:
    """Default display name of a checkpoint, e.g. ``"tap-tf_efficientnet_lite0 (head fine-tune)"``."""
    unfreeze = card.get("recipe", {}).get("unfreeze", "+".join(card["trained"]))
    return f"{card['pooling']}-{card['architecture']} ({unfreeze} fine-tune)"


def load_checkpoint(path: str | Path, output_stride: int | None = None, input_size: int | None = None) -> LoadedModel:
    """Rebuild a fine-tuned model from a checkpoint written by :func:`save_checkpoint`.

    Args:
        path: the ``.safetensors`` checkpoint.
        output_stride: ``None`` (default) builds the model at the card's ``resolution.output_stride`` (32
            for a card without ``resolution``); 32, 16 or 8 overrides it (same weights; the head is then
            used outside the setting it was trained in).
        input_size: ``None`` (default): the card's ``resolution.input_size`` when ``output_stride`` is also
            ``None`` and the card has a ``resolution``, the model's own (224 for the default) otherwise; N
            overrides it (see :func:`cam_core.resolution.with_input_size`). So an explicit stride alone never
            mixes with the card's input size (``load_checkpoint(p, output_stride=32)`` is the 224 / 32 model).

    Returns:
        A CAM-exact :class:`LoadedModel` (eval mode, fp32) named after the card's ``name`` (or
        :func:`describe`), whose ``weights`` string names the base weights, the fine-tune and the file.

    Raises:
        CheckpointError: not ``.safetensors``, missing or corrupt file, base weights whose SHA-256
            differs from the card's, unknown tensor keys, or a shape mismatch. The message names ``path``.
        WeightsUnavailableError, NotCamExactError: the base cannot be built or is not CAM-exact.
        ParameterError: ``output_stride`` or ``input_size`` out of range.
    """
    path = _open_checked(path)
    card = read_card(path)
    tensors = _load_tensors(path)
    base = card["base_weights"]
    if output_stride is None:  # the card's resolution as a whole (input size too, when the card names one)
        output_stride = card_resolution(card)["output_stride"]
        if input_size is None and "resolution" in card:
            input_size = card_resolution(card)["input_size"]
    try:
        loaded, info = build_base(base["name"], base.get("pretrained", True), base.get("init_seed", 0), output_stride)
    except CamError as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{path.name}: cannot build the base model {base['name']!r}: {exc}") from exc
    if info["sha256"] != base["sha256"]:
        raise CheckpointError(
            f"{path.name}: base weights mismatch for {base['name']!r}: this machine's {info['hash_of']} has SHA-256 "
            f"{info['sha256'][:16]}..., the card expects {str(base['sha256'])[:16]}..."
        )
    model = loaded.model
    classes = card.get("num_classes")
    if classes and classifier_weights(model.get_classifier())[0].shape[0] != classes:  # type: ignore[operator]
        model.reset_classifier(int(classes))  # type: ignore[operator]  # e.g. a 200-class CUB head
    set_pooling(model, card["pooling"], card.get("tau"))
    _apply_tensors(model, tensors, card["trained"], path)
    name = str(card.get("name") or describe(card))
    trained = "+".join(card["trained"]) or "all layers"
    pool = f"TAP tau={card['tau']}" if card["pooling"] == "tap" else "GAP"
    weights = f"{loaded.weights}, then {trained} fine-tuned with {pool} ({path.name})"
    rebuilt = wrap_model(model, name, weights, output_stride=loaded.output_stride)
    return rebuilt if input_size is None else with_input_size(rebuilt, input_size)


def attach_evaluation(path: str | Path, evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """Rewrite a checkpoint's card with an ``evaluation`` entry; the tensors are rewritten bit-exactly.

    The JSON card next to the checkpoint (same stem, ``.json``) is rewritten too.

    Returns:
        The new card.
    """
    path = _open_checked(path)
    card = {**read_card(path), "evaluation": dict(evaluation)}
    tensors = _load_tensors(path)
    save_file(tensors, str(path), metadata={CARD_KEY: json.dumps(card, sort_keys=True)})
    write_card_json(path, card)
    return card


def write_card_json(path: str | Path, card: Mapping[str, Any]) -> Path:
    """Write ``card`` as indented JSON next to checkpoint ``path`` (``X.safetensors`` -> ``X.json``)."""
    target = Path(path).with_suffix(".json")
    target.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return target


def summarize_evaluation(results: Mapping[str, Any], dataset: str = "") -> dict[str, Any]:
    """Compact a ``cam_core.evaluate`` results dict for a card: every field but the per-threshold ``curves``."""
    per_config = results.get("configs", {})
    configs = {name: {k: v for k, v in metrics.items() if k != "curves"} for name, metrics in per_config.items()}
    head = {k: v for k, v in results.items() if k not in ("configs", "curves")}
    return {**({"dataset": dataset} if dataset else {}), **head, "configs": configs}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cam_core.checkpoint PATH [--evaluation results.json]``: print (and update) a card."""
    parser = argparse.ArgumentParser(prog="python -m cam_core.checkpoint", description=main.__doc__)
    parser.add_argument("path", type=Path, help="checkpoint .safetensors")
    parser.add_argument("--evaluation", type=Path, help="results JSON of cam_core.evaluate to store in the card")
    parser.add_argument("--dataset", default="", help="name of the evaluation set, stored with --evaluation")
    args = parser.parse_args(argv)
    try:
        if args.evaluation is not None:
            results = json.loads(args.evaluation.read_text(encoding="utf-8"))
            card = attach_evaluation(args.path, summarize_evaluation(results, args.dataset))
        else:
            card = read_card(args.path)
    except (CheckpointError, OSError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(card, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
