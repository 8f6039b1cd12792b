"""Which models the app offers: the registry, plus TAP / GAP fine-tunes found in ``assets/checkpoints``.

A checkpoint ``NAME.safetensors`` is listed when its JSON card ``NAME.json`` sits beside it. Cards are
read as JSON here (cheap, no model is built); :func:`app.state.get_model` loads the checkpoint itself.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import cam_core
from app.state import CHECKPOINT_DIR


@lru_cache(maxsize=1)
def checkpoint_cards() -> dict[str, dict[str, Any]]:
    """``{checkpoint name: card}`` for every ``assets/checkpoints/*.safetensors`` with a readable JSON card."""
    cards: dict[str, dict[str, Any]] = {}
    for weights in sorted(CHECKPOINT_DIR.glob("*.safetensors")):
        card_path = weights.with_suffix(".json")
        try:
            cards[weights.stem] = json.loads(card_path.read_text())
        except (OSError, ValueError):
            continue
    return cards


def _metric(card: dict[str, Any], key: str) -> float | None:
    """GT-known Loc (plain CAM config, MaS) or top-1 from a card's measured evaluation, or ``None``."""
    evaluation = card.get("evaluation") or {}
    if key == "top1":
        return evaluation.get("top1")
    configs = evaluation.get("configs") or {}
    plain = configs.get("tap") or configs.get("cam") or {}
    return plain.get("gt_known_loc")


def _card_label(name: str, card: dict[str, Any]) -> str:
    """Menu label with the measured numbers; TAP models are compared with their GAP control."""
    kind = "TAP" if card.get("pooling") == "tap" else "GAP control"
    photos = (card.get("data") or {}).get("photos")
    label = f"Experiment: {kind}, head-only fine-tune" + (f" on {photos} photos" if photos else "")
    gt, top1 = _metric(card, "gt_known"), _metric(card, "top1")
    control = next(
        (c for c in checkpoint_cards().values() if c.get("pooling") == "gap" and _base_name(c) == _base_name(card)),
        None,
    )
    if kind == "TAP" and control is not None and None not in (gt, top1, _metric(control, "gt_known")):
        d_gt = gt - _metric(control, "gt_known")  # type: ignore[operator]
        d_top1 = top1 - _metric(control, "top1")  # type: ignore[operator]
        return f"{label}: GT-known {d_gt:+.1f} / top-1 {d_top1:+.1f} vs its GAP control"
    if gt is not None and top1 is not None:
        return f"{label}: GT-known {gt:.1f}, top-1 {top1:.1f}"
    return f"{label} ({name})"


def model_choices() -> list[tuple[str, str]]:
    """Dropdown ``(label, value)`` pairs: offline default first, hub models marked, then experiments."""
    choices = []
    for name, spec in cam_core.MODELS.items():
        suffix = "" if spec.weights == "bundled" else " (downloads weights)"
        choices.append((f"{spec.label}{suffix}", name))
    choices += [(_card_label(name, card), name) for name, card in checkpoint_cards().items()]
    return choices


def _base_name(card: dict[str, Any]) -> str | None:
    base = card.get("base_weights")
    return base.get("name") if isinstance(base, dict) else None


def trained_with(model: Any) -> str:
    """``"TAP"`` for a TAP-trained checkpoint, else ``"GAP"`` (the registry's models and the GAP controls)."""
    card = checkpoint_cards().get(model) if isinstance(model, str) else None
    return "TAP" if card is not None and card.get("pooling") == "tap" else "GAP"


def tap_toggle(model: Any) -> dict[str, Any]:
    """The TAP checkbox's props for ``model``: locked on for a TAP-trained model (both panels use its weights),
    free where a TAP-trained partner is shipped, locked off where none is."""
    if trained_with(model) == "TAP":
        return {"value": True, "interactive": False, "info": "the picked model is TAP-trained: both panels use it"}
    if isinstance(model, str) and tap_partner(model) is not None:
        return {"interactive": True, "info": "green panel: the shipped TAP-trained head"}
    return {"value": False, "interactive": False, "info": "needs a TAP-trained model"}


def tap_partner(model: str) -> str | None:
    """The TAP-trained checkpoint to use for ``model``'s TAP panel, or ``None``.

    For a base model, that is a TAP checkpoint fine-tuned from it; for a GAP-control checkpoint, the TAP
    checkpoint with the same base (so the comparison isolates the pooling); a TAP checkpoint pairs with itself.
    """
    cards = checkpoint_cards()
    if model in cards:
        if cards[model].get("pooling") == "tap":
            return model
        base = _base_name(cards[model])
    else:
        base = model
    for name, card in cards.items():
        if card.get("pooling") == "tap" and _base_name(card) == base:
            return name
    return None
