"""Many symlinks in one directory, made by one compiled loop that holds no GIL.

A symlink is a file-system entry of its own: 30 us to 0.5 ms of kernel time
each here, so an export of 5,000 stacks spends seconds in ``symlinkat``.  Made
from a Python loop in a thread, each call needs the GIL back after its system
call, and a busy main thread (converting the metadata) hands it over only every
switch interval: the two slowed each other 4x.  :func:`symlink_all` calls
``symlinkat`` from a numba kernel (the libc function bound by name, so the
kernel is cached like any other), releasing the GIL for the whole loop; without
numba it is the plain ``os.symlink`` loop.  A link that cannot be made is made
again by ``os.symlink``, which raises the system's error (naming the link).

API summary
-----------
``prepare(pairs) -> Batch``                 ``(target, name)`` pairs packed for the kernel (any thread)
``load_kernel() -> bool``                   numba's first load, on the calling thread (False: no numba)
``symlink_all(dir_fd, batch) -> None``      every link, in order; raises ``OSError`` on the first failure
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import numpy as np

from cryodesk.base.jit import HAVE_NUMBA, jit

__all__ = ["Batch", "prepare", "load_kernel", "symlink_all"]


@dataclass
class Batch:
    pairs: list[tuple[str, str]]
    buf: np.ndarray  # NUL-terminated targets and names, back to back
    toff: np.ndarray
    noff: np.ndarray


def prepare(pairs: list[tuple[str, str]]) -> Batch:
    """Pack ``(target, name)`` pairs (file-system encoding, NUL-terminated) for :func:`symlink_all`."""
    parts, toff, noff, pos = [], [], [], 0
    for target, name in pairs:
        for text, offs in ((target, toff), (name, noff)):
            raw = os.fsencode(text)
            if b"\0" in raw:
                raise ValueError(f"embedded NUL in a link path: {text!r}")
            offs.append(pos)
            parts.append(raw + b"\0")
            pos += len(raw) + 1
    buf = np.frombuffer(b"".join(parts) or b"\0", dtype=np.uint8).copy()
    return Batch(list(pairs), buf, np.array(toff, dtype=np.int64), np.array(noff, dtype=np.int64))


_kernel = None
_load_lock = threading.Lock()

if HAVE_NUMBA:
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    @intrinsic
    def _symlinkat(typingctx, buf, target, fd, name):
        """libc's ``symlinkat(buf + target, fd, buf + name)`` (declared by name: cacheable)."""
        sig = types.int32(buf, types.int64, types.int32, types.int64)

        def codegen(context, builder, signature, args):
            arr = context.make_array(signature.args[0])(context, builder, args[0])
            char_p = ir.IntType(8).as_pointer()
            fnty = ir.FunctionType(ir.IntType(32), [char_p, ir.IntType(32), char_p])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "symlinkat")
            t = builder.bitcast(builder.gep(arr.data, [args[1]]), char_p)
            n = builder.bitcast(builder.gep(arr.data, [args[3]]), char_p)
            return builder.call(fn, [t, args[2], n])

        return sig, codegen

    @jit
    def _symlink_rows(buf, toff, noff, fd, start):
        """Links ``start:`` in order; the index of the first that failed, or -1."""
        for i in range(start, len(toff)):
            if _symlinkat(buf, toff[i], np.int32(fd), noff[i]) != 0:
                return i
        return -1


def load_kernel() -> bool:
    """Load the compiled loop now (numba's first load holds the GIL: do it where that costs nothing).

    Any thread may call it, several at once (the export's link thread while numba loads in another): each
    returns once the loop is loaded, none takes the plain loop because another is loading it.
    """
    global _kernel
    with _load_lock:
        if _kernel is None:
            _kernel = False
            if HAVE_NUMBA:
                empty = np.zeros(0, dtype=np.int64)
                try:
                    _symlink_rows(np.zeros(1, dtype=np.uint8), empty, empty, -1, 0)
                except Exception:  # noqa: BLE001 - a load that fails: the plain loop, as without numba
                    return False
                _kernel = _symlink_rows
    return bool(_kernel)


def symlink_all(dir_fd: int, batch: Batch) -> None:
    """Make every link of ``batch`` in the directory ``dir_fd``, in order (see the module doc)."""
    start, n = 0, len(batch.pairs)
    while start < n:
        failed = _kernel(batch.buf, batch.toff, batch.noff, dir_fd, start) if load_kernel() else start
        if failed < 0:
            return
        target, name = batch.pairs[failed]
        os.symlink(target, name, dir_fd=dir_fd)  # raises the error; if it worked now, go on
        start = failed + 1
