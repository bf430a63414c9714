"""`python -m pgqrs ...`: the same as the `pgqrs` command."""

from .cli import main

raise SystemExit(main())
