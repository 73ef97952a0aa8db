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
def test_all_cores_raises_for_big_work_only_and_restores():
    with blas.single_threaded():
        with blas.all_cores(blas.BIG_WORK / 2):
            assert _counts() == [1] * len(_counts())
        with blas.all_cores(blas.BIG_WORK):
            assert _counts() == [blas.cores()] * len(_counts())
        assert _counts() == [1] * len(_counts())
