import sys

try:
    from archlock.cli import main
except KeyboardInterrupt:  # Ctrl-C while archlock itself is imported: one line, not a traceback
    print("archlock: interrupted while starting; nothing was changed", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
