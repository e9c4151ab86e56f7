"""Image grids and PNG files."""

import math
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from dcgan_tf.utils.files import written_atomically


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


def to_uint8(images):
    """A generator's [-1, 1] images -> uint8 pixels (in a tf.function and a SavedModel too)."""
    images = tf.cast(images, tf.float32)
    return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0.0, 255.0), tf.uint8)


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


def arithmetic_figure(exemplars, averages, signs, results, padding=2):
    """The DCGAN paper's figure 7: per concept a column of exemplars over their average's face,
    joined by - and + signs, then = and the result grid beside the averages.

    exemplars uint8 [concepts, k, h, w, 3], averages [concepts, h, w, 3], signs +1/-1 per
    concept, results [9, h, w, 3] (a 3x3 grid, the exact result in the middle).
    """
    concepts, k, h, w, _ = exemplars.shape
    gap = w // 2  # room for the operator signs between columns
    average_top = padding + k * (h + padding) + h // 4

    def column_left(c):
        return padding + c * (w + gap)

    results_left = column_left(concepts)
    canvas = np.full((average_top + h + padding, results_left + 3 * (w + padding), 3), 255, np.uint8)
    for c in range(concepts):
        for i in range(k):
            top = padding + i * (h + padding)
            canvas[top:top + h, column_left(c):column_left(c) + w] = exemplars[c, i]
        canvas[average_top:average_top + h, column_left(c):column_left(c) + w] = averages[c]
        if c:
            _draw_sign(canvas, column_left(c) - gap // 2, average_top + h // 2, gap, "+" if signs[c] > 0 else "-")
    _draw_sign(canvas, results_left - gap // 2, average_top + h // 2, gap, "=")
    for i, image in enumerate(results):  # bottom row level with the averages
        r, c = divmod(i, 3)
        top, left = average_top - (2 - r) * (h + padding), results_left + c * (w + padding)
        canvas[top:top + h, left:left + w] = image
    return canvas


def _draw_sign(canvas, x, y, size, sign):
    """+, - or = drawn as bars centred on (x, y), without a font."""
    half, thick = max(2, size * 3 // 10), max(1, size // 10)
    bars = {"-": [("across", 0)], "+": [("across", 0), ("down", 0)], "=": [("across", -thick - 1), ("across", thick + 1)]}
    for direction, offset in bars[sign]:
        if direction == "across":
            canvas[y + offset - thick // 2:y + offset + (thick + 1) // 2, x - half:x + half] = 60
        else:
            canvas[y - half:y + half, x - thick // 2:x + (thick + 1) // 2] = 60
