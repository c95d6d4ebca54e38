"""Seamless tiling: overlapping tiles whose margin covers the model's receptive
radius, run in batches, stitched back with no pixel lost.

Tiles never reach outside the image, so a convolutional model sees at the
image border exactly the zero padding it would see on the whole image; with a
margin of at least the receptive radius, each kept pixel is computed from the
same inputs as in whole-image inference. An image smaller than a tile is one
tile of its own size; a larger one gets the fewest tiles that cover it, each no
longer than it must be, and all of one shape. Memory grows with the batch of tiles,
not the image.

A model whose layers pool over their whole input (RIDNet's channel attention)
computes its statistics over each tile instead of the image. Measured on RIDNet
(sigma 25, two 1536-pixel photos): tiles of 434, 512, 818 pixels and the whole image
are within 0.06 dB of one another.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# `progress(done, total)`: called after each batch of tiles.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Span:
    """One tile along one axis: read [start, start+length), keep [keep_start, keep_stop)."""

    start: int
    length: int
    keep_start: int
    keep_stop: int


def plan_axis(size: int, tile: int, margin: int, align: int = 1) -> list[Span]:
    """Spans covering [0, size) with tiles of at most `tile` pixels overlapping by at
    least 2*margin: as few tiles as cover the axis, each as short as it can be.

    With `align`, every tile starts at a multiple of it, so that a model that strides
    by `align` (the U-Net's 16) samples each tile on the whole image's grid; the tile
    length is then one that ends the last tile at the image's end from such a start."""
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    if margin < 0:
        raise ValueError(f"margin must be non-negative, got {margin}")
    if tile <= 2 * margin + align - 1:
        raise ValueError(f"tile ({tile}) must be larger than twice the margin ({margin}) and the alignment")
    if size <= tile:
        return [Span(0, size, 0, size)]
    # Full-size tiles overlap far more than 2*margin wherever the last one is pushed
    # back: a 1024-pixel axis took 2.4 times its pixels in tiles of 768.
    count = -(-(size - 2 * margin) // (tile - 2 * margin))
    while True:
        length = -(-(size - 2 * margin) // count) + 2 * margin
        length += (size - length) % align  # the last tile, ending at `size`, starts on the grid
        stride = (length - 2 * margin) // align * align
        if length <= tile and (count - 1) * stride + length >= size:
            break
        count += 1
    starts = [min(i * stride, size - length) for i in range(count)]
    spans = []
    for i, start in enumerate(starts):
        # Cut in the middle of each overlap; every overlap is at least 2*margin wide.
        keep_start = 0 if i == 0 else (start + starts[i - 1] + length) // 2
        keep_stop = size if i == len(starts) - 1 else (starts[i + 1] + start + length) // 2
        spans.append(Span(start, length, keep_start, keep_stop))
    return spans


def plan_tiles(height: int, width: int, *, tile: int, margin: int, align: int = 1) -> list[tuple[Span, Span]]:
    """All (row span, column span) pairs for an image; every tile has the same shape."""
    rows, columns = plan_axis(height, tile, margin, align), plan_axis(width, tile, margin, align)
    return [(r, c) for r in rows for c in columns]


def run_tiled(image: np.ndarray, predict: Callable[[np.ndarray], np.ndarray], *, tile: int, margin: int, batch: int = 8,
              progress: Progress | None = None, level: np.ndarray | None = None, out: np.ndarray | None = None,
              align: int = 1) -> np.ndarray:
    """Applies `predict` (NHWC batch -> NHWC batch) to `image` tile by tile.

    `level`, an HxWx1 map (a broadcast view costs no memory), is appended to each tile
    as its last channel: the input of a level-map model, without a full-size copy.
    The result goes into `out` when given, which may be `image` itself: each band of
    tiles is kept aside until no tile still to run reads its rows, so a large photo
    needs no second full-size buffer. `progress(done, total)` is called after each
    batch with counts of tiles.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3:
        raise ValueError(f"expected an HWC image, got shape {image.shape}")
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    height, width, _ = image.shape
    rows = plan_axis(height, tile, margin, align)
    columns = plan_axis(width, tile, margin, align)
    tiles = [(band, r, c) for band, r in enumerate(rows) for c in columns]

    def cut(r, c):
        piece = image[r.start : r.start + r.length, c.start : c.start + c.length]
        if level is None:
            return piece
        return np.concatenate([piece, level[r.start : r.start + r.length, c.start : c.start + c.length]], axis=2)

    pending, done = {}, 0
    for first in range(0, len(tiles), batch):
        group = tiles[first : first + batch]
        results = np.asarray(predict(np.stack([cut(r, c) for _, r, c in group])), dtype=np.float32)
        if out is None:
            out = np.empty((height, width, results.shape[-1]), np.float32)
        for (band, r, c), result in zip(group, results):
            if band not in pending:
                pending[band] = np.empty((r.keep_stop - r.keep_start, width, results.shape[-1]), np.float32)
            pending[band][:, c.keep_start : c.keep_stop] = result[
                r.keep_start - r.start : r.keep_stop - r.start, c.keep_start - c.start : c.keep_stop - c.start
            ]
        done += len(group)
        # Every tile still to run reads rows from the first unfinished band's start on.
        finished = done // len(columns)
        still_read = rows[finished].start if finished < len(rows) else height
        for band in [b for b in pending if b < finished and rows[b].keep_stop <= still_read]:
            out[rows[band].keep_start : rows[band].keep_stop] = pending.pop(band)
        if progress is not None:
            progress(done, len(tiles))
    assert out is not None  # every image has at least one tile
    return out
