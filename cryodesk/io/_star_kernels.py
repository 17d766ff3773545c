"""The compiled kernels of :mod:`cryodesk.io.star_numbers` (imported on first use: numba loads with them).

See that module for what each computes and its numpy reference.
"""

from __future__ import annotations

import math

import numpy as np

from cryodesk.base.jit import HAVE_NUMBA, jit

# exact powers of ten as float64 (10^0 .. 10^22 are representable) and as int64 (10^0 .. 10^18)
_DIGIT_PAIRS = np.frombuffer("".join(f"{k:02d}" for k in range(100)).encode(), dtype=np.uint8).copy()
_POW10 = np.array([10.0 ** k for k in range(23)], dtype=np.float64)
_IPOW10 = np.array([10 ** k for k in range(19)], dtype=np.int64)
# what a byte is in a plain loop body: 0 part of a token, 1 blank (space, tab, LF, CR), 2 refused anywhere
# (another control byte, DEL, non-ASCII), 3 refused at a token's start only (_ # ' " ;)
_BYTE_KIND = np.full(256, 2, dtype=np.uint8)
_BYTE_KIND[33:127] = 0
_BYTE_KIND[[32, 9, 10, 13]] = 1
_BYTE_KIND[[ord(c) for c in "_#'\";"]] = 3

