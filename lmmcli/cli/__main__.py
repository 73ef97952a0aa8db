"""`python -m lmmcli.cli` runs the `lmm` command."""

from lmmcli.cli import main

main()
