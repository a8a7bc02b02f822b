"""`python -m bench ...` from the repository root."""

from bench.cli import main

main()
