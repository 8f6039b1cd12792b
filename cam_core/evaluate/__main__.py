"""``python -m cam_core.evaluate``: see :mod:`cam_core.evaluate.cli`."""

import sys

from cam_core.evaluate.cli import main

sys.exit(main())
