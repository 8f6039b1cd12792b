"""Typed exceptions raised by :mod:`cam_core`.

Every error derives from :class:`CamError` *and* from the built-in type that best describes it, so
callers can catch either ``CamError`` (everything from this library) or the usual ``ValueError`` /
``RuntimeError`` / ``IndexError``. Messages name the offending argument and say how to fix it.
"""

from __future__ import annotations


class CamError(Exception):
    """Base class of every error raised on purpose by ``cam_core``."""


class InvalidImageError(CamError, ValueError):
    """The image cannot be used: wrong type, shape, dtype, mode, size, or a damaged file."""


class UnknownModelError(CamError, ValueError):
    """The model name is neither in :data:`cam_core.models.MODELS` nor a timm architecture."""


class WeightsUnavailableError(CamError, RuntimeError):
    """Pretrained weights could not be obtained (typically: no network for a hub download)."""


class NotCamExactError(CamError, ValueError):
    """The model's head is not global pooling followed by one linear layer, so CAM is not exact."""


class ClassIndexError(CamError, IndexError):
    """A class index is outside ``[0, num_classes)``."""


class NonFiniteMapError(CamError, ValueError):
    """A feature map or activation map contains NaN or infinity."""


class CheckpointError(CamError, ValueError):
    """A checkpoint file is missing, not safetensors, corrupt, or does not fit the model."""


class ParameterError(CamError, ValueError):
    """A numeric parameter (threshold, percentile, tau, ...) is outside its valid range."""


class CrfUnavailableError(CamError, RuntimeError):
    """The optional dense-CRF backend (``pydensecrf2``, imported as ``pydensecrf``) is not installed."""


class DatasetError(CamError, ValueError):
    """An evaluation data set is malformed: a box CSV or wsolevaluation metadata file, with its line number."""
