"""Image grids and PNG files."""

import math
from pathlib import Path

import numpy as np
from PIL import Image

from .files import written_atomically


class GridCanvas:
    """A grid image filled tile by tile, so a large grid needs no list of all its images."""

    def __init__(self, count, tile_shape, rows=None, padding=2):
        h, w, c = tile_shape
        self.rows = min(rows, count) if rows else max(1, int(math.sqrt(count)))
        self.cols = math.ceil(count / self.rows)
        self.h, self.w, self.padding = h, w, padding
        self.array = np.full((self.rows * (h + padding) + padding, self.cols * (w + padding) + padding, c),
                             255, np.uint8)

    def put(self, index, image):
        r, c = divmod(index, self.cols)
        top, left = self.padding + r * (self.h + self.padding), self.padding + c * (self.w + self.padding)
        self.array[top:top + self.h, left:left + self.w] = image


def make_grid(images, rows=None, padding=2):
    """uint8 [n, h, w, 3] -> one uint8 image of the n tiles, `rows` rows (default: square-ish)."""
    images = np.asarray(images)
    grid = GridCanvas(len(images), images.shape[1:], rows, padding)
    for i, image in enumerate(images):
        grid.put(i, image)
    return grid.array


def save_png(array, path):
    """Write a PNG atomically: a reader never sees a half-written file."""
    with written_atomically(path) as (partial,):
        Image.fromarray(np.asarray(array)).save(partial, format="PNG")
    return Path(path)


def save_grid(images, path, rows=None):
    return save_png(make_grid(images, rows), path)
