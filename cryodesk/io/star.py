"""RELION STAR files: a small, strict reader and a writer (no pandas).

Handles what RELION 3.0/3.1+/4/5 write: ``data_<name>`` blocks holding either
one ``loop_`` table or ``_label value`` pairs, ``#`` comments (incl. the
``_rlnX #3`` column numbers and ``# version 30001``), quoted values (``'a b'``,
``"a b"``) and ``;``-delimited multi-line text.  Anything else is a
:class:`~cryodesk.base.errors.DataError` naming the file and line.

API summary
-----------
``StarBlock(name, columns={}, pairs={})``
    ``columns``: ``{label: ndarray}`` of a loop (no leading ``_``): str, or UTF-8
    bytes (``S<n>``) for the large loops :func:`read_star` splits in bulk; numbers
    when built in memory (``write_star`` formats them);
    ``pairs``: ``{label: str}``; ``len(block)`` = number of rows.
``read_star(path) -> dict[str, StarBlock]``   (``"particles"``, ``"optics"``, ``""``...); loop bodies of
    ``BULK_BYTES`` or more made of bare ASCII tokens are split by numpy, everything else token by token
``parse_star(text, source="<string>") -> dict[str, StarBlock]``
``write_star(path, blocks) -> Path``            (atomic; values quoted when needed)
``format_column(values) -> ndarray[str]``       (floats in shortest round-trip form)
``column_floats(values, label, source) -> ndarray[float64]`` (DataError naming a bad value)
RELION's image names (``000001@path``) are parsed and written by :mod:`cryodesk.io.star_images`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cryodesk.base.errors import DataError
from cryodesk.base.fsio import AtomicFile
from cryodesk.base.nofollow import require_regular
from cryodesk.io import star_columns, star_numbers, star_write
from cryodesk.io.star_numbers import (
    compact,
    format_numbers,
    implementation,
    join_rows,
    needs_quote,
    number_chars,
    parse_floats,
    split_columns,
)
from cryodesk.io.star_raw import RawText, read_raw
from cryodesk.io.star_split import find_body_end, prescan, split_body, warm

__all__ = ["StarBlock", "read_star", "parse_star", "write_star", "format_column", "column_floats"]


@dataclass
class StarBlock:
    """One ``data_`` block: a loop table (``columns``) and/or key-value ``pairs``."""

    name: str
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    pairs: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0


# a token: a quoted string closed before whitespace/EOL, or a run of non-space
_TOKEN = re.compile(r"""'((?:[^']|'(?=\S))*)'(?=\s|$)|"((?:[^"]|"(?=\S))*)"(?=\s|$)|(\S+)""")


def _tokens(line: str, where: str) -> list[tuple[str, bool]]:
    """``(token, was_quoted)`` pairs of one line, comments dropped."""
    if '"' not in line and "'" not in line and "#" not in line:
        return [(t, False) for t in line.split()]
    out = []
    for m in _TOKEN.finditer(line):
        if m.group(3) is not None:
            tok = m.group(3)
            if tok.startswith("#"):
                break
            if tok[0] in "'\"":
                raise DataError(f"{where}: unterminated quoted string")
            out.append((tok, False))
        else:
            out.append((m.group(1) if m.group(1) is not None else m.group(2), True))
    return out


class _Builder:
    def __init__(self, source: str):
        self.source = source
        self.blocks: dict[str, StarBlock] = {}
        self.block: StarBlock | None = None
        self.labels: list[str] = []
        self.values: list[str] = []
        self.in_loop = False
        self.reading_labels = False
        self.pending: str | None = None  # a pair label waiting for its value
        self.line = 0

    def where(self) -> str:
        return f"{self.source}, line {self.line}"

    def bulk(self, columns: list[np.ndarray]) -> None:
        """The whole value table of the current loop, already split into columns."""
        for lab, col in zip(self.labels, columns):
            self.block.columns[lab] = col
        self.labels, self.values = [], []
        self.in_loop = self.reading_labels = False

    def finish_block(self) -> None:
        if self.pending is not None:
            raise DataError(f"{self.where()}: label _{self.pending} has no value")
        if self.in_loop:
            n = len(self.labels)
            if n == 0:
                raise DataError(f"{self.where()}: loop_ without column labels")
            if len(self.values) % n:
                raise DataError(
                    f"{self.source}: block data_{self.block.name}: the loop has {len(self.values)} "
                    f"values, not a multiple of its {n} columns (a row is incomplete)")
            table = np.array(self.values, dtype=object).reshape(-1, n) if self.values else \
                np.empty((0, n), dtype=object)
            for j, lab in enumerate(self.labels):
                self.block.columns[lab] = table[:, j].astype(str)
        self.labels, self.values = [], []
        self.in_loop = self.reading_labels = False

    def token(self, tok: str, quoted: bool = False) -> None:
        low = tok.lower()
        if not quoted and low.startswith("data_"):
            self.finish_block()
            name = tok[5:]
            if name in self.blocks:
                raise DataError(f"{self.where()}: duplicate block data_{name}")
            self.block = self.blocks[name] = StarBlock(name)
            return
        if self.block is None:
            raise DataError(f"{self.where()}: {tok!r} before the first data_ block")
        if not quoted and low == "loop_":
            if self.block.columns or self.in_loop:
                raise DataError(f"{self.where()}: block data_{self.block.name} has a second loop_")
            self.finish_block()
            self.in_loop = self.reading_labels = True
            return
        if not quoted and low in ("stop_", "global_") or (not quoted and low.startswith("save_")):
            raise DataError(f"{self.where()}: {tok} is not supported in RELION STAR files")
        if not quoted and tok.startswith("_") and self.pending is None:
            if self.in_loop and self.reading_labels:
                if tok[1:] in self.labels:  # (a dict of columns would keep only the second, silently)
                    raise DataError(f"{self.where()}: block data_{self.block.name}: column {tok} appears twice")
                self.labels.append(tok[1:])
                return
            if self.in_loop:  # a pair after the loop ends the loop
                self.finish_block()
            if tok[1:] in self.block.pairs:
                raise DataError(f"{self.where()}: block data_{self.block.name}: label {tok} appears twice")
            self.pending = tok[1:]
            return
        if self.pending is not None:
            self.block.pairs[self.pending] = tok
            self.pending = None
        elif self.in_loop:
            self.reading_labels = False
            self.values.append(tok)
        else:
            raise DataError(f"{self.where()}: value {tok!r} without a label")


def _feed(b: _Builder, text: str, first_line: int = 0) -> None:
    """Tokens of ``text`` (whole lines; its first line is line ``first_line + 1``) into ``b``."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        b.line = first_line + i + 1
        if line.startswith(";"):  # multi-line text field: up to a line starting with ';'
            chunk = [line[1:]]
            i += 1
            while i < len(lines) and not lines[i].startswith(";"):
                chunk.append(lines[i])
                i += 1
            if i == len(lines):
                raise DataError(f"{b.source}, line {b.line}: unterminated ;-text field")
            b.token("\n".join(chunk).strip("\n"), quoted=True)
            i += 1
            continue
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            for tok, quoted in _tokens(line, b.where()):
                b.token(tok, quoted)
        i += 1


