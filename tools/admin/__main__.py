"""`python -m tools.admin …`: see the package's docstring."""

import sys

from tools.admin.cli import main

sys.exit(main())
