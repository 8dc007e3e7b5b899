"""Numba loops for the block Walsh–Hadamard transform (fast path). No public API; see fp4ref.hadamard.

Arrays arrive flat, in C order of a 3-D view (pre, m, post): the transform runs along the middle axis in
blocks of n = 2^k consecutive elements. Block number idx = row * post + c with row = pre_index * (m / n) +
block_along_axis; element i of it sits at row * n * post + c + i * post. Each block is computed on its own
(prange over chunks of blocks), so the result bits do not depend on the number of threads. Loops:
- post == 1 (the transform axis is the last one): RHT16 forward from float32 to bfloat16/float32 runs 64
  blocks side by side (rht16_blocks, as exact_tile does for columns); everything else goes through exact_block.
- post > 1: with a float32 container, n a power of 4 and a float32/bfloat16 output, exact_tile runs the
  butterfly across 64 columns at once (contiguous, vectorisable); otherwise exact_block per column.
Rare cases in a fast block (NaN/Inf, all zeros, wide range, bfloat16 zeros or subnormals) are redone by
exact_block, which is compiled once per (input, output) dtype pair.

Exact mode, per block:
- tier 1 (float32 containers): the Sylvester butterfly in float64 is exact when every intermediate is a
  multiple of the block's smallest quantum 2^q and below 2^(q+53). All inputs are multiples of
  2^(e(amin) - 23) (float32 precision 24; float32 subnormals are multiples of 2^-149, which still qualifies)
  and every intermediate is below n * 2^(e(amax)+1), so e(amax) - e(amin) + 24 + k <= 53 certifies it.
- tier 2 (everything else finite): the same butterfly on multi-limb integers (32-bit limbs in int64, so k <= 12
  stages of growth cannot overflow), exact for any finite float64 input.
Then one rounding: with n a power of 4 the scale 2^(-k/2) only shifts the exponent, so the exact float64 value
(tier 1) is rounded directly (float32: the hardware float64 -> float32 conversion, itself one correct
rounding), or the exact integer is (tier 2). With n = 2 * 4^j the scale has a factor 1/sqrt(2): the value is
estimated in float64 with a bounded error and rounded when no rounding midpoint lies within the error;
otherwise the block is flagged and fp4ref.hadamard recomputes it with Python integers (math.isqrt).

Output formats are IEEE-style binary formats given by (p, ebits): precision with the hidden bit, exponent
bits; bias 2^(ebits-1) - 1. Results are written as bit patterns.
"""
import math

import numpy as np
from numba import njit, prange

from .bits import f32_as_u32, prefetch, shl32, shr32, u32_as_f32, wide_vectors
from .cast import bits32_at, widened

INV_SQRT2 = 0.7071067811865476   # fl64(1/sqrt(2)) = 0x3FE6A09E667F3BCD, |error| < 2^-54
MASK32 = 0xFFFFFFFF
MASK52 = (1 << 52) - 1
DBL_MAX = 1.7976931348623157e308
FLT_MAX = 3.4028234663852886e38
CERT_NONE, CERT_EXACT, CERT_SPECIAL = 0, 1, 2
CHUNK = 64                       # blocks per prange work unit; any value gives the same bits
TE_RUN = 64                      # te_rows: blocks per run through its scratch arrays
TE_PIECE = 16384                 # te_amax: elements per te_rows call (its scratch output stays in L2)
IRR_MARGIN = 16                  # units of the float64 estimate's last place; its error is below 4 (round_irr)


@njit(cache=True, inline="always")
def bit_length(a):
    """Number of bits of 0 <= a < 2^63."""
    b = 0
    if a >> 32:
        a >>= 32
        b += 32
    if a >> 16:
        a >>= 16
        b += 16
    if a >> 8:
        a >>= 8
        b += 8
    if a >> 4:
        a >>= 4
        b += 4
    if a >> 2:
        a >>= 2
        b += 2
    if a >> 1:
        a >>= 1
        b += 1
    return b + a


@njit(cache=True, inline="always")
def popcount_parity(a):
    a ^= a >> 16
    a ^= a >> 8
    a ^= a >> 4
    a ^= a >> 2
    a ^= a >> 1
    return a & 1


@njit(cache=True, inline="always")
def encode(neg, N, qe, p, ebits):
    """Bits of (-1)^neg * N * 2^qe in the (p, ebits) format; N < 2^p or N == 2^p (a carry); inf on overflow."""
    mb = p - 1
    bias = (1 << (ebits - 1)) - 1
    sbit = np.int64(neg) << (mb + ebits)
    if N == 0:
        return sbit
    if N >= (np.int64(1) << p):
        N >>= 1
        qe += 1
    if N >= (np.int64(1) << mb):
        e = qe + mb
        if e > bias:
            return sbit | (np.int64((1 << ebits) - 1) << mb)
        return sbit | (np.int64(e + bias) << mb) | (N - (np.int64(1) << mb))
    return sbit | N  # subnormal: qe is emin - mb here