def parse_star(text: str, source: str = "<string>") -> dict[str, StarBlock]:
    """Parse STAR ``text``; ``source`` names it in error messages."""
    b = _Builder(source)
    _feed(b, text)
    b.finish_block()
    return b.blocks


#: Loop bodies at least this big are split into columns by numpy (see :func:`read_star`).
BULK_BYTES = 1 << 20
_LABEL_OR_BLANK = re.compile(rb"[ \t]*(?:(_\S+)[^\n]*|#[^\n]*|)\r?\n")
_KEYWORDS = np.array([w.ljust(7, b"\0") for w in (b"data_", b"loop_", b"save_", b"stop_", b"global_")], dtype="S7")
_KEYWORD_LEN = np.array([5, 5, 5, 5, 7])
_SPECIAL_START = np.frombuffer(b"_#'\";", dtype=np.uint8)


def _loop_bodies(raw: bytes) -> list[tuple]:
    """``(start, end, columns, prescan)`` of every large loop body of ``raw`` (``loop_`` in lower case).

    A body ends at the next line that starts with ``_``, ``data_`` or ``loop_``;
    whether it is plain enough to split in bulk is decided by :func:`_split_columns`.
    """
    out = []
    at = raw.find(b"loop_")
    while at >= 0:
        line_start = raw.rfind(b"\n", 0, at) + 1
        eol = raw.find(b"\n", at)
        if raw[line_start:at].strip(b" \t") == b"" and raw[at + 5:eol if eol >= 0 else len(raw)].strip() == b"":
            pos, ncols = (eol + 1 if eol >= 0 else len(raw)), 0
            while True:
                lab = _LABEL_OR_BLANK.match(raw, pos)
                if lab is None or lab.end() == pos:
                    break
                ncols += lab.group(1) is not None
                pos = lab.end()
            pre = prescan(raw, pos, ncols)  # a large body checked on the way to its end (one pass less)
            first = pre.first if pre is not None else find_body_end(raw, pos)  # a line starting _, data_, loop_
            end = first + 1 if first >= 0 else len(raw)
            while end > pos:  # trailing blank and comment lines (# version 30001) stay with the text
                prev = raw.rfind(b"\n", pos, end - 1) + 1
                tail = raw[max(prev, pos):end].strip()
                if tail and not tail.startswith(b"#"):
                    break
                end = max(prev, pos)
            if ncols and end - pos >= BULK_BYTES:
                out.append((pos, end, ncols, pre.trim(raw, end) if pre is not None else None))
            at = raw.find(b"loop_", max(end, at + 5))
        else:
            at = raw.find(b"loop_", at + 5)
    return out


