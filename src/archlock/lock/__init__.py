"""Lock: the universal uv.lock and the hashed per-env locks, their audit and the env spec schema."""