@njit(cache=True, inline="always")
def nan_bits(p, ebits):
    """The canonical quiet NaN: positive, top mantissa bit set (0x7FC00000 in float32, 0x7FC0 in bfloat16)."""
    return (np.int64((1 << ebits) - 1) << (p - 1)) | (np.int64(1) << (p - 2))


@njit(cache=True, inline="always")
def inf_bits(neg, p, ebits):
    return (np.int64(neg) << (p - 1 + ebits)) | (np.int64((1 << ebits) - 1) << (p - 1))


@njit(cache=True, inline="always")
def round_int(A, t, sticky, p, ebits):
    """Round-to-nearest-even of (A + d) * 2^t, 0 < A < 2^62, d = 0 (sticky False) or 0 < d < 1 (sticky True).

    Returns (N, qe): the result is N * 2^qe (N may be 2^p after a carry; encode renormalises it).
    """
    emin = 2 - (1 << (ebits - 1))
    e = t + bit_length(A) - 1
    qe = max(e, emin) - (p - 1)
    s = qe - t
    if s <= 0:
        return A << (-s), qe
    if s >= 63:
        return np.int64(0), qe
    N = A >> s
    rem = A - (N << s)
    half = np.int64(1) << (s - 1)
    if rem > half or (rem == half and (sticky or (N & 1) == 1)):
        N += 1
    return N, qe


@njit(cache=True, inline="always")
def round_f64_bits(z, p, ebits):
    """Bits of the round-to-nearest-even of a finite float64 z (one rounding of z's exact value)."""
    if p == 24 and ebits == 8:
        # float64 -> float32 conversion is IEEE round-to-nearest-even (overflow, subnormals included)
        return np.int64(np.float32(z).view(np.uint32))
    zb = np.float64(z).view(np.int64)
    neg = zb < 0
    mag = zb & 0x7FFFFFFFFFFFFFFF
    ef = mag >> 52
    if p == 8 and ebits == 8 and ef >= 897:
        # bfloat16, |z| >= 2^-126: round the float64 fraction at its bit 45 (carries run into the exponent)
        r = mag + ((np.int64(1) << 44) - 1) + ((mag >> 45) & 1)
        e = (r >> 52) - 896
        if e >= 255:
            return inf_bits(neg, 8, 8)
        return (np.int64(neg) << 15) | (e << 7) | ((r >> 45) & 0x7F)
    if mag == 0:
        return np.int64(neg) << (p - 1 + ebits)
    if ef == 0:
        A = mag
        t = np.int64(-1074)
    else:
        A = (mag & MASK52) | (np.int64(1) << 52)
        t = ef - 1075
    N, qe = round_int(A, t, False, p, ebits)
    return encode(neg, N, qe, p, ebits)


@njit(cache=True, inline="always")
def round_irr(A, t, p, ebits):
    """Round-to-nearest-even of x = (A + d) * 2^t / sqrt(2), 0 < A < 2^62, 0 <= d < 1 (d > 0 only if A >= 2^61).

    Returns (N, qe, decided). r = fl(fl(A) * fl(1/sqrt 2)) has relative error below 3 * 2^-53, d adds at most
    2^-61 relative, so |r - x| < 2^-51 * r: under 4 units of r's last place. x is irrational (never a tie);
    the rounding is decided when r's remainder is more than IRR_MARGIN units away from the midpoint.
    """
    r = np.float64(A) * INV_SQRT2
    rb = np.float64(r).view(np.int64)
    R = (rb & MASK52) | (np.int64(1) << 52)
    tr = t + ((rb >> 52) & 0x7FF) - 1075
    emin = 2 - (1 << (ebits - 1))
    qe = max(tr + 52, emin) - (p - 1)
    s = qe - tr
    if s >= 63:
        return np.int64(0), qe, True
    N = R >> s
    rem = R - (N << s)
    half = np.int64(1) << (s - 1)
    if abs(rem - half) <= IRR_MARGIN:
        return N, qe, False
    if rem > half:
        N += 1
    return N, qe, True


@njit(cache=True, inline="always")
def butterfly_f64(v, n):
    """In place: v <- H v with H[i, j] = (-1)^popcount(i & j) (Sylvester order)."""
    h = 1
    while h < n:
        for i in range(0, n, 2 * h):
            for j in range(i, i + h):
                a = v[j]
                b = v[j + h]
                v[j] = a + b
                v[j + h] = a - b
        h *= 2


@njit(cache=True)
def special_block(v, sg, srow, n, inverse, p, ebits, o, off, st):
    """Blocks with NaN/Inf or all zeros: IEEE sum semantics per output, which no summation order changes.

    NaN if any input is NaN or the infinite terms of an output have both signs; else +-Inf if there is one;
    else (all inputs zero) -0 when every term is -0, +0 otherwise. v carries the input signs already.
    """
    has_nan = False
    for i in range(n):
        if v[i] != v[i]:
            has_nan = True
    for j in range(n):
        if has_nan:
            o[off + j * st] = nan_bits(p, ebits)
            continue
        pos = False
        neg = False
        allnegzero = True
        for i in range(n):
            tn = (math.copysign(1.0, v[i]) < 0.0) != (popcount_parity(i & j) == 1)
            if inverse and sg[srow, j] < 0:
                tn = not tn
            if math.isinf(v[i]):
                if tn:
                    neg = True
                else:
                    pos = True
            if not tn:
                allnegzero = False
        if pos and neg:
            o[off + j * st] = nan_bits(p, ebits)
        elif pos or neg:
            o[off + j * st] = inf_bits(neg, p, ebits)
        else:
            o[off + j * st] = np.int64(allnegzero) << (p - 1 + ebits)


