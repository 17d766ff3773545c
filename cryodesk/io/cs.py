"""CryoSPARC ``.cs`` datasets: NumPy structured arrays, one row per item.

API summary
-----------
``read_cs(path, fields=None, mmap=False) -> ndarray``
    NumPy (``\\x93NUMPY``) or compressed (``\\x95CSDAT``) encoding; validated.
``write_cs(path, data, durable=False, format="numpy", replace=None) -> Path``
    ``np.save`` encoding (what every CryoSPARC reads) or ``format="csdat"``, the
    compressed encoding of CryoSPARC >= 4.4; str/object columns become
    fixed-width bytes (numpy) or heap strings (csdat); atomic (temp name + rename).
``from_columns(columns, n=None) -> ndarray``   (kept as its columns: :class:`cryodesk.io.cs_columns.Columns`)
    Build a dataset from ``{field: values}``; known CryoSPARC fields get their
    canonical dtype (:data:`FIELD_DTYPES`), strings become ``S<n>``.
``new_uids(n) -> ndarray[uint64]``
``join_on_uid(main, *others) -> ndarray``
    Add fields of ``others`` (passthrough files) to ``main``, rows matched by ``uid``.
``resolve_blob_path(raw, base_dir, meta_dir) -> Path``
    ``">rel"`` is relative to the metadata file's dir, ``"rel"`` to ``base_dir``.
``as_str(values) -> list[str]``
``unique_first(values) -> (distinct values in first-seen order, inverse)`` (:mod:`cryodesk.io.runs`)
``write_cs_replacing(path, data, replace, durable=False, format="numpy") -> Path``
    ``data`` with some fields replaced (an array per row, or ``(table, index)``
    so a string column is never materialised per row), known fields in their
    canonical dtype; streamed in chunks: memory stays at ``data`` plus a chunk.
``check_particle_rows(data, source)``
    Refuse (DataError naming ``source`` and the row) an empty set, a
    ``blob/idx`` that is not a whole number >= 0, and repeated uids; vectorised.
``ParticleSet.load(meta_path, base_dir=None, passthrough=())``
    ``.data``, ``len()``, ``.stack_paths()``, ``.groups() -> {Path: row indices}``.

Paths in ``blob/path`` are usually relative to the CryoSPARC *project*
directory (``J3/extract/foo.mrc``); indices in ``blob/idx`` are 0-based.
"""

from __future__ import annotations

import math
import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.lib import recfunctions as rfn

from cryodesk.base.errors import DataError
from cryodesk.base.fsio import AtomicFile
from cryodesk.base.nofollow import require_regular
from cryodesk.io.cs_columns import fill_rows, plan_columns
from cryodesk.io.cs_fields import _S, FIELD_DTYPES, _encode, new_uids
from cryodesk.io.csdat import is_csdat, read_csdat, write_csdat
from cryodesk.io.runs import unique_first

__all__ = ["FIELD_DTYPES", "CS_FORMATS", "read_cs", "write_cs", "from_columns", "new_uids", "join_on_uid",
           "resolve_blob_path", "as_str", "ParticleSet", "result_prefixes", "check_particle_rows",
           "unique_first", "write_cs_replacing"]

_MAX_NPY_HEADER = 1 << 24
# numpy parses a .npy header with ast.literal_eval; CPython 3.11's AST builder
# keeps one recursion counter per interpreter, so two threads parsing at once
# can fail with "SystemError: AST constructor recursion depth mismatch"
# (CPython gh-106905; seen here when two jobs read .cs files at once).  The
# header is parsed under this lock; the data is read outside it.
_NPY_HEADER_LOCK = threading.Lock()


