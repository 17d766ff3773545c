"""The STAR writer's row kernel: a chunk of loop rows formatted straight into one byte buffer.

Imported on first use by :mod:`cryodesk.io.star_write` (numba loads with it).
The reference is the writer's column-at-a-time path (numpy's text of every
number, ``star._quote`` for text): this kernel gives the same bytes or hands
the value back (``status 1``: the caller puts numpy's / ``_quote``'s bytes in
the override table and resumes at that row).

Floats are written in their shortest exact form by the method of
:mod:`cryodesk.io._star_kernels` (an exact 17-digit scaling, then the largest
power of ten whose nearest multiple lies inside the rounding interval), with
the search started where the answer almost always is: a float64 needs 16-17
digits unless it is short, a float32 6-9.  A value equal (bit for bit) to the
one above it in its column is copied from the row above.
"""

from __future__ import annotations

import math

import numpy as np

from cryodesk.base.jit import HAVE_NUMBA, jit

_DIGIT_PAIRS = np.frombuffer("".join(f"{k:02d}" for k in range(100)).encode(), dtype=np.uint8).copy()
_POW10 = np.array([10.0 ** k for k in range(23)], dtype=np.float64)
_UPOW10 = np.array([10 ** k for k in range(20)], dtype=np.uint64)
_POW2 = np.array([2.0 ** k for k in range(-1100, 1024)], dtype=np.float64)  # exact (subnormal at the low end)

#: column kinds of :func:`_write_rows` (TABLE, IMAGE: coded columns, see :mod:`cryodesk.io.star_columns`)
FLOAT, INT, UINT, TEXT, CONST, TABLE, IMAGE = 0, 1, 2, 3, 4, 5, 6

