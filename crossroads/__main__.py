"""``python -m crossroads``: the ``crossroads`` command."""

import sys

from crossroads.cli import main

sys.exit(main())
