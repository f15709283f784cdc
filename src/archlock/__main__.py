"""`python -m archlock` and the `archlock` console script: main(), and a Ctrl-C at any moment
(while archlock imports, or as main() returns) ends in one line and exit 130, not a traceback."""

import signal
import sys


def run() -> None:
    try:
        from archlock.cli import main

        code = main()
        # the work is done: a Ctrl-C now would only turn the exit into a traceback
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except KeyboardInterrupt:
        print("archlock: interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    run()
