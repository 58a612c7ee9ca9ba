"""`python -m segkit ...` is the same as the `segkit` command."""

import sys

from segkit.cli import main

sys.exit(main())
