"""`python -m ghtt_ros.bag` is `ghtt-bag`."""

import sys

from ghtt_ros.bag.cli import main

sys.exit(main())
