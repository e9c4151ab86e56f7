"""One image file -> a uint8 face: the size limits, RGB conversion, the face crop and the resize.

dcgan_tf.data.sources reads whole folders, zips and arrays with these, one image at a time.
"""

import contextlib
import io
import warnings
import zipfile
import zlib

import numpy as np
from PIL import Image

MAX_PIXELS = 2**26  # 67 megapixels, e.g. 8192x8192
# Pillow warns on opening images over its own limit; those are refused below before decoding.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)
# Aligned CelebA (img_align_celeba) frames are 178x218; this box holds the face.
CELEBA_FRAME = (178, 218)
CELEBA_FACE_BOX = (30, 55, 150, 175)


class DataError(ValueError):
    """Bad training data, with a message that names the source and the problem."""


def error_name(error):
    """An exception's type as a user can look it up: ValueError, zlib.error."""
    kind = type(error)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"


def _centre_square(width, height, side=None):
    side = min(width, height) if side is None else min(side, width, height)
    left, top = (width - side) / 2, (height - side) / 2
    return (left, top, left + side, top + side)


def _celeba_box(width, height):
    sx, sy = width / CELEBA_FRAME[0], height / CELEBA_FRAME[1]
    left, top, right, bottom = CELEBA_FACE_BOX
    return (left * sx, top * sy, right * sx, bottom * sy)


def _is_celeba_frame(width, height):
    return abs(width / height - CELEBA_FRAME[0] / CELEBA_FRAME[1]) < 0.02


def parse_crop(spec):
    """A crop spec -> function (width, height) -> box (left, top, right, bottom) or None.

    "auto" (default): the CelebA face box on images with the aligned-CelebA aspect ratio
    (scaled to their size), else the largest centred square; "celeba": always that box;
    "center" / "center:N": centred square (largest, or N pixels); "box:l,t,r,b"; "none".
    """
    name, _, arg = spec.partition(":")
    try:
        if name == "auto" and not arg:
            return lambda w, h: _celeba_box(w, h) if _is_celeba_frame(w, h) else _centre_square(w, h)
        if name == "celeba" and not arg:
            return _celeba_box
        if name == "center":
            side = int(arg) if arg else None
            if side is not None and side <= 0:
                raise ValueError
            return lambda w, h: _centre_square(w, h, side)
        if name == "box":
            box = tuple(int(v) for v in arg.split(","))
            if len(box) != 4 or box[0] >= box[2] or box[1] >= box[3]:
                raise ValueError
            return lambda w, h: box
        if name == "none" and not arg:
            return lambda w, h: None
    except ValueError:
        pass
    raise DataError(f"bad crop {spec!r}: use auto, celeba, center, center:N, box:LEFT,TOP,RIGHT,BOTTOM or none")



def _to_rgb(image):
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit PNGs and PGMs (mode I): keep the top 8 bits
        pixels = np.asarray(image, dtype=np.float64)
        if pixels.size and (pixels.min() < 0 or pixels.max() > 65535):  # mode I is 32-bit: no range to scale by
            raise DataError(f"32-bit integer pixels from {pixels.min():.0f} to {pixels.max():.0f}, outside the "
                            "16-bit range 0-65535 this reads: save it as an 8- or 16-bit image")
        pixels /= 257.0
        image = Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        background = Image.new("RGBA", image.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert("RGB")


def process_image(image, size, crop):
    """PIL image -> uint8 [size, size, 3]: RGB, cropped, resized with antialiasing."""
    image = _to_rgb(image)
    box = crop(*image.size)
    if box is not None and (box[0] < 0 or box[1] < 0 or box[2] > image.size[0] or box[3] > image.size[1]):
        raise DataError(f"crop box {tuple(round(v) for v in box)} lies outside the {image.size[0]}x{image.size[1]} image")
    resized = image.resize((size, size), Image.LANCZOS, box=box)
    return np.asarray(resized, dtype=np.uint8)


def decode_image(data, size, crop):
    """Bytes, a path or an open binary file (closed here) -> uint8 [size, size, 3]; DataError says
    why a file is unreadable. Pillow reads the header first: the size is checked before any pixel
    is decoded, and a zip member is inflated only as far as decoding reads it."""
    try:
        with contextlib.closing(data) if hasattr(data, "close") else contextlib.nullcontext(), \
                Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
            if image.width * image.height > MAX_PIXELS:  # known from the header, before decoding
                raise DataError(f"{image.width}x{image.height} is over the limit of {MAX_PIXELS / 1e6:.0f} "
                                "megapixels for one image")
            image.load()  # decode fully now: a truncated file fails here, not later in training
            return process_image(image, size, crop)
    except DataError:
        raise
    except (zlib.error, zipfile.BadZipFile, EOFError) as error:  # a zip member's stream, read as Pillow goes
        raise DataError(f"cannot extract it from the zip ({error_name(error)}: {error})") from None
    except Exception as error:  # Pillow raises several types for bad files
        raise DataError(f"not a readable image ({type(error).__name__}: {error})") from None


# --- sources --------------------------------------------------------------------------

