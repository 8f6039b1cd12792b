"""``python -m cam_core.train``: see :mod:`cam_core.train.cli`."""

import sys

from cam_core.train.cli import main

sys.exit(main())
