"""``python -m cam_core.segment``: see :mod:`cam_core.segment.cli`."""

import sys

from cam_core.segment.cli import main

sys.exit(main())
