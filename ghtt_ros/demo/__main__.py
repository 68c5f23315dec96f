"""`python -m ghtt_ros.demo`: the main demo."""

import sys

from ghtt_ros.demo.run import main

sys.exit(main())