def _split_columns(body: bytes, ncols: int, chunk: int = 1 << 24) -> list[np.ndarray] | None:
    """The values of a loop body as ``ncols`` ``S<n>`` columns.

    None when the body is not plain, i.e. anything the token-by-token parser
    would read differently: not a whole number of rows, a byte that is not
    printable ASCII (or space, tab, newline), or a token that starts with
    ``_ # ' " ;`` or is a STAR keyword.
    """
    buf = np.frombuffer(body, dtype=np.uint8)
    if implementation() == "numba":  # the compiled twin: the same rules in one pass
        return split_columns(buf, ncols)
    return _split_columns_numpy(buf, body, ncols, chunk)


def _split_columns_numpy(buf: np.ndarray, body: bytes, ncols: int, chunk: int) -> list[np.ndarray] | None:
    """The numpy reference of :func:`_split_columns` (used without numba, and by the tests)."""
    n = len(buf)
    cols: list[list[np.ndarray]] = [[] for _ in range(ncols)]
    carry_s = np.zeros(0, dtype=np.int64)
    carry_l = np.zeros(0, dtype=np.int64)
    pos = 0
    while pos < n:
        end = min(n, pos + chunk)
        if end < n:
            cut = body.rfind(b"\n", pos, end)
            end = cut + 1 if cut >= pos else n
        seg = buf[pos:end]
        ws = seg <= 32
        if np.any(seg >= 127) or np.any(ws & (seg != 32) & (seg != 10) & (seg != 9) & (seg != 13)):
            return None
        starts = np.flatnonzero(ws[:-1] & ~ws[1:]) + 1
        ends = np.flatnonzero(~ws[:-1] & ws[1:]) + 1
        if len(ws) and not ws[0]:
            starts = np.concatenate([[0], starts])
        if len(ws) and not ws[-1]:
            ends = np.concatenate([ends, [len(ws)]])
        if np.isin(seg[starts], _SPECIAL_START).any():
            return None
        lengths = ends - starts
        head = seg[np.minimum(starts[:, None] + np.arange(7), len(seg) - 1)]
        head[np.arange(7) >= lengths[:, None]] = 0
        head = np.where((head >= 65) & (head <= 90), head | 0x20, head)  # ASCII lower case
        head = np.ascontiguousarray(head).view("S7").ravel()
        for word, k in zip(_KEYWORDS, _KEYWORD_LEN):
            if np.any(np.strings.startswith(head, word[:k])):
                return None
        s = np.concatenate([carry_s, starts + pos])
        ln = np.concatenate([carry_l, lengths])
        rows = len(s) // ncols
        s_rows = s[:rows * ncols].reshape(rows, ncols)
        l_rows = ln[:rows * ncols].reshape(rows, ncols)
        carry_s, carry_l = s[rows * ncols:], ln[rows * ncols:]
        for j in range(ncols):
            width = int(l_rows[:, j].max()) if rows else 1
            offs = np.arange(width)
            idx = np.minimum(s_rows[:, j, None] + offs, n - 1)
            chars = buf[idx]
            chars[offs >= l_rows[:, j, None]] = 0
            cols[j].append(np.ascontiguousarray(chars).view(f"S{width}").ravel())
        pos = end
    if len(carry_s):
        return None
    return [np.concatenate(c) if c else np.zeros(0, "S1") for c in cols]


