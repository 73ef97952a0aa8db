"""One BLAS thread for small-matrix loops (profile points, bootstrap refits); every core for big dense work.

numpy and scipy wheels each bundle an OpenBLAS that starts one thread per core. On the tiny
matrices of one objective evaluation those threads cost far more than they give: on a shared
2-core machine the pastes profile took 7 s instead of 0.12 s and 100 bootstrap refits 19 s instead
of 0.3 s (measured with OPENBLAS_NUM_THREADS=1). The environment variable only works before
numpy is imported, so we call OpenBLAS's own setter on the libraries already loaded (found in
/proc/self/maps). Where that is not possible (another BLAS, another OS) this does nothing.

The other way round, a big dense factor (the 13,000^2 Cholesky of a MovieLens-shaped crossed fit, 7e11
flops) is worth every core even where the CLI asked for one thread: `all_cores(work)` raises the count
inside a block when the block's work is at least BIG_WORK multiply-adds (raising it after start-up works:
a 4,000^2 Cholesky went from 1.13 s to 0.80 s with 2 threads) -- but only while the other cores are idle
(`others_idle`). With another process busy on the second core, OpenBLAS's threads wait for each other:
InstEval's fit took 1.56-1.65 s with its dense inverses threaded and 2.1-2.4 s with its factors too,
against 1.26-1.30 s on one thread (measured with one busy process beside it).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import time

# Dense work (multiply-adds) from which all cores pay, on an idle machine. Measured (medians, 1 -> 2
# threads): potrf q = 800 (1.7e8) 6.2 -> 8.0 ms, 1,000 (3.3e8) 8.9 -> 7.8, 1,156 (5.1e8) 13.2 -> 12.0, 1,500
# 31.5 -> 21.9; potri q = 600 (1.4e8) 4.9 -> 2.9, 1,156 (1.0e9) 24.4 -> 14.0. InstEval's whole fit (1,156
# rest effects) 1.20-1.24 s with 1e9 (its inverses threaded), 1.06-1.15 s with 4e8 (its factors too).
BIG_WORK = 3e8
# The other cores count as idle when other processes used at most IDLE_SHARE of one core on them, on
# average, over the last WINDOW seconds at least (read from /proc/stat, whose counts are 10 ms ticks:
# over 0.25 s the reading is good to ~0.1 core). Until the first window has passed: one thread.
IDLE_SHARE = 0.25
WINDOW = 0.25
# Set by the CLI when the user chose the thread count (OPENBLAS_NUM_THREADS): all_cores then never raises
# it. A count that follows the machine's load changes the results' last digits from run to run (a factor
# on 2 threads rounds differently from one on 1: InstEval's theta 5e-13 apart); a fixed one does not.
FIXED = False

_PAIRS = (("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
          ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
          ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
          ("openblas_set_num_threads", "openblas_get_num_threads"))


def _loaded_openblas() -> list[str]:
    """Paths of the OpenBLAS libraries mapped into this process."""
    try:
        with open("/proc/self/maps") as fh:
            paths = {line.split()[-1] for line in fh if "openblas" in line.lower()}
    except OSError:
        return []
    return sorted(p for p in paths if p.startswith("/"))


@functools.cache
def _controls() -> list[tuple]:
    """(set, get) function pairs of each loaded OpenBLAS, found once per process (reading the maps and
    loading the libraries costs ~8 ms, and a bootstrap enters single_threaded once per chunk)."""
    import scipy.linalg  # noqa: F401  (loads scipy's own OpenBLAS, so that it is limited too)

    out = []
    for path in _loaded_openblas():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in _PAIRS:
            if hasattr(lib, set_name) and hasattr(lib, get_name):
                setter, getter = getattr(lib, set_name), getattr(lib, get_name)
                setter.argtypes, getter.restype = [ctypes.c_int], ctypes.c_int
                out.append((setter, getter))
                break
    return out


def set_threads(n: int) -> None:
    """Use n BLAS threads in this process from now on (a worker's initializer)."""
    for setter, _ in _controls():
        setter(n)


@contextlib.contextmanager
def single_threaded():
    """One BLAS thread inside the block; the previous counts afterwards."""
    with _counts(_controls(), lambda old: 1):
        yield


@contextlib.contextmanager
def _counts(controls, count):
    """Each library's thread count set to count(its current one) inside the block, restored afterwards."""
    saved = [getter() for _, getter in controls]
    for (setter, _), old in zip(controls, saved):
        setter(count(old))
    try:
        yield
    finally:
        for (setter, _), old in zip(controls, saved):
            setter(old)


def cores() -> int:
    """The number of cores this process may run on."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):
        return max(os.cpu_count() or 1, 1)


@contextlib.contextmanager
def all_cores(work: float):
    """Every core's BLAS thread inside the block when work (its multiply-adds) is at least BIG_WORK, the
    other cores are idle (others_idle) and the count is not FIXED; the previous counts afterwards.
    Otherwise it changes nothing."""
    controls = _controls() if work >= BIG_WORK and not FIXED and others_idle() else []
    n = cores()
    with _counts(controls, lambda old: max(n, old)):
        yield


def others_idle() -> bool:
    """Whether other processes left this process's cores idle (at most IDLE_SHARE of one core on
    average) over the last window of at least WINDOW seconds; False until one has passed (the first
    starts when this module is imported), or where /proc/stat cannot be read (another OS). A new
    window's reading costs ~20 us; within a window the last answer is returned."""
    global _window
    start, mine0, busy0, idle = _window
    now = time.monotonic()
    if now - start < WINDOW or busy0 is None:       # within the window /proc/stat is not read again
        return idle
    # process_time: this process's CPU seconds, all its threads (BLAS's spinning ones included)
    mine, busy = time.process_time(), _busy_ticks()
    if busy is None:
        return False
    others = (busy - busy0) / _ticks_per_second() - (mine - mine0)
    idle = others <= IDLE_SHARE * (now - start)
    _window = (now, mine, busy, idle)
    return idle


@functools.cache
def _ticks_per_second() -> int:
    return os.sysconf("SC_CLK_TCK")


def _busy_ticks() -> int | None:
    """The busy ticks (user, nice, system, irq, softirq and steal: not idle, iowait or the guest counts,
    which user and nice include) of the cores this process may run on, from /proc/stat."""
    try:
        cpus = os.sched_getaffinity(0)
        with open("/proc/stat") as fh:
            total = 0
            for line in fh:
                if line.startswith("cpu") and line[3].isdigit():
                    name, *counts = line.split()
                    if int(name[3:]) in cpus:
                        values = [int(c) for c in counts]
                        total += sum(values[:3]) + sum(values[5:8])
        return total
    except (AttributeError, OSError, ValueError, IndexError):
        return None


# (monotonic time, this process's CPU seconds, busy ticks, idle) at the window's start: the first window
# starts at import, so that a fit's first big factors (~0.3 s later on InstEval) can already use it
_window: tuple = (time.monotonic(), time.process_time(), _busy_ticks(), False)
