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
No pickle is ever read or written. The card's format, validation and reading (:func:`read_card`) are in
:mod:`cam_core.train.card`, re-exported here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from cam_core.errors import CamError, CheckpointError
from cam_core.models import (
    LoadedModel,
    classifier_weights,
    load_model,
    resolve_spec,
    set_pooling,
    with_input_size,
    wrap_model,
)
from cam_core.train.card import (  # DEFAULT_RESOLUTION, MAX_CLASSES: re-exported for callers
    CARD_KEY,
    DEFAULT_RESOLUTION,  # noqa: F401
    FORMAT,
    MAX_CLASSES,  # noqa: F401
    _check_card,
    _no_path,
    _open_checked,
    card_resolution,
    read_card,
)


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
    """Compact a ``python -m cam_core.evaluate`` results dict for a card: all but the per-threshold ``curves``."""
    per_config = results.get("configs", {})
    configs = {name: {k: v for k, v in metrics.items() if k != "curves"} for name, metrics in per_config.items()}
    head = {k: v for k, v in results.items() if k not in ("configs", "curves")}
    return {**({"dataset": dataset} if dataset else {}), **head, "configs": configs}
