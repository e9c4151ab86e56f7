"""Training data: read a source once into uint8 images (dcgan_tf.pipeline serves the batches).

Sources (the `data` config field):
- "builtin" or "builtin:N": the procedural faces of dcgan_tf.faces (N images, default 2,000);
- "celeba": img_align_celeba.zip as `dcgan-tf download celeba` put it;
- a directory of images, searched recursively (.jpg .jpeg .png .bmp);
- a .zip of images, read as it is (e.g. img_align_celeba.zip as downloaded);
- a .npy / .npz array [N, H, W, C] (uint8, or floats in [0, 1] or [-1, 1]).

Each image is converted to RGB (grayscale, palette, RGBA, CMYK), face-cropped, resized
with antialiasing and kept as uint8, so a whole CelebA at 64x64 (2.5 GB) stays in
memory; batches are scaled to [-1, 1] in the pipeline. A `.npy` is memory-mapped, so a
prepared array larger than memory works too. The decoded set must fit in the memory
available, which is checked before it is allocated.

Files over MAX_FILE_BYTES and images over MAX_PIXELS are skipped (and listed) before they
are decompressed or decoded: a hostile or mistaken file cannot fill the memory.
"""

import math
import os
import threading
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from dcgan_tf.data.decoding import DataError, decode_image, error_name, parse_crop, process_image
from dcgan_tf.data.download import PARTITION, resolve_dataset_path
from dcgan_tf.utils import memory
from dcgan_tf.utils.arrays import ArrayFileError, Npz, load_npy
from dcgan_tf.utils.batches import progress_bar
from dcgan_tf.utils.files import regular_file

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
MAX_FILE_BYTES = 256 * 2**20  # one image file or zip member
STREAMED_BYTES = 2**20  # zip members larger than this are decoded as they inflate (smaller: read at once, faster)
BUILTIN_SIZE = 2000


@dataclass
class LoadReport:
    source: str
    found: int
    loaded: int
    skipped: list = field(default_factory=list)  # (name, reason)
    part: str = "all"  # which part of a held-out split was read (see split_part)
    names: list = None  # file names of the loaded images (image folders and zips)
    labels: str = ""  # the attribute file matched to them (dcgan_tf.labels)
    unlabelled: int = 0  # loaded images without a row in it, left out

    def summary(self):
        part = "" if self.part == "all" else f" ({self.part} part)"
        lines = [f"{self.source}: {self.loaded} images loaded of {self.found} found{part}"]
        if self.labels:
            lines.append(f"{self.loaded - self.unlabelled} have a row in {self.labels}; "
                         f"{self.unlabelled} without one are left out")
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} unreadable file(s):")
            lines += [f"  {name}: {reason}" for name, reason in self.skipped[:20]]
            if len(self.skipped) > 20:
                lines.append(f"  ... and {len(self.skipped) - 20} more")
        return "\n".join(lines)


# Why a zip member cannot be extracted: a bad CRC or header, a corrupt deflate stream, an
# unsupported compression method, encryption, truncated data, or a failing disk.
_ZIP_MEMBER_ERRORS = (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError, OSError, KeyError)




class _ZipReader:
    """Opens members of one zip from many threads (a ZipFile handle is not thread-safe)."""

    def __init__(self, path):
        self.path = path
        self._local = threading.local()

    def __call__(self, name):
        try:
            if not hasattr(self._local, "zip"):
                self._local.zip = zipfile.ZipFile(self.path)
            size = self._local.zip.getinfo(name).file_size
            _check_file_size(size)  # before inflating it
            # A large member as a stream: decode_image checks the header's size before inflating the rest.
            return self._local.zip.open(name) if size > STREAMED_BYTES else self._local.zip.read(name)
        except _ZIP_MEMBER_ERRORS as error:
            raise DataError(f"cannot extract it from the zip ({error_name(error)}: {error})") from None


def _check_file_size(size):
    if size > MAX_FILE_BYTES:
        raise DataError(f"{size / 2**20:.0f} MiB is over the limit of {MAX_FILE_BYTES / 2**20:.0f} MiB for one image")


def _sized_path(path):
    _check_file_size(path.stat().st_size)
    return str(path)


def _image_names(names):
    return sorted(n for n in names if n.lower().endswith(IMAGE_EXTENSIONS) and not Path(n).name.startswith("."))


def _list_files(spec):
    """-> (names, read(name) -> bytes or path) for a directory or a zip."""
    path = Path(spec)
    if path.is_dir():
        names = _image_names(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())
        return names, lambda name: _sized_path(path / name)
    try:
        with zipfile.ZipFile(path) as archive:
            names = _image_names(info.filename for info in archive.infolist() if not info.is_dir())
    except zipfile.BadZipFile as error:
        raise DataError(f"{spec}: not a readable zip file ({error})") from None
    return names, _ZipReader(path)


