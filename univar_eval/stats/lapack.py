"""Step: eigenvalues of many symmetric matrices in single precision, on several threads at once.

The Fréchet permutation test spends most of its time in a thousand symmetric eigenvalue problems of
size m + n (about 400). ``numpy.linalg.eigvalsh`` solves them in double precision whatever the input (a
float32 matrix is converted first), and the wrappers in ``scipy.linalg.lapack`` hold the interpreter
lock, so two threads take as long as one. This module calls LAPACK's ``ssyevd`` (eigenvalues only)
through the function pointers scipy publishes for Cython (``scipy.linalg.cython_lapack``, a public
and stable interface) with :mod:`ctypes`, which releases the lock during the call: single precision
(about 1.5x faster than numpy's double) and parallel threads. Where the pointers cannot be had, or
LAPACK reports a failure for a matrix, numpy's double-precision routine answers instead (same values
to single precision). ``benchmarks/bench_frechet.py`` prints the error against double precision.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np


@functools.lru_cache(maxsize=1)
def _ssyevd():
    """The LAPACK routine ``ssyevd`` as a ctypes function (None where scipy does not publish it)."""
    try:
        from scipy.linalg import cython_lapack

        capsule = cython_lapack.__pyx_capi__["ssyevd"]
        get_name = ctypes.pythonapi.PyCapsule_GetName
        get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
        get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
        get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
        address = get_pointer(capsule, get_name(capsule))
    except (ImportError, AttributeError, KeyError, ValueError):  # pragma: no cover - depends on the scipy build
        return None
    if not address:  # pragma: no cover
        return None
    # ssyevd(jobz, uplo, n, a, lda, w, work, lwork, iwork, liwork, info): every argument by reference
    return ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 11)(address)


def available() -> bool:
    """Whether the single-precision routine is at hand (else :func:`eigvalsh_lower` uses numpy's)."""
    return _ssyevd() is not None


def eigvalsh_lower(a: np.ndarray) -> np.ndarray:
    """Eigenvalues (ascending, float64) of each symmetric matrix in ``a`` (batch, n, n), float32 and
    C-contiguous, of which only the lower triangle is read. Call it under ``threadpool_limits(1)`` from
    several threads, with :func:`available` called first: a BLAS library loaded inside the limit is not
    covered by it, and multi-threaded BLAS at this size on a busy machine can run a hundred times slower."""
    if a.dtype != np.float32 or not a.flags.c_contiguous or a.ndim != 3:
        raise ValueError("eigvalsh_lower expects a C-contiguous float32 array (batch, n, n)")
    routine = _ssyevd()
    if routine is None:  # pragma: no cover - depends on the scipy build
        return np.linalg.eigvalsh(a, UPLO="L")
    batch, n = a.shape[0], a.shape[1]
    out = np.empty((batch, n), dtype=np.float32)
    lwork = 2 * n + 1 + 64 * n  # room for the blocked reduction to tridiagonal form
    work = np.empty(lwork, dtype=np.float32)
    iwork = np.empty(1, dtype=np.int32)
    jobz, uplo = ctypes.c_char(b"N"), ctypes.c_char(b"U")  # C-order lower triangle = Fortran-order upper
    size, c_lwork, c_liwork, info = ctypes.c_int(n), ctypes.c_int(lwork), ctypes.c_int(1), ctypes.c_int(0)
    refs = [ctypes.byref(v) for v in (jobz, uplo, size)]
    scratch = np.empty((n, n), dtype=np.float32)  # LAPACK overwrites its matrix
    values = np.empty((batch, n), dtype=np.float64)
    for i in range(batch):
        np.copyto(scratch, a[i])
        routine(
            *refs,
            scratch.ctypes.data,
            ctypes.byref(size),
            out[i].ctypes.data,
            work.ctypes.data,
            ctypes.byref(c_lwork),
            iwork.ctypes.data,
            ctypes.byref(c_liwork),
            ctypes.byref(info),
        )
        if info.value == 0:
            values[i] = out[i]
        else:  # pragma: no cover - no convergence (LAPACK rarely fails): numpy answers for this matrix
            values[i] = np.linalg.eigvalsh(a[i], UPLO="L")
    return values
