"""The fine-tuning loop behind ``python -m cam_core.train``: GAP or TAP heads, distillation, cached views.

Loss per photo view: ``distill · T² · KL(softmax(t / T) ‖ softmax(s / T)) + ce · CE(s, y)``, with ``t`` the
logits of the original (frozen, GAP) model on the same view, ``s`` the student's, ``T`` the temperature.
Unlabelled photos (label ``-1``) contribute only the KL term. Every BatchNorm keeps its running statistics
(the network stays in eval mode, which also disables dropout); affine parameters of trained BN layers train.

When only the head trains (``unfreeze="head"``), the frozen backbone's output for ``views`` augmented views
of every photo is computed once and the head trains on that cache (one view per photo and epoch): this is
what makes a head fine-tune of EfficientNet-Lite0 on 1000 photos take about a minute on two CPU cores.

The :class:`~cam_core.train.recipe.Recipe`, the trainable prefixes, the loss and the optimiser live in
:mod:`cam_core.train.recipe` and are re-exported here.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from cam_core.cam import preprocess
from cam_core.datasets import load_stored_image
from cam_core.errors import ParameterError
from cam_core.image import DEFAULT_MAX_PIXELS
from cam_core.models import DataConfig, LoadedModel, eval_mode, set_pooling
from cam_core.train.recipe import (  # classifier_name: re-exported for callers
    Recipe,
    classifier_name,  # noqa: F401
    loss_fn,
    make_optimizer,
    trainable_prefixes,
)

Stage = Callable[[torch.Tensor], torch.Tensor]


def head_split(model: nn.Module) -> tuple[Stage, Stage]:
    """Split a model for head-only training: ``(frozen, stage)`` with ``forward_features = stage ∘ frozen``.

    EfficientNet-style models (``conv_head`` + ``bn2``) cut before ``conv_head``; others cut at
    ``forward_features`` (``stage`` is the identity).
    """
    if all(hasattr(model, n) for n in ("conv_stem", "bn1", "blocks", "conv_head", "bn2")):
        m: nn.Module = model

        def frozen(x: torch.Tensor) -> torch.Tensor:
            return m.blocks(m.bn1(m.conv_stem(x)))  # type: ignore[operator]

        def stage(z: torch.Tensor) -> torch.Tensor:
            return m.bn2(m.conv_head(z))  # type: ignore[operator]

        return frozen, stage
    return model.forward_features, lambda z: z  # type: ignore[return-value]


def augment(image: np.ndarray, rng: np.random.Generator, recipe: Recipe) -> np.ndarray:
    """One random view: resized-crop box (area ``[crop_scale, 1]``, aspect ``[3/4, 4/3]``), flip, jitter.

    Args:
        image: uint8 (H, W, 3) RGB.

    Returns:
        uint8 (h', w', 3) crop; :func:`cam_core.cam.preprocess` stretches it to the network input.
    """
    height, width = image.shape[:2]
    crop = image
    for _ in range(10):
        area = height * width * rng.uniform(recipe.crop_scale, 1.0)
        aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        w, h = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 8 <= w <= width and 8 <= h <= height:
            top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
            crop = image[top : top + h, left : left + w]
            break
    if rng.random() < recipe.hflip:
        crop = crop[:, ::-1]
    if recipe.jitter > 0:
        gain, contrast = rng.uniform(1 - recipe.jitter, 1 + recipe.jitter, size=2)
        values = crop.astype(np.float32)
        values = (values - values.mean()) * contrast + values.mean() * gain
        crop = np.clip(values, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(crop)


def view_batch(image: np.ndarray, config: DataConfig, rng: np.random.Generator, recipe: Recipe, n: int) -> torch.Tensor:
    """``n`` views of one photo as float32 (n, 3, H_in, W_in); view 0 is the plain bilinear stretch."""
    crops = [image] + [augment(image, rng, recipe) for _ in range(n - 1)]
    return torch.stack([preprocess(c, config, "bilinear") for c in crops]).contiguous()


@dataclass
class FeatureCache:
    """Frozen-backbone outputs of every view.

    Attributes:
        features: float16 (N, V, C', h', w') input of the trainable stage.
        teacher: float16 (N, V, K) logits of the original model on each view.
        labels: int64 (N,) class indices, -1 for unlabelled photos.
    """

    features: torch.Tensor
    teacher: torch.Tensor
    labels: torch.Tensor


def build_cache(
    loaded: LoadedModel, paths: Sequence[Path], labels: Sequence[int], recipe: Recipe, device: str = "cpu"
) -> FeatureCache:
    """Run the frozen part of ``loaded.model`` once over ``recipe.views`` views of every photo.

    Must run before the pool is swapped to TAP: the teacher logits come from the original head.
    """
    model = loaded.model.to(device)
    frozen, stage = head_split(model)
    rng = np.random.default_rng(recipe.seed)
    feats: torch.Tensor | None = None  # allocated once the first photo gives the shape: one copy in memory
    teach: torch.Tensor | None = None
    model.to(memory_format=torch.channels_last)  # ~1.3x faster depthwise convs on CPU; same values to ~1e-6
    try:
        with eval_mode(model), torch.inference_mode():
            for i, path in enumerate(tqdm(paths, desc="caching views", unit="photo")):
                photo = load_stored_image(path, DEFAULT_MAX_PIXELS)  # stored pixel order, as for evaluation
                views = view_batch(photo, loaded.data_config, rng, recipe, recipe.views)
                views = views.to(device, memory_format=torch.channels_last)
                z = frozen(views)  # (V, C', h', w')
                logits = model.forward_head(stage(z))  # type: ignore[operator]  # (V, K)
                if feats is None or teach is None:
                    feats = torch.empty((len(paths), *z.shape), dtype=torch.float16)
                    teach = torch.empty((len(paths), *logits.shape), dtype=torch.float16)
                feats[i] = z.half().cpu()
                teach[i] = logits.half().cpu()
    finally:
        model.to(memory_format=torch.contiguous_format)
    if feats is None or teach is None:
        raise ParameterError("`paths` is empty: no photo to cache")
    return FeatureCache(feats, teach, torch.tensor(list(labels), dtype=torch.int64))


def cache_resolution(loaded: LoadedModel) -> dict[str, int]:
    """``{"input_size": N, "output_stride": S}`` of the views a cache of ``loaded`` holds (square inputs)."""
    height, width = loaded.data_config.input_size
    if height != width:
        raise ParameterError(f"the view cache needs a square input, got {height}x{width}")
    return {"input_size": int(height), "output_stride": int(loaded.output_stride)}


def save_cache(cache: FeatureCache, path: Path, fingerprint: str, resolution: dict[str, int]) -> None:
    """Store a :class:`FeatureCache` as ``.safetensors`` tagged with ``fingerprint`` and its resolution (no pickle).

    Args:
        resolution: ``{"input_size": N, "output_stride": S}`` of the cached views (see :func:`cache_resolution`).
    """
    tensors = {"features": cache.features, "teacher": cache.teacher, "labels": cache.labels}
    metadata = {"fingerprint": fingerprint, **{k: str(v) for k, v in resolution.items()}}
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)


def load_cache(path: Path, fingerprint: str, resolution: dict[str, int] | None = None) -> FeatureCache | None:
    """The cache at ``path`` if it exists and was built with the same ``fingerprint``, else ``None``.

    Args:
        resolution: ``{"input_size": N, "output_stride": S}`` this run needs; ``None`` skips the check.
            A cache stored without a resolution (older files) holds 224 px / stride 32 views.

    Raises:
        ParameterError: the cache holds views of another resolution (it is never overwritten then).
    """
    if not path.is_file():
        return None
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    if resolution is not None:
        stored = {
            "input_size": int(metadata.get("input_size", 224)),
            "output_stride": int(metadata.get("output_stride", 32)),
        }
        if stored != resolution:
            raise ParameterError(
                f"the view cache {path.name!r} holds views at {stored['input_size']} px / stride "
                f"{stored['output_stride']}, this run needs {resolution['input_size']} px / stride "
                f"{resolution['output_stride']}: pass another `--cache` file (or delete this one)"
            )
    if metadata.get("fingerprint") != fingerprint:
        return None
    tensors = load_file(str(path))
    return FeatureCache(tensors["features"], tensors["teacher"], tensors["labels"])


def _cosine(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / total_steps)))


def _step(optimizer: torch.optim.Optimizer, scheduler: Any, loss: torch.Tensor) -> float:
    """One optimisation step (zero, backward, step, schedule); returns the loss value."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    scheduler.step()
    return float(loss.detach())


def train_on_cache(
    loaded: LoadedModel, cache: FeatureCache, prefixes: Sequence[str], recipe: Recipe, device: str = "cpu"
) -> list[float]:
    """Train the head of ``loaded.model`` (pool already set) on cached views; returns the mean loss per epoch."""
    model = loaded.model.to(device)
    _, stage = head_split(model)
    optimizer = make_optimizer(model, prefixes, recipe)
    count = cache.features.shape[0]
    steps = recipe.epochs * math.ceil(count / recipe.batch_size)
    scheduler = _cosine(optimizer, steps)
    generator = torch.Generator().manual_seed(recipe.seed)
    offsets = torch.randint(0, recipe.views, (count,), generator=generator)  # each photo: views in turn
    history = []
    model.eval()  # BN running stats frozen, dropout off
    with tqdm(total=steps, desc=f"training {recipe.pooling}", unit="step") as bar:
        for epoch in range(recipe.epochs):
            order, view = torch.randperm(count, generator=generator), (offsets + epoch) % recipe.views
            total = 0.0
            for start in range(0, count, recipe.batch_size):
                idx = order[start : start + recipe.batch_size]
                z = cache.features[idx, view[idx]].float().to(device)  # (B, C', h', w')
                logits = model.forward_head(stage(z))  # type: ignore[operator]  # (B, K)
                teacher = cache.teacher[idx, view[idx]].float().to(device)
                loss = loss_fn(logits, teacher, cache.labels[idx].to(device), recipe)
                total += _step(optimizer, scheduler, loss) * len(idx)
                bar.update()
            history.append(total / count)
            bar.set_postfix(epoch=epoch + 1, loss=f"{history[-1]:.4f}")
    model.requires_grad_(False)
    return history


def train_online(
    loaded: LoadedModel, paths: Sequence[Path], labels: Sequence[int], prefixes: Sequence[str], recipe: Recipe,
    device: str = "cpu",
) -> list[float]:  # fmt: skip
    """Train ``prefixes`` end to end with a fresh augmented view per photo and epoch (no cache).

    Call it with the original (GAP) head: the teacher is a frozen copy taken first, then the student's
    pool is set to ``recipe.pooling``.
    """
    model = loaded.model.to(device)
    teacher_model = copy.deepcopy(model).eval().requires_grad_(False)
    set_pooling(model, recipe.pooling, recipe.tau)
    optimizer = make_optimizer(model, prefixes, recipe)
    images = [load_stored_image(p, DEFAULT_MAX_PIXELS) for p in paths]  # stored pixel order, as for evaluation
    target = torch.tensor(list(labels), dtype=torch.int64)
    steps = recipe.epochs * math.ceil(len(images) / recipe.batch_size)
    scheduler, rng = _cosine(optimizer, steps), np.random.default_rng(recipe.seed)
    generator = torch.Generator().manual_seed(recipe.seed)
    history = []
    model.eval()
    with tqdm(total=steps, desc=f"training {recipe.pooling}", unit="step") as bar:
        for _ in range(recipe.epochs):
            order, total = torch.randperm(len(images), generator=generator), 0.0
            for start in range(0, len(images), recipe.batch_size):
                idx = order[start : start + recipe.batch_size]
                crops = [augment(images[i], rng, recipe) for i in idx.tolist()]
                x = torch.stack([preprocess(c, loaded.data_config, "bilinear") for c in crops]).to(device)
                with torch.no_grad():
                    teacher = teacher_model(x)
                loss = loss_fn(model(x), teacher, target[idx].to(device), recipe)
                total += _step(optimizer, scheduler, loss) * len(idx)
                bar.update()
            history.append(total / len(images))
    model.requires_grad_(False)
    return history


def finetune(
    loaded: LoadedModel, paths: Sequence[Path], labels: Sequence[int], recipe: Recipe, device: str = "cpu",
    cache_path: Path | None = None, fingerprint: str = "",
) -> tuple[list[str], dict[str, float | list[float]]]:  # fmt: skip
    """Fine-tune ``loaded.model`` in place (pool swapped to TAP when asked) and return ``(prefixes, log)``.

    Args:
        loaded: base model from :func:`cam_core.train.checkpoint.build_base` (GAP head, eval mode).
        paths: photo files; labels: ImageNet class per photo, -1 when unlabelled.
        recipe: hyper-parameters.
        device: ``"cpu"`` or ``"cuda"``.
        cache_path: optional ``.safetensors`` file to reuse / store the head-only view cache (e.g. shared
            by a GAP and a TAP run of the same data and augmentation); ``fingerprint`` identifies it. The
            cache records the input size and output stride of ``loaded`` and is refused at another one.

    Returns:
        The trained module prefixes and a log with ``loss`` (per epoch) and timings in seconds.

    Raises:
        ParameterError: ``cache_path`` holds views of another resolution than ``loaded``'s.
    """
    torch.manual_seed(recipe.seed)
    prefixes = trainable_prefixes(loaded.model, recipe.unfreeze)
    log: dict[str, float | list[float]] = {}
    start = time.perf_counter()
    if recipe.unfreeze == "head":
        resolution = cache_resolution(loaded)
        cache = load_cache(cache_path, fingerprint, resolution) if cache_path else None
        if cache is None:
            cache = build_cache(loaded, paths, labels, recipe, device)
            if cache_path:
                save_cache(cache, cache_path, fingerprint, resolution)
        log["cache_s"] = round(time.perf_counter() - start, 1)
        set_pooling(loaded.model, recipe.pooling, recipe.tau)
        start = time.perf_counter()
        log["loss"] = train_on_cache(loaded, cache, prefixes, recipe, device)
    else:
        log["loss"] = train_online(loaded, paths, labels, prefixes, recipe, device)
    log["train_s"] = round(time.perf_counter() - start, 1)
    loaded.model.cpu()
    return prefixes, log