if HAVE_NUMBA:
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    # Dekker's exact product and the exact 17-digit scaling, shared with the column kernels
    from cryodesk.io._star_kernels import _keyword_at, _scale17

    @intrinsic
    def _copy(typingctx, dst, dpos, src, spos, n):
        """``dst[dpos:dpos + n] = src[spos:spos + n]`` by memcpy (the ranges never overlap here): a
        byte loop or a slice assignment costs 10-30x more for a 140-byte path."""
        sig = types.void(dst, types.int64, src, types.int64, types.int64)

        def codegen(context, builder, signature, args):
            d = context.make_array(signature.args[0])(context, builder, args[0])
            s = context.make_array(signature.args[2])(context, builder, args[2])
            cgutils.raw_memcpy(builder, builder.gep(d.data, [args[1]]), builder.gep(s.data, [args[3]]), args[4], 1)

        return sig, codegen

    @jit
    def _put_uint(out, pos, v, ndig):
        """``ndig`` decimal digits of the uint64 ``v`` (zero-padded) at ``out[pos:]``; the next position."""
        k = ndig - 1
        hundred = np.uint64(100)
        while k >= 1:
            r = np.int64(v % hundred)
            v //= hundred
            out[pos + k] = _DIGIT_PAIRS[2 * r + 1]
            out[pos + k - 1] = _DIGIT_PAIRS[2 * r]
            k -= 2
        if k == 0:
            out[pos] = np.uint8(48 + np.int64(v % np.uint64(10)))
        return pos + ndig

    @jit
    def _ndigits(v):
        nd = 1
        while nd < 20 and v >= _UPOW10[nd]:
            nd += 1
        return nd

    @jit
    def _nearest(q, r, mk, yf):
        """``(state, c)``: ``c`` the multiple of ``mk = 10^k`` nearest ``y = q * mk + r + yf``
        (``0 <= r < mk``, ``0 <= yf < 1``) in units of ``mk``; state -1 for a tie (``c`` the lower one)."""
        if mk == np.uint64(1):
            if yf < 0.5:
                return 0, q
            if yf > 0.5:
                return 0, q + np.uint64(1)
            return -1, q
        halfm = mk >> np.uint64(1)
        if r < halfm:
            return 0, q
        if r > halfm or yf > 0:
            return 0, q + np.uint64(1)
        return -1, q

    @jit
    def _inside(q, c, r, mk, yf, h, tol):
        """1 when ``c * 10^k`` lies inside the rounding interval of half-width ``h`` around
        ``y = q * 10^k + r + yf``, 0 when outside, -1 within ``tol`` of its bound."""
        if c == q:
            d = float(r) + yf  # (rounded as the reference rounds it; tol covers it)
        else:
            d = float(mk - r) - yf
        if abs(d - h) <= tol:
            return -1
        return 1 if d < h else 0

    @jit
    def _put_float(x, bits, is_f32, out, pos):
        """The shortest exact text of ``x`` (numpy's) at ``out[pos:]``: the next position, or -1 (numpy decides).

        ``bits`` is ``x`` as uint64 (its float64 encoding; float32 values converted exactly).
        """
        if x != x:
            out[pos], out[pos + 1], out[pos + 2] = 110, 97, 110
            return pos + 3
        if bits >> np.uint64(63):
            out[pos] = 45
            pos += 1
        a = abs(x)
        if a == math.inf:
            out[pos], out[pos + 1], out[pos + 2] = 105, 110, 102
            return pos + 3
        if a == 0:
            out[pos], out[pos + 1], out[pos + 2] = 48, 46, 48
            return pos + 3
        if not (1e-6 <= a < 1e17):
            return -1
        if bits & np.uint64(0xFFFFFFFFFFFFF) == 0:
            return -1  # a power of two: the rounding interval is not symmetric
        e2 = np.int64((bits >> np.uint64(52)) & np.uint64(0x7FF)) - 1022  # a = m * 2^e2, 0.5 <= m < 1
        half_ulp = _pow2(e2 - 25) if is_f32 else _pow2(e2 - 54)
        e10 = ((e2 - 1) * 78913) >> 18  # floor(log10(2^(e2-1))): a is within a factor 10 above it
        if e10 < -6:
            e10 = -6
        ok, e10, yh, yl = _scale17(a, e10, 4)  # 1e16 <= a * 10^(16 - e10) < 1e17 exactly
        if not ok:
            return -1
        j = 16 - e10
        fl = math.floor(yl)
        yi = np.uint64(np.int64(yh) + np.int64(fl))  # y = yi + yf exactly, 0 <= yf < 1
        yf = yl - fl
        h = half_ulp * _POW10[j]  # the half-interval in units of the 17th digit (exact)
        tol = 1e-9 * h + 1e-9
        # the largest k whose nearest multiple of 10^k is inside the interval (monotone in k): from the
        # smallest k the interval always holds (8 for float32, 0 for float64) upwards, q = yi // 10^k
        k = 8 if is_f32 else 0
        ten = np.uint64(10)
        q = yi // np.uint64(100000000) if is_f32 else yi
        mk = _UPOW10[k]
        state, c = _nearest(q, yi - q * mk, mk, yf)
        if _inside(q, c, yi - q * mk, mk, yf, h, tol) != 1:
            return -1  # (the interval is wider than 10^k: cannot happen) numpy decides
        tie = state < 0  # two multiples as near (both inside): matters only if this k is the answer
        while k < 16:
            q1 = q // ten
            mk1 = mk * ten
            r1 = yi - q1 * mk1
            state, c1 = _nearest(q1, r1, mk1, yf)
            inside = _inside(q1, c1, r1, mk1, yf, h, tol)
            if inside < 0:
                return -1
            if inside == 0:
                break
            k += 1
            q = q1
            mk = mk1
            c = c1
            tie = state < 0
        if tie:  # exactly between two: numpy's Dragon4 takes the even last digit
            c += c & np.uint64(1)
        ndig = 17 - k
        if c >= _UPOW10[ndig]:  # rounded up to the next decade: one digit
            c = np.uint64(1)
            ndig = 1
            e10 += 1
        while ndig > 1 and c % ten == 0:
            c //= ten
            ndig -= 1
        cutoff = 1e6 if is_f32 else 1e16
        if 1e-4 <= a < cutoff:
            if e10 >= 0:
                if ndig <= e10 + 1:
                    pos = _put_uint(out, pos, c, ndig)
                    for _k in range(e10 + 1 - ndig):
                        out[pos] = 48
                        pos += 1
                    out[pos], out[pos + 1] = 46, 48
                    return pos + 2
                # the integer digits, the point, the fraction's digits (zero-padded)
                nfrac = ndig - e10 - 1
                scale = _UPOW10[nfrac]
                pos = _put_uint(out, pos, c // scale, e10 + 1)
                out[pos] = 46
                return _put_uint(out, pos + 1, c % scale, nfrac)
            out[pos], out[pos + 1] = 48, 46
            pos += 2
            for _k in range(-e10 - 1):
                out[pos] = 48
                pos += 1
            return _put_uint(out, pos, c, ndig)
        if ndig > 1:  # scientific: d[.ddd]e(+|-)XX
            scale = _UPOW10[ndig - 1]
            out[pos] = np.uint8(48 + np.int64(c // scale))
            out[pos + 1] = 46
            end = _put_uint(out, pos + 2, c % scale, ndig - 1)
        else:
            end = _put_uint(out, pos, c, 1)
        out[end] = 101
        out[end + 1] = 45 if e10 < 0 else 43
        ea = abs(e10)
        return _put_uint(out, end + 2, np.uint64(ea), 3 if ea >= 100 else 2)

    @jit
    def _pow2(e):
        """2.0 ** e (-1100 <= e <= 1023) from a table of exact powers."""
        return _POW2[e + 1100]

    @jit
    def format_floats(x, is_f32, out, width):
        """Each value's text at ``out[i * width:]`` (NUL-padded); the rows numpy must write (flags)."""
        n = len(x)
        flag = np.zeros(n, dtype=np.bool_)
        bits = x.astype(np.float64).view(np.uint64)
        for i in range(n):
            if _put_float(np.float64(x[i]), bits[i], is_f32, out, i * width) < 0:
                flag[i] = True
        return flag

    @jit
    def _put_text(src, start, w, out, pos, check, special, keywords, keylen):
        """The NUL-padded value ``src[start:start + w]`` at ``out[pos:]`` (its bytes up to the last non-NUL
        one, NULs dropped): the next position, or -1 when ``check`` and ``star._needs_quote`` says it may
        need quotes (empty, a blank, control or non-ASCII byte, a special first byte, a STAR keyword)."""
        m = w
        while m > 0 and src[start + m - 1] == 0:
            m -= 1
        seg = src[start:start + m]
        odd = False
        for c in seg:  # printable ASCII only (what particle STAR files hold)? One straight pass (a view's
            odd |= (c < 33) | (c > 126)  # iterator: no index wraparound checks, so it vectorises)
        zeros = 0
        if odd:  # a NUL (dropped), a blank or non-ASCII byte (quoted), another control byte (kept)
            blank = False
            for c in seg:
                zeros += c == 0
                blank |= (c == 32) | ((c >= 9) & (c <= 13)) | (c >= 128)
            if check and blank:
                return -1
        if check:
            if m == zeros:
                return -1
            first = src[start]
            if first < 64 or first == 95:  # (every special first byte is one of these)
                for s in special:
                    if first == s:
                        return -1
            lower = first | 32
            if lower == 100 or lower == 108 or lower == 115 or lower == 103:  # d l s g: a keyword's start
                if _keyword_at(src, start, w, keywords, keylen):
                    return -1
        if zeros:
            for t in range(m):
                c = src[start + t]
                out[pos] = c
                pos += c != 0
            return pos
        _copy(out, pos, src, start, m)
        return pos + m

    @jit
    def _override(row, col, ov_row, ov_col, n_ov, cursor):
        """The override of ``(row, col)`` or -1: overrides come in row order, ``cursor[0]`` the first of ``row``."""
        for k in range(cursor[0], n_ov):
            if ov_row[k] != row:
                break
            if ov_col[k] == col:
                return k
        return -1

    @jit
    def _write_rows(row, stop, pos, out, kinds, index, fvals, fbits, f32, ivals, uvals, text, toff, tw, tquote,
                    const, coff, clen, ov_row, ov_col, ov_off, ov_len, ov_bytes, n_ov, cursor, last_bits,
                    last_pos, last_len, special, keywords, keylen, cvals, ccol, cbase, eoff, elen, ebytes):
        """Rows ``row:stop`` of a chunk at ``out[pos:]``: ``(0, stop, end)`` done, or ``(1, r, start)``:
        column ``j`` of row ``r`` (starting at ``start``) needs the caller's bytes (``(r, j)`` overrides).

        A coded column ``t`` (TABLE, IMAGE) reads its row's code at ``cvals[i, ccol[t]]`` (IMAGE: the
        image number there, the code next to it) and writes entry ``cbase[t] + code``: the bytes
        ``ebytes[eoff[e]:eoff[e] + elen[e]]``, decided once for the table (IMAGE: after ``%06d@``)."""
        ncols = len(kinds)
        for i in range(row, stop):
            start = pos
            while cursor[0] < n_ov and ov_row[cursor[0]] < i:  # (a row handed back is written again)
                cursor[0] += 1
            for j in range(ncols):
                kind = kinds[j]
                t = index[j]
                if kind == 0:
                    x = fvals[i, t]
                    bits = fbits[i, t]
                    if i > 0 and bits == last_bits[t] and last_len[t] >= 0:
                        src = last_pos[t]
                        ln = last_len[t]
                        _copy(out, pos, out, src, ln)  # (the value above: before pos)
                        last_pos[t] = pos
                        pos += ln
                    else:
                        p2 = _put_float(x, bits, f32[t], out, pos)
                        if p2 < 0:
                            k = _override(i, j, ov_row, ov_col, n_ov, cursor)
                            if k < 0:
                                return 1, i, j, start
                            p2 = _put_text(ov_bytes, ov_off[k], ov_len[k], out, pos, False, special, keywords, keylen)
                        last_bits[t] = bits
                        last_pos[t] = pos
                        last_len[t] = p2 - pos
                        pos = p2
                elif kind == 1:
                    v = ivals[i, t]
                    if v < 0:
                        out[pos] = 45
                        pos += 1
                        u = np.uint64(-(v + 1)) + np.uint64(1)  # (-2^63 too)
                    else:
                        u = np.uint64(v)
                    pos = _put_uint(out, pos, u, _ndigits(u))
                elif kind == 2:
                    u = uvals[i, t]
                    pos = _put_uint(out, pos, u, _ndigits(u))
                elif kind == 3:
                    p2 = _put_text(text, toff[t] + i * tw[t], tw[t], out, pos, tquote[t], special, keywords, keylen)
                    if p2 < 0:
                        k = _override(i, j, ov_row, ov_col, n_ov, cursor)
                        if k < 0:
                            return 1, i, j, start
                        p2 = _put_text(ov_bytes, ov_off[k], ov_len[k], out, pos, False, special, keywords, keylen)
                    pos = p2
                elif kind == 4:
                    _copy(out, pos, const, coff[t], clen[t])
                    pos += clen[t]
                else:
                    c = ccol[t]
                    if kind == 6:
                        u = np.uint64(cvals[i, c])
                        nd = _ndigits(u)
                        pos = _put_uint(out, pos, u, nd if nd > 6 else 6)
                        out[pos] = 64
                        pos += 1
                        c += 1
                    e = cbase[t] + cvals[i, c]
                    _copy(out, pos, ebytes, eoff[e], elen[e])
                    pos += elen[e]
                out[pos] = 10 if j == ncols - 1 else 32
                pos += 1
        return 0, stop, 0, pos
