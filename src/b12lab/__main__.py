"""``python -m b12lab``: the command line."""

from b12lab.cli import main

raise SystemExit(main())
