import sys

from archlock.cli import main

sys.exit(main())
