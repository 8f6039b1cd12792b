"""Dense-CRF inference in a child process, so that a CRF never stops the server.

``pydensecrf`` holds Python's GIL for a whole inference (1.2 s for 20 iterations on a 512² grid; a 21-label
Segmentation CRF several seconds): in the server's process that would stop every other request, the slider
events and the event loop included, whatever lane the CRF runs in. :func:`mean_field_in_worker` (a
:data:`cam_core.crf.MeanField`) sends the inference to one long-lived child process over its stdin / stdout
instead; the calling thread waits on the pipe without the GIL.

The child imports only NumPy and ``pydensecrf`` (not torch: it starts in well under a second and holds tens of
MB), runs :func:`infer` (the calls of :func:`cam_core.crf.mean_field`, the same numbers:
``tests/test_lanes.py``), and exits when the server closes its pipe. Frames are length-prefixed pickles between
this process and its own child: nothing from outside is ever unpickled.
"""

from __future__ import annotations

import pickle
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from cam_core.crf import CrfParams

ROOT = Path(__file__).resolve().parent.parent
Kernels = tuple[float, float, float, float, float, int]
"""``(gaussian_sxy, gaussian_compat, bilateral_sxy, bilateral_srgb, bilateral_compat, iterations)``."""
_HEADER = struct.Struct("<Q")


def infer(image: np.ndarray, unary: np.ndarray, kernels: Kernels) -> np.ndarray:
    """:func:`cam_core.crf.mean_field` without importing ``cam_core`` (and torch): uint8 (h, w, 3), float (L, h*w)
    energies -> float32 (L, h*w) marginals."""
    import pydensecrf.densecrf as dcrf

    gaussian_sxy, gaussian_compat, bilateral_sxy, bilateral_srgb, bilateral_compat, iterations = kernels
    height, width = image.shape[:2]
    crf = dcrf.DenseCRF2D(width, height, unary.shape[0])
    crf.setUnaryEnergy(np.ascontiguousarray(unary, dtype=np.float32))
    crf.addPairwiseGaussian(sxy=gaussian_sxy, compat=gaussian_compat)
    crf.addPairwiseBilateral(
        sxy=bilateral_sxy,
        srgb=bilateral_srgb,
        rgbim=np.require(image, dtype=np.uint8, requirements=["C", "W"]),
        compat=bilateral_compat,
    )
    return np.asarray(crf.inference(iterations), dtype=np.float32)


def _write(stream: IO[bytes], value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _read(stream: IO[bytes]) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError("the CRF worker's pipe closed")
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the CRF worker's pipe closed mid-frame")
    return pickle.loads(data)


def serve() -> None:
    """The child's loop: read ``(image, unary, kernels)``, answer ``("ok", marginals)`` or ``("error", text)``."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            image, unary, kernels = _read(stdin)
        except EOFError:
            return
        try:
            _write(stdout, ("ok", infer(image, unary, kernels)))
        except Exception as exc:  # said to the parent, which raises it there
            _write(stdout, ("error", f"{type(exc).__name__}: {exc}"))


class CrfWorker:
    """One child process (started on first use, restarted if it died), one inference at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None

    def _child(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from app.crf_worker import serve; serve()"
            pipe = subprocess.PIPE
            self._process = subprocess.Popen([sys.executable, "-c", code], stdin=pipe, stdout=pipe)
        return self._process

    def mean_field(self, image: np.ndarray, unary: np.ndarray, params: CrfParams) -> np.ndarray:
        """:func:`cam_core.crf.mean_field` in the child (same arguments, same result).

        Raises:
            CrfUnavailableError: the child could not run it (``pydensecrf2`` missing, or the child died).
        """
        from cam_core.errors import CrfUnavailableError

        kernels: Kernels = (params.gaussian_sxy, params.gaussian_compat, params.bilateral_sxy, params.bilateral_srgb,
                            params.bilateral_compat, params.iterations)  # fmt: skip
        with self._lock:
            child = self._child()
            assert child.stdin is not None and child.stdout is not None
            try:
                _write(child.stdin, (np.ascontiguousarray(image), np.ascontiguousarray(unary), kernels))
                status, value = _read(child.stdout)
            except (OSError, EOFError) as exc:
                child.kill()
                self._process = None
                raise CrfUnavailableError(f"The CRF worker process stopped ({exc}); try again.") from exc
        if status != "ok":
            raise CrfUnavailableError(f"Dense CRF failed in its worker process: {value}")
        return np.asarray(value, dtype=np.float32)

    def close(self) -> None:
        """End the child (it also ends by itself when this process exits and its pipe closes)."""
        with self._lock:
            if self._process is not None:
                self._process.kill()
                self._process.wait(5)
                self._process = None


WORKER = CrfWorker()


def mean_field_in_worker(image: np.ndarray, unary: np.ndarray, params: CrfParams) -> np.ndarray:
    """:data:`cam_core.crf.MeanField` that runs in :data:`WORKER`'s child process."""
    return WORKER.mean_field(image, unary, params)