if HAVE_NUMBA:
    @jit
    def _two_prod(a, b):
        """``(p, e)`` with ``p + e == a * b`` exactly (Dekker; no FMA needed)."""
        p = a * b
        c = 134217729.0 * a
        ah = c - (c - a)
        al = a - ah
        c = 134217729.0 * b
        bh = c - (c - b)
        bl = b - bh
        e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
        return p, e

    @jit
    def _scale17(a, e10, tries):
        """``(ok, e10, yh, yl)``: ``yh + yl == a * 10^(16 - e10)`` exactly and in ``[1e16, 1e17)``, the
        estimate ``e10`` corrected one step at a time, at most ``tries`` products; ``ok`` False if not reached."""
        yh = 0.0
        yl = 0.0
        for _ in range(tries):
            j = 16 - e10
            if j < 0 or j > 22:
                return False, e10, yh, yl
            yh, yl = _two_prod(a, _POW10[j])
            if yh > 1e17 or (yh == 1e17 and yl >= 0):
                e10 += 1
            elif yh < 1e16 or (yh == 1e16 and yl < 0):
                e10 -= 1
            else:
                return True, e10, yh, yl
        return False, e10, yh, yl

    @jit
    def _put_digits(out, i, pos, v, ndig):
        """Write ``ndig`` decimal digits of the int ``v`` >= 0 (zero-padded) at ``out[i, pos:]``."""
        k = ndig - 1
        while k >= 1:  # two digits a division
            r = v % 100
            v //= 100
            out[i, pos + k] = _DIGIT_PAIRS[2 * r + 1]
            out[i, pos + k - 1] = _DIGIT_PAIRS[2 * r]
            k -= 2
        if k == 0:
            out[i, pos] = 48 + v % 10
        return pos + ndig

    @jit
    def _format_one(x, is_f32, out, i):
        """Bytes of float ``x`` into ``out[i]``; their count, or 0 when numpy must decide."""
        if x != x:
            out[i, 0], out[i, 1], out[i, 2] = 110, 97, 110  # nan (numpy writes -nan as nan too)
            return 3
        pos = 0
        if x < 0 or (x == 0 and math.copysign(1.0, x) < 0):
            out[i, 0] = 45
            pos = 1
        a = abs(x)
        if a == math.inf:
            out[i, pos], out[i, pos + 1], out[i, pos + 2] = 105, 110, 102
            return pos + 3
        if a == 0:
            out[i, pos], out[i, pos + 1], out[i, pos + 2] = 48, 46, 48
            return pos + 3
        if not (1e-6 <= a < 1e17):
            return 0
        m, e2 = math.frexp(a)  # a = m * 2^e2, 0.5 <= m < 1
        if m == 0.5:
            return 0  # a power of two: the rounding interval is not symmetric
        half_ulp = math.ldexp(1.0, e2 - 25) if is_f32 else math.ldexp(1.0, e2 - 54)
        e10 = int(math.floor(math.log10(a)))
        ok, e10, yh, yl = _scale17(a, e10, 3)  # (log10 may be off by one)
        if not ok:
            return 0
        j = 16 - e10
        fl = math.floor(yl)
        yi = np.int64(yh) + np.int64(fl)  # y = yi + yf exactly, 0 <= yf < 1
        yf = yl - fl
        h = half_ulp * _POW10[j]  # the half-interval in units of the 17th digit (exact)
        tol = 1e-9 * h + 1e-9
        # the largest k whose nearest multiple of 10^k is inside the interval (monotone in k)
        lo = 0 if not is_f32 else 8
        hi = 16
        best_c = np.int64(0)
        found = False
        while True:
            if lo == hi:
                k = lo
            else:
                k = (lo + hi + 1) // 2
            mk = _IPOW10[k]
            q = yi // mk
            r = yi - q * mk
            if k == 0:
                if yf < 0.5:
                    c = yi
                elif yf > 0.5:
                    c = yi + 1
                else:
                    return 0
            else:
                halfm = mk // 2
                if r < halfm:
                    c = q * mk
                elif r > halfm or yf > 0:
                    c = (q + 1) * mk
                else:
                    return 0  # a tie
            d = abs(float(c - yi) - yf)
            if abs(d - h) <= tol:
                return 0  # on the interval bound (inclusion depends on the rounding rule)
            ok = d < h
            if lo == hi:
                if not ok:
                    return 0  # cannot happen (17 digits always round-trip); numpy decides
                best_c = c
                found = True
                break
            if ok:
                lo = k
                best_c = c
                found = True
            else:
                hi = k - 1
        if not found:
            return 0
        c = best_c
        if c >= 100000000000000000:  # rounded up to 10^17: one digit, next decade
            c = np.int64(10000000000000000)
            e10 += 1
        ndig = 17
        while c % 10 == 0 and ndig > 1:
            c //= 10
            ndig -= 1
        cutoff = 1e6 if is_f32 else 1e16
        if 1e-4 <= a < cutoff:
            if e10 >= 0:
                if ndig <= e10 + 1:
                    pos = _put_digits(out, i, pos, c, ndig)
                    for _k in range(e10 + 1 - ndig):
                        out[i, pos] = 48
                        pos += 1
                    out[i, pos], out[i, pos + 1] = 46, 48
                    return pos + 2
                frac = ndig - e10 - 1
                pos = _put_digits(out, i, pos, c // _IPOW10[frac], e10 + 1)
                out[i, pos] = 46
                return _put_digits(out, i, pos + 1, c % _IPOW10[frac], frac)
            out[i, pos], out[i, pos + 1] = 48, 46
            pos += 2
            for _k in range(-e10 - 1):
                out[i, pos] = 48
                pos += 1
            return _put_digits(out, i, pos, c, ndig)
        # scientific: d[.ddd]e(+|-)XX
        lead = c // _IPOW10[ndig - 1]
        out[i, pos] = 48 + lead
        pos += 1
        if ndig > 1:
            out[i, pos] = 46
            pos = _put_digits(out, i, pos + 1, c % _IPOW10[ndig - 1], ndig - 1)
        out[i, pos] = 101
        out[i, pos + 1] = 45 if e10 < 0 else 43
        ea = abs(e10)
        return _put_digits(out, i, pos + 2, ea, 3 if ea >= 100 else 2)

    @jit
    def _format_floats(x, is_f32, out):
        n = len(x)
        flag = np.zeros(n, dtype=np.bool_)
        for i in range(n):
            if _format_one(np.float64(x[i]), is_f32, out, i) == 0:
                flag[i] = True
        return flag

    @jit
    def _format_ints(x, out):
        for i in range(len(x)):
            v = np.int64(x[i])
            pos = 0
            if v < 0:
                out[i, 0] = 45
                pos = 1
                if v == -9223372036854775808:
                    return False  # cannot negate: numpy writes it
                v = -v
            nd = 1
            t = v
            while t >= 10:
                t //= 10
                nd += 1
            _put_digits(out, i, pos, v, nd)
        return True

    @jit
    def _format_uints(x, out):
        ten = np.uint64(10)
        for i in range(len(x)):
            v = np.uint64(x[i])
            nd = 1
            t = v
            while t >= ten:
                t //= ten
                nd += 1
            for k in range(nd - 1, -1, -1):
                out[i, k] = np.uint8(48 + np.int64(v % ten))
                v //= ten
        return True

    @jit
    def _parse_one(chars, r):
        """``(value, ok)`` of the NUL-padded ASCII number in ``chars[r]``."""
        n = chars.shape[1]
        length = n
        for i in range(n):
            if chars[r, i] == 0:
                length = i
                break
        for i in range(length, n):
            if chars[r, i] != 0:
                return 0.0, False  # a NUL inside the text: numpy decides
        i = 0
        neg = False
        if i < length and (chars[r, i] == 43 or chars[r, i] == 45):
            neg = chars[r, i] == 45
            i += 1
        dig = np.int64(0)
        nd = 0
        adj = 0
        seen = False
        while i < length and 48 <= chars[r, i] <= 57:
            seen = True
            d = chars[r, i] - 48
            if dig == 0 and d == 0:
                pass
            elif nd < 18:
                dig = dig * 10 + d
                nd += 1
            else:
                return 0.0, False
            i += 1
        if i < length and chars[r, i] == 46:
            i += 1
            while i < length and 48 <= chars[r, i] <= 57:
                seen = True
                d = chars[r, i] - 48
                if dig == 0 and d == 0:
                    adj -= 1
                elif nd < 18:
                    dig = dig * 10 + d
                    nd += 1
                    adj -= 1
                else:
                    return 0.0, False
                i += 1
        if not seen:
            return 0.0, False
        ex = 0
        if i < length and (chars[r, i] == 101 or chars[r, i] == 69):
            i += 1
            eneg = False
            if i < length and (chars[r, i] == 43 or chars[r, i] == 45):
                eneg = chars[r, i] == 45
                i += 1
            seen_e = False
            while i < length and 48 <= chars[r, i] <= 57:
                seen_e = True
                if ex < 100000:
                    ex = ex * 10 + (chars[r, i] - 48)
                i += 1
            if not seen_e:
                return 0.0, False
            if eneg:
                ex = -ex
        if i != length:
            return 0.0, False
        if dig == 0:
            return (-0.0 if neg else 0.0), True
        k = adj + ex
        if dig < 9007199254740992 and -22 <= k <= 22:  # Clinger: both exact, one rounding
            v = float(dig) * _POW10[k] if k >= 0 else float(dig) / _POW10[-k]
            return (-v if neg else v), True
        if not (-22 <= k < 0):
            return 0.0, False
        p = _POW10[-k]
        c = float(dig) / p  # within an ulp or two of dig / p
        for _ in range(4):
            m, e2 = math.frexp(c)
            if m == 0.5:
                return 0.0, False
            ulp = math.ldexp(1.0, e2 - 53)
            ph, pl = _two_prod(c, p)  # c * p exactly; ph is a whole number (>= 2^53 / 10^22 ...)
            if not (9007199254740992.0 <= ph < 9.2e18):
                return 0.0, False
            r = float(np.int64(ph) - dig) + pl  # c * p - dig
            half = 0.5 * ulp * p
            tol = 1e-9 * half + 1e-9
            if abs(abs(r) - half) <= tol:
                return 0.0, False
            if abs(r) < half:
                return (-c if neg else c), True
            c = c - ulp if r > 0 else c + ulp
        return 0.0, False

    @jit
    def _parse_floats(chars):
        n = chars.shape[0]
        out = np.empty(n, dtype=np.float64)
        flag = np.zeros(n, dtype=np.bool_)
        w = chars.shape[1]
        for i in range(n):
            if i > 0:  # a run of equal texts (optics values spread over the particles): parse once
                same = True
                for t in range(w):
                    if chars[i, t] != chars[i - 1, t]:
                        same = False
                        break
                if same:
                    out[i] = out[i - 1]
                    flag[i] = flag[i - 1]
                    continue
            v, ok = _parse_one(chars, i)
            out[i] = v
            flag[i] = not ok
        return out, flag

    @jit
    def _parse_uints(chars):
        """Unsigned decimal integers of NUL-padded rows; ok False on anything but 1+ ASCII digits < 2^64."""
        n, w = chars.shape
        out = np.zeros(n, dtype=np.uint64)
        ten = np.uint64(10)
        limit = np.uint64(1844674407370955161)  # (2^64 - 1) // 10
        for i in range(n):
            length = w
            for t in range(w):
                if chars[i, t] == 0:
                    length = t
                    break
            if length == 0:
                return out, False
            for t in range(length, w):
                if chars[i, t] != 0:
                    return out, False
            v = np.uint64(0)
            for t in range(length):
                c = chars[i, t]
                if c < 48 or c > 57:
                    return out, False
                d = np.uint64(c - 48)
                if v > limit or (v == limit and d > np.uint64(5)):
                    return out, False  # beyond 2^64 - 1
                v = v * ten + d
            out[i] = v
        return out, True

    @jit
    def _keyword_at(src, start, w, keywords, keylen):
        """Whether the ``w`` bytes at ``src[start:]`` begin with a STAR keyword (letters in any case)."""
        for k in range(keywords.shape[0]):
            kl = keylen[k]
            if w < kl:
                continue
            same = True
            for t in range(kl):
                want = keywords[k, t]
                b = src[start + t]
                if want != 95:
                    b = b | 32
                if b != want:
                    same = False
                    break
            if same:
                return True
        return False

    @jit
    def _needs_quote(chars, special, keywords, keylen):
        n, w = chars.shape
        out = np.zeros(n, dtype=np.bool_)
        for i in range(n):
            length = 0
            blank = 0
            for t in range(w):  # no early exit: a straight loop the compiler vectorises
                c = chars[i, t]
                length += c != 0
                blank |= (c == 32) | ((c >= 9) & (c <= 13)) | (c >= 128)
            odd = blank != 0
            if odd or length == 0:
                out[i] = True
                continue
            for s in special:
                if chars[i, 0] == s:
                    odd = True
            if not odd and _keyword_at(chars[i], 0, w, keywords, keylen):
                odd = True
            out[i] = odd
        return out

    @jit
    def _row_lengths(chars, rowlen):
        """Add each row's count of non-NUL bytes plus one (its separator) to ``rowlen``."""
        n, w = chars.shape
        for i in range(n):
            k = 1
            for t in range(w):
                k += chars[i, t] != 0
            rowlen[i] += k

    @jit
    def _place(chars, out, pos, sep):
        """Copy each row's non-NUL bytes of ``chars`` to ``out[pos[i]:]`` and ``sep`` after them.

        A row is NUL-padded text: its bytes up to the last non-NUL one are copied
        in one straight (vectorised) loop; only a row with a NUL inside them is
        copied byte by byte, dropping the NULs.
        """
        n, w = chars.shape
        for i in range(n):
            p = pos[i]
            m = w
            while m > 0 and chars[i, m - 1] == 0:
                m -= 1
            zeros = 0
            for t in range(m):  # read first: a straight copy of a row with NULs would run past its span
                zeros += chars[i, t] == 0
            if zeros:
                for t in range(m):
                    c = chars[i, t]
                    out[p] = c
                    p += c != 0
            elif m > 32:  # long text (image names, paths): one block copy
                out[p:p + m] = chars[i, :m]
                p += m
            else:
                for t in range(m):
                    out[p + t] = chars[i, t]
                p += m
            out[p] = sep
            pos[i] = p + 1

    @jit
    def _compact(buf, out):
        """The non-NUL bytes of ``buf`` in order (branch-free); their count."""
        pos = 0
        for t in range(len(buf)):
            c = buf[t]
            out[pos] = c
            pos += c != 0
        return pos

    @jit
    def _body_end(buf, pos):
        """The first index >= pos of a newline followed by ``_``, ``data_`` or ``loop_``; -1 if none."""
        n = len(buf)
        i = pos
        while i < n - 1:
            stop = min(i + 64, n - 1)
            hit = 0
            for t in range(i, stop):  # a block without a newline is passed in one vectorised test
                hit |= buf[t] == 10
            if hit:
                for t in range(i, stop):
                    if buf[t] != 10:
                        continue
                    c = buf[t + 1]
                    if c == 95:
                        return t
                    if t + 5 < n and c == 100 and buf[t + 2] == 97 and buf[t + 3] == 116 and buf[t + 4] == 97 \
                            and buf[t + 5] == 95:
                        return t
                    if t + 5 < n and c == 108 and buf[t + 2] == 111 and buf[t + 3] == 111 and buf[t + 4] == 112 \
                            and buf[t + 5] == 95:
                        return t
            i = stop
        return -1

