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


def _card_label(name: str, card: dict[str, Any]) -> str:
    label = card.get("label") or name
    return f"Experiment: {label}"


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
