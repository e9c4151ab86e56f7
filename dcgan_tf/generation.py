"""Making faces from a trained generator: grids, single files, latent walks, fixed queries.

Images are produced in batches and written as they come, so a large --n never holds more
than one batch of images besides the grid being written. Every output is written under a
temporary name and renamed when complete: an error or Ctrl-C leaves nothing half written.
"""

import os
import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from .images import GridCanvas, make_grid, partial_path, save_png


class FaceGenerator:
    """z -> uint8 images, from a run directory, an export directory, a bare SavedModel or a .keras file."""

    def __init__(self, fn, latent_dim):
        self._fn, self.latent_dim = fn, latent_dim

    @classmethod
    def load(cls, path):
        from . import latent
        from .export import GENERATOR_FILE, load_generator

        path = Path(path)
        if path.is_dir() and (path / "saved_model.pb").is_file() and not (path / GENERATOR_FILE).is_file():
            return cls._from_saved_model(path)
        generator, _ = load_generator(path)
        return cls(lambda z: latent.to_uint8(generator(z, training=False)), int(generator.input_shape[-1]))

    @classmethod
    def _from_saved_model(cls, path):
        signature = tf.saved_model.load(str(path)).signatures.get("serving_default")
        inputs = signature.structured_input_signature[1] if signature is not None else {}
        outputs = signature.structured_outputs if signature is not None else {}
        z_spec = inputs.get("z")
        if z_spec is None or z_spec.shape.rank != 2 or "images" not in outputs:
            raise ValueError(f"{path} is a SavedModel but not a dcgan-tf generator "
                             "(its serving_default must map z [batch, latent_dim] to images)")
        return cls(lambda z: signature(z=tf.convert_to_tensor(z, tf.float32))["images"], int(z_spec.shape[1]))

    def __call__(self, z):
        return np.asarray(self._fn(tf.convert_to_tensor(z, tf.float32)))

    def batches(self, z, batch_size=256, progress=False):
        """Yield (start index, uint8 images) batch by batch."""
        bar = _progress_bar(len(z)) if progress else None
        for start in range(0, len(z), batch_size):
            images = self(z[start:start + batch_size])
            if bar is not None:
                bar.update(start + len(images))
            yield start, images


def _progress_bar(total):
    import keras
    return keras.utils.Progbar(total, unit_name="image")


def write_grid(generator, z, out, rows=None, batch_size=256, individual_dir=None, progress=False):
    """One PNG grid of G(z) (and each image as its own PNG in individual_dir); returns the paths."""
    grid = None
    partial_dir = _partial(individual_dir) if individual_dir is not None else None
    for start, images in generator.batches(z, batch_size, progress):
        if grid is None:
            grid = GridCanvas(len(z), images.shape[1:], rows)
        for offset, image in enumerate(images):
            grid.put(start + offset, image)
            if partial_dir is not None:
                Image.fromarray(image).save(partial_dir / f"face_{start + offset:05d}.png")
    written = [save_png(grid.array, out)]
    if partial_dir is not None:
        written.append(_commit(partial_dir, individual_dir))
    return written


def write_walk(generator, z, out_png, out_gif, frame_ms=80, rows=None):
    """A latent walk as a PNG grid and an animated GIF that plays it forth and back."""
    frames = np.concatenate([images for _, images in generator.batches(z)])
    save_png(make_grid(frames, rows), out_png)
    pictures = [Image.fromarray(frame) for frame in np.concatenate([frames, frames[-2:0:-1]])]
    partial = partial_path(out_gif)
    pictures[0].save(partial, format="GIF", save_all=True, append_images=pictures[1:], duration=frame_ms, loop=0)
    os.replace(partial, out_gif)
    return [Path(out_png), Path(out_gif)]


def _partial(directory):
    partial = partial_path(directory)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    return partial


def _commit(partial, directory):
    directory = Path(directory)
    if directory.exists():
        shutil.rmtree(directory)
    partial.rename(directory)
    return directory