@njit(cache=True)
def limb_block(v, sg, srow, n, k, inverse, p, ebits, o, off, st):
    """Tier 2: exact multi-limb integer butterfly of finite v (signs applied). Returns 1 if undecided."""
    mant = np.empty(n, np.int64)
    expo = np.empty(n, np.int64)
    qmin = np.int64(1 << 20)
    top = np.int64(-(1 << 20))
    for i in range(n):
        b = np.float64(v[i]).view(np.int64)
        ef = (b >> 52) & 0x7FF
        m = b & MASK52
        if ef == 0:
            e = np.int64(-1074)
        else:
            m |= np.int64(1) << 52
            e = ef - 1075
        mant[i] = m
        expo[i] = e
        if m != 0:
            qmin = min(qmin, e)
            top = max(top, e + 53)
    L = (top - qmin + k + 1) // 32 + 3
    T = np.zeros((n, L), np.int64)
    for i in range(n):
        m = mant[i]
        if m == 0:
            continue
        sh = expo[i] - qmin
        li = sh >> 5
        off_b = sh & 31
        lo = (m & MASK32) << off_b
        hi = (m >> 32) << off_b
        sgn = -1 if v[i] < 0.0 else 1
        T[i, li] += sgn * (lo & MASK32)
        T[i, li + 1] += sgn * ((lo >> 32) + (hi & MASK32))
        T[i, li + 2] += sgn * (hi >> 32)
    h = 1
    while h < n:
        for i0 in range(0, n, 2 * h):
            for a in range(i0, i0 + h):
                for l in range(L):
                    x = T[a, l]
                    y = T[a + h, l]
                    T[a, l] = x + y
                    T[a + h, l] = x - y
        h *= 2
    undecided = 0
    irr = (k & 1) == 1
    for j in range(n):
        c = np.int64(0)
        for l in range(L):
            x = T[j, l] + c
            T[j, l] = x & MASK32
            c = x >> 32
        neg = c < 0
        if neg:  # two's complement over the limbs: negate and renormalise
            c = np.int64(0)
            for l in range(L):
                x = -T[j, l] + c
                T[j, l] = x & MASK32
                c = x >> 32
        hi_l = -1
        for l in range(L - 1, -1, -1):
            if T[j, l] != 0:
                hi_l = l
                break
        if hi_l < 0:
            o[off + j * st] = 0  # exact cancellation of nonzero terms: +0 (IEEE round-to-nearest)
            continue
        total = 32 * hi_l + bit_length(T[j, hi_l])
        shift = max(total - 62, 0)
        A = np.int64(0)
        sticky = False
        for l in range(hi_l, -1, -1):
            lo_bit = 32 * l
            if lo_bit >= shift:
                A |= T[j, l] << (lo_bit - shift)
            elif lo_bit + 32 > shift:
                d = shift - lo_bit
                A |= T[j, l] >> d
                if (T[j, l] & ((np.int64(1) << d) - 1)) != 0:
                    sticky = True
            elif T[j, l] != 0:
                sticky = True
        t = qmin + shift - k // 2
        if inverse and sg[srow, j] < 0:
            neg = not neg
        if irr:
            N, qe, ok = round_irr(A, t, p, ebits)
            if not ok:
                undecided = 1
        else:
            N, qe = round_int(A, t, sticky, p, ebits)
        o[off + j * st] = encode(neg, N, qe, p, ebits)
    return undecided


@njit(cache=True)
def round_block(v, scale, sg, srow, n, inverse, p, ebits, o, off, st):
    """Outputs of a tier-1 block with a power-of-4 n, any format (kept out of line: the rare path)."""
    for j in range(n):
        z = v[j] * scale * (sg[srow, j] if inverse else 1.0) + 0.0  # + 0.0: an exact zero is +0
        o[off + j * st] = round_f64_bits(z, p, ebits)


