"""`archlock setup-mac`: a native Apple Silicon environment for the project, even from a Rosetta
shell.

The steps are kept apart so each can be tested without a Mac:

* `system`       the only place that asks the machine anything (sysctl, files, processes)
* `host`         facts about this Mac: Apple Silicon, Rosetta, macOS version
* `envinfo`      what the macOS env needs: Python version, macOS floor, lock, source builds
* `interpreters` finding and judging Python interpreters (Mach-O header + a native run)
* `plan`         what is wrong and which commands fix it
* `shellfix`     PATH fix lines and the marked rc-file block
* `summary`      the one report printed at the end
* `cli`          the verb: detect, plan, run, verify, summarise
"""
