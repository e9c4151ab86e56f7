"""Files and folders written atomically: under a temporary name, renamed once complete.

A crash, an error or Ctrl-C in the middle of a write leaves the previous version (or
nothing) in place, never half a file.
"""

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

CACHE_DIR = Path.home() / ".cache" / "dcgan_tf"  # cached Inception features, downloaded datasets


def partial_path(path, suffix=""):
    """Where `path` is written before the rename that makes it appear complete.

    suffix: for writers that append an extension of their own (np.save adds .npy).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.partial{suffix}")


def _remove(path):
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def written_atomically(*paths, suffix=""):
    """Yield a list of temporary paths to write `paths` under.

    If the block succeeds each one replaces its target (a folder only by a folder, whole;
    the caller decides whether an existing folder may be replaced); if it fails, or a file
    would replace a folder, they are removed and the targets are left as they were.
    """
    targets = [Path(p) for p in paths]
    partials = [partial_path(p, suffix) for p in targets]
    for partial in partials:
        _remove(partial)
    try:
        yield partials
        for partial, target in zip(partials, targets):
            if target.is_dir() and not partial.is_dir():
                raise IsADirectoryError(f"{target} is a folder: give a file name")
    except BaseException:
        for partial in partials:
            _remove(partial)
        raise
    for partial, target in zip(partials, targets):
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(partial, target)


def check_writable(directory, flag):
    """Create `directory` if needed and write a probe file in it, so a read-only or full file
    system, or a file in the way, is an error before any work (ValueError naming `flag`)."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory) as probe:
            probe.write(bytes(4096))
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as error:
        raise ValueError(f"{flag} {directory} is not writable ({error.strerror or error}): "
                         f"choose another {flag}") from None