@njit(cache=True)
def exact_block(x, o, off, st, n, k, sg, srow, inverse, p, ebits, container_p, v):
    """One block, exact mode, any n, format and stride. Returns 1 when the 1/sqrt(2) rounding stayed undecided
    (recompute the block exactly)."""
    amax = 0.0
    amin = np.inf
    bad = 0.0  # becomes NaN iff some input is Inf or NaN (x - x)
    for i in range(n):
        xi = np.float64(x[off + i * st]) * (1.0 if inverse else sg[srow, i])
        v[i] = xi
        a = abs(xi)
        bad += xi - xi
        amax = max(amax, a)
        amin = min(amin, a if a != 0.0 else np.inf)
    if bad != bad or amax == 0.0:
        special_block(v, sg, srow, n, inverse, p, ebits, o, off, st)
        return 0
    ea = (np.float64(amax).view(np.int64) >> 52) & 0x7FF
    eb = (np.float64(amin).view(np.int64) >> 52) & 0x7FF
    if ea - eb + container_p + k > 53:
        return limb_block(v, sg, srow, n, k, inverse, p, ebits, o, off, st)
    butterfly_f64(v, n)
    if (k & 1) == 0:
        scale = math.ldexp(1.0, -(k // 2))  # exact: a power of two, far from float64's range limits
        if p == 24 and ebits == 8:
            for j in range(n):
                z = v[j] * scale * (sg[srow, j] if inverse else 1.0) + 0.0  # + 0.0: an exact zero is +0
                o[off + j * st] = np.float32(z).view(np.uint32)  # IEEE float64 -> float32 is RNE
            return 0
        if p == 8 and ebits == 8:
            # bfloat16 for |z| >= 2^-126: round the float64 fraction at its bit 45 (carries run into the
            # exponent; exponent 255 is Inf); zeros and subnormals redo the block below
            ok = True
            for j in range(n):
                z = v[j] * scale * (sg[srow, j] if inverse else 1.0)
                zb = np.float64(z).view(np.int64)
                mag = zb & 0x7FFFFFFFFFFFFFFF
                r = mag + 0x0FFFFFFFFFFF + ((mag >> 45) & 1)
                e = min((r >> 52) - 896, 255)
                o[off + j * st] = ((zb >> 48) & 0x8000) | (e << 7) | (((r >> 45) & 0x7F) * (e < 255))
                ok = ok & ((mag >> 52) >= 897)
            if ok:
                return 0
        round_block(v, scale, sg, srow, n, inverse, p, ebits, o, off, st)
        return 0
    undecided = 0
    for j in range(n):
        y = v[j]
        if y == 0.0:
            o[off + j * st] = 0
            continue
        yb = np.float64(y).view(np.int64)
        A = (yb & MASK52) | (np.int64(1) << 52)
        t = ((yb >> 52) & 0x7FF) - 1075 - k // 2
        N, qe, ok = round_irr(A, t, p, ebits)
        if not ok:
            undecided = 1
        o[off + j * st] = encode((yb < 0) != (inverse and sg[srow, j] < 0.0), N, qe, p, ebits)
    return undecided


@njit(cache=True)
def tier1_columns(V, st3, n, k, W):
    """In place on V (n elements by W columns, one block per column): the Sylvester butterfly across columns
    (vectorises); st3[2, c] = 1.0 where column c is a plain tier-1 block (finite, not all zero, exponent range
    certified exact: see the module docstring), else 0.0. st3: (3, >= W) scratch."""
    for c in range(W):
        st3[0, c] = 0.0      # amax
        st3[1, c] = np.inf   # smallest nonzero |x|
        st3[2, c] = 0.0      # NaN iff the column holds Inf or NaN
    for i in range(n):
        for c in range(W):
            xi = V[i, c]
            a = abs(xi)
            st3[0, c] = max(st3[0, c], a)
            st3[1, c] = min(st3[1, c], a if a != 0.0 else np.inf)
            st3[2, c] += xi - xi
    h = 1
    while h < n:
        for i0 in range(0, n, 2 * h):
            for a in range(i0, i0 + h):
                for c in range(W):
                    u = V[a, c]
                    w = V[a + h, c]
                    V[a, c] = u + w
                    V[a + h, c] = u - w
        h *= 2
    for c in range(W):
        ea = (np.float64(st3[0, c]).view(np.int64) >> 52) & 0x7FF
        eb = (np.float64(st3[1, c]).view(np.int64) >> 52) & 0x7FF
        good = st3[2, c] == st3[2, c] and st3[0, c] != 0.0 and ea - eb + 24 + k <= 53
        st3[2, c] = 1.0 if good else 0.0


@njit(cache=True)
def rht16_blocks(x, o, sg, r0, shared, V, O, st3, v, flags, f32out, n, k, inverse, p, ebits, container_p):
    """The hot path: consecutive 16-blocks x (a slice, unit stride; block b is row r0 + b), forward, float32
    input, float32 (f32out) or bfloat16 output. The blocks are held block-minor in V (16, blocks) so that the
    checks, the butterfly and the scaling run across blocks (vectorised); loads and stores stay contiguous.
    A block that is not a plain tier-1 block (NaN/Inf, all zero, wide range, a bfloat16 zero or subnormal
    output) is redone by exact_block, with flags[b] its result. The caller guarantees n = 16, k = 4, not
    inverse, container_p = 24 and (p, ebits) matching f32out; they are passed as variables so that
    exact_block is compiled once."""
    nb = x.size // 16
    for b in range(nb):
        srow = 0 if shared else r0 + b
        for i in range(16):
            V[i, b] = np.float64(x[b * 16 + i]) * sg[srow, i]
    tier1_columns(V, st3, 16, k, nb)
    # the outputs block-minor into O, then to o block by block
    if f32out:
        for j in range(16):
            for b in range(nb):
                O[j, b] = np.float32(V[j, b] * 0.25 + 0.0).view(np.uint32)  # + 0.0: an exact zero is +0
    else:
        # st3[1] becomes the smallest |output| * 4: a bfloat16 zero or subnormal output (|y| < 2^-126) is
        # exact_block's (a branch here would keep the loop from vectorising)
        for b in range(nb):
            st3[1, b] = np.inf
        for j in range(16):
            for b in range(nb):
                zb = np.float64(V[j, b] * 0.25).view(np.int64)
                mag = zb & 0x7FFFFFFFFFFFFFFF
                r = mag + 0x0FFFFFFFFFFF + ((mag >> 45) & 1)
                e = min((r >> 52) - 896, 255)
                O[j, b] = ((zb >> 48) & 0x8000) | (e << 7) | (((r >> 45) & 0x7F) * (e < 255))
                st3[1, b] = min(st3[1, b], abs(V[j, b]))
        for b in range(nb):
            if st3[1, b] * 0.25 < 2.0 ** -126:
                st3[2, b] = 0.0
    for b in range(nb):
        for j in range(16):
            o[b * 16 + j] = O[j, b]
    for b in range(nb):
        flags[b] = 0
        if st3[2, b] == 0.0:
            flags[b] = exact_block(x, o, b * 16, 1, n, k, sg, 0 if shared else r0 + b, inverse, p, ebits,
                                   container_p, v)


@njit(cache=True)
def exact_tile(x, o, base, post, c0, W, n, k, sg, shared, row, inverse, p, ebits, container_p, V, st3, v, flags):
    """Columns c0 .. c0+W-1 of one block row when the transform axis is not the last (stride post): the
    butterfly runs across W columns at once so that loads, adds and roundings vectorise along the columns.
    Only for float32 containers, n a power of 4 and float32/bfloat16 outputs; a column that is not a plain
    tier-1 block (NaN/Inf, all zero, wide range, a bfloat16 zero or subnormal output) is redone by
    exact_block."""
    for i in range(n):
        si = 1.0 if inverse else sg[0, i]
        for c in range(W):
            s = si if shared or inverse else sg[row * post + c0 + c, i]
            V[i, c] = np.float64(x[base + i * post + c0 + c]) * s
    tier1_columns(V, st3, n, k, W)
    scale = math.ldexp(1.0, -(k // 2))
    for j in range(n):
        sj = scale * (sg[0, j] if inverse else 1.0)
        for c in range(W):
            z = V[j, c] * (sj if shared or not inverse else scale * sg[row * post + c0 + c, j]) + 0.0
            if p == 24:
                o[base + j * post + c0 + c] = np.float32(z).view(np.uint32)
            else:
                zb = np.float64(z).view(np.int64)
                mag = zb & 0x7FFFFFFFFFFFFFFF
                r = mag + 0x0FFFFFFFFFFF + ((mag >> 45) & 1)
                e = min((r >> 52) - 896, 255)
                o[base + j * post + c0 + c] = ((zb >> 48) & 0x8000) | (e << 7) | (((r >> 45) & 0x7F) * (e < 255))
                if (mag >> 52) < 897:
                    st3[2, c] = 0.0
    for c in range(W):
        if st3[2, c] == 0.0:
            idx = row * post + c0 + c
            flags[idx] = exact_block(x, o, base + c0 + c, post, n, k, sg, 0 if shared else idx, inverse, p, ebits,
                                     container_p, v)


@njit(cache=True, parallel=True)
def transform_exact(x, pre, m, post, sg, k, inverse, p, ebits, container_p, o, flags):
    """Exact transform of flat x (float32 or float64) into flat o (bits). sg: (1, n) shared or (blocks, n)
    signs; flags[idx] = 1 where a block's 1/sqrt(2) rounding stayed undecided."""
    n = 1 << k
    rows = pre * (m // n)
    shared = sg.shape[0] == 1
    if post == 1:
        if k == 4 and ebits == 8 and container_p == 24 and not inverse and (p == 8 or p == 24):
            # 64 work units of CHUNK-block runs (scratch made once per unit)
            nu = min(64, (rows + CHUNK - 1) // CHUNK)
            for u in prange(nu):
                wide_vectors()
                v = np.empty(n, np.float64)
                V = np.empty((16, CHUNK), np.float64)
                O = np.empty((16, CHUNK), np.uint32)
                st3 = np.empty((3, CHUNK), np.float64)
                for r0 in range(u * rows // nu, (u + 1) * rows // nu, CHUNK):
                    r1 = min((u + 1) * rows // nu, r0 + CHUNK)
                    rht16_blocks(x[r0 * 16:r1 * 16], o[r0 * 16:r1 * 16], sg, r0, shared, V, O, st3, v,
                                 flags[r0:r1], p == 24, n, k, inverse, p, ebits, container_p)
            return
        for ch in prange((rows + CHUNK - 1) // CHUNK):
            wide_vectors()
            v = np.empty(n, np.float64)
            r0 = ch * CHUNK
            r1 = min(rows, r0 + CHUNK)
            for row in range(r0, r1):
                flags[row] = exact_block(x, o, row * n, post, n, k, sg, 0 if shared else row, inverse, p, ebits,
                                         container_p, v)
    else:
        ncp = (post + CHUNK - 1) // CHUNK
        tiled = container_p == 24 and (k & 1) == 0 and ebits == 8 and (p == 8 or p == 24)
        for it in prange(rows * ncp):
            wide_vectors()
            row = it // ncp
            c0 = (it - row * ncp) * CHUNK
            W = min(post, c0 + CHUNK) - c0
            v = np.empty(n, np.float64)
            if tiled:
                V = np.empty((n, CHUNK), np.float64)
                st3 = np.empty((3, CHUNK), np.float64)
                exact_tile(x, o, row * n * post, post, c0, W, n, k, sg, shared, row, inverse, p, ebits, container_p,
                           V, st3, v, flags)
            else:
                for c in range(c0, c0 + W):
                    idx = row * post + c
                    flags[idx] = exact_block(x, o, row * n * post + c, post, n, k, sg, 0 if shared else idx,
                                             inverse, p, ebits, container_p, v)


@njit(cache=True)
def te_matrix(B, H, sg, srow, inverse):
    """B = diag(s) H / 4 (forward) or H diag(s) / 4 (inverse) in float32 (entries +-0.25, exact in bf16)."""
    for i in range(16):
        for j in range(16):
            b = np.float32(0.25) if H[i, j] > 0 else np.float32(-0.25)
            B[i, j] = -b if sg[srow, j if inverse else i] < 0 else b


@njit(cache=True)
def te_block(x, bf16, off, st, B, to_bf16, o32, o16, acc):
    """TE model of one 16-block: output j = sum over i = 0..15, in that order, of fl32(x_i * B[i, j]), each
    addition in float32 round-to-nearest-even, from +0.0; then float32 -> bfloat16 round-to-nearest-even (or
    the float32 sum). The 16 outputs are accumulated side by side (each keeps its own order). x: the inputs' bit
    patterns as bits32_at reads them (float32, or bfloat16 if bf16, else float16)."""
    for j in range(16):
        acc[j] = 0.0
    for i in range(16):
        xi = u32_as_f32(bits32_at(x, off + i * st, bf16))
        for j in range(16):
            acc[j] = np.float32(acc[j] + np.float32(xi * B[i, j]))
    for j in range(16):
        a = acc[j]
        if to_bf16:
            if a != a:
                o16[off + j * st] = 0x7FC0
            else:
                bits = np.int64(np.float32(a).view(np.uint32))
                o16[off + j * st] = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        else:
            o32[off + j * st] = a if a == a else np.float32(np.nan)


@njit(cache=True, inline="always")
def sign_bit(mask, k):
    """The float32 sign bit of element k % 16 under a uint32 sign mask (bit i set = -1), in 32 bits."""
    return shl32(np.uint32(shr32(mask, k & 15) & np.uint32(1)), 31)


# H_16 (Sylvester) as a module constant: Numba freezes it into the machine code, so LLVM keeps its rows in
# registers in te_rows instead of reloading them from an argument array that the stores might alias
H16 = np.array([[1.0 - 2.0 * (bin(i & j).count("1") & 1) for j in range(16)] for i in range(16)], np.float32)


@njit(cache=True, inline="always")
def _bf16_out(u):
    """float32 pattern u rounded to the nearest bfloat16 pattern, ties to even; NaN -> the canonical NaN."""
    h = np.uint32((u + np.uint32(0x7FFF) + ((u >> 16) & np.uint32(1))) >> 16)
    return np.uint32(0x7FC0) if (u & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000) else h


@njit(cache=True, fastmath={"contract"})
def te_rows(xs, bf16, mi, mo, to_bf16, o32, o16):
    """te_block for the consecutive 16-blocks of xs (unit stride, one matrix; bit patterns as te_block's x) into
    o32/o16 (their slices), with B[i, j] = 0.25 * H16[i, j] * (-1)^(bit i of mi) * (-1)^(bit j of mo) (uint32
    masks: the signs on B's rows for the forward, on its columns for the inverse). Rounding to nearest is
    symmetric (fl(-v) = -fl(v)), so fl32(x_i * B[i, j]) is +-q_i * H16[i, j] with q_i = fl32(+-x_i * 0.25): one
    rounded product per input, its sign flipped on the bits. Output j adds its 16 terms in order from +0.0 in
    one expression, so the loop over j has no dependence between outputs and LLVM vectorizes it across them
    (no transpose). Under contract each q_i * H16[i, j] + sum becomes one fused multiply-add, which rounds as
    the addition of +-q_i does because the product is exact. A column sign negates the sum: negating every term
    negates every partial sum, except that an exact zero is +0 either way (a sum from +0.0 is never -0), so a
    negated zero is put back to +0. to_bf16 with an empty o16: the bfloat16 outputs widened into o32 (block
    quantization's float32 rows). Returns the largest magnitude bit pattern of the outputs as written (bfloat16
    outputs widened): the tensor amax that block quantization needs next."""
    wide_vectors()
    nb = xs.size // 16
    U = np.empty(TE_RUN * 16, np.uint32)
    X = np.empty(TE_RUN * 16, np.float32)
    S = np.empty(TE_RUN * 16, np.float32)
    m = np.uint32(0)
    for r0 in range(0, nb, TE_RUN):
        nr = min(nb, r0 + TE_RUN) - r0
        e0 = r0 * 16
        xw = widened(xs[e0:e0 + nr * 16], U, bf16)  # 16-bit inputs: widened in a loop that vectorizes
        for k in range(nr * 16):
            X[k] = u32_as_f32(np.uint32(xw[k] ^ sign_bit(mi, k))) * np.float32(0.25)
        for b in range(nr):
            prefetch(xs, e0 + (TE_RUN + b) * 16)  # the next run's line of this block, to overlap its DRAM read
            q0, q1, q2, q3 = X[b * 16], X[b * 16 + 1], X[b * 16 + 2], X[b * 16 + 3]
            q4, q5, q6, q7 = X[b * 16 + 4], X[b * 16 + 5], X[b * 16 + 6], X[b * 16 + 7]
            q8, q9, q10, q11 = X[b * 16 + 8], X[b * 16 + 9], X[b * 16 + 10], X[b * 16 + 11]
            q12, q13, q14, q15 = X[b * 16 + 12], X[b * 16 + 13], X[b * 16 + 14], X[b * 16 + 15]
            for j in range(16):
                S[b * 16 + j] = (np.float32(0.0) + q0 * H16[0, j] + q1 * H16[1, j] + q2 * H16[2, j]
                                 + q3 * H16[3, j] + q4 * H16[4, j] + q5 * H16[5, j] + q6 * H16[6, j]
                                 + q7 * H16[7, j] + q8 * H16[8, j] + q9 * H16[9, j] + q10 * H16[10, j]
                                 + q11 * H16[11, j] + q12 * H16[12, j] + q13 * H16[13, j] + q14 * H16[14, j]
                                 + q15 * H16[15, j])
        if mo != 0:  # a separate loop: in the rounding loops below it cost the forward ~17%
            for k in range(nr * 16):
                u = np.uint32(f32_as_u32(S[k]) ^ sign_bit(mo, k))
                S[k] = u32_as_f32(u if u != np.uint32(0x80000000) else np.uint32(0))
        # NaN -> the canonical NaN, decided on the bits (a float compare-and-select measured 2x slower)
        if to_bf16 and o16.size == 0:  # widened: the bfloat16 outputs as float32 patterns in o32
            o = o32[e0:e0 + nr * 16]
            for k in range(nr * 16):
                h = shl32(_bf16_out(f32_as_u32(S[k])), 16)
                o[k] = u32_as_f32(h)
                m = max(m, h & np.uint32(0x7FFFFFFF))
        elif to_bf16:
            o = o16[e0:e0 + nr * 16]
            for k in range(nr * 16):
                h = _bf16_out(f32_as_u32(S[k]))
                o[k] = h
                m = max(m, (h << 16) & np.uint32(0x7FFFFFFF))
        else:
            o = o32[e0:e0 + nr * 16]
            for k in range(nr * 16):
                u = f32_as_u32(S[k])
                w = np.uint32(0x7FC00000) if (u & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000) else u
                o[k] = u32_as_f32(w)
                m = max(m, w & np.uint32(0x7FFFFFFF))
    return m


@njit(cache=True, parallel=True)
def transform_te(x, bf16, pre, m, post, sg, H, inverse, to_bf16, o32, o16):
    """Model of TransformerEngine's RHT16 numerics on the flat bit patterns x (see te_block and
    fp4ref.hadamard). Returns te_rows' largest output magnitude pattern where it ran (contiguous blocks with one
    matrix), else -1."""
    rows = pre * (m // 16)
    shared = sg.shape[0] == 1
    if post == 1 and shared:
        # contiguous blocks, one matrix: 64 work units of consecutive blocks; the unused output is empty
        mask = 0
        for i in range(16):
            if sg[0, i] < 0:
                mask |= 1 << i
        mi, mo = np.uint32(0 if inverse else mask), np.uint32(mask if inverse else 0)
        nu = min(64, rows)
        part = np.zeros(max(nu, 1), np.int64)
        for u in prange(nu):
            b0, b1 = u * rows // nu, (u + 1) * rows // nu
            part[u] = te_rows(x[b0 * 16:b1 * 16], bf16, mi, mo, to_bf16, o32[b0 * 16:b1 * 16], o16[b0 * 16:b1 * 16])
        return part.max()
    ncp = (post + CHUNK - 1) // CHUNK
    units = (rows + CHUNK - 1) // CHUNK if post == 1 else rows * ncp
    for it in prange(units):
        wide_vectors()
        acc = np.empty(16, np.float32)
        B = np.empty((16, 16), np.float32)
        if shared:
            te_matrix(B, H, sg, 0, inverse)
        if post == 1:
            for row in range(it * CHUNK, min(rows, (it + 1) * CHUNK)):
                te_matrix(B, H, sg, row, inverse)
                te_block(x, bf16, row * 16, 1, B, to_bf16, o32, o16, acc)
        else:
            row = it // ncp
            c0 = (it - row * ncp) * CHUNK
            for c in range(c0, min(post, c0 + CHUNK)):
                if not shared:
                    te_matrix(B, H, sg, row * post + c, inverse)
                te_block(x, bf16, row * 16 * post + c, post, B, to_bf16, o32, o16, acc)
    return -1


@njit(cache=True, parallel=True)
def te_amax(x, bf16, mi, to_bf16):
    """te_rows' largest output magnitude pattern over the contiguous 16-blocks of the flat bit patterns x (row
    sign mask mi, the forward transform), the outputs written only into a scratch run that stays in cache: the
    tensor amax of a transform that block quantization then applies again tile row by tile row."""
    rows = x.size // 16
    nu = min(64, rows)
    part = np.zeros(max(nu, 1), np.int64)
    for u in prange(nu):
        o32 = np.empty(0 if to_bf16 else TE_PIECE, np.float32)
        o16 = np.empty(TE_PIECE if to_bf16 else 0, np.uint16)
        e1 = (u + 1) * rows // nu * 16
        m = np.int64(0)
        for e0 in range(u * rows // nu * 16, e1, TE_PIECE):
            n = min(e1 - e0, TE_PIECE)
            m = max(m, np.int64(te_rows(x[e0:e0 + n], bf16, mi, np.uint32(0), to_bf16, o32[:n], o16[:n])))
        part[u] = m
    return part.max()


@njit(cache=True)
def sums_block(x, off, st, n, k, sg, srow, inverse, v, est):
    """accumulation_tolerance's per-block numbers; see block_sums. Returns (asum, cert)."""
    s_abs = 0.0
    special = False
    qlow = np.int64(1 << 20)
    for i in range(n):
        xi = np.float64(x[off + i * st])
        if not inverse and sg[srow, i] < 0:
            xi = -xi
        v[i] = xi
        a = abs(xi)
        if not (a <= DBL_MAX):
            special = True
        elif a != 0.0:
            s_abs += a
            b = np.float64(a).view(np.int64)
            mnt = (b & MASK52) | (np.int64(1) << 52)  # float32 inputs are normal in float64
            low = mnt & (-mnt)
            qlow = min(qlow, ((b >> 52) & 0x7FF) - 1075 + bit_length(low) - 1)
    butterfly_f64(v, n)
    for j in range(n):
        y = v[j]
        if inverse and sg[srow, j] < 0:
            y = -y
        est[off + j * st] = y
    # s_abs carries at most n-1 roundings of 2^-53 relative: enlarge it to an upper bound
    s_abs *= 1.0 + (n + 1) * 2.0 ** -53
    if special:
        return s_abs, CERT_SPECIAL
    q = qlow - k // 2
    ok = k % 2 == 0 and q >= -149
    if ok and s_abs > 0.0:
        tsum = math.ldexp(s_abs, -(k // 2))
        ok = tsum < math.ldexp(1.0, q + 24) and tsum < FLT_MAX
    return s_abs, (CERT_EXACT if ok else CERT_NONE)


@njit(cache=True, parallel=True)
def block_sums(x, pre, m, post, sg, k, inverse, est, asum, cert):
    """For accumulation_tolerance, on flat float32 x: est (per output) the float64 butterfly value of the
    signed sum_i H_ij x_i without the 1/sqrt(n) scale; asum (per block) sum |x_i| over finite x_i, rounded
    up; cert (per block) CERT_SPECIAL if the block holds NaN/Inf, CERT_EXACT if fp32 sums of its terms are
    exact in every order, CERT_NONE otherwise.

    CERT_EXACT: all terms are multiples of 2^q (q from each input's lowest set bit, minus k/2) with q >= -149
    and sum |terms| < 2^(q+24) (and below FLT_MAX), so every partial sum in any order is a float32 number.
    Only for even k (n = 4^j), where the terms x_i * 2^(-k/2) are exact.
    """
    n = 1 << k
    rows = pre * (m // n)
    shared = sg.shape[0] == 1
    nblocks = rows * post
    for it in prange((nblocks + CHUNK - 1) // CHUNK):
        wide_vectors()
        v = np.empty(n, np.float64)
        for idx in range(it * CHUNK, min(nblocks, (it + 1) * CHUNK)):
            row = idx // post
            c = idx - row * post
            a, ce = sums_block(x, row * n * post + c, post, n, k, sg, 0 if shared else idx, inverse, v, est)
            asum[idx] = a
            cert[idx] = ce


@njit(cache=True, parallel=True)
def round_f64(v, p, ebits, o):
    """Round-to-nearest-even of each float64 v (1-D) into the (p, ebits) format (bits, 1-D o); NaN -> canonical."""
    for i in prange(v.size):
        wide_vectors()
        y = v[i]
        if y != y:
            o[i] = nan_bits(p, ebits)
        elif math.isinf(y):
            o[i] = inf_bits(y < 0, p, ebits)
        else:
            o[i] = round_f64_bits(y, p, ebits)