def _load_npy(path: Path, mmap: bool) -> np.ndarray:
    """``np.load`` of a structured .npy file, header parsed under :data:`_NPY_HEADER_LOCK`."""
    fmt = np.lib.format
    with open(path, "rb") as fh:
        with _NPY_HEADER_LOCK:
            version = fmt.read_magic(fh)
            read_header = {(1, 0): fmt.read_array_header_1_0}.get(version, fmt.read_array_header_2_0)
            shape, fortran, dtype = read_header(fh, max_header_size=_MAX_NPY_HEADER)
        if dtype.hasobject:
            raise ValueError("object arrays are not allowed (the file would need pickle)")
        offset = fh.tell()
        count = math.prod(shape)
        have = os.fstat(fh.fileno()).st_size - offset
        if count * dtype.itemsize > have:  # before allocating: a crafted header asked for 728 TiB
            raise EOFError(f"file is truncated: its header says {count} records ({count * dtype.itemsize} bytes), "
                           f"the file holds {have} bytes")
        if mmap:
            if count == 0:
                return np.zeros(shape, dtype)
            return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape,
                             order="F" if fortran else "C")
        data = np.fromfile(fh, dtype=dtype, count=count)
    if data.size != count:
        raise EOFError(f"file is truncated: {data.size} of {count} records")
    return data.reshape(shape, order="F" if fortran else "C")
#: ``write_cs`` encodings: ``numpy`` (every CryoSPARC version) and ``csdat`` (compressed, CryoSPARC >= 4.4)
CS_FORMATS = ("numpy", "csdat")


def _bad(path, why: str) -> DataError:
    return DataError(f"{path}: malformed CryoSPARC dataset: {why}")


