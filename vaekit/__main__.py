"""`python -m vaekit ...` is the same as the `vaekit` command."""

import sys

from .cli import main

sys.exit(main())