def read_star(path: Path | str) -> dict[str, StarBlock]:
    """Read the STAR file at ``path``; DataError if missing, unreadable or malformed.

    Large loop bodies made only of bare ASCII tokens (what RELION and cryodesk
    write for particles) are split into columns by numpy instead of token by
    token; those columns hold UTF-8 bytes (``S<n>``) rather than str, which
    :mod:`cryodesk.io.relion` and :func:`column_floats` accept alike.
    """
    path = Path(path)
    require_regular(path, "STAR file")
    try:
        warm(path.stat().st_size)  # numba's first load overlaps the read of a large file
        raw = read_raw(path)  # a large file in memory the splitter gives back as it goes (see star_raw)
    except FileNotFoundError:
        raise DataError(f"{path}: STAR file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read STAR file ({exc})") from None
    source = str(path)
    bodies = _loop_bodies(raw)
    try:
        if not bodies:
            blocks = parse_star(raw.decode("utf-8"), source)
        else:
            blocks = _parse_with_bodies(raw, bodies, source)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: cannot read STAR file ({exc})") from None
    if not blocks:
        raise DataError(f"{path}: no data_ block (not a STAR file?)")
    return blocks


def _parse_with_bodies(raw: bytes, bodies, source: str) -> dict[str, StarBlock]:
    b = _Builder(source)
    pos = line = 0
    for k, (start, end, ncols, pre) in enumerate(bodies):
        head = raw[pos:start]
        _feed(b, head.decode("utf-8"), line)
        line += head.count(b"\n")
        cols = newlines = None
        if b.in_loop and b.reading_labels and len(b.labels) == ncols and not b.values:
            # the last large body's bytes given back as they are split (no fallback to the token parser, which
            # would read them again, can come after its split; the text after it is not given back)
            release = (lambda lo, hi, at=start: raw.release(at + lo, at + hi)) \
                if isinstance(raw, RawText) and k == len(bodies) - 1 else None
            if implementation() == "numba":  # no copy of the body; its newlines counted on the way
                cols, newlines = split_body(np.frombuffer(raw, dtype=np.uint8)[start:end], ncols, pre, release)
            else:
                cols = _split_columns(raw[start:end], ncols)
        if cols is None:  # not what it looked like: the token-by-token parser decides (and words its errors)
            return parse_star(raw.decode("utf-8"), source)
        b.line = line + 1
        b.bulk(cols)
        line += newlines if newlines is not None else raw.count(b"\n", start, end)
        pos = end
    _feed(b, raw[pos:].decode("utf-8"), line)
    b.finish_block()
    return b.blocks


_NEEDS_QUOTE = re.compile(r"""\s|^$|^[_#'";$]|^(data_|loop_|save_|stop_|global_)""", re.I)


def _quote(v: str) -> str:
    if "\n" in v or "\r" in v:
        raise DataError(f"cannot write STAR value {v!r} (contains a line break)")
    if not _NEEDS_QUOTE.search(v):
        return v
    if "'" not in v:
        return f"'{v}'"
    if '"' not in v:
        return f'"{v}"'
    raise DataError(f"cannot write STAR value {v!r} (contains both quote characters)")


def _quote_bytes(value: bytes) -> bytes:
    """``_quote`` of a UTF-8 value, as UTF-8 (what the writer's loops write for it)."""
    return _quote(value.decode("utf-8")).encode("utf-8")


def format_column(values) -> np.ndarray:
    """Values as STAR text: floats in their shortest exact form, bytes decoded."""
    arr = np.asarray(values)
    if arr.dtype.kind == "S":
        arr = np.char.decode(arr, "utf-8")
    elif arr.dtype.kind == "b":
        arr = arr.astype(np.int8)
    return arr.astype(str)