def read_cs(path: Path | str, fields=None, mmap: bool = False) -> np.ndarray:
    """Read a ``.cs`` dataset.

    Parameters
    ----------
    path : path-like
    fields : sequence of str, optional
        Keep only these fields (``uid`` is always kept).
    mmap : bool
        Memory-map a NumPy-encoded file instead of reading it (large datasets).

    Raises
    ------
    DataError
        Missing file, unknown encoding, truncated or non-structured array, no ``uid``.
    """
    path = Path(path)
    require_regular(path, "dataset file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(6)
    except FileNotFoundError:
        raise DataError(f"{path}: dataset file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read dataset ({exc.strerror or exc})") from None
    if is_csdat(head):
        data = read_csdat(path, fields)
    elif head == b"\x93NUMPY":
        try:
            # CryoSPARC datasets with hundreds of fields have .npy headers far
            # beyond numpy's 10 kB default limit; the header is a literal, not pickle.
            data = _load_npy(path, mmap)
        except (ValueError, EOFError, OSError, TypeError) as exc:
            raise _bad(path, f"{exc}") from None
        except MemoryError:
            raise _bad(path, "too large to load into memory") from None
    else:
        raise _bad(path, "not a NumPy or CSDAT file (wrong magic bytes)")
    if data.dtype.names is None or data.ndim != 1:
        raise _bad(path, f"expected a 1-D structured array, got {data.dtype} with shape {data.shape}")
    if "uid" not in data.dtype.names:
        raise _bad(path, "no 'uid' field")
    if fields is not None:
        missing = [f for f in fields if f not in data.dtype.names]
        if missing:
            raise DataError(f"{path}: dataset has no field(s) {', '.join(missing)}")
        keep = ["uid"] + [f for f in fields if f != "uid"]
        data = rfn.repack_fields(data[keep]) if not mmap else data[keep]
    return data


def _fixed(data: np.ndarray) -> np.ndarray:
    """``data`` with str/object columns as fixed-width bytes (itself when it has none)."""
    if not any(data.dtype.fields[n][0].base.kind in "OU" for n in data.dtype.names):
        return data
    descr, cols = [], {}
    for name in data.dtype.names:
        col = data[name]
        if col.dtype.kind in "OU":
            col = _encode(col)
        cols[name] = col
        descr.append((name, col.dtype.base if col.ndim > 1 else col.dtype, col.shape[1:]))
    out = np.empty(len(data), dtype=descr)
    for name, col in cols.items():
        out[name] = col
    return out


def write_cs(path: Path | str, data: np.ndarray, durable: bool = False, format: str = "numpy",
             replace: dict | None = None) -> Path:
    """Save ``data`` as a ``.cs`` file, atomically.

    The file appears under ``path`` only once complete
    (:class:`~cryodesk.base.fsio.AtomicFile`; ``durable`` fsyncs it first).
    ``format="numpy"``: ``np.save`` is given an open handle so no ``.npy``
    suffix is appended; ``format="csdat"``: :func:`~cryodesk.io.csdat.write_csdat`.
    ``replace``: fields to replace or add, streamed (:func:`write_cs_replacing`).
    """
    if replace is not None:
        return write_cs_replacing(path, data, replace, durable, format)
    path = Path(path)
    if data.dtype.names is None or "uid" not in data.dtype.names:
        raise DataError(f"{path}: refusing to write a dataset without a 'uid' field")
    if format not in CS_FORMATS:
        raise DataError(f"{path}: unknown .cs format {format!r} (one of {', '.join(CS_FORMATS)})")
    if format == "csdat":
        return write_csdat(path, data, durable)
    out = _fixed(data)
    with AtomicFile(path, durable) as f, warnings.catch_warnings():
        # very wide datasets need .npy format 2.0; numpy warns, CryoSPARC reads it fine
        warnings.filterwarnings("ignore", "Stored array in format", UserWarning)
        np.save(f.fh, out, allow_pickle=False)
    return path


def from_columns(columns: dict, n: int | None = None) -> np.ndarray:
    """Build a dataset from ``{field: values}`` (scalars are broadcast).

    Known fields (:data:`FIELD_DTYPES`) get CryoSPARC's dtype; ``uid`` is
    generated when absent; string values become ``S<n>`` bytes.  (The same
    dataset, kept as its columns: :class:`cryodesk.io.cs_columns.Columns`.)
    """
    dtype, arrays, per_row, n = plan_columns(columns, n)
    out = np.zeros(n, dtype=dtype)
    fill_rows(out, arrays, per_row)
    return out


def result_prefixes(data: np.ndarray) -> list[str]:
    """The result names in ``data`` (``blob``, ``ctf``...), in field order."""
    seen: dict[str, None] = {}
    for name in data.dtype.names:
        if "/" in name:
            seen.setdefault(name.split("/", 1)[0], None)
    return list(seen)


def join_on_uid(main: np.ndarray, *others: np.ndarray) -> np.ndarray:
    """``main`` plus the fields of each of ``others`` it lacks, matched by ``uid``.

    Row order and count follow ``main``; every uid of ``main`` must occur in
    each passthrough dataset (else DataError).
    """
    out = main
    for other in others:
        new = [f for f in other.dtype.names if f not in out.dtype.names]
        if not new:
            continue
        order = np.argsort(other["uid"], kind="stable")
        pos = np.searchsorted(other["uid"], out["uid"], sorter=order)
        pos = np.clip(pos, 0, max(len(other) - 1, 0))
        rows = order[pos] if len(other) else pos
        if len(out) and (len(other) == 0 or np.any(other["uid"][rows] != out["uid"])):
            missing = int(np.sum(len(other) == 0 or other["uid"][rows] != out["uid"]))
            raise DataError(f"passthrough dataset lacks {missing} of the {len(out)} particle uids")
        descr = [(n, out.dtype.fields[n][0]) for n in out.dtype.names]
        descr += [(n, other.dtype.fields[n][0]) for n in new]
        joined = np.empty(len(out), dtype=descr)
        for n in out.dtype.names:
            joined[n] = out[n]
        for n in new:
            joined[n] = other[n][rows]
        out = joined
    return out


def _out_dtype(name: str, src: np.dtype, sub: tuple) -> tuple:
    """The descr entry of ``name`` in a written dataset: CryoSPARC's canonical dtype when the shape fits."""
    base, shape = FIELD_DTYPES.get(name, (None, None))
    if src.kind == "S":
        return (name, np.dtype(f"S{max(src.itemsize, 1)}"), sub)
    if base is not None and base != _S and tuple(shape) == tuple(sub) and src.kind in "biuf":
        return (name, np.dtype(base), sub)
    return (name, src, sub)


def write_cs_replacing(path: Path | str, data: np.ndarray, replace: dict | None = None, durable: bool = False,
                       format: str = "numpy", chunk_rows: int | None = None) -> Path:
    """Save ``data`` with fields replaced or added, without a second copy of the dataset in memory.

    Parameters
    ----------
    path : path-like
    data : structured ndarray (may be a read-only memory map)
    replace : {field: values}
        ``values`` is an array with one entry (or row) per particle, or a
        ``(table, index)`` pair meaning ``table[index]`` (a string column of a
        few distinct values is then never built per row).  Fields not in
        ``data`` are appended.  str values are written as UTF-8 bytes.
    durable, format
        As :func:`write_cs` (``csdat`` builds the whole array first).
    chunk_rows
        Rows filled and written at a time (default: ~1 MiB of them).

    Known fields (:data:`FIELD_DTYPES`) are written in CryoSPARC's dtype, as :func:`from_columns` gives them.
    """
    path = Path(path)
    n = len(data)
    replace = dict(replace or {})
    tables: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    arrays: dict[str, np.ndarray] = {}
    for name, spec in replace.items():
        if isinstance(spec, tuple):
            table, index = np.asarray(spec[0]), np.asarray(spec[1])
            if table.dtype.kind in "OU":
                table = _encode(table)
            if len(index) != n:
                raise ValueError(f"{name}: {len(index)} indices for {n} rows")
            tables[name] = (table, index)
        else:
            arr = np.asarray(spec)
            if arr.dtype.kind in "OU":
                arr = _encode(arr)
            if arr.ndim == 0:
                arr = np.broadcast_to(arr, (n,))
            if len(arr) != n:
                raise ValueError(f"{name}: {len(arr)} values for {n} rows")
            arrays[name] = arr
    names = list(data.dtype.names) + [k for k in replace if k not in data.dtype.names]
    if "uid" not in names:
        raise DataError(f"{path}: refusing to write a dataset without a 'uid' field")
    descr = []
    for name in names:
        if name in tables:
            t = tables[name][0]
            src, sub = t.dtype, t.shape[1:]
        elif name in arrays:
            src, sub = arrays[name].dtype, arrays[name].shape[1:]
        else:
            field_dt = data.dtype.fields[name][0]
            src, sub = field_dt.base, field_dt.shape
            if src.kind in "OU":
                arrays[name] = _encode(data[name])
                src = arrays[name].dtype
        descr.append(_out_dtype(name, src, tuple(sub)))
    dtype = np.dtype(descr)

    # Fields written unchanged (same dtype, same order) form runs of bytes at the same place in every
    # record of both arrays: each run is copied as one block of bytes, not field by field.
    runs: list[list] = []  # [in offset, out offset, nbytes]
    per_field: list[str] = []
    raw_in = None
    if isinstance(data, np.ndarray) and data.flags.c_contiguous and data.dtype.itemsize and n:  # (not Columns)
        raw_in = data.view(np.uint8).reshape(n, data.dtype.itemsize)
    # A replaced field of the same size at the same place between two such runs is copied with them
    # (one block instead of two) and then overwritten: the runs are copied before the other fields.
    bridged = 0  # bytes of replaced fields after the last run, continuing it in both records
    for name in names:
        plain = name not in tables and name not in arrays and raw_in is not None
        off_out, size = dtype.fields[name][1], dtype.fields[name][0].itemsize
        if plain and data.dtype.fields[name][0] == dtype.fields[name][0]:
            off_in = data.dtype.fields[name][1]
            if (runs and bridged >= 0 and runs[-1][0] + runs[-1][2] + bridged == off_in
                    and runs[-1][1] + runs[-1][2] + bridged == off_out):
                runs[-1][2] += bridged + size
            else:
                runs.append([off_in, off_out, size])
            bridged = 0
        else:
            per_field.append(name)
            src = data.dtype.fields.get(name)
            if (bridged >= 0 and runs and src is not None and src[0].itemsize == size
                    and runs[-1][0] + runs[-1][2] + bridged == src[1]
                    and runs[-1][1] + runs[-1][2] + bridged == off_out):
                bridged += size
            else:
                bridged = -1  # the next plain field starts a run of its own
    # a (table, index) column whose index comes in runs (a stack's particles together) is filled a run
    # at a time, each run from one table entry, instead of a gather of every row
    table_runs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, (_table, index) in tables.items():
        if n and index.ndim == 1:
            heads = np.flatnonzero(index[1:] != index[:-1]) + 1
            if heads.size < n // 64:
                bounds = np.concatenate([[0], heads, [n]])
                table_runs[name] = (bounds, index[bounds[:-1]])

    def fill(buf: np.ndarray, start: int, stop: int) -> None:
        if runs:
            raw_out = buf.view(np.uint8).reshape(len(buf), dtype.itemsize)
            for off_in, off_out, size in runs:
                raw_out[:, off_out:off_out + size] = raw_in[start:stop, off_in:off_in + size]
        for name in per_field:
            if name in table_runs:
                table = tables[name][0]
                bounds, values = table_runs[name]
                col = buf[name]
                first = int(np.searchsorted(bounds, start, "right")) - 1
                last = int(np.searchsorted(bounds, stop, "left"))
                for j in range(first, last):
                    col[max(int(bounds[j]), start) - start:min(int(bounds[j + 1]), stop) - start] = table[values[j]]
            elif name in tables:
                table, index = tables[name]
                buf[name] = table[index[start:stop]]
            elif name in arrays:
                buf[name] = arrays[name][start:stop]
            else:
                buf[name] = data[name][start:stop]

    if format not in CS_FORMATS:
        raise DataError(f"{path}: unknown .cs format {format!r} (one of {', '.join(CS_FORMATS)})")
    if format == "csdat":
        out = np.empty(n, dtype=dtype)
        fill(out, 0, n)
        return write_csdat(path, out, durable)
    header = {"descr": (fmt := np.lib.format).dtype_to_descr(dtype), "fortran_order": False, "shape": (n,)}
    # ~1 MiB chunks, filled and written while in the CPU's cache (18 MB ones: 0.6 s against 0.37 s for 1M rows)
    chunk_rows = chunk_rows or max(64, (1 << 20) // max(dtype.itemsize, 1))
    buf = np.empty(min(max(n, 1), chunk_rows), dtype=dtype)
    with AtomicFile(path, durable) as f:
        try:
            fmt.write_array_header_1_0(f.fh, header)
        except ValueError:  # very wide datasets need format 2.0 (CryoSPARC reads it)
            fmt.write_array_header_2_0(f.fh, header)
        for start in range(0, n, chunk_rows):
            stop = min(n, start + chunk_rows)
            part = buf[:stop - start]
            fill(part, start, stop)
            f.fh.write(memoryview(part).cast("B"))
    return path


def as_str(values) -> list[str]:
    """Decode a bytes/str column to a list of ``str``."""
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.asarray(values).tolist()]


def check_particle_rows(data: np.ndarray, source) -> None:
    """Refuse a particle dataset that cannot be imported as it is (see module summary).

    Every check is a numpy pass over one column (a sort for the uids), so a
    million rows cost milliseconds.
    """
    n = len(data)
    if n == 0:
        raise DataError(f"{source}: the particle set has 0 particles: nothing to import")
    idx = data["blob/idx"]
    if idx.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(idx) | (idx < 0) | (idx != np.floor(idx)) | (idx >= 2.0**32)
        if bad.any():
            rows = np.flatnonzero(bad)
            raise DataError(f"{source}: blob/idx of row {int(rows[0])} is {idx[rows[0]].item()!r}, not an image "
                            f"index (a whole number >= 0)"
                            + (f"; {rows.size - 1} more such rows" if rows.size > 1 else ""))
    elif idx.dtype.kind not in "iu" or idx.ndim != 1:
        raise DataError(f"{source}: blob/idx has dtype {idx.dtype}{idx.shape[1:] or ''}: expected integer "
                        f"image indices")
    uid = data["uid"]
    if uid.dtype.kind not in "iu" or uid.ndim != 1:
        raise DataError(f"{source}: uid has dtype {uid.dtype}: expected 64-bit integers")
    ordered = np.sort(uid)
    if np.any(ordered[1:] == ordered[:-1]):
        order = np.argsort(uid, kind="stable")
        same = uid[order[1:]] == uid[order[:-1]]
        k = int(np.argmax(same))
        first, second = sorted((int(order[k]), int(order[k + 1])))
        dups = int(np.count_nonzero(same))
        raise DataError(f"{source}: uid {int(uid[first])} appears more than once (rows {first} and {second}"
                        + (f"; {dups} repeated uids in all" if dups > 1 else "")
                        + "): every particle needs its own uid")


def resolve_blob_path(raw: str | bytes, base_dir: Path, meta_dir: Path | None = None) -> Path:
    """Where the stack named by a ``blob/path`` value lives.

    A leading ``>`` (CryoSPARC's exported datasets) marks a path relative to
    the directory of the metadata file itself; other relative paths are taken
    relative to ``base_dir``; absolute paths are kept.
    """
    text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
    if text.startswith(">"):
        return Path(meta_dir if meta_dir is not None else base_dir) / text[1:]
    p = Path(text)
    return p if p.is_absolute() else Path(base_dir) / p


@dataclass
class ParticleSet:
    """A particle dataset plus where its stacks are.

    Attributes
    ----------
    data : ndarray
        The dataset (passthrough fields joined on ``uid``).
    meta_path : Path
        The ``.cs`` file it came from.
    base_dir : Path
        What relative ``blob/path`` values are relative to.
    """

    data: np.ndarray
    meta_path: Path
    base_dir: Path
    _paths: list[Path] | None = field(default=None, repr=False)
    _index: tuple[list[Path], np.ndarray] | None = field(default=None, repr=False)

    @classmethod
    def load(cls, meta_path: Path | str, base_dir: Path | str | None = None,
             passthrough=()) -> "ParticleSet":
        """Read ``meta_path`` (+ passthrough ``.cs`` files) and check the blob fields."""
        meta_path = Path(meta_path)
        data = read_cs(meta_path)
        data = join_on_uid(data, *(read_cs(p) for p in passthrough))
        for f in ("blob/path", "blob/idx"):
            if f not in data.dtype.names:
                raise DataError(f"{meta_path}: not a particle dataset (no {f!r} field)")
        return cls(data, meta_path, Path(base_dir) if base_dir is not None else meta_path.parent)

    def __len__(self) -> int:
        return len(self.data)

    def stack_index(self) -> tuple[list[Path], np.ndarray]:
        """Distinct resolved stack paths (first-seen order) and each row's index into them.

        Two raw spellings of one file (``a/../b.mrc``, ``b.mrc``) are one stack.
        """
        if self._index is None:
            raw, inv = unique_first(self.data["blob/path"])
            resolved = [resolve_blob_path(r, self.base_dir, self.meta_path.parent) for r in raw.tolist()]
            distinct: dict[Path, int] = {}
            remap = np.array([distinct.setdefault(p, len(distinct)) for p in resolved], dtype=np.int64)
            self._index = (list(distinct), remap[inv] if len(distinct) < len(resolved) else inv)
        paths, inv = self._index
        return list(paths), inv

    def stack_paths(self) -> list[Path]:
        """The resolved stack path of every particle (one entry per row)."""
        if self._paths is None:
            paths, inv = self.stack_index()
            self._paths = [paths[i] for i in inv.tolist()]
        return self._paths

    def groups(self) -> dict[Path, np.ndarray]:
        """``{stack path: row indices}``, stacks in first-seen order, rows ascending."""
        paths, inv = self.stack_index()
        order = np.argsort(inv, kind="stable")
        splits = np.split(order, np.cumsum(np.bincount(inv, minlength=len(paths)))[:-1])
        return dict(zip(paths, splits))
