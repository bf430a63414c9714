"""`python -m pgqrs.cli ...`: the same as the `pgqrs` command."""

from . import main

raise SystemExit(main())
