"""Numba loop of fp4ref.dequantize (the NumPy formulation, dequantize_reference, is the tests' reference)."""
from numba import njit, prange

from .bits import wide_vectors


@njit(cache=True, parallel=True, error_model="numpy")
def dequantize_tiles(codes, grid, table, tr, tc, divide, gmode, g, out):
    """out[b, i, j] = table[code] × (or ÷) grid[b, i // tr, j // tc], then ÷ g (gmode 1) or × g (gmode 2), in
    float64, rounded once into out's dtype: the operations, in the order, of dequantize_reference."""
    B, R, C = codes.shape
    for task in prange(B * R):
        wide_vectors()
        b = task // R
        i = task % R
        srow = grid[b, i // tr]
        for j in range(C):
            e = table[codes[b, i, j]]
            s = srow[j // tc]
            v = e / s if divide else e * s
            if gmode == 1:
                v = v / g
            elif gmode == 2:
                v = v * g
            out[b, i, j] = v
