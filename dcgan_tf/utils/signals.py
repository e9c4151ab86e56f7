"""Ctrl-C and SIGTERM for the command-line tools: SIGTERM (what schedulers, containers and
preemptible VMs send) is handled like Ctrl-C, so a run saves and stops the same way.

Imports nothing heavy, so a tool can install the handlers before TensorFlow loads.
"""

import contextlib
import signal
import sys


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C's KeyboardInterrupt is."""

    exit_code = 128 + signal.SIGTERM  # the shell's code for a SIGTERM


class Stop:
    """Which stop signal came, as its exit status (None: none did). An interrupt raised while a
    C extension is being imported can reach the caller wrapped in another exception."""

    exit_code = None

    def interruption(self):
        """The exception the signal that came raises: Terminated for SIGTERM, else KeyboardInterrupt."""
        return Terminated() if self.exit_code == Terminated.exit_code else KeyboardInterrupt()


_blocks = []  # the Stop of each stop_signals() block entered and not yet left, innermost last


def raise_if_stopped():
    """Raise again a stop signal that came inside stop_signals() but never arrived: library
    code can swallow it on its way (an interrupt inside an import can come wrapped in an
    ImportError, which importers of optional modules ignore). Training calls this after every
    step, so such a signal still saves and stops the run one step later."""
    if _blocks and _blocks[-1].exit_code is not None:
        raise _blocks[-1].interruption()


@contextlib.contextmanager
def stop_signals():
    """Within the block SIGINT raises KeyboardInterrupt and SIGTERM raises Terminated, and the
    yielded Stop records which came. SIGTERM acts once: a second one is ignored so the
    checkpoint being saved is completed (SIGKILL still stops it). A signal ignored on start
    stays ignored, as Python does for SIGINT.

    A signal that lands in a __del__ or a weakref callback cannot raise there: Python prints
    its traceback as "Exception ignored" and goes on. That print is dropped, as the stop is
    recorded and raise_if_stopped raises it after the next training step."""
    stop = Stop()
    print_unraisable = sys.unraisablehook

    def unraisable(event):
        if not (stop.exit_code is not None and isinstance(event.exc_value, KeyboardInterrupt)):
            print_unraisable(event)

    def interrupt(signum, frame):
        stop.exit_code = 128 + signum
        if signum == signal.SIGTERM:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise stop.interruption()

    previous = {signum: signal.signal(signum, interrupt)
                for signum, default in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL))
                if signal.getsignal(signum) is default}
    _blocks.append(stop)
    sys.unraisablehook = unraisable
    try:
        yield stop
    finally:
        sys.unraisablehook = print_unraisable
        _blocks.remove(stop)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
