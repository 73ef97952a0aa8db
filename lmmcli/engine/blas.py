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
a 4,000^2 Cholesky went from 1.13 s to 0.80 s with 2 threads).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os

# Dense work (multiply-adds) from which all cores pay: ~20 ms on one thread at this machine's ~47 GFlop/s,
# well above the thread start-up and hand-off costs that made small problems slower threaded.
BIG_WORK = 1e9

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
    controls = _controls()
    saved = [getter() for _, getter in controls]
    for setter, _ in controls:
        setter(1)
    try:
        yield
    finally:
        for (setter, _), n in zip(controls, saved):
            setter(n)


def cores() -> int:
    """The number of cores this process may run on."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):
        return max(os.cpu_count() or 1, 1)


@contextlib.contextmanager
def all_cores(work: float):
    """Every core's BLAS thread inside the block when work (its multiply-adds) is at least BIG_WORK;
    the previous counts afterwards. Below BIG_WORK it changes nothing."""
    controls = _controls() if work >= BIG_WORK else []
    saved = [getter() for _, getter in controls]
    n = cores()
    for (setter, _), old in zip(controls, saved):
        setter(max(n, old))
    try:
        yield
    finally:
        for (setter, _), old in zip(controls, saved):
            setter(old)
