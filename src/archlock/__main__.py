"""`python -m archlock` and the `archlock` console script: main(), and a Ctrl-C at any moment
(while archlock imports, or as main() returns) ends in one line and exit 130, not a traceback;
a reader that goes away (`archlock matrix | head`) ends it quietly, as it ends `cat`.

Above run()'s `try` this module imports only what the interpreter has loaded before it runs any
of it (os, sys): an import that executes code there (signal pulls in enum, 10 ms) is a window
where a Ctrl-C became a traceback through this file."""

import os
import sys

SIGPIPE_EXIT = 141  # 128 + SIGPIPE: what a shell reports for a writer its reader left


def run() -> None:
    try:
        import signal

        from archlock.cli import main

        code = main()
        # the work is done: a Ctrl-C now would only turn the exit into a traceback
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sys.stdout.flush()  # here, where a closed pipe is caught, not at interpreter exit
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush
        code = SIGPIPE_EXIT
    except KeyboardInterrupt:
        code = interrupted()
    except RuntimeError as exc:  # Python 3.11 wraps a Ctrl-C during __set_name__ (a class being
        if not isinstance(exc.__cause__, KeyboardInterrupt):  # made, at import) in RuntimeError
            raise
        code = interrupted()
    sys.exit(code)


def interrupted() -> int:
    print("archlock: interrupted", file=sys.stderr)
    return 130


if __name__ == "__main__":
    run()