def check_fits(count, size, source, extra=0):
    """NotEnoughMemory unless `count` uint8 images of size x size (and `extra` bytes) fit in memory."""
    memory.check(count * size * size * 3 + extra, f"{source}: {count} images at {size}x{size}",
                 "use --limit N, a smaller --image-size or a .npy from dcgan-tf prepare (memory-mapped)")


def _decode_all(names, read, size, crop, progress, source):
    """Decode in threads (Pillow releases the GIL while decoding); keep order, skip bad files.
    Returns (images, their names, skipped (name, reason) pairs)."""
    check_fits(len(names), size, source)
    images = np.empty((len(names), size, size, 3), np.uint8)
    ok = np.zeros(len(names), bool)
    skipped = []

    def work(i):
        try:
            images[i] = decode_image(read(names[i]), size, crop)
            ok[i] = True
        except DataError as error:
            skipped.append((names[i], str(error)))

    bar = progress_bar(len(names), f"reading {len(names)} images from {source}") if progress else None
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for done, _ in enumerate(pool.map(work, range(len(names))), 1):
            if bar is not None and (done % 256 == 0 or done == len(names)):
                bar.update(done)
    # images[ok] is a copy: only pay for it (2x peak memory) when something was skipped.
    loaded = [name for name, good in zip(names, ok) if good]
    return (images if ok.all() else images[ok]), loaded, sorted(skipped)


def _image_stack(array, name):
    """[N, H, W, C], [N, H, W] (grayscale) or one colour image [H, W, 3|4] -> [N, H, W, C]."""
    if array.ndim == 3:
        array = array[None] if array.shape[-1] in (3, 4) else array[..., None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3, 4) or len(array) == 0:
        raise DataError(f"{name}: expected an array of images [N, H, W, 1|3|4], got shape {array.shape}")
    return array


def _array_images(array, size, crop, name):
    """An [N, H, W, C] array -> uint8 [N, size, size, 3]; memory-mapped arrays stay mapped when ready."""
    if array.dtype == np.uint8 and array.shape[1:] == (size, size, 3):
        return array
    converted = 0 if array.dtype == np.uint8 else array.size * (array.itemsize + 1)  # scaled, then uint8
    check_fits(len(array), size, name, extra=converted)
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.floating):
            raise DataError(f"{name}: expected uint8 or float images, got dtype {array.dtype}")
        low, high = float(array.min()), float(array.max())
        if not (math.isfinite(low) and math.isfinite(high)):  # NaN would become black pixels
            bad = next(i for i, image in enumerate(array) if not np.isfinite(image).all())
            raise DataError(f"{name}: image {bad} holds NaN or Inf values: fix or remove it")
        if low < -1.0 - 1e-3 or high > 1.0 + 1e-3:
            raise DataError(f"{name}: float images must lie in [0, 1] or [-1, 1], found [{low:.3g}, {high:.3g}]")
        scaled = (array + 1.0) * 127.5 if low < 0 else array * 255.0
        array = np.clip(np.round(scaled), 0, 255).astype(np.uint8)
    modes = {1: "L", 3: "RGB", 4: "RGBA"}
    mode = modes[array.shape[-1]]
    return np.stack([process_image(Image.fromarray(a.squeeze(-1) if mode == "L" else a, mode), size, crop)
                     for a in array])


def _load_array(path):
    """A .npy memory-mapped, or the first array of a .npz read if it fits in memory (both
    checked from their headers first: see dcgan_tf.utils.arrays)."""
    try:
        if path.suffix != ".npz":
            return load_npy(path, mmap=True)
        with Npz(path) as archive:
            if not archive.files:
                raise DataError(f"{path}: the .npz holds no array")
            shape, dtype = archive.header(archive.files[0])
            memory.check(math.prod(shape) * dtype.itemsize, f"{path} ({shape} {dtype})",
                         "use a .npy from dcgan-tf prepare (memory-mapped)")
            return archive.read(archive.files[0], max_bytes=None)
    except ArrayFileError as error:
        raise DataError(str(error)) from None


def _starts_with(path, magic):
    with path.open("rb") as f:
        return f.read(len(magic)) == magic


def _builtin_faces(spec, count, size, limit, seed, progress, holdout, part):
    from dcgan_tf.data.faces import render_faces
    if count and not (count.isdigit() and int(count) > 0):
        raise DataError(f"{spec}: the built-in set takes a positive image count, e.g. builtin:2000")
    count = int(count) if count else BUILTIN_SIZE
    indices = split_part(range(count), holdout, part, limit, spec)
    check_fits(len(indices), size, spec)
    bar = progress_bar(len(indices), f"drawing {len(indices)} built-in faces") if progress else None
    images = render_faces(len(indices), size, seed=seed, on_face=bar and (lambda: bar.add(1)), start=indices.start)
    return images, LoadReport(spec, count, len(images), part=part)


