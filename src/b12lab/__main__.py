"""``python -m b12lab``: the command line."""

from b12lab._io.cli import entry

raise SystemExit(entry())
