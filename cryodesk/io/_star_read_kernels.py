"""Compiled kernels of the STAR read side (imported on first use, as :mod:`cryodesk.io._star_kernels`).

* ``_image_names`` / ``_copy_paths``: RELION's ``000123@path`` names of an ``S``
  column split into 0-based indices and paths in one pass each (what
  :func:`cryodesk.io.star_images.parse_image_names_numpy` computes with
  ``np.strings.partition``; any row it would refuse or read differently is
  left to it); ``_path_runs``: where the path changes from row to row, read in
  place (``runs.run_starts`` of the paths), so that only the run heads' paths are copied.
* ``_scan_part`` / ``_fill_part``: check and measure, then copy into columns,
  the tokens of a part of a loop body (cut at a blank), so that two threads
  split the two halves of a body at once (the kernels release the GIL); the
  single-thread splitter (:func:`cryodesk.io.star_numbers.split_columns`) runs
  them on the whole body.
"""

from __future__ import annotations

import numpy as np

from cryodesk.base.jit import HAVE_NUMBA, jit
from cryodesk.io._star_kernels import _BYTE_KIND

#: the largest image index an MRC stack can hold (as star_images._MAX_INDEX)
_MAX_INDEX = 2**31 - 1

if HAVE_NUMBA:
    @jit
    def _image_names(chars):
        """``(ok, idx0, path_start, path_len, width)`` of NUL-padded rows ``<digits>@<path>`` or ``<path>``.

        ``width`` is that of numpy's ``where(no_at, head, tail)``: the longest head
        (the text before the first ``@``, or the whole text) or tail.  ``ok`` is
        False when any row is not a well-formed name (a NUL inside, no digits or
        more than 18, an index outside 1..2^31-1, an empty path): the numpy
        reference then decides and words the error.
        """
        n, w = chars.shape
        idx0 = np.zeros(n, dtype=np.int64)
        start = np.zeros(n, dtype=np.int64)
        length = np.zeros(n, dtype=np.int64)
        width = 0
        for i in range(n):
            m = w
            while m > 0 and chars[i, m - 1] == 0:
                m -= 1
            at = -1
            for t in range(m):
                c = chars[i, t]
                if c == 0:
                    return False, idx0, start, length, width
                if c == 64 and at < 0:
                    at = t
            if at < 0:  # a single-image file: the whole text is the path, image 1
                if m == 0:
                    return False, idx0, start, length, width
                start[i] = 0
                length[i] = m
                if m > width:
                    width = m
                continue
            if at == 0 or at > 18 or at == m - 1:
                return False, idx0, start, length, width
            v = np.int64(0)
            for t in range(at):
                c = chars[i, t]
                if c < 48 or c > 57:
                    return False, idx0, start, length, width
                v = v * 10 + (c - 48)
            if v < 1 or v > _MAX_INDEX:
                return False, idx0, start, length, width
            idx0[i] = v - 1
            start[i] = at + 1
            length[i] = m - at - 1
            if at > width:
                width = at
            if m - at - 1 > width:
                width = m - at - 1
        return True, idx0, start, length, width

    @jit
    def _copy_paths(chars, start, length, out):
        """``out[i, :length[i]] = chars[i, start[i]:start[i] + length[i]]`` (``out`` zeroed)."""
        for i in range(chars.shape[0]):
            s = start[i]
            for t in range(length[i]):
                out[i, t] = chars[i, s + t]

    @jit
    def _path_runs(chars, start, length):
        """True at row 0 and where row ``i``'s path (``chars[i, start[i]:start[i] + length[i]]``) is not row
        ``i - 1``'s: what ``runs.run_starts`` gives for the paths column ``_copy_paths`` would make."""
        n = chars.shape[0]
        out = np.empty(n, dtype=np.bool_)
        if n:
            out[0] = True
        for i in range(1, n):
            m = length[i]
            if m != length[i - 1]:
                out[i] = True
                continue
            a = start[i]
            b = start[i - 1]
            same = True
            for t in range(m):
                if chars[i, a + t] != chars[i - 1, b + t]:
                    same = False
                    break
            out[i] = not same
        return out

    @jit
    def _scan_part(buf, lo, hi, ncols, keywords, keylen, start, ends):
        """``(status, tokens, widths, newlines, stop)`` of the tokens starting in ``buf[lo:hi]`` (the whole body for one thread).

        The part is cut at blanks.  ``widths[r]`` is the longest of the part's
        tokens ``r, r + ncols, ...`` (the column of token ``r`` is ``(r + tokens
        before the part) % ncols``).  status 0: every token is plain (printable
        ASCII, not starting with ``_ # ' " ;`` or a STAR keyword in any case); 1: one is not.  With ``ends``, a token at the start of a
        line after ``start`` that begins with ``_``, ``data_`` or ``loop_`` ends
        the body (status 2, ``stop`` its newline: where ``_body_end`` stops), and
        one that begins with ``#`` stops the scan there (status 3, ``stop`` its
        position: a comment line, maybe the trailing ``# version`` before the next
        block); the counts are those of the tokens before.
        """
        n = len(buf)
        widths = np.zeros(ncols, dtype=np.int64)
        kind = _BYTE_KIND
        ntok = 0
        lines = 0
        col = 0
        i = lo
        while i < hi:
            c = buf[i]
            k = kind[c]
            if k == 1:  # blank
                lines += c == 10
                i += 1
                continue
            if ends and i > start and buf[i - 1] == 10:
                if c == 95:
                    return 2, ntok, widths, lines, i - 1
                if i + 4 < n and (c == 100 and buf[i + 1] == 97 and buf[i + 2] == 116 and buf[i + 3] == 97
                                  or c == 108 and buf[i + 1] == 111 and buf[i + 2] == 111 and buf[i + 3] == 112) \
                        and buf[i + 4] == 95:
                    return 2, ntok, widths, lines, i - 1
                if c == 35:
                    return 3, ntok, widths, lines, i
            if k != 0:  # a control byte or non-ASCII, or a token starting with _ # ' " ;
                return 1, 0, widths, 0, -1
            j = i + 1
            while j < n:
                b = buf[j]
                if 32 < b < 127:  # printable, not blank: part of the token (kind 0 or 3) -- no table look-up
                    j += 1
                    continue
                if kind[b] == 1:
                    break
                return 1, 0, widths, 0, -1  # (kind 2: a control byte, DEL or non-ASCII)
            low = buf[i] | 32
            if low == 100 or low == 108 or low == 115 or low == 103:  # d l s g: maybe a STAR keyword
                for w in range(keywords.shape[0]):
                    kl = keylen[w]
                    if j - i >= kl:
                        same = True
                        for t in range(kl):
                            b = buf[i + t]
                            if 65 <= b <= 90:
                                b = b | 32
                            if b != keywords[w, t]:
                                same = False
                                break
                        if same:
                            return 1, 0, widths, 0, -1
            if j - i > widths[col]:
                widths[col] = j - i
            ntok += 1
            col += 1
            if col == ncols:
                col = 0
            i = j
        return 0, ntok, widths, lines, -1

    @jit
    def _fill_part(buf, lo, hi, ncols, first, widths, offsets, out):
        """``_fill`` of the tokens in ``buf[lo:hi]``, the first of them token number ``first`` of the body."""
        row0 = first // ncols
        col = first % ncols
        cur = offsets[:ncols].copy()
        for j in range(ncols):
            cur[j] += (row0 + (1 if j < col else 0)) * widths[j]
        i = lo
        while i < hi:
            c = buf[i]
            if c == 32 or c == 10 or c == 9 or c == 13:
                i += 1
                continue
            base = cur[col]
            cur[col] = base + widths[col]
            # copied as it is found (one pass over its bytes); a token is never wider than its column (the
            # scan measured them), and a byte <= 32 that is not blank never reaches here (the scan refused it)
            out[base] = c
            j = i + 1
            k = base + 1
            while j < hi:
                c = buf[j]
                if c <= 32:
                    break
                out[k] = c
                j += 1
                k += 1
            col += 1
            if col == ncols:
                col = 0
            i = j
