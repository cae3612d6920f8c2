"""Exit codes every hostwatch command shares (kept import-free: the CLI reads it on every call)."""

EXIT_USAGE = 125  # a bad flag, config file or value: like the Docker CLI, for every hostwatch command
