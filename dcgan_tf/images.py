"""Image grids and PNG files."""

import math
import os
from pathlib import Path

import numpy as np
from PIL import Image


def make_grid(images, rows=None, padding=2):
    """uint8 [n, h, w, 3] -> one uint8 image of the n tiles, `rows` rows (default: square-ish)."""
    images = np.asarray(images)
    n, h, w, c = images.shape
    rows = rows or max(1, int(math.sqrt(n)))
    cols = math.ceil(n / rows)
    grid = np.full((rows * (h + padding) + padding, cols * (w + padding) + padding, c), 255, np.uint8)
    for i, image in enumerate(images):
        r, col = divmod(i, cols)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[top:top + h, left:left + w] = image
    return grid


def save_png(array, path):
    """Write a PNG atomically: a reader never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    Image.fromarray(np.asarray(array)).save(partial, format="PNG")
    os.replace(partial, path)
    return path


def save_grid(images, path, rows=None):
    return save_png(make_grid(images, rows), path)
