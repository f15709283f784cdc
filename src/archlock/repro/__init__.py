"""Repro: diagnose a teammate's report against the lock, rebuild it and rerun its command."""
