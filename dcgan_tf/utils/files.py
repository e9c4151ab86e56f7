"""Files and folders written atomically: under a temporary name, renamed once complete.

A crash, an error or Ctrl-C in the middle of a write leaves the previous version (or
nothing) in place, never half a file. A folder is replaced by exchanging the two in one
step (renameat2), so even a kill at that moment leaves one whole version in place. A target
that is a symbolic link is written through (its file is replaced, the link stays); a device,
FIFO or socket is refused: replacing it with a file would break what it stands for.
"""

import contextlib
import ctypes
import os
import shutil
import stat
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


class NotAFile(ValueError):
    """A file to write or read that is neither a file nor a folder (a device, a FIFO, a socket)."""


def real_target(path):
    """What writing `path` replaces: the file a symbolic link names (so the link keeps working),
    or `path` itself; NotAFile for a device, FIFO or socket."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode  # follows links
    except FileNotFoundError:
        mode = None  # nothing there yet, or a link to a file still to be made
    except OSError as error:  # a link loop, a name too long, a path through a file
        raise NotAFile(f"{path}: cannot write there ({error.strerror or error}): give another file name") from None
    if mode is not None and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise NotAFile(f"{path} is not a regular file but a device, FIFO or socket; writing would replace it: "
                       "give a file name")
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def regular_file(path, what):
    """`path` (a Path), unless it is a FIFO, device or socket (itself or where its link points):
    then NotAFile naming `what`, since reading one can wait forever or never end. A missing file
    is left to the caller, which knows what to say."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return path
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise NotAFile(f"{path} is a FIFO, device or socket, not a regular file: reading {what} from it could "
                       "wait forever; put the real file there")
    return path


def regular_files(directory, what):
    """regular_file for every file under `directory` (a SavedModel, a run's checkpoints)."""
    for root, _, names in os.walk(directory):
        for name in names:
            regular_file(Path(root) / name, what)


def _aside(path):
    return path.with_name(f".{path.name}.old")


def _exchange(a, b):
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where the system cannot."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    at_cwd, exchange = -100, 2
    return renameat2 is not None and renameat2(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), exchange) == 0


def _replace_folder(partial, target):
    """The complete folder `partial` takes the place of the folder `target`, which stays whole
    until then: exchanged in one step, or else moved aside first (a kill between the two renames
    leaves it aside, put back by the next write: _recover)."""
    if not _exchange(partial, target):
        os.replace(target, _aside(target))
        os.replace(partial, target)
        partial = _aside(target)
    shutil.rmtree(partial, ignore_errors=True)


def _recover(target):
    """Undo what a kill in the middle of _replace_folder left: the old folder aside, none in place."""
    aside = _aside(target)
    if aside.is_dir():
        if target.exists():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(aside, target)


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
    targets = [real_target(p) for p in paths]
    partials = [partial_path(p, suffix) for p in targets]
    for partial, target in zip(partials, targets):
        _recover(target)
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
            _replace_folder(partial, target)
        else:
            os.replace(partial, target)


def check_writable(directory, flag):
    """Create `directory` if needed and write a probe file in it, so a read-only or full file
    system, or a file in the way, is an error before any work (ValueError naming `flag`)."""
    directory = Path(directory)
    if directory.is_symlink() and not directory.exists():
        raise ValueError(f"{flag} {directory} is a link to {os.readlink(directory)}, which does not exist: "
                         f"create that folder, or choose another {flag}")
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"{flag} {directory} is a file, not a folder: choose another {flag}")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory) as probe:
            probe.write(bytes(4096))
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as error:
        raise ValueError(f"{flag} {directory} is not writable ({error.strerror or error}): "
                         f"choose another {flag}") from None
