import sys

from scale_lth.cli import main

sys.exit(main())
