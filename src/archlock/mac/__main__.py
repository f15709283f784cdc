import sys

from archlock.mac.cli import main

sys.exit(main())
