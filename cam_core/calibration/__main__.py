"""``python -m cam_core.calibration``: see :mod:`cam_core.calibration.cli`."""

from cam_core.calibration.cli import main

raise SystemExit(main())
