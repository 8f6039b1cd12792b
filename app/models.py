"""Which models the app offers: the registry, plus TAP / GAP fine-tunes found in ``assets/checkpoints``.

A checkpoint ``NAME.safetensors`` is listed when its JSON card ``NAME.json`` sits beside it. Cards are
read as JSON here (cheap, no model is built); :func:`app.state.get_model` loads the checkpoint itself.

**Trained resolution.** A card's top-level ``"resolution": {"input_size": N, "output_stride": S}`` says at
which analysis resolution its head was trained (no key: 224 px, stride 32, the protocol's). Checkpoints with
the same base model and pooling form one *family* (e.g. the GAP control trained at 224 / 32 and at 448 / 16):
the menu lists each family once, under its alphabetically first name, and :func:`member` picks the member
trained at the chosen resolution, or the nearest by map size when none is. Any member's name stands for its
family, so an ``/explain`` call naming a checkpoint gets the same pick.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import cam_core

CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "assets" / "checkpoints"
"""Where the shipped checkpoints and their cards are (read again on every call: tests point it elsewhere)."""


@dataclass(frozen=True, order=True)
class Resolution:
    """An analysis resolution: the square a photo is stretched to, and the network's output stride.

    Attributes:
        input_size: N, the photo is stretched to N x N pixels.
        output_stride: input pixels per CAM cell (32 as trained, 16 dilated).
    """

    input_size: int
    output_stride: int

    @property
    def map_side(self) -> int:
        """Cells per side of the CAM, ``ceil(N / S)`` (timm's EfficientNets and ResNets)."""
        return -(-self.input_size // self.output_stride)

    @property
    def label(self) -> str:
        """``"448 px, stride 16 -> 28x28 map"`` (:func:`cam_core.resolution_label`)."""
        return cam_core.resolution_label(self.input_size, self.output_stride)

    @property
    def value(self) -> str:
        """``"448/16"``: the Resolution menu's value."""
        return f"{self.input_size}/{self.output_stride}"

    def as_dict(self) -> dict[str, int]:
        """``{"input_size": N, "output_stride": S}``: the cards' and the JSON's form."""
        return {"input_size": self.input_size, "output_stride": self.output_stride}


PROTOCOL = Resolution(224, 32)
"""The resolution of a card without a ``"resolution"`` key: every checkpoint trained before issue #13."""


def checkpoint_cards() -> dict[str, dict[str, Any]]:
    """``{checkpoint name: card}`` for every ``CHECKPOINT_DIR/*.safetensors`` with a readable JSON card (and, if
    it has one, a ``"resolution"`` of two positive ints)."""
    return _cards_in(CHECKPOINT_DIR)


@lru_cache(maxsize=4)
def _cards_in(folder: Path) -> dict[str, dict[str, Any]]:
    cards: dict[str, dict[str, Any]] = {}
    for weights in sorted(folder.glob("*.safetensors")):
        try:
            card = json.loads(weights.with_suffix(".json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(card, dict) and _card_resolution(card) is not None:  # a malformed resolution: not listed
            cards[weights.stem] = card
    return cards


def _card_resolution(card: dict[str, Any]) -> Resolution | None:
    raw = card.get("resolution", PROTOCOL.as_dict())
    size, stride = (raw.get("input_size"), raw.get("output_stride")) if isinstance(raw, dict) else (None, None)
    valid = all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (size, stride))
    return Resolution(size, stride) if valid else None  # type: ignore[arg-type]


def checkpoint_names() -> list[str]:
    """Shipped checkpoints: ``CHECKPOINT_DIR/NAME.safetensors`` with a ``NAME.json`` card beside it."""
    return list(checkpoint_cards())


def trained_at(name: Any) -> Resolution | None:
    """The resolution checkpoint ``name``'s head was trained at (:data:`PROTOCOL` without the key); ``None``
    for anything that is not a shipped checkpoint (the registry's models: trained by their authors, at 224)."""
    card = checkpoint_cards().get(name) if isinstance(name, str) else None
    return None if card is None else _card_resolution(card)


def _base_name(card: dict[str, Any]) -> str | None:
    base = card.get("base_weights")
    return base.get("name") if isinstance(base, dict) else None


def family(name: str) -> list[str]:
    """The checkpoints with ``name``'s base model and pooling (``name`` included), alphabetically; ``[]`` for a
    name that is no shipped checkpoint (a card whose ``"resolution"`` cannot be read is not listed at all)."""
    cards = checkpoint_cards()
    if name not in cards:
        return []
    key = (_base_name(cards[name]), cards[name].get("pooling"))
    return [n for n, card in cards.items() if (_base_name(card), card.get("pooling")) == key]


def member(model: Any, resolution: Resolution) -> Any:
    """The checkpoint that stands for ``model`` at ``resolution``: the member of its family trained there, else
    the one whose map size is nearest (ties: the larger input). ``model`` itself when it is no checkpoint."""
    members = family(model) if isinstance(model, str) else []
    if not members:
        return model
    distance = lambda n: (abs(trained_at(n).map_side - resolution.map_side), -trained_at(n).input_size)  # type: ignore[union-attr]  # noqa: E731
    exact = [n for n in members if trained_at(n) == resolution]
    return exact[0] if exact else min(members, key=distance)


def pair_note(model: Any, resolution: Resolution) -> str:
    """Which member of ``model``'s family is used at ``resolution``, in words; ``""`` for a registry model.

    ``"trained at 448 px, stride 16"`` when it matches, ``"trained at 224 px, stride 32: the nearest trained
    to 448 px, stride 16"`` otherwise.
    """
    chosen = trained_at(member(model, resolution))
    if chosen is None:
        return ""
    words = f"trained at {chosen.input_size} px, stride {chosen.output_stride}"
    if chosen == resolution:
        return words
    return f"{words}: the nearest trained to {resolution.input_size} px, stride {resolution.output_stride}"


def _metric(card: dict[str, Any], key: str, config: str = "cam") -> float | None:
    """From a card's measured evaluation: ``"top1"``, or ``"v2"`` (MaxBoxAccV2, the threshold-free metric) of
    ``config`` (``"cam"``: plain CAM, MaS; ``"nwc+pas"``), read under its TAP name for a TAP card; or ``None``."""
    evaluation = card.get("evaluation") or {}
    if key == "top1":
        return evaluation.get("top1")
    configs = evaluation.get("configs") or {}
    tap_name = "tap" if config == "cam" else f"tap+{config}"
    return (configs.get(tap_name) or configs.get(config) or {}).get("maxboxacc_v2")


def _short(resolution: Resolution) -> str:
    return f"{resolution.input_size} px / {resolution.output_stride}"


TAP_VERDICT = "no localisation gain measured"
"""The one-line verdict on the shipped TAP heads, as the menu, the captions, the README and docs/tap_training.md say
it: against their GAP controls, no threshold-free localisation gain at either resolution (docs/tap_training.md)."""


def _card_label(name: str) -> str:
    """Menu label of a family: its kind, the verdict on TAP, then per trained resolution the measured threshold-free
    numbers (MaxBoxAccV2, plain CAM / NWC+PaS; a TAP family against its GAP control trained at the same resolution)
    and the set they were measured on, e.g. ``"Experiment: TAP, head-only fine-tune on 993 photos, no localisation
    gain measured; at 224 px / 32: MaxBoxAccV2 -0.2 (CAM) / -0.1 (NWC+PaS), top-1 +5.2 vs its GAP control on
    imagenette_val (497); ..."``."""
    cards = checkpoint_cards()
    kind = "TAP" if cards[name].get("pooling") == "tap" else "GAP control"
    photos = (cards[name].get("data") or {}).get("photos")
    label = f"Experiment: {kind}, head-only fine-tune" + (f" on {photos} photos" if photos else "")
    label += f", {TAP_VERDICT}" if kind == "TAP" else ""
    for n in sorted(family(name), key=lambda n: trained_at(n)):  # type: ignore[arg-type, return-value]
        label += f"; at {_short(trained_at(n))}: {_numbers(n, kind)}"  # type: ignore[arg-type]
    return label


def _numbers(name: str, kind: str) -> str:
    """One checkpoint's card numbers (TAP: against the GAP control trained at its resolution), or "not evaluated"."""
    cards = checkpoint_cards()
    ours = [_metric(cards[name], "v2", c) for c in ("cam", "nwc+pas")] + [_metric(cards[name], "top1")]
    control = next((c for c in _controls(name) if trained_at(c) == trained_at(name)), None)
    if None in ours:
        return "not evaluated"
    if kind == "TAP" and control is not None:
        theirs = [_metric(cards[control], "v2", c) for c in ("cam", "nwc+pas")] + [_metric(cards[control], "top1")]
        if None not in theirs:
            d_cam, d_ours, d_top1 = (a - b for a, b in zip(ours, theirs, strict=True))  # type: ignore[operator]
            return (
                f"MaxBoxAccV2 {d_cam:+.1f} (CAM) / {d_ours:+.1f} (NWC+PaS), top-1 {d_top1:+.1f} vs its GAP control"
                f"{_on_data(cards[name])}"
            )
    cam, nwc_pas, top1 = ours
    return f"MaxBoxAccV2 {cam:.1f} (CAM) / {nwc_pas:.1f} (NWC+PaS), top-1 {top1:.1f}{_on_data(cards[name])}"


def _on_data(card: dict[str, Any]) -> str:
    """`` on imagenette_val (497)``: the evaluation set a card's numbers are from (its name and size only)."""
    found = re.match(r"\s*([\w.-]+)(?:\s*\((\d+))?", str((card.get("evaluation") or {}).get("dataset") or ""))
    if found is None:
        return ""
    name, photos = found.groups()
    return f" on {name}" + (f" ({photos})" if photos else "")


def _controls(name: str) -> list[str]:
    """The GAP-pooled checkpoints with the same base model as ``name``."""
    cards = checkpoint_cards()
    base = _base_name(cards[name])
    return [n for n, c in cards.items() if c.get("pooling") == "gap" and _base_name(c) == base]


def model_choices() -> list[tuple[str, str]]:
    """Dropdown ``(label, value)`` pairs: offline default first, hub models marked, then one entry per family."""
    choices = []
    for name, spec in cam_core.MODELS.items():
        suffix = "" if spec.weights == "bundled" else " (downloads weights)"
        choices.append((f"{spec.label}{suffix}", name))
    heads = [name for name in checkpoint_cards() if family(name)[:1] == [name]]
    choices += [(_card_label(name), name) for name in heads]
    return choices


def trained_with(model: Any) -> str:
    """``"TAP"`` for a TAP-trained checkpoint, else ``"GAP"`` (the registry's models and the GAP controls)."""
    card = checkpoint_cards().get(model) if isinstance(model, str) else None
    return "TAP" if card is not None and card.get("pooling") == "tap" else "GAP"


def tap_toggle(model: Any, resolution: Resolution) -> dict[str, Any]:
    """The TAP checkbox's props for ``model`` at ``resolution``: locked on for a TAP-trained model (both panels
    use it), free where a TAP-trained partner is shipped, locked off where none is; the info says which head,
    in one short line (the caption says it in full: :func:`pair_note`)."""
    if trained_with(model) == "TAP":
        return {"value": True, "interactive": False, "info": f"TAP-trained model{_trained_short(model, resolution)}"}
    partner = tap_partner(model) if isinstance(model, str) else None
    if partner is not None:
        return {"interactive": True, "info": f"green panel: TAP head{_trained_short(partner, resolution)}"}
    return {"value": False, "interactive": False, "info": "needs a TAP-trained model"}


def _trained_short(model: Any, resolution: Resolution) -> str:
    """``", 448/16"``: the resolution the member used at ``resolution`` was trained at, ``" (nearest)"`` added when
    it is not ``resolution``; ``""`` for a registry model."""
    chosen = trained_at(member(model, resolution))
    if chosen is None:
        return ""
    return f", {chosen.value}" + ("" if chosen == resolution else " (nearest)")


def gap_control(model: Any) -> str | None:
    """The GAP-control checkpoint (family) paired with ``model``'s TAP head: same base, same recipe, GAP pooling;
    ``model`` itself for a GAP control, ``None`` where no TAP head or no control is shipped. With
    :func:`tap_partner` it gives the two heads of the "TAP alone" comparison (only the pooling differs)."""
    partner = tap_partner(model) if isinstance(model, str) else None
    if partner is None:
        return None
    controls = [n for n in _controls(partner) if family(n)[:1] == [n]]
    return controls[0] if controls else None


def tap_partner(model: str) -> str | None:
    """The TAP-trained checkpoint (family) to use for ``model``'s TAP panel, or ``None``.

    For a base model, that is a TAP checkpoint fine-tuned from it; for a GAP-control checkpoint, the TAP
    checkpoint with the same base (so the comparison isolates the pooling); a TAP checkpoint pairs with itself.
    The member used at a resolution is :func:`member`'s pick (:func:`app.state.get_analysis` makes it).
    """
    cards = checkpoint_cards()
    if model in cards:
        if cards[model].get("pooling") == "tap":
            return model
        base = _base_name(cards[model])
    else:
        base = model
    for name, card in cards.items():
        if card.get("pooling") == "tap" and _base_name(card) == base and family(name)[:1] == [name]:
            return name
    return None
