"""Verify: run probe + suite in an env (host venv or image), compare with spec and lock,
combine results into the matrix."""
