"""Block geometry: which elements share a scale, and where each block's scale is stored.

Three layouts (``blocks``):

- ``"1d"``: blocks of ``block`` consecutive elements along ``axis`` (OCP MX v1.0 §6: "k elements along one
  dimension"). Scales have x's shape with ``axis`` divided by the block size (ceil when padded), C order.
- ``"2d"``: tiles ``block = (rows, cols)`` over the last two axes (TransformerEngine NVFP4 weights: 16×16).
  ``tile_scales="grid"`` stores one scale per tile (…, ceil(M/rows), ceil(N/cols)); ``"rows"`` repeats each
  tile's scale on every row the tile covers, (…, M, ceil(N/cols)), as TransformerEngine stores 2D scales.
- ``"flat"``: blocks of ``block`` consecutive elements of x in C (memory) order, crossing rows (the FP4
  simulator's ``blockify`` and Quartet's groups). Scales are 1-D.

A length that is not a multiple of the block is an error unless ``pad`` is set: the block is completed with
the value ``pad``; ``pad_amax="include"`` lets the pad value take part in the block amax, ``"exclude"`` does not.
Padded positions get no codes (codes always have x's shape).
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np

__all__ = ["LAYOUTS", "TILE_SCALES", "Geometry", "geometry"]

LAYOUTS = ("1d", "2d", "flat")
TILE_SCALES = ("grid", "rows")
PAD_AMAX = ("include", "exclude")


@dataclass(frozen=True)
class Geometry:
    """How an input of ``shape`` is viewed as (B, R, C) with tiles (tr, tc), and how the scale grid maps back."""
    layout: str
    shape: tuple
    axis: int             # normalized (non-negative) axis of the blocks, -1 for "flat"
    tile: tuple           # (tr, tc)
    view: tuple           # (B, R, C)
    tile_scales: str = "grid"

    @property
    def grid(self) -> tuple:
        B, R, C = self.view
        tr, tc = self.tile
        return (B, -(-R // tr), -(-C // tc))

    @property
    def scale_shape(self) -> tuple:
        B, nr, nc = self.grid
        if self.layout == "flat":
            return (nr * nc,)
        if self.layout == "2d":
            lead = self.shape[:-2]
            if self.tile_scales == "rows":
                return (*lead, self.shape[-2], nc)
            return (*lead, nr, nc)
        moved = [d for i, d in enumerate(self.shape) if i != self.axis]
        moved.insert(self.axis, nc)
        return tuple(moved)

    def view_of(self, x: np.ndarray) -> np.ndarray:
        """x as the (B, R, C) array the kernels read (a view where x's memory allows, else a copy)."""
        if self.layout == "1d" and self.axis != x.ndim - 1:
            x = np.moveaxis(x, self.axis, -1)
        return x.reshape(self.view)

    def codes_from_view(self, c: np.ndarray) -> np.ndarray:
        """Kernel codes (B, R, C) back in x's layout (C order)."""
        if self.layout == "1d" and self.axis != len(self.shape) - 1:
            moved = [d for i, d in enumerate(self.shape) if i != self.axis] + [self.shape[self.axis]]
            return np.ascontiguousarray(np.moveaxis(c.reshape(moved), -1, self.axis))
        return c.reshape(self.shape)

    def scales_from_grid(self, g: np.ndarray) -> np.ndarray:
        """Kernel scale grid (B, nTR, nTC) in the documented linear layout."""
        B, nr, nc = self.grid
        if self.layout == "flat":
            return g.reshape(-1)
        if self.layout == "2d":
            lead = self.shape[:-2]
            if self.tile_scales == "rows":
                rows = np.repeat(g, self.tile[0], axis=1)[:, : self.shape[-2], :]
                return np.ascontiguousarray(rows.reshape(*lead, self.shape[-2], nc))
            return g.reshape(*lead, nr, nc)
        moved = [d for i, d in enumerate(self.shape) if i != self.axis] + [nc]
        return np.ascontiguousarray(np.moveaxis(g.reshape(moved), -1, self.axis))

    def scale_index_of_elements(self) -> np.ndarray:
        """For every element of x, the flat index (C order) of its block's scale in the kernel grid."""
        B, R, C = self.view
        tr, tc = self.tile
        _, nr, nc = self.grid
        b = np.arange(B)[:, None, None]
        r = np.arange(R)[None, :, None] // tr
        c = np.arange(C)[None, None, :] // tc
        idx = (b * nr + r) * nc + c
        return self.codes_from_view(np.broadcast_to(idx, self.view))


def geometry(shape, axis, layout: str, block, *, pad=None, tile_scales: str = "grid") -> Geometry:
    """Validate block options against an input shape and return its Geometry."""
    shape = tuple(int(d) for d in shape)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown blocks {layout!r}; valid: {', '.join(LAYOUTS)}")
    if tile_scales not in TILE_SCALES:
        raise ValueError(f"unknown tile_scales {tile_scales!r}; valid: {', '.join(TILE_SCALES)}")
    if len(shape) == 0:
        raise ValueError("x must have at least one dimension")
    if layout == "2d":
        if not (isinstance(block, (tuple, list)) and len(block) == 2):
            raise ValueError(f"blocks='2d' needs block=(rows, cols), got {block!r}")
        tr, tc = (int(block[0]), int(block[1]))
        if len(shape) < 2:
            raise ValueError(f"blocks='2d' needs an input of at least 2 dimensions, got shape {shape}")
        if axis not in (-1, len(shape) - 1):
            raise ValueError(f"blocks='2d' tiles the last two axes; axis must be -1, got {axis}")
        ax = len(shape) - 1
        view = (prod(shape[:-2]), shape[-2], shape[-1])
    else:
        if isinstance(block, (tuple, list)):
            raise ValueError(f"blocks={layout!r} needs an integer block size, got {block!r} (use blocks='2d' "
                             "for tiles)")
        tr, tc = 1, int(block)
        if layout == "flat":
            n = prod(shape)
            ax = -1
            view = (1, n // tc, tc) if n % tc == 0 else (1, 1, n)
        else:
            if not -len(shape) <= axis < len(shape):
                raise ValueError(f"axis {axis} out of range for an input of {len(shape)} dimensions")
            ax = axis % len(shape)
            L = shape[ax]
            view = (1, prod(shape) // L if L else 0, L)
    if tr < 1 or tc < 1:
        raise ValueError(f"block sizes must be positive, got {block!r}")
    ragged = []
    if layout == "2d":
        if shape[-2] % tr:
            ragged.append(f"rows {shape[-2]} by {tr}")
        if shape[-1] % tc:
            ragged.append(f"columns {shape[-1]} by {tc}")
    elif layout == "flat":
        if prod(shape) % tc:
            ragged.append(f"size {prod(shape)} by {tc}")
    elif shape[ax] % tc:
        ragged.append(f"axis {ax} length {shape[ax]} by {tc}")
    if ragged and pad is None:
        raise ValueError("input is not a whole number of blocks (" + "; ".join(ragged) + "); choose a padding "
                         "policy with pad=<value> (and pad_amax='include'|'exclude')")
    return Geometry(layout=layout, shape=shape, axis=ax, tile=(tr, tc), view=view, tile_scales=tile_scales)
