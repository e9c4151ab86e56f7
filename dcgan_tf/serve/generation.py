"""Making faces from a trained generator: grids, single files, latent walks, fixed queries.

Latent vectors and images are produced in batches and written as they come, so a large --n
never holds more than one batch besides the grid being written, and a grid larger than
GRID_LIMIT_BYTES is refused (or, with --individual, shows the first faces only). Every
output is written under a temporary name and renamed when all of them are complete: an
error or Ctrl-C leaves nothing half written, and a folder of the user's own files is never replaced.
"""

import re
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from dcgan_tf.edit import conditioning
from dcgan_tf.utils import memory
from dcgan_tf.utils.batches import in_batches
from dcgan_tf.utils.files import written_atomically
from dcgan_tf.utils.images import GridCanvas, make_grid, to_uint8

GRID_LIMIT_BYTES = 2**30  # the pixels of one grid PNG; larger sets of faces are for --individual


class FaceGenerator:
    """z -> uint8 images, from a Keras generator or a SavedModel (dcgan_tf.serve.loader loads either).

    A conditional model's inputs are rows [z | attribute values] (dcgan_tf.conditioning);
    `attributes` names its attributes (empty for an unconditional model).
    """

    def __init__(self, fn, latent_dim, attributes=()):
        self._fn, self.latent_dim, self.attributes = fn, latent_dim, tuple(attributes)

    @classmethod
    def from_keras(cls, generator, attributes=()):
        """A Keras generator (tanh images in [-1, 1]) as z -> uint8 images, traced once for any
        batch size (faster than eager calls, most for one face at a time); a conditional one
        (inputs [z, attributes]) as rows [z | attributes] -> uint8 images."""
        latent_dim = int(generator.inputs[0].shape[-1])
        count = int(generator.inputs[1].shape[-1]) if len(generator.inputs) == 2 else 0

        def images(rows):
            inputs = conditioning.split_rows(rows, latent_dim) if count else rows
            return to_uint8(generator(inputs, training=False))
        fn = tf.function(images, input_signature=[tf.TensorSpec([None, latent_dim + count], tf.float32)])
        return cls(fn, latent_dim, (tuple(attributes) or conditioning.positional_names(count)) if count else ())

    @classmethod
    def from_saved_model(cls, path):
        """The serving_default signature of a SavedModel as z -> uint8 images (it runs the model's
        graph: check it first, dcgan_tf.serve.savedmodel.check_ops)."""
        model = tf.saved_model.load(str(path))
        signature = model.signatures.get("serving_default")
        inputs = signature.structured_input_signature[1] if signature is not None else {}
        outputs = signature.structured_outputs if signature is not None else {}
        z_spec, attribute_spec = inputs.get("z"), inputs.get("attributes")
        if z_spec is None or z_spec.shape.rank != 2 or "images" not in outputs:
            raise ValueError(f"{path} is a SavedModel but not a dcgan-tf generator "
                             "(its serving_default must map z [batch, latent_dim] to images)")
        latent_dim = int(z_spec.shape[1])
        if attribute_spec is None:
            return cls(lambda z: signature(z=tf.convert_to_tensor(z, tf.float32))["images"], latent_dim)
        # a function of the model; a signature in exports made before serving_default stood alone
        names = getattr(model, "attribute_names", None) or model.signatures.get("attribute_names")
        names = (tuple(name.decode() for name in names()["names"].numpy()) if names is not None
                 else conditioning.positional_names(int(attribute_spec.shape[1])))

        def generate(rows):
            z, attributes = conditioning.split_rows(tf.convert_to_tensor(rows, tf.float32), latent_dim)
            return signature(z=z, attributes=attributes)["images"]
        return cls(generate, latent_dim, names)

    def require_unconditional(self, task):
        """self, or a ValueError for a conditional model (its faces need attributes beside z)
        where `task` gives z alone."""
        if self.attributes:
            raise ValueError(f"{task} works on unconditional models; this one is conditioned on "
                             f"{', '.join(self.attributes)}: ask it for faces with generate.py --attrs or --vary")
        return self

    def __call__(self, z):
        return np.asarray(self._fn(tf.convert_to_tensor(z, tf.float32)))

    def batches(self, z, batch_size=256, progress=False):
        """Yield uint8 images batch by batch."""
        for z_batch in in_batches(z, batch_size, f"generating {len(z)} faces" if progress else None):
            yield self(z_batch)

    def all(self, z, batch_size=256, progress=False):
        """All the images of z in one array, made batch by batch."""
        return np.concatenate(list(self.batches(z, batch_size, progress)))


