"""Memory a task needs, checked against what the machine has before anything is allocated, so
a size that cannot fit fails at once with a one-line error instead of swapping or being killed:
host RAM for work on the host, the GPU's own memory for work on a GPU."""

import os
import subprocess
import typing
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


class GpuMemory(typing.NamedTuple):
    total: int | None  # bytes; None where nvidia-smi cannot say
    used: int  # bytes TensorFlow has allocated on it


def gpu_memory():
    """The memory of the GPU a run trains on (TensorFlow's GPU:0), or None when TensorFlow sees no GPU."""
    import tensorflow as tf
    if not tf.config.list_physical_devices("GPU"):
        return None
    return GpuMemory(_nvidia_smi_total(), tf.config.experimental.get_memory_info("GPU:0")["current"])


def _nvidia_smi_total():
    """Bytes of memory of TensorFlow's GPU:0, the first of CUDA_VISIBLE_DEVICES (an index or a UUID,
    both of which nvidia-smi --id takes); None without nvidia-smi. TensorFlow's device details
    do not hold it."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip() or "0"
    try:
        out = subprocess.run(["nvidia-smi", f"--id={visible}", "--query-gpu=memory.total",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=30, check=True)
        return int(out.stdout.split()[0]) * 2**20  # MiB
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def check_gpu(needed, gpu, what, fix):
    """NotEnoughMemory if `needed` bytes exceed the GPU's memory less what TensorFlow holds on it.
    Other processes' share is not counted (TensorFlow reserves the GPU's free memory when it
    starts, so nothing here can see it): what is refused cannot fit, what passes may not."""
    if gpu.total is not None and needed > gpu.total - gpu.used:
        raise NotEnoughMemory(f"{what} needs about {needed / GIB:.1f} GiB of GPU memory, the GPU has "
                              f"{gpu.total / GIB:.1f} GiB ({gpu.used / GIB:.1f} GiB of it in use by TensorFlow): {fix}")
