"""Memory a task needs, checked against what the machine has before anything is allocated, so
a size that cannot fit fails at once with a one-line error instead of swapping or being killed."""

import os
from pathlib import Path

GIB = 2**30


class NotEnoughMemory(ValueError):
    pass


def _read_int(path):
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _meminfo_available():
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_headroom():
    """Bytes left under a container's memory limit (cgroup v2 or v1), or None without one."""
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        cap, used = _read_int(limit), _read_int(usage)
        if cap is not None and used is not None and cap < 2**60:  # "max" or a huge number: no limit
            return max(cap - used, 0)
    return None


def available():
    """Bytes this process can still allocate without swapping (None where the system does not say)."""
    known = [b for b in (_meminfo_available(), _cgroup_headroom()) if b is not None]
    return min(known) if known else None


def check(needed, what, fix):
    """NotEnoughMemory ("WHAT needs about X GiB of memory, Y GiB is available: FIX") if it cannot fit."""
    free = available()
    if free is not None and needed > free:
        raise NotEnoughMemory(f"{what} needs about {needed / GIB:.1f} GiB of memory, {free / GIB:.1f} GiB "
                              f"is available: {fix}")
