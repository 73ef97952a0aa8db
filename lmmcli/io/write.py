"""Writing result files safely: a temporary file renamed into place, never a half-written file.

The temporary file sits beside the target (same file system, so the rename is atomic), is flushed
to disk before the rename, and is removed on any failure or interruption (Ctrl-C included). The
target may never be one of the input data files (compared as files: symlinks and hard links count).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from lmmcli.errors import LmmError, UsageError


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_target(path: str, inputs=()) -> Path:
    """Refuse to write over an input data file or a folder; the folder to write in must exist."""
    target = Path(path)
    for inp in inputs:
        if inp and str(inp) != "-" and _same_file(target, Path(inp)):
            raise UsageError(f"refusing to overwrite the input data file '{inp}' with output",
                             hint="choose another output file name")
    if target.is_dir():
        raise UsageError(f"cannot write '{path}': it is a folder")
    if not target.parent.exists():
        raise UsageError(f"cannot write '{path}': folder '{target.parent}' does not exist")
    return target


def _file_mode(target: Path) -> int:
    """The mode the file would get from a plain open(): the existing file's, else 0666 less the umask."""
    if target.exists():
        return target.stat().st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str, write, inputs=()) -> None:
    """Call write(file_object) on a temporary binary file beside PATH, then rename it onto PATH."""
    target = check_target(path, inputs)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as exc:
        raise LmmError(f"cannot write '{path}': {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode(target))   # mkstemp makes 0600 files; outputs should look like any other
        os.replace(tmp, target)
    except OSError as exc:
        _remove(tmp)
        raise LmmError(f"cannot write '{path}': {exc.strerror or exc}") from exc
    except BaseException:
        # any other failure or interruption (Ctrl-C included) must leave no partial file behind
        _remove(tmp)
        raise


def _remove(tmp: str) -> None:
    if os.path.exists(tmp):
        os.unlink(tmp)


def write_text(path: str, text: str, inputs=()) -> None:
    """Atomically write text (UTF-8)."""
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")), inputs)
