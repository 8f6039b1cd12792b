"""Peak memory and time of ``load_image`` on small files that declare huge images (issue #11, item 3).

Run: ``python -m bench.bench_decode [--root OTHER_CHECKOUT] [--quick]`` (``--root`` measures another tree's
``cam_core``, e.g. ``git worktree add /tmp/before HEAD~3``). Writes a 16-bit grey 12000 x 12000 PNG, a 12000 x 12000
RGB PNG, a 150-megapixel 1-bit PNG and a 12000 x 12000 JPEG (``--quick``: the grey PNG and the JPEG, about 12 s) to a
temporary folder, then decodes each in a fresh
interpreter, one at a time, and prints the file size, peak resident memory above the level after
``import cam_core``, the decode time (wall and CPU: CPU time is the steadier one on a shared machine), and
the resulting shape (or the refusal message).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tests.bad_inputs import BIG_FILES, measure, very_large

QUICK = ("gray16.png", "large.jpg")
"""The files ``--quick`` decodes: one PNG through the streaming decoder, the JPEG through draft mode."""


def main() -> None:
    """Generate the files, measure each decode, print one line per file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="source tree to import cam_core from")
    parser.add_argument("--quick", action="store_true", help="the 16-bit grey PNG and the JPEG only: about 12 s")
    args = parser.parse_args()
    root = args.root
    files = {**BIG_FILES, "large.jpg": very_large}
    if args.quick:
        files = {name: make for name, make in files.items() if name in QUICK}
    with tempfile.TemporaryDirectory() as folder:
        print(f"{'file':<12} {'size':>9} {'peak MB':>8} {'wall s':>7} {'CPU s':>6}  result")
        for name, make in files.items():
            path = make(Path(folder) / name)
            result = measure(path, root)
            outcome = result["shape"] or f"refused: {result['error']}"
            size = f"{path.stat().st_size / 1024:.0f} kB"
            timing = f"{result['seconds']:>7.2f} {result['cpu_seconds']:>6.2f}"
            print(f"{name:<12} {size:>9} {result['peak_mb']:>8.0f} {timing}  {outcome}")


if __name__ == "__main__":
    main()
