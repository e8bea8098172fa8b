"""python -m simple_conv_net.report: see the package's docstring."""

import sys

from .make import main

sys.exit(main())
