"""A generator.keras loaded with plain Keras, as a user without dcgan-tf would: the dtype it
computes in and its speed beside the SavedModel of the same folder (64 faces, 16 at a time,
after one warm-up call).

  python bench/plain_keras.py saved_models/celeba32 exports/celeba32/1
"""

import argparse
import time

import keras
import numpy as np
import tensorflow as tf

FACES, BATCH = 64, 16


def seconds(run, z):
    run(z[:BATCH])
    start = time.perf_counter()
    for i in range(0, len(z), BATCH):
        np.asarray(run(z[i:i + BATCH]))
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exports", nargs="+", help="export folders holding generator.keras and a SavedModel")
    for folder in parser.parse_args().exports:
        print(compare(folder))


def compare(folder):
    model = keras.saving.load_model(f"{folder}/generator.keras", safe_mode=True)
    signature = tf.saved_model.load(folder).signatures["serving_default"]
    z = np.random.default_rng(0).standard_normal((FACES, model.inputs[0].shape[-1])).astype(np.float32)
    keras_s = seconds(lambda batch: model(batch, training=False), z)
    saved_s = seconds(lambda batch: signature(z=tf.constant(batch))["images"], z)
    return (f"{folder}: plain Keras computes in {model(z[:1]).dtype.name}, {FACES} faces in {keras_s:.2f} s; "
            f"SavedModel {saved_s:.2f} s ({keras_s / saved_s:.1f}x)")


if __name__ == "__main__":
    main()
