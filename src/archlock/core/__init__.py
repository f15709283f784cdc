"""The core: plain data and one-job modules every verb builds on (platform table, env specs,
project settings, file writes, uv, processes, containers)."""
