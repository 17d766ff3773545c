"""Benchmark: reading a compressed CryoSPARC ``.cs`` (CSDAT) — the ``lz4`` package vs the old pure-Python decoder.

Builds a particle dataset of ``--rows`` rows (default 1,000,000) shaped like
an extract/2D-classification output: per-micrograph CTF values repeated over
its ~300 particles, small integer indices and classes, random uids, shifts
and poses; every column LZ4-compressed as cryosparc-tools writes it.  Then
times :func:`cryodesk.io.csdat.read_csdat` (the whole read: file, header,
every column, the structured array) in interleaved rounds, once with the
``lz4`` package (what cryodesk uses) and once with the pure-Python block
decoder that cryodesk had before (copied below), and checks both give the
same array; and, apart, the column blocks alone (decompression only).
Reports the median and min–max of each, and the speed-ups.

Usage::

    .venv/bin/python benchmarks/csdat_decode.py [--rows 1000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import struct
import tempfile
import time
from pathlib import Path

import lz4.block
import numpy as np

from cryodesk.io import csdat


def old_decompress(src: bytes, size: int, name: str = "") -> bytes:
    """The pure-Python LZ4 block decoder cryodesk used before the ``lz4`` package (baseline)."""
    out = bytearray()
    i, n = 0, len(src)
    while i < n:
        token = src[i]
        i += 1
        lit = token >> 4
        if lit == 15:
            while True:
                b = src[i]
                i += 1
                lit += b
                if b != 255:
                    break
        out += src[i:i + lit]
        i += lit
        if i >= n:
            break
        offset = src[i] | (src[i + 1] << 8)
        i += 2
        mlen = token & 15
        if mlen == 15:
            while True:
                b = src[i]
                i += 1
                mlen += b
                if b != 255:
                    break
        mlen += 4
        if offset == 0 or offset > len(out):
            raise ValueError("corrupt LZ4 block (bad match offset)")
        start = len(out) - offset
        if offset >= mlen:
            out += out[start:start + mlen]
        else:
            period = bytes(out[start:])
            reps, rest = divmod(mlen, offset)
            out += period * reps + period[:rest]
    if len(out) != size:
        raise ValueError(f"corrupt LZ4 block ({len(out)} bytes decoded, expected {size})")
    return bytes(out)


def particles(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mic = np.sort(rng.integers(0, max(1, n // 300), n))  # ~300 particles per micrograph
    n_mic = int(mic.max()) + 1
    df = rng.uniform(8e3, 3e4, n_mic).astype("<f4")
    return {
        "uid": rng.integers(1, 2**63, n, dtype=np.uint64),
        "blob/idx": (np.arange(n) % 300).astype("<u4"),
        "blob/shape": np.full((n, 2), 256, "<u4"),
        "blob/psize_A": np.full(n, 1.06, "<f4"),
        "ctf/df1_A": df[mic],
        "ctf/df2_A": df[mic] - 150,
        "ctf/df_angle_rad": rng.uniform(0, np.pi, n_mic).astype("<f4")[mic],
        "ctf/accel_kv": np.full(n, 300, "<f4"),
        "alignments2D/class": rng.integers(0, 50, n).astype("<u4"),
        "alignments2D/shift": rng.normal(0, 2, (n, 2)).astype("<f4"),
        "alignments2D/pose": rng.uniform(-np.pi, np.pi, n).astype("<f4"),
    }


def encode(columns: dict[str, np.ndarray]) -> bytes:
    """CSDAT bytes of numeric ``columns``, every column an LZ4 block (empty string heap)."""
    n = len(next(iter(columns.values())))
    descr = [[k, v.dtype.str, list(v.shape[1:])] if v.ndim > 1 else [k, v.dtype.str] for k, v in columns.items()]
    header = json.dumps({"length": n, "dtype": descr, "compression": "lz4",
                         "compressed_fields": list(columns)}).encode()
    out = bytearray(csdat.MAGIC + struct.pack("<I", len(header)) + header)
    for v in columns.values():
        block = lz4.block.compress(np.ascontiguousarray(v).tobytes(), store_size=False)
        out += struct.pack("<I", len(block)) + block
    return bytes(out + b"\0")


def blocks_of(columns: dict[str, np.ndarray]) -> list[tuple[bytes, int]]:
    return [(lz4.block.compress(np.ascontiguousarray(v).tobytes(), store_size=False), v.nbytes)
            for v in columns.values()]


def report(title: str, times: dict[str, list[float]]) -> None:
    print(title)
    for name, ts in times.items():
        print(f"  {name:12s} median {statistics.median(ts):8.3f} s   (min {min(ts):.3f} – max {max(ts):.3f}, "
              f"{len(ts)} rounds)")
    speedup = statistics.median(times["pure Python"]) / statistics.median(times["lz4 package"])
    print(f"  speed-up (median/median): {speedup:.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    cols = particles(args.rows)
    with tempfile.TemporaryDirectory(prefix="cryodesk-csdat-bench-") as tmp:
        path = Path(tmp) / "particles.cs"
        path.write_bytes(encode(cols))
        raw = sum(v.nbytes for v in cols.values())
        print(f"{args.rows:,} rows, {len(cols)} fields: {raw / 1e6:.1f} MB of columns, "
              f"{path.stat().st_size / 1e6:.1f} MB on disk (LZ4)")
        decoders = {"lz4 package": csdat._decompress, "pure Python": old_decompress}
        times: dict[str, list[float]] = {k: [] for k in decoders}
        results = {}
        for _ in range(args.rounds):  # interleaved: a slow disk or a busy core hits both alike
            for name, fn in decoders.items():
                csdat._decompress = fn
                t = time.perf_counter()
                results[name] = csdat.read_csdat(path)
                times[name].append(time.perf_counter() - t)
        csdat._decompress = decoders["lz4 package"]
        a, b = results.values()
        assert a.dtype == b.dtype and all(np.array_equal(a[f], b[f]) for f in a.dtype.names)
        for f, v in cols.items():
            assert np.array_equal(a[f], v), f
        blocks = blocks_of(cols)
        decode = {name: [] for name in decoders}
        for _ in range(args.rounds):
            for name, fn in decoders.items():
                t = time.perf_counter()
                for block, size in blocks:
                    fn(block, size, "")
                decode[name].append(time.perf_counter() - t)
    report("read_csdat (file -> structured array):", times)
    report("decompressing the column blocks only:", decode)

if __name__ == "__main__":
    main()
