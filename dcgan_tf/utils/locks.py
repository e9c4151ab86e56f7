"""One process at a time on a folder or a file: a training run, a download.

The lock is an flock on a small file beside what it guards, which holds the owner's process
id for the message of the one refused. The kernel releases it when the process ends however
it ends (a crash, SIGKILL), so a lock is never left behind; the file is removed at the end
(after a kill it stays, unlocked, and the next process takes it).
"""

import contextlib
import fcntl
import os
from pathlib import Path


class InUse(RuntimeError):
    """Another process holds the lock; the message says which one and what to do."""


@contextlib.contextmanager
def exclusive(lock_file, what, advice):
    """Hold the lock `lock_file` while the block runs; InUse at once if another process holds it:
    "WHAT is in use by process PID: ADVICE"."""
    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = _locked(lock_file, what, advice)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        lock_file.unlink(missing_ok=True)  # before the unlock: whoever opens the name next makes a new file
        os.close(fd)


def _locked(lock_file, what, advice):
    """A descriptor of `lock_file` holding its lock. A file that its owner removed between our open
    and our lock is no longer the lock: then open the name again."""
    while True:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise InUse(f"{what} is in use by process {owner}: {advice}") from None
        try:
            if os.stat(lock_file).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)