def column_floats(values, label: str, source: str = "STAR file") -> np.ndarray:
    """A STAR column as float64; DataError naming the column and the first bad value."""
    try:
        return parse_floats(values)  # numpy's values (bytes columns parsed by the compiled twin)
    except ValueError:
        for v in np.asarray(values).tolist():
            try:
                float(v)
            except ValueError:
                v = v.decode("utf-8", "replace") if isinstance(v, bytes) else v
                raise DataError(f"{source}: column _{label} has a non-numeric value {v!r}") from None
        raise


def _utf8(values: np.ndarray) -> np.ndarray:
    """A str/bytes/object column as UTF-8 ``S<n>`` (distinct values encoded once when not ASCII)."""
    arr = np.asarray(values)
    if arr.dtype.kind == "S":
        return arr
    if arr.dtype.kind != "U":
        arr = np.asarray([v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in arr.tolist()], dtype=str)
    if arr.size == 0 or arr.dtype.itemsize == 0:
        return np.zeros(arr.shape, "S1")
    if int(np.ascontiguousarray(arr).view(np.uint32).max()) < 128:
        return arr.astype("S")
    uniq, inv = np.unique(arr, return_inverse=True)
    return np.char.encode(uniq, "utf-8")[np.asarray(inv).ravel()]


def _number_chars(values: np.ndarray) -> np.ndarray:
    """:func:`_text` of a number column as NUL-padded uint8 rows (what :func:`join_rows` takes)."""
    arr = np.asarray(values)
    if arr.dtype.kind == "b":
        arr = arr.astype(np.int8)
    if len(arr) > 64 and arr.ndim == 1 and arr.dtype.itemsize in (1, 2, 4, 8):
        bits = arr.view(f"u{arr.dtype.itemsize}")
        if np.all(bits == bits[0]):  # a constant column: one value formatted, the rows a broadcast view
            one = np.frombuffer(format_numbers(arr[:1])[0], dtype=np.uint8).reshape(1, -1)
            return np.broadcast_to(one, (len(arr), one.shape[1]))
    return number_chars(arr)


def _text(values: np.ndarray) -> np.ndarray:
    """A column as STAR value bytes: numbers in their shortest exact form (what ``format_column`` gives)."""
    arr = np.asarray(values)
    kind = arr.dtype.kind
    if kind == "b":
        arr, kind = arr.astype(np.int8), "i"
    if kind in "iuf":
        if len(arr) > 64 and arr.ndim == 1 and arr.dtype.itemsize in (1, 2, 4, 8):
            # a constant column (voltage, pixel size, groups): one value formatted (equal bits: -0.0 is not 0.0)
            bits = arr.view(f"u{arr.dtype.itemsize}")
            if np.all(bits == bits[0]):
                return np.repeat(format_numbers(arr[:1]), len(arr))
        return format_numbers(arr)  # each value as numpy writes it (the compiled twin when it can decide)
    return _utf8(arr)


_SPECIAL_FIRST = np.frombuffer(b"_#'\";$", dtype=np.uint8)


def _needs_quote(col: np.ndarray) -> np.ndarray:
    """Rows of an ``S`` column that :func:`_quote` may change (or refuse); vectorised."""
    fast = needs_quote(col)  # the compiled twin of the rules below
    return fast if fast is not None else _needs_quote_numpy(col)


def _needs_quote_numpy(col: np.ndarray) -> np.ndarray:
    n = len(col)
    if col.dtype.itemsize == 0:
        return np.ones(n, dtype=bool)
    raw = np.ascontiguousarray(col).view(np.uint8).reshape(n, col.dtype.itemsize)
    length = np.count_nonzero(raw, axis=1)  # no NUL inside STAR text
    blank = (raw == 32) | (raw == 9) | (raw == 10) | (raw == 13) | (raw == 11) | (raw == 12)
    # non-ASCII rows go to _quote itself (Unicode whitespace such as U+00A0 needs quotes too)
    out = (length == 0) | blank.any(axis=1) | np.isin(raw[:, 0], _SPECIAL_FIRST) | (raw >= 128).any(axis=1)
    for word in (b"data_", b"loop_", b"save_", b"stop_", b"global_"):
        k = len(word)
        if col.dtype.itemsize >= k:
            # ASCII lower case of the first k bytes ('_' | 0x20 is 0x7f, never a letter: compare '_' apart)
            want = np.frombuffer(word, dtype=np.uint8)
            head = raw[:, :k]
            letters = want != ord("_")
            out |= np.all((head[:, letters] | 0x20) == want[letters], axis=1) & np.all(
                head[:, ~letters] == want[~letters], axis=1)
    return out


