"""What a user sees when something goes wrong: library errors as ``gr.Error``, never a server path.

Every handler is wrapped in :func:`user_errors`: the library's typed :class:`~cam_core.errors.CamError`
(including the input checks of :mod:`app.inputs`) becomes a ``gr.Error`` with its message (a model still
loading becomes :class:`LoadingNotice`, which the photo, model and resolution events turn into a status line);
anything else is logged and reported as an internal error. Unqueued events get no toast in Gradio 6, so their
errors are said inline (:func:`with_notice`). A cache miss in an unqueued event
(:class:`~app.model_cache.NotCached`) passes through both: :func:`app.lanes.install_lanes` handles it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from contextvars import ContextVar
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import gradio as gr

import cam_core
from app.model_cache import ModelLoading, NotCached

LOGGER = logging.getLogger("cam_explainer")
RERUN_QUEUED: ContextVar[bool] = ContextVar("cam_rerun_queued", default=False)
"""Set while an unqueued event runs whose page runs it again through the queue when it fails (``app.lanes``)."""
MISSED = (
    "This view needs an analysis that is no longer in the server's memory (a busy server drops the oldest): "
    "pick the photo again."
)
"""Said by an unqueued event that missed the caches and has no queued rerun (a rare eviction)."""
P = ParamSpec("P")
R = TypeVar("R")
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/'\"`:,;()]+/)+[^\s/'\"`:,;()]*")


def without_paths(message: str) -> str:
    """``message`` with every absolute server path (two components or more) replaced by ``<path>``.

    The last line of defence for item 9 of the security review: messages shown to users never reveal
    where the server keeps its files (upload cache, temporary folders, checkpoints).
    """
    return _ABSOLUTE_PATH.sub("<path>", message)


class LoadingNotice(gr.Error):
    """A model the event needs is loading in the background (:class:`~app.model_cache.ModelLoading`, kept as
    ``loading``), as a ``gr.Error`` that says so and about how long it takes."""

    def __init__(self, loading: ModelLoading) -> None:
        super().__init__(str(loading), print_exception=False)
        self.loading = loading


def user_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn library errors into ``gr.Error`` with their message; log anything unexpected and say so plainly."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (gr.Error, NotCached):
            raise
        except ModelLoading as exc:
            raise LoadingNotice(exc) from exc
        except cam_core.CamError as exc:
            raise gr.Error(without_paths(str(exc)), print_exception=False) from exc
        except Exception as exc:
            LOGGER.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(
                f"Internal error ({type(exc).__name__}); the server keeps running. Please try again."
            ) from exc

    return wrapper


def with_notice(fn: Callable[..., tuple[Any, ...]], outputs: int) -> Callable[..., tuple[Any, ...]]:
    """For unqueued (``queue=False``) events: their errors reach no toast in Gradio 6, so say them inline.

    The wrapped callback returns one more output, a notice: ``""`` on success; on a ``gr.Error`` (see
    :func:`user_errors`) the message, with every other output left as it was (``gr.skip()``). A cache miss
    (:class:`~app.model_cache.NotCached`) fails the event when the page reruns it through the queue
    (:data:`RERUN_QUEUED`), else it is said (:data:`MISSED`).
    """

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        try:
            return (*fn(*args, **kwargs), "")
        except gr.Error as exc:
            return (*[gr.skip()] * outputs, f"⚠️ {exc.message}")
        except NotCached:
            if RERUN_QUEUED.get():
                raise
            return (*[gr.skip()] * outputs, f"⚠️ {MISSED}")

    return wrapper
