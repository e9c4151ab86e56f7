""".npy and .npz files read with their sizes checked first.

An array file's header declares its shape and dtype, and np.load allocates what it declares:
a 300-byte file can ask for terabytes, and a deflated .npz member of a few hundred KB can
inflate to gigabytes. Here the header is read alone and the array only if its size is within
the caller's limit and within what the file (or the zip member) holds.
"""

import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

# What can go wrong reading an array file or a zip member: a bad header, a bad zip, a corrupt
# deflate stream, truncated data, a missing member, a failing disk.
_READ_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError, NotImplementedError)


class ArrayFileError(ValueError):
    """An array file that is unreadable, or declares more than it may; the message names the file."""


def _header(stream):
    """(shape, dtype) from the header at the start of `stream`, which is left after it."""
    version = np.lib.format.read_magic(stream)
    read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(version)
    if read is None:
        raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
    shape, _, dtype = read(stream)
    if dtype.hasobject:
        raise ValueError("it holds Python objects, which are not loaded (allow_pickle=False)")
    return shape, dtype


def _nbytes(shape, dtype):
    return math.prod(shape) * dtype.itemsize  # Python integers: no overflow for a lying header


def _size(count):
    return f"{count / 2**30:.1f} GiB" if count >= 2**30 else f"{count / 2**20:.1f} MiB" if count >= 2**20 \
        else f"{count:,} bytes"


def _check(where, shape, dtype, room, max_bytes):
    """ArrayFileError unless the declared array fits in `room` (what the file holds) and max_bytes."""
    nbytes = _nbytes(shape, dtype)
    declared = f"declares an array of shape {shape} {dtype} ({_size(nbytes)})"
    if max_bytes is not None and nbytes > max_bytes:
        raise ArrayFileError(f"{where} {declared}, more than the {_size(max_bytes)} it may hold here")
    if nbytes > room:
        raise ArrayFileError(f"{where} {declared} but holds only {_size(room)}: a truncated or damaged file")


def load_npy(path, max_bytes=None, mmap=False):
    """The array in a .npy file, its declared size checked against the file's and max_bytes first."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            shape, dtype = _header(f)
            room = path.stat().st_size - f.tell()
        _check(str(path), shape, dtype, room, max_bytes)
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except ArrayFileError:
        raise
    except _READ_ERRORS as error:
        raise ArrayFileError(f"{path}: not a readable .npy file ({error})") from None


class Npz:
    """The arrays of a .npz, each read only once its header is checked (see read)."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            self._zip = zipfile.ZipFile(self.path)
        except _READ_ERRORS as error:
            raise ArrayFileError(f"{self.path}: not a readable .npz file ({error})") from None
        self.files = [name.removesuffix(".npy") for name in self._zip.namelist() if name.endswith(".npy")]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._zip.close()

    def header(self, name):
        """(shape, dtype) of the array `name`, from its header alone."""
        try:
            with self._zip.open(name + ".npy") as stream:
                return _header(stream)
        except _READ_ERRORS as error:
            raise ArrayFileError(f"{self.path}: {name} is not a readable array ({error})") from None

    def read(self, name, max_bytes):
        """The array `name`, if its header declares at most max_bytes (None: any size the member holds)."""
        shape, dtype = self.header(name)
        info = self._zip.getinfo(name + ".npy")
        _check(f"{self.path}: {name}", shape, dtype, info.file_size, max_bytes)
        try:
            with self._zip.open(info) as stream:
                return np.lib.format.read_array(stream, allow_pickle=False)
        except _READ_ERRORS as error:
            raise ArrayFileError(f"{self.path}: {name} is not a readable array ({error})") from None
