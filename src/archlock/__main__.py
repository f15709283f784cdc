import signal
import sys

try:
    from archlock.cli import main

    code = main()
    # the work is done: a Ctrl-C now would only turn the exit into a traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
except KeyboardInterrupt:  # while archlock itself is imported, or as main() returns
    print("archlock: interrupted", file=sys.stderr)
    code = 130
sys.exit(code)
