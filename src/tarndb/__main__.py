"""``python -m tarndb``: the ``tarndb`` command."""

import sys

from .cli import main

sys.exit(main())
