"""What a fine-tune trains and how: the :class:`Recipe`, the trainable modules, the loss and the optimiser.

The loss per photo view is ``distill · T² · KL(T) + ce · CE`` (:func:`loss_fn`). :mod:`cam_core.train.finetune`,
the loop that uses these, re-exports their public names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from cam_core.errors import ParameterError


@dataclass(frozen=True)
class Recipe:
    """Hyper-parameters of one fine-tune (stored in the model card).

    Attributes:
        pooling: ``"gap"`` or ``"tap"``; tau: TAP threshold fraction in ``[0, 1)``.
        unfreeze: ``"head"``, ``"tail"``, ``"all"`` or a module path such as ``"blocks.6"`` (see
            :func:`trainable_prefixes`).
        distill, ce, temperature: loss weights ``a``, ``b`` and ``T`` of ``a·T²·KL(T) + b·CE``.
        epochs, batch_size, lr_tail, lr_head, weight_decay: Adam schedule (``lr_head`` for the classifier,
            ``lr_tail`` for every other trained parameter), cosine decay to 0.
        views: cached augmented views per photo (head-only); view 0 is the un-augmented stretch.
        crop_scale: min area fraction of the random resized crop; hflip: flip probability;
            jitter: max relative brightness/contrast change.
        seed: seed of augmentation, view order and shuffling.
    """

    pooling: str = "tap"
    tau: float = 0.1
    unfreeze: str = "head"
    distill: float = 4.0
    ce: float = 0.5
    temperature: float = 2.0
    epochs: int = 8
    batch_size: int = 64
    lr_tail: float = 3e-4
    lr_head: float = 1e-3
    weight_decay: float = 0.0
    views: int = 8
    crop_scale: float = 0.35
    hflip: float = 0.5
    jitter: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {
            "pooling": self.pooling in ("gap", "tap"), "tau": 0.0 <= self.tau < 1.0,
            "epochs": self.epochs >= 1, "views": self.views >= 1, "batch_size": self.batch_size >= 1,
            "temperature": self.temperature > 0, "crop_scale": 0.0 < self.crop_scale <= 1.0,
            "hflip": 0.0 <= self.hflip <= 1.0, "jitter": 0.0 <= self.jitter < 1.0,
            "distill": self.distill >= 0, "ce": self.ce >= 0,
        }  # fmt: skip
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ParameterError(f"invalid recipe value for `{bad[0]}`: {getattr(self, bad[0])!r}")
        if self.distill == 0 and self.ce == 0:
            raise ParameterError("`distill` and `ce` are both 0: nothing to train on")


def classifier_name(model: nn.Module) -> str:
    """Module path of the model's classifier (``"classifier"``, ``"fc"``, ``"head.fc"``...)."""
    target = model.get_classifier()  # type: ignore[operator]
    for name, module in model.named_modules():
        if module is target:
            return name
    raise ParameterError("the model's classifier is not one of its submodules")


def _tail_stage(model: nn.Module) -> str:
    if hasattr(model, "blocks") and isinstance(model.blocks, nn.Sequential):
        return f"blocks.{len(model.blocks) - 1}"
    if hasattr(model, "layer4"):
        return "layer4"
    raise ParameterError(f"`unfreeze`='tail' is not defined for {type(model).__name__}; name a module path")


def trainable_prefixes(model: nn.Module, unfreeze: str) -> list[str]:
    """Module prefixes that train for an ``unfreeze`` choice.

    ``"head"``: the classifier plus the post-block conv stage when the model has one (EfficientNet:
    ``conv_head``, ``bn2``); ``"tail"``: the head plus the last block stage (``blocks.6``, ``layer4``);
    a module path (e.g. ``"blocks.6"``): the head plus that module; ``"all"``: every parameter (``""``).

    Raises:
        ParameterError: an unknown module path.
    """
    head = [p for p in ("conv_head", "bn2") if hasattr(model, "conv_head") and hasattr(model, p)]
    head.append(classifier_name(model))
    if unfreeze == "head":
        return head
    if unfreeze == "all":
        return [""]
    module = _tail_stage(model) if unfreeze == "tail" else unfreeze
    if module not in dict(model.named_modules()):
        raise ParameterError(f"`unfreeze` {unfreeze!r}: the model has no module {module!r}")
    return [module, *head]


def loss_fn(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, recipe: Recipe) -> torch.Tensor:
    """``distill · T² · KL(T) + ce · CE`` averaged over the batch (CE over labelled rows only).

    Args:
        student, teacher: float32 (B, K) logits; labels: int64 (B,), -1 = unlabelled.
    """
    temp = recipe.temperature
    loss = student.new_zeros(())
    if recipe.distill > 0:
        log_p = F.log_softmax(student / temp, dim=1)
        log_q = F.log_softmax(teacher / temp, dim=1)
        kl = F.kl_div(log_p, log_q, log_target=True, reduction="batchmean")
        loss = loss + recipe.distill * temp**2 * kl
    labelled = labels >= 0
    if recipe.ce > 0 and bool(labelled.any()):
        ce = F.cross_entropy(student[labelled], labels[labelled], reduction="sum") / len(labels)
        loss = loss + recipe.ce * ce
    return loss


def make_optimizer(model: nn.Module, prefixes: Sequence[str], recipe: Recipe) -> torch.optim.Optimizer:
    """Adam with ``lr_head`` for the classifier and ``lr_tail`` for the other trained parameters.

    Sets ``requires_grad`` on exactly the parameters under ``prefixes``.
    """
    head = classifier_name(model)
    groups: dict[str, list[nn.Parameter]] = {"head": [], "tail": []}
    for name, param in model.named_parameters():
        on = "" in prefixes or any(name == p or name.startswith(p + ".") for p in prefixes)
        param.requires_grad_(on)
        if on:
            groups["head" if name.startswith(head + ".") else "tail"].append(param)
    params = [
        {"params": groups["tail"], "lr": recipe.lr_tail},
        {"params": groups["head"], "lr": recipe.lr_head},
    ]
    return torch.optim.Adam([g for g in params if g["params"]], weight_decay=recipe.weight_decay)
