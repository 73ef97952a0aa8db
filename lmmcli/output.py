"""Writing result files safely: a temporary file renamed into place, never a half-written file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import UsageError


def check_target(path: str, inputs=()) -> Path:
    """Refuse to write over an input data file; the folder must exist."""
    target = Path(path)
    for inp in inputs:
        if inp and inp != "-" and Path(inp).exists() and target.exists() and target.resolve() == Path(inp).resolve():
            raise UsageError(f"refusing to overwrite the input data file '{inp}' with output")
    if not target.parent.exists():
        raise UsageError(f"cannot write '{path}': folder '{target.parent}' does not exist")
    return target


def atomic_write(path: str, write, inputs=()) -> None:
    """Call write(file_object) on a temporary binary file beside PATH, then rename it onto PATH."""
    target = check_target(path, inputs)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, target)
    except BaseException:
        # any failure or interruption (Ctrl-C included) must leave no partial file behind
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text(path: str, text: str, inputs=()) -> None:
    """Atomically write text (UTF-8)."""
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")), inputs)