PARTS = ("all", "train", "holdout")


def split_part(items, holdout, part="all", limit=0, source="data"):
    """The items of one part of a held-out split, then the first `limit` of them.

    The split is a fixed rule, as CelebA's own partition is: the last `holdout` items (file
    names in sorted order, array rows in order) are the held-out part, the rest the training
    part, so training never sees an image that evaluation scores against.
    """
    if part not in PARTS:
        raise ValueError(f"part must be one of {', '.join(PARTS)}, got {part!r}")
    if holdout and holdout >= len(items):
        raise DataError(f"{source}: --holdout {holdout} leaves no training images of the {len(items)} found")
    chosen = {"all": items, "train": items[:len(items) - holdout], "holdout": items[len(items) - holdout:]}[part]
    if part == "holdout" and not holdout:
        raise DataError(f"{source}: there is no held-out part (the run has --holdout 0)")
    return chosen[:limit] if limit else chosen


def holdout_count(spec):
    """--holdout's value -> N, the number of last images to hold out: a count, or CelebA's
    list_eval_partition.txt ("celeba": the downloaded one). CelebA's test images (marked 2)
    are its last by file name, so holding out that many reproduces its test split (its
    validation images are trained on); a partition of any other shape is refused."""
    try:
        return int(spec)
    except ValueError:
        pass
    path = regular_file(Path(resolve_dataset_path(spec, PARTITION)).expanduser(), "a partition")
    if not path.is_file():
        raise DataError(f"{spec}: expected a count or CelebA's list_eval_partition.txt (no such file)")
    rows = sorted(line.split() for line in path.read_text("utf-8-sig", errors="replace").splitlines() if line.strip())
    if not rows or any(len(row) != 2 or row[1] not in ("0", "1", "2") for row in rows):
        raise DataError(f"{spec}: not in list_eval_partition.txt's format (a file name and 0, 1 or 2 per line)")
    marks = [mark for _, mark in rows]
    n = marks.count("2")
    if n == 0:
        raise DataError(f"{spec}: marks no test images (2) to hold out")
    if set(marks[-n:]) != {"2"}:
        raise DataError(f"{spec}: its {n} test images are not its last {n} by file name, "
                        "and --holdout holds out the last ones: give a count instead")
    return n


def is_named_source(spec):
    """builtin[:N] and celeba name a source that is no file of the user's (the module docstring)."""
    return spec == "celeba" or spec.partition(":")[0] == "builtin"


def load_images(spec, size, crop="auto", limit=0, seed=0, progress=True, strict=False, holdout=0, part="all"):
    """Read a data source (see the module docstring) -> (uint8 [N, size, size, 3], LoadReport).

    With holdout > 0, part "train" reads all but the last `holdout` images and "holdout"
    those (see split_part); `limit` then takes the first images of that part.
    Unreadable images are skipped and listed in the report, or with strict=True are an error.
    """
    crop_fn = parse_crop(crop)
    name, _, arg = spec.partition(":")
    if name == "builtin":
        return _builtin_faces(spec, arg, size, limit, seed, progress, holdout, part)
    spec = resolve_dataset_path(spec)
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(f"data path does not exist: {spec}")
    if not (path.is_file() or path.is_dir()):  # reading a FIFO or a device would block or never end
        raise DataError(f"{spec} is not a regular file or a folder: give an image folder, a .zip or a .npy/.npz")
    if path.suffix in (".npy", ".npz"):
        found = _image_stack(_load_array(path), spec)
        array = split_part(found, holdout, part, limit, spec)
        return _array_images(array, size, crop_fn, spec), LoadReport(spec, len(found), len(array), part=part)
    if path.is_file() and not zipfile.is_zipfile(path):
        if path.suffix.lower() == ".zip" or _starts_with(path, b"PK\x03\x04"):
            raise DataError(f"{spec}: a damaged or truncated zip (its table of contents is missing): "
                            "copy or download it again")
        raise DataError(f"{spec}: expected a directory, a .zip, a .npy/.npz or 'builtin'")
    found, read = _list_files(path)
    if not found:
        raise DataError(f"{spec}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)})")
    names = split_part(found, holdout, part, limit, spec)
    images, loaded, skipped = _decode_all(names, read, size, crop_fn, progress, spec)
    if len(images) == 0:
        first_name, first_reason = skipped[0]
        raise DataError(f"{spec}: none of the {len(names)} images could be read (e.g. {first_name}: {first_reason})")
    if skipped and strict:
        raise DataError(f"{spec}: {len(skipped)} unreadable image(s) and --strict is set: "
                        + "; ".join(f"{name}: {reason}" for name, reason in skipped[:3])
                        + (" ..." if len(skipped) > 3 else ""))
    return images, LoadReport(spec, len(found), len(images), skipped, part=part, names=loaded)