def _loop_bytes(columns: list[np.ndarray], chunk_rows: int = 1 << 15):
    """The rows of a loop as text, ``chunk_rows`` at a time: values joined by one space, a newline each."""
    n = len(columns[0]) if columns else 0
    for start in range(0, n, chunk_rows):
        stop = min(n, start + chunk_rows)
        parts = []
        fast = stop - start >= star_numbers.MIN_SIZE and implementation() == "numba"
        for col in columns:
            part = col[start:stop]
            if fast and part.dtype.kind in "biuf":  # the kernels' padded rows, joined below without a table
                parts.append(_number_chars(part))
                continue
            text = _text(part) if part.dtype.kind != "S" else part
            if col.dtype.kind not in "biuf":  # numbers never need quotes
                bad = _needs_quote(text)
                if bad.any():
                    text = text.astype(object)
                    for k in np.flatnonzero(bad).tolist():
                        v = text[k].decode("utf-8")
                        text[k] = _quote(v).encode("utf-8")
                    text = text.astype("S")
            parts.append(text)
        joined = join_rows(parts) if fast else None
        if joined is not None:
            yield joined
            continue
        parts = [p.view(f"S{p.shape[1]}").ravel() if p.dtype == np.uint8 else p for p in parts]
        m = stop - start
        widths = [max(p.dtype.itemsize, 1) for p in parts]
        buf = np.zeros((m, sum(widths) + len(widths)), dtype=np.uint8)
        off = 0
        for p, w in zip(parts, widths):
            if p.dtype.itemsize:
                buf[:, off:off + w] = np.ascontiguousarray(p).view(np.uint8).reshape(m, w)
            buf[:, off + w] = 32
            off += w + 1
        buf[:, -1] = 10
        yield compact(buf)  # NUL padding dropped: "v1 v2 v3\n"


def write_star(path: Path | str, blocks: dict[str, StarBlock], durable: bool = False) -> Path:
    """Write ``blocks`` RELION-style to ``path``, atomically.

    Loops are formatted a chunk of rows at a time with vectorised column
    formatting (no per-value Python work for numbers), so a million-row table
    writes in seconds and in bounded memory.
    """
    path = Path(path)
    with AtomicFile(path, durable) as f:
        for name, blk in blocks.items():
            head = [f"\n# version 30001\n\ndata_{name}\n"]
            for k, v in blk.pairs.items():
                head.append(f"_{k} {_quote(str(v))}\n")
            if blk.columns:
                head.append("\nloop_\n")
                head.extend(f"_{lab} #{j}\n" for j, lab in enumerate(blk.columns, 1))
            f.fh.write("".join(head).encode("utf-8"))
            if blk.columns:
                # one kernel a chunk of rows when it can (the same bytes; coded text columns, see
                # star_columns, kept coded), else column by column
                raw = [c if star_columns.is_coded(c) else np.asarray(c) for c in blk.columns.values()]
                chunks = star_write.loop_chunks(raw, _quote_bytes, _text) or _loop_bytes(
                    [np.asarray(c) for c in raw])
                try:
                    for chunk in chunks:
                        f.fh.write(chunk)
                except UnicodeDecodeError:  # a text value of bytes that are not UTF-8 (an old latin-1 .cs)
                    raise DataError(f"{path}: block data_{name}: {_not_utf8(blk.columns)}") from None
                finally:
                    chunks.close()  # a failed write (a full disk) stops the formatting threads now
            f.fh.write(b"\n")
    return path


def _not_utf8(columns: dict[str, np.ndarray]) -> str:
    """Which value of ``columns`` is not UTF-8 (looked for only once a write has failed on one)."""
    for lab, col in columns.items():
        col = np.asarray(col)
        if col.dtype.kind not in "SO":
            continue
        for row, v in enumerate(col.tolist()):
            if isinstance(v, bytes):
                try:
                    v.decode("utf-8")
                except UnicodeDecodeError:
                    return f"_{lab} of row {row + 1} is not UTF-8 text ({v!r}); a STAR file is UTF-8 text"
    return "a text value is not UTF-8; a STAR file is UTF-8 text"
