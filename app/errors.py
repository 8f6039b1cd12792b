"""What a user sees when something goes wrong: library errors as ``gr.Error``, never a server path.

Every handler is wrapped in :func:`user_errors`: the library's typed :class:`~cam_core.errors.CamError`
(including the input checks of :mod:`app.inputs`) becomes a ``gr.Error`` with its message (a model still
loading becomes :class:`LoadingNotice`, which the photo, model and resolution events turn into a status line);
anything else is logged and reported as an internal error. Unqueued events get no toast in Gradio 6, so their
errors are said inline (:func:`with_notice`). A cache miss in an unqueued event
(:class:`~app.model_cache.NotCached`) passes through both: :func:`app.lanes.install_lanes` handles it.
Inline notices are Markdown that no value can turn into markup (:func:`inert_markdown`: a shared link's query
ends up there, issue #22 item 5).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from contextvars import ContextVar
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import gradio as gr
from gradio.exceptions import InvalidPathError
from pydantic import ValidationError

import cam_core
from app.inputs import NOT_A_FILE
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
_CODE_SPAN = re.compile(r"`([^`\r\n]+)`")
_MARKUP = frozenset("&<>[]*_~\\$@`")
_AUTOLINK = re.compile(r"(?<=[A-Za-z]):(?=//)|(?i:www)\.")  # the ':' of 'http://', the '.' of 'www.'


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


def inert_markdown(text: str) -> str:
    """``text`` as Markdown that shows its characters as text: no HTML tag, link, image, autolink or emphasis can
    form, whatever ``text`` holds (a hostile query value, a file name).

    A pair of backticks around text without backticks stays a code span (CommonMark shows a code span's content
    literally, ``<`` included): the messages quote names that way, and a value's own backticks may pair up too,
    which drops those two characters and nothing else. Everywhere else each character that can open markup
    (``& < > [ ] * _ ~ \\ $ @`` and a lone backtick) and the ``:`` of ``://`` and the ``.`` of ``www.`` become
    numeric character references (``<`` -> ``&#60;``), which CommonMark shows as the character and never reads
    as markup: no tag (``<img``, ``<form``), link (``[..](..)``), autolink (``http://``, ``www.``, ``a@b.c``) or
    emphasis can start, while the plain text of a message stays readable. Line breaks become spaces (a notice
    is one paragraph, so no block such as a heading, list or table can start either).
    """
    parts: list[str] = []
    last = 0
    for span in _CODE_SPAN.finditer(text):
        parts += [_references(text[last : span.start()]), span.group(0)]
        last = span.end()
    parts.append(_references(text[last:]))
    return "".join(parts)


def _references(text: str) -> str:
    flat = text.replace("\r", " ").replace("\n", " ")
    breaks = {match.end() - 1 for match in _AUTOLINK.finditer(flat)}
    return "".join(f"&#{ord(c)};" if c in _MARKUP or i in breaks else c for i, c in enumerate(flat))


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
            LOGGER.exception("unexpected error in %s", fn.__name__)  # the one traceback: Gradio's is turned off
            raise gr.Error(
                f"Internal error ({type(exc).__name__}); the server keeps running. Please try again.",
                print_exception=False,
            ) from exc

    return wrapper


def quiet_refusal(exc: Exception, event: str) -> Exception:
    """What Gradio should report for ``exc``, raised while serving ``event``: a refused request costs the log one
    line, never a traceback (issue #22 item 7; Gradio prints one for any exception but a quiet ``gr.Error``).

    * a ``gr.Error`` (ours, or a Gradio check such as a value not among a menu's choices): one line, then the same
      error, quiet;
    * Gradio's refusal of a file it will not read (a path the user did not upload, a value that is not a file's
      description): one line, then ``gr.Error`` with :data:`app.inputs.NOT_A_FILE` (what our own check says);
    * anything else is a bug, not a refusal: returned as it is, and Gradio logs its traceback.
    """
    if isinstance(exc, gr.Error):
        LOGGER.warning("refused %s: %s", event, _one_line(exc.message))
        exc.print_exception = False
        return exc
    if isinstance(exc, InvalidPathError | ValidationError):
        LOGGER.warning("refused %s: %s: %s", event, type(exc).__name__, _one_line(str(exc)))
        return gr.Error(NOT_A_FILE, print_exception=False)
    return exc


def _one_line(message: object, limit: int = 200) -> str:
    text = " ".join(str(message).split())
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


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
            return (*[gr.skip()] * outputs, f"⚠️ {inert_markdown(str(exc.message))}")
        except NotCached:
            if RERUN_QUEUED.get():
                raise
            return (*[gr.skip()] * outputs, f"⚠️ {MISSED}")

    return wrapper
