"""Walking an array (images or latent vectors) in batches, with an optional progress bar."""


def progress_bar(total, unit_name="image"):
    import keras
    return keras.utils.Progbar(total, unit_name=unit_name)


def in_batches(array, batch_size, progress=False):
    """Successive slices of an array (images or latent vectors); the bar counts the slices consumed."""
    bar = progress_bar(len(array)) if progress else None
    for start in range(0, len(array), batch_size):
        yield array[start:start + batch_size]
        if bar is not None:
            bar.update(min(start + batch_size, len(array)))
