"""Writing result files safely: a temporary file renamed into place, never a half-written file.

The temporary file sits beside the target (same file system, so the rename is atomic), is flushed
to disk before the rename, and is removed on any failure or interruption (Ctrl-C, SIGTERM, SIGHUP).
A symlink is written through (its target is replaced, the link stays). A target that is not a regular
file (a terminal, /dev/null, a FIFO) is written directly, never renamed over: renaming over /dev/null as
root would replace the device. Sockets and block devices are refused.

`check_outputs` refuses, before any work, an output that names (or links to) an input of the run or
another output: `-o train.csv` over the training data, `-o m.json` over `--model m.json`, `-o X --save X`.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from lmmcli.errors import LmmError, UsageError

TEMP_NAME_ROOM = 24        # what mkstemp adds to the temporary file's name: '.', '.', 8 random, '.part'


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def _same_path(a: Path, b: Path) -> bool:
    """The same file, or (if neither exists yet) the same path once links and '..' are resolved."""
    if _same_file(a, b):
        return True
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except (OSError, ValueError):
        return False


def check_outputs(outputs: dict, inputs: dict, report: str = "-o/--output") -> None:
    """Refuse outputs (option name -> path) that name an input (option name -> path) or each other, and
    two outputs on standard output ('-'; the report option goes there when None)."""
    on_stdout = [k for k, v in outputs.items() if (v is None and k == report) or str(v) == "-"]
    if len(on_stdout) > 1:
        raise UsageError(f"{' and '.join(on_stdout)} would both write to standard output",
                         hint="give one of them a file name")
    outs = [(k, Path(v)) for k, v in outputs.items() if v is not None and str(v) != "-"]
    ins = [(k, Path(v)) for k, v in inputs.items() if v is not None and str(v) != "-"]
    for name, target in outs:
        for what, inp in ins:
            if _same_path(target, inp):
                raise UsageError(f"refusing to overwrite the input {what} '{inp}' with the output of {name}",
                                 hint="choose another output file name")
    for i, (name, target) in enumerate(outs):
        for other, path in outs[i + 1:]:
            if _same_path(target, path) and not _is_char_device(target):    # /dev/null twice is harmless
                raise UsageError(f"{name} and {other} name the same file '{target}': one would replace the other",
                                 hint="give each output its own file name")


def _is_char_device(p: Path) -> bool:
    try:
        return stat.S_ISCHR(p.stat().st_mode)
    except OSError:
        return False


def check_target(path: str, inputs=()) -> Path:
    """Refuse to write over an input data file or a folder; the folder to write in must exist and the
    name must fit the file system. Returns the path to write (a symlink's target)."""
    target = Path(path)
    for inp in inputs:
        if inp and str(inp) != "-" and _same_file(target, Path(inp)):
            raise UsageError(f"refusing to overwrite the input data file '{inp}' with output",
                             hint="choose another output file name")
    _check_name(target, path)
    try:
        if target.is_symlink() and not _links_to_special(target):
            target = Path(os.path.realpath(target))
        if target.is_dir():
            raise UsageError(f"cannot write '{path}': it is a folder")
        if not target.parent.exists():
            raise UsageError(f"cannot write '{path}': folder '{target.parent}' does not exist")
    except OSError as exc:
        raise UsageError(f"cannot write '{path}': {exc.strerror or exc}") from exc
    return target


def _check_name(target: Path, path: str) -> None:
    """A file name longer than the file system allows (usually 255 bytes) is a usage error, not an OSError."""
    try:
        limit = os.pathconf(target.parent if str(target.parent) else ".", "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    if len(os.fsencode(target.name)) > limit:
        raise UsageError(f"cannot write '{path[:60]}...': the file name is {len(os.fsencode(target.name))} "
                         f"bytes, longer than the {limit} this file system allows",
                         hint="choose a shorter output file name")


def _links_to_special(target: Path) -> bool:
    """A link to a device or pipe (/dev/stdout is /proc/self/fd/1, a pipe:[...] that realpath cannot name)."""
    try:
        return not stat.S_ISREG(target.stat().st_mode)
    except OSError:
        return False     # a dangling link: write its target


def _file_mode(target: Path) -> int:
    """The mode the file would get from a plain open(): the existing file's, else 0666 less the umask."""
    if target.exists():
        return target.stat().st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _special(target: Path, path: str) -> bool:
    """Whether the target exists and is not a regular file (write it directly); refuse what cannot be written."""
    try:
        mode = target.stat().st_mode
    except OSError:
        return False
    if stat.S_ISREG(mode):
        return False
    if stat.S_ISSOCK(mode) or stat.S_ISBLK(mode):
        raise UsageError(f"refusing to write '{path}': it is a {'socket' if stat.S_ISSOCK(mode) else 'block device'}",
                         hint="write to a regular file")
    return True


def atomic_write(path: str, write, inputs=()) -> None:
    """Call write(file_object) on a temporary binary file beside PATH, then rename it onto PATH; a device
    or FIFO is written directly."""
    target = check_target(path, inputs)
    if _special(target, path):
        return _direct_write(target, path, write)
    try:
        prefix = f".{target.name[:max(1, _name_room(target))]}."
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".part", dir=target.parent)
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
        # any other failure or interruption (Ctrl-C, SIGTERM, SIGHUP) must leave no partial file behind
        _remove(tmp)
        raise


def _name_room(target: Path) -> int:
    """How many characters of the target's name fit in the temporary file's name."""
    try:
        limit = os.pathconf(target.parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    return limit - TEMP_NAME_ROOM - (len(os.fsencode(target.name)) - len(target.name))


def _direct_write(target: Path, path: str, write) -> None:
    """Write into an existing non-regular file (a device, a FIFO) without replacing it."""
    try:
        with open(target, "wb") as fh:
            write(fh)
    except OSError as exc:
        raise LmmError(f"cannot write '{path}': {exc.strerror or exc}") from exc


def _remove(tmp: str) -> None:
    if os.path.exists(tmp):
        os.unlink(tmp)


def write_text(path: str, text: str, inputs=()) -> None:
    """Atomically write text (UTF-8)."""
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")), inputs)
