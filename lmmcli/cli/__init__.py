"""The `lmm` command: a thin typer layer over the library, one module per command family.

app.py holds what the commands share and guard.py the error guard; fit.py, predict.py, plot.py, simulate.py
and analysis.py register their commands on import. This package is the only place that knows stdout,
stderr and exit codes; nothing imports it.
"""

from __future__ import annotations

import sys

from lmmcli.cli.app import app
from lmmcli.cli.guard import SIGNAL_NAMES, Terminated, raise_terminated
from lmmcli.cli import fit, predict, plot, simulate, analysis, report  # noqa: F401,I001  (each registers its commands on app, in --help order)

__all__ = ["app", "blas_threads", "main"]


def blas_threads() -> None:
    """One BLAS thread unless the user asks otherwise (set before numpy loads OpenBLAS): on a busy
    2-core machine a multithreaded dense Cholesky made the InstEval-sized fit 5x slower (bench/).
    Big dense blocks use the other cores while they are idle (engine.blas.all_cores), unless the user
    fixed the count with OPENBLAS_NUM_THREADS."""
    import os

    from lmmcli.engine import blas

    blas.FIXED = "OPENBLAS_NUM_THREADS" in os.environ
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main() -> None:
    """Console entry point."""
    import signal

    blas_threads()
    for signum in SIGNAL_NAMES:     # SIGTERM/SIGHUP before or after a command's guard: one line too
        signal.signal(signum, raise_terminated)
    try:
        _only_invoked(app, sys.argv[1:2])()
    except KeyboardInterrupt:  # Ctrl-C while typer builds the command, outside the command guard: no traceback
        sys.stderr.write("error: interrupted\n")
        sys.exit(130)
    except Terminated as exc:
        sys.stderr.write(f"error: {exc.name}\n")
        sys.exit(128 + exc.signum)
    finally:
        # the interpreter's last garbage collection walks every object of numpy, pyarrow, typer and the
        # fit (~13 ms of VerbAgg's 0.31 s process); frozen, they are still freed, only not traversed
        import gc

        gc.freeze()


def _only_invoked(typer_app, first: list[str]):
    """typer_app with only the command `first` names registered, or typer_app itself when it names none
    (`lmm --help`, a mistyped command: every command is listed). Typer builds every registered command's
    parameters before it runs one, ~20 ms of a small fit's start-up."""
    import copy

    from typer.main import get_command_name

    named = [c for c in typer_app.registered_commands
             if first and (c.name or get_command_name(c.callback.__name__)) == first[0]]
    if not named:
        return typer_app
    only = copy.copy(typer_app)
    only.registered_commands = named
    return only
