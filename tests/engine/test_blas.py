"""lmmcli.engine.blas: one OpenBLAS thread inside single_threaded(), the previous count restored after."""

from __future__ import annotations

import pytest

from lmmcli.engine import blas


def _counts():
    return [get() for _, get in blas._controls()]


@pytest.mark.skipif(not blas._controls(), reason="no OpenBLAS found in this process (another BLAS or OS)")
def test_single_threaded_sets_one_and_restores():
    before = _counts()
    with blas.single_threaded():
        assert _counts() == [1] * len(before)
    assert _counts() == before


def test_finds_the_bundled_openblas_on_linux():
    """numpy and scipy wheels bundle OpenBLAS; both copies must be controlled (else spinning threads)."""
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("the library search reads /proc/self/maps")
    assert len(blas._loaded_openblas()) >= 1
    assert len(blas._controls()) == len(blas._loaded_openblas())


@pytest.mark.skipif(not blas._controls(), reason="no OpenBLAS found in this process (another BLAS or OS)")
def test_all_cores_raises_for_big_work_only_and_restores(monkeypatch):
    monkeypatch.setattr(blas, "others_idle", lambda: True)
    with blas.single_threaded():
        with blas.all_cores(blas.BIG_WORK / 2):
            assert _counts() == [1] * len(_counts())
        with blas.all_cores(blas.BIG_WORK):
            assert _counts() == [blas.cores()] * len(_counts())
        assert _counts() == [1] * len(_counts())


@pytest.mark.skipif(not blas._controls(), reason="no OpenBLAS found in this process (another BLAS or OS)")
def test_all_cores_keeps_one_thread_while_other_processes_use_the_cores(monkeypatch):
    monkeypatch.setattr(blas, "others_idle", lambda: False)
    with blas.single_threaded():
        with blas.all_cores(blas.BIG_WORK * 100):
            assert _counts() == [1] * len(_counts())


class _Clock:
    """Fake time, CPU seconds of this process and busy ticks of the cores (100 ticks a second)."""

    def __init__(self, monkeypatch):
        self.now, self.mine, self.ticks = 100.0, 5.0, 10_000
        monkeypatch.setattr(blas.time, "monotonic", lambda: self.now)
        monkeypatch.setattr(blas.time, "process_time", lambda: self.mine)
        monkeypatch.setattr(blas, "_busy_ticks", lambda: self.ticks)
        monkeypatch.setattr(blas, "_ticks_per_second", lambda: 100)
        monkeypatch.setattr(blas, "_window", (self.now, self.mine, self.ticks, False))

    def run(self, seconds, mine, others):
        """seconds pass; this process uses `mine` cores' worth of CPU, other processes `others`."""
        self.now += seconds
        self.mine += mine * seconds
        self.ticks += round((mine + others) * seconds * 100)


def test_others_idle_needs_a_full_window_and_reads_only_other_processes_use(monkeypatch):
    c = _Clock(monkeypatch)
    c.run(blas.WINDOW / 2, mine=1.0, others=0.0)
    assert not blas.others_idle()             # the first window has not passed: one thread
    c.run(blas.WINDOW, mine=1.9, others=0.0)  # this process on both cores (its BLAS threads): still idle
    assert blas.others_idle()
    c.run(blas.WINDOW / 10, mine=1.0, others=1.0)
    assert blas.others_idle()                 # within the window the last answer stands
    c.run(blas.WINDOW, mine=1.0, others=1.0)  # another process takes the second core
    assert not blas.others_idle()
    c.run(blas.WINDOW, mine=1.0, others=0.1)  # a little background work counts as idle
    assert blas.others_idle()


def test_others_idle_is_false_without_proc_stat(monkeypatch):
    monkeypatch.setattr(blas, "_window", (blas.time.monotonic() - 2 * blas.WINDOW, 0.0, 0, True))
    monkeypatch.setattr(blas, "_busy_ticks", lambda: None)
    assert not blas.others_idle()


def test_busy_ticks_reads_this_machine():
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc/stat")
    a = blas._busy_ticks()
    assert isinstance(a, int) and a > 0 and blas._busy_ticks() >= a


def test_the_cli_keeps_the_count_a_user_chose(monkeypatch):
    """OPENBLAS_NUM_THREADS set by the user: all_cores never raises it (runs agree to the last digit);
    unset: one thread by default, more for big blocks on idle cores."""
    from lmmcli.cli import blas_threads

    monkeypatch.setattr(blas, "FIXED", False)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    blas_threads()
    assert blas.FIXED
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    blas_threads()
    assert not blas.FIXED and blas.os.environ["OPENBLAS_NUM_THREADS"] == "1"
