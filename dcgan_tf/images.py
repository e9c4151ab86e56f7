"""Image grids and PNG files."""

import math
import os
from pathlib import Path

import numpy as np
from PIL import Image


class GridCanvas:
    """A grid image filled tile by tile, so a large grid needs no list of all its images."""

    def __init__(self, count, tile_shape, rows=None, padding=2):
        h, w, c = tile_shape
        self.rows = rows or max(1, int(math.sqrt(count)))
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


def partial_path(path):
    """Where `path` is written before the rename that makes it appear complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.partial")


def save_png(array, path):
    """Write a PNG atomically: a reader never sees a half-written file."""
    path = Path(path)
    partial = partial_path(path)
    Image.fromarray(np.asarray(array)).save(partial, format="PNG")
    os.replace(partial, path)
    return path


def save_grid(images, path, rows=None):
    return save_png(make_grid(images, rows), path)