FACE_FILE = re.compile(r"face_\d+\.png")


def _check_replaceable(directory):
    """--individual replaces a folder of faces written before, never one holding other files."""
    if directory.exists() and (not directory.is_dir()
                               or any(not FACE_FILE.fullmatch(p.name) for p in directory.iterdir())):
        raise ValueError(f"{directory} exists and holds files generate.py did not write; choose another --out")


def grid_count(count, tile_shape, individual, log=print):
    """How many faces the grid shows: all of them if the grid fits GRID_LIMIT_BYTES (and memory);
    else, when every face also gets its own file, as many as fit; else ValueError."""
    h, w, c = tile_shape
    tile_bytes = (h + 2) * (w + 2) * c  # with the grid's padding
    needed = count * tile_bytes
    if needed <= GRID_LIMIT_BYTES:
        memory.check(needed, f"a grid of {count} faces", "lower --n")
        return count
    too_large = (f"a grid of {count} faces of {h}x{w} needs about {needed / 2**30:.1f} GiB, more than the "
                 f"{GRID_LIMIT_BYTES / 2**30:.1f} GiB a grid may use")
    if not individual:
        raise ValueError(f"{too_large}: lower --n, or add --individual to write each face to its own file")
    shown = GRID_LIMIT_BYTES // tile_bytes
    log(f"{too_large}: it shows the first {shown}; every face is written to its own file")
    return shown


def write_grid(generator, z, out, rows=None, batch_size=256, individual_dir=None, progress=False, log=print):
    """One PNG grid of G(z) (and each image as its own PNG in individual_dir); returns the paths.
    z: an array, a latent.LatentStream or a conditioning.JoinedRows."""
    targets = [Path(out)]
    if individual_dir is not None:
        _check_replaceable(Path(individual_dir))
        targets.append(Path(individual_dir))
    with written_atomically(*targets) as partials:
        faces_dir = partials[1] if individual_dir is not None else None
        if faces_dir is not None:
            faces_dir.mkdir()
        grid, index = None, 0
        for images in generator.batches(z, batch_size, progress):
            if grid is None:  # the first batch gives the image size
                shown = grid_count(len(z), images.shape[1:], individual_dir is not None, log)
                grid = GridCanvas(shown, images.shape[1:], rows)
            for image in images:
                if index < shown:
                    grid.put(index, image)
                if faces_dir is not None:
                    Image.fromarray(image).save(faces_dir / f"face_{index:05d}.png")
                index += 1
        Image.fromarray(grid.array).save(partials[0], format="PNG")
    return targets


def write_walk(generator, z, out_png, out_gif, frame_ms=80, rows=None):
    """A latent walk as a PNG grid and an animated GIF that plays it forth and back."""
    frames = generator.all(z)
    pictures = [Image.fromarray(frame) for frame in np.concatenate([frames, frames[-2:0:-1]])]
    with written_atomically(out_png, out_gif) as (png, gif):
        Image.fromarray(make_grid(frames, rows)).save(png, format="PNG")
        pictures[0].save(gif, format="GIF", save_all=True, append_images=pictures[1:], duration=frame_ms, loop=0)
    return [Path(out_png), Path(out_gif)]
