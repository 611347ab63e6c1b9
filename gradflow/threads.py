"""Thread counts of the linear-algebra libraries, for the small matrices of these flows.

Environment variables (``OPENBLAS_NUM_THREADS=1``) only act before NumPy is imported; this
module changes the thread count of every OpenBLAS already loaded, for one block of code.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["one_blas_thread"]

_SET_THREADS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                "openblas_set_num_threads64_", "openblas_set_num_threads")
_GET_THREADS = tuple(name.replace("set_num", "get_num") for name in _SET_THREADS)


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block with every loaded OpenBLAS limited to one thread, then restore.

    The implicit solvers factorise a flow's Jacobian at each step; OpenBLAS threads that LU
    over the cores, and on a loaded 2-core machine each factorisation then waits for the
    scheduler: measured, ``scipy.linalg.lu_factor`` of a 240 × 240 matrix took 140 ms with 2
    threads and 0.36 ms with 1, and an LSODA run of the representation-ICL model 5.9 s instead
    of 0.37 s (``gradflow.papers.representation_icl.protocol``). Only the libraries' thread
    counts change (never the arithmetic's result beyond rounding); on a system without
    OpenBLAS, or without ``/proc/self/maps``, this does nothing.
    """
    restore = []
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = sorted({line.split()[-1] for line in maps
                            if "openblas" in line.lower() and line.split()[-1].startswith("/")})
    except OSError:
        paths = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in zip(_SET_THREADS, _GET_THREADS, strict=True):
            setter, getter = getattr(lib, set_name, None), getattr(lib, get_name, None)
            if setter is not None and getter is not None:
                restore.append((setter, int(getter())))
                setter(1)
                break
    try:
        yield
    finally:
        for setter, threads in restore:
            setter(threads)
