"""The error guard of every command: user errors as one clean message and an exit code, never a traceback;
SIGTERM and SIGHUP unwound like Ctrl-C (so partial outputs are removed), with their exit codes.

Exit codes: 0 ok, 1 a problem with the data, formula or fit, 2 a usage error (LmmError.exit_code), 130
Ctrl-C, 128 + the signal's number for SIGTERM (143) and SIGHUP (129).
"""

from __future__ import annotations

import functools
import sys
from contextlib import contextmanager

import typer


# -- error messages ------------------------------------------------------------------------------
def _caret(text: str, span) -> str:
    """The formula with a caret line under span."""
    start, end = span
    end = max(end, start + 1)
    return f"  {text}\n  {' ' * start}{'^' * (end - start)}\n"


def report_error(exc) -> int:
    """Print an LmmError as 'error: ...' (+ caret, + hint) on stderr; return its exit code."""
    msg = f"error: {exc.message}\n"
    text, span = getattr(exc, "text", None), getattr(exc, "span", None)
    if text and span:
        msg += _caret(text, span)
    if exc.hint:
        msg += f"hint: {exc.hint}\n"
    sys.stderr.write(msg)
    return exc.exit_code


def guarded(fn):
    """A command body whose user errors become one clean message and an exit code, never a traceback."""

    @functools.wraps(fn)
    def command(*args, **kwargs):
        from lmmcli.errors import LmmError
        from lmmcli.io.write import check_outputs

        try:
            with _signals_as_exceptions():
                check_outputs({OUTPUT_OPTIONS[k]: kwargs[k] for k in OUTPUT_OPTIONS if k in kwargs},
                              {INPUT_OPTIONS[k]: kwargs.get(k) for k in INPUT_OPTIONS})
                return fn(*args, **kwargs)
        except LmmError as exc:
            raise typer.Exit(report_error(exc))
        except KeyboardInterrupt:
            sys.stderr.write("error: interrupted\n")
            raise typer.Exit(130)
        except Terminated as exc:
            sys.stderr.write(f"error: {exc.name}\n")
            raise typer.Exit(128 + exc.signum)
        except MemoryError:
            sys.stderr.write("error: out of memory; try a smaller model or fewer rows\n")
            raise typer.Exit(1)

    return command


# the options that name files a command reads or writes: no output may be an input or another output
INPUT_OPTIONS = {"data": "data file", "newdata": "--newdata file", "model": "--model file"}
OUTPUT_OPTIONS = {"output": "-o/--output", "save": "--save"}


# -- signals ---------------------------------------------------------------------------------------
class Terminated(BaseException):
    """SIGTERM or SIGHUP during a command: unwound like Ctrl-C, so partial outputs are removed."""

    def __init__(self, signum: int, name: str):
        super().__init__(name)
        self.signum, self.name = signum, name


def _signal_names() -> dict:
    import signal

    return {signal.SIGTERM: "terminated", signal.SIGHUP: "hung up"}


SIGNAL_NAMES = _signal_names()


def raise_terminated(signum, _frame):
    """A signal handler: SIGTERM/SIGHUP as the exception Terminated."""
    raise Terminated(signum, SIGNAL_NAMES[signum])


@contextmanager
def _signals_as_exceptions():
    """SIGTERM and SIGHUP raise Terminated while a command runs (exit 143, 129), as SIGINT raises
    KeyboardInterrupt; outside the main thread (signals cannot be set there) nothing changes."""
    import signal

    try:
        previous = {s: signal.signal(s, raise_terminated) for s in SIGNAL_NAMES}
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
