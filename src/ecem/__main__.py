"""`python -m ecem …`: the `ecem` command."""

import sys

from ecem.cli import main

sys.exit(main())
