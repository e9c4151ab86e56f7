"""Downloading CelebA's official files, verified and resumable: each file is fetched from the first
source that delivers it (dcgan_tf.data.hosts) and kept only if its size, SHA-256 and MD5 match
(the dcgan-tf download command is dcgan_tf/cli/download.py).
"""

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from dcgan_tf.data.hosts import CHUNK, OTHER_SOURCES, SourceError, Unreachable, say, size_text
from dcgan_tf.utils import locks
from dcgan_tf.utils.files import CACHE_DIR, check_writable, partial_path


@dataclass(frozen=True)
class RemoteFile:
    name: str
    size: int
    sha256: str
    md5: str
    drive_id: str


# Google Drive ids, sizes and SHA-256 as in TensorFlow Datasets' celeb_a; MD5 as in torchvision's CelebA.
# The two small files first: a quota or network problem shows in seconds, not after 1.3 GiB.
CELEBA = (
    RemoteFile("list_attr_celeba.txt", 26_721_026,
               "f0e5da289d5ccf75ffe8811132694922b60f2af59256ed362afa03fefba324d0",
               "75e246fa4810816ffd6ee81facbd244c", "0B7EVK8r0v71pblRyaVFSWGxPY0U"),
    RemoteFile("list_eval_partition.txt", 2_836_386,
               "fc955bcb3ef8fbdf7d5640d9a8693a8431b5f2ee291a5c1449a1549e7e073fe7",
               "d32c9cbf5e040fd4025c592c306e6668", "0B7EVK8r0v71pY0NSMzRuSXJEVkk"),
    RemoteFile("img_align_celeba.zip", 1_443_490_838,
               "46fb89443c578308acf364d7d379fe1b9efb793042c0af734b6112e4fd3a8c74",
               "00d2c5bc6d35e252742224ab0c1e8fcb", "0B7EVK8r0v71pZjFTYXZWM3FlRnM"),
)
IMAGES, ATTRIBUTES, PARTITION = "img_align_celeba.zip", "list_attr_celeba.txt", "list_eval_partition.txt"
DEFAULT_DIR = CACHE_DIR / "celeba"


class DownloadError(Exception):
    """No source delivered a file; the message says why and what to do."""


class NotDownloaded(ValueError):
    """A dataset name (`--data celeba`) whose files are not downloaded yet."""


# --- resolving `--data celeba` ----------------------------------------------------------

def resolve_dataset_path(spec, name=IMAGES, root=None):
    """"celeba" -> the path of its downloaded file `name` (IMAGES for --data, ATTRIBUTES for
    --attrs, PARTITION for --holdout); any other spec is returned unchanged. NotDownloaded says how to get the file."""
    if spec != "celeba":
        return spec
    path = Path(root or DEFAULT_DIR) / name
    if not path.is_file():
        local = " (for the folder named celeba here, write ./celeba)" if Path("celeba").exists() else ""
        raise NotDownloaded(f"celeba: {path} is not downloaded yet: run `dcgan-tf download celeba` "
                            f"(with --to DIR, pass DIR/{name} instead){local}")
    return str(path)


# --- checking a file --------------------------------------------------------------------

def mismatch(file, path):
    """None if `path` holds exactly `file` (size, SHA-256, MD5), else what differs."""
    size = path.stat().st_size
    if size != file.size:
        return f"{size:,} bytes, expected {file.size:,}"
    sha256, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            sha256.update(chunk)
            md5.update(chunk)
    for name, digest, expected in (("SHA-256", sha256, file.sha256), ("MD5", md5, file.md5)):
        if digest.hexdigest() != expected:
            return f"{name} {digest.hexdigest()}, expected {expected}"
    return None


# --- downloading ------------------------------------------------------------------------

def _check_space(file, partial):
    needed = file.size - (partial.stat().st_size if partial.exists() else 0)
    free = shutil.disk_usage(partial.parent).free
    if needed > free:
        raise DownloadError(f"{file.name} needs {size_text(needed)} more, but {partial.parent} has {size_text(free)} free: "
                            "free some space or choose another folder with --to DIR")


def fetch(file, path, sources):
    """Put `file` at `path`, verified: keep a verified copy, else try `sources` in order.
    One process at a time (locks.InUse for a second one)."""
    path = Path(path)
    with locks.exclusive(path.with_name(f".{path.name}.lock"), path,
                         "another download writes it: wait for it to end, or choose another --to"):
        return _fetch(file, path, sources)


def _fetch(file, path, sources):
    if (path.exists() or path.is_symlink()) and not path.is_file():
        raise DownloadError(f"{path} is in the way of {file.name}: it is a folder, a dangling link or not a "
                            "regular file: move it away, or choose another --to")
    if path.exists():
        problem = mismatch(file, path)
        if problem is None:
            say(f"{file.name}: already downloaded and verified")
            return path
        say(f"{file.name}: the copy in {path.parent} does not match ({problem}): downloading it again")
        path.unlink()
    partial = partial_path(path)
    _check_space(file, partial)
    failures = []
    for source in sources:
        try:
            source.fetch(file, partial)
        except SourceError as error:
            say(f"{file.name}: {source.label}: {error}")
            failures.append(error)
            continue
        except OSError as error:  # writing the partial file: a full disk, an I/O error
            raise DownloadError(f"could not write {partial} ({error.strerror or error}): free some space, "
                                f"or choose another --to; {_kept(partial)}") from None
        problem = mismatch(file, partial)
        if problem is not None:
            partial.unlink()
            say(f"{file.name}: {source.label}: checksum mismatch ({problem}): deleted the partial file")
            failures.append(SourceError(problem))
            continue
        os.replace(partial, path)
        say(f"{file.name}: verified (size, SHA-256 and MD5)")
        return path
    kept = f"; {_kept(partial)}" if partial.exists() else ""
    if failures and all(isinstance(failure, Unreachable) for failure in failures):
        raise DownloadError(f"cannot reach any source of {file.name}: check the network connection{kept}")
    raise DownloadError(f"no source delivered {file.name} (reasons above){kept}: try again later, add a "
                        f"source ({OTHER_SOURCES}), or download it by hand (README: Training on CelebA)")


def _kept(partial):
    return f"{size_text(partial.stat().st_size if partial.exists() else 0)} are kept for the next run to resume"


def download(files, folder, sources):
    """Fetch each of `files` into `folder` (see fetch); returns their paths."""
    folder = Path(folder).expanduser()
    check_writable(folder, "--to")
    return [fetch(file, folder / file.name, sources) for file in files]
