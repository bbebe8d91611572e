"""``python -m phonewire`` is the ``phonewire`` command."""

import sys

from phonewire.cli import main

sys.exit(main())
