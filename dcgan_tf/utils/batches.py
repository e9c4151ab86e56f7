"""Walking an array (images or latent vectors) in batches, with an optional progress bar."""

import sys


def verbosity():
    """Keras' `verbose` for progress: 1, a bar redrawn in place, on a terminal; 2, one plain line
    when the work is done, elsewhere (a log file, CI), so logs hold no terminal escape codes."""
    return 1 if sys.stdout.isatty() else 2


def progress_bar(total, label, unit_name="image"):
    """A Keras progress bar under a line that says what it counts."""
    import keras
    print(f"{label}:", flush=True)
    return keras.utils.Progbar(total, unit_name=unit_name, verbose=verbosity())


def in_batches(array, batch_size, label=None):
    """Successive slices of an array (images or latent vectors); with a label, a bar under it
    counts the slices consumed."""
    bar = progress_bar(len(array), label) if label else None
    for start in range(0, len(array), batch_size):
        yield array[start:start + batch_size]
        if bar is not None:
            bar.update(min(start + batch_size, len(array)))
