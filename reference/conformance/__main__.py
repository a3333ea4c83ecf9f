"""``python -m reference.conformance IMPL``: the same as ``dropout-check IMPL``."""

import sys

from .cli import main

sys.exit(main())
