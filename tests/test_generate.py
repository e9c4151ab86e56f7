"""Export and generation: a SavedModel usable without dcgan_tf, and every generate.py mode."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import generate
from dcgan_tf import latent
from dcgan_tf.config import preset
from dcgan_tf.export import export_generator
from dcgan_tf.gan import build_gan

from conftest import random_images

TILE = 16 + 2  # tiny preset images plus grid padding


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny generator trained a few steps, exported; with its in-memory twin."""
    cfg = preset("tiny")
    gan = build_gan(cfg)
    images = random_images(32, cfg.image_size).astype("float32") / 127.5 - 1
    gan.fit(tf.data.Dataset.from_tensor_slices(images).batch(16), epochs=1, verbose=0, shuffle=False)
    path = export_generator(gan.generator, cfg, tmp_path_factory.mktemp("export") / "tiny")
    return path, gan.generator, cfg


def run_clean_python(code, cwd):
    """Python in isolated mode (-I: no PYTHONPATH, no cwd on sys.path) so dcgan_tf cannot be imported."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-I", "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


CLEAN_LOAD = """
    import importlib.util, sys
    import numpy as np, tensorflow as tf
    assert importlib.util.find_spec("dcgan_tf") is None
    model = tf.saved_model.load(sys.argv[1] if len(sys.argv) > 1 else "{path}")
    z = np.load("z.npy")
    np.save("served.npy", model.signatures["serving_default"](z=tf.constant(z))["images"].numpy())
    np.save("sampled_{tag}.npy", model.signatures["sample"](num=tf.constant(5), seed=tf.constant(7, tf.int64))["images"].numpy())
"""


def test_savedmodel_loads_without_dcgan_tf_and_matches_the_generator(exported, tmp_path):
    path, generator, cfg = exported
    z = latent.sample(6, cfg.latent_dim, seed=3).numpy()
    np.save(tmp_path / "z.npy", z)
    for tag in ("a", "b"):
        run_clean_python(CLEAN_LOAD.format(path=path, tag=tag), cwd=tmp_path)
    served = np.load(tmp_path / "served.npy")
    expected = latent.to_uint8(generator(z, training=False)).numpy()
    assert served.shape == (6, 16, 16, 3) and served.dtype == np.uint8
    assert np.abs(served.astype(int) - expected).max() <= 1
    first, second = np.load(tmp_path / "sampled_a.npy"), np.load(tmp_path / "sampled_b.npy")
    np.testing.assert_array_equal(first, second)
    assert first.shape == (5, 16, 16, 3) and first.std() > 0
    assert (path / "generator.keras").is_file() and (path / "config.json").is_file()


def png_shape(path):
    return np.asarray(Image.open(path)).shape


def test_grid_with_individual_files_and_truncation(exported, tmp_path):
    path, _, _ = exported
    out = tmp_path / "faces.png"
    generate.main([str(path), "--n", "10", "--rows", "2", "--individual", "--batch-size", "4", "--out", str(out)])
    assert png_shape(out) == (2 * TILE + 2, 5 * TILE + 2, 3)
    files = sorted((tmp_path / "faces").glob("*.png"))
    assert len(files) == 10 and png_shape(files[0]) == (16, 16, 3)
    grid = np.asarray(Image.open(out))
    np.testing.assert_array_equal(grid[2:18, 2:18], np.asarray(Image.open(files[0])))
    generate.main([str(path), "--n", "10", "--rows", "2", "--truncation", "0.5", "--out", str(tmp_path / "t.png")])
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "t.png")), grid)


def test_same_seed_same_grid_from_export_and_from_keras_file(exported, tmp_path):
    path, _, _ = exported
    generate.main([str(path), "--n", "4", "--seed", "5", "--out", str(tmp_path / "a.png")])
    generate.main([str(path / "generator.keras"), "--n", "4", "--seed", "5", "--out", str(tmp_path / "b.png")])
    a, b = np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "b.png"))
    assert np.abs(a.astype(int) - b).max() <= 1


def test_interpolate_writes_a_grid_and_a_gif(exported, tmp_path):
    path, _, _ = exported
    out = tmp_path / "walk.png"
    generate.main([str(path), "interpolate", "--seeds", "1", "2", "3", "--steps", "5", "--out", str(out)])
    frames = 2 * 4 + 1  # two segments of 5 images sharing their ends
    gif = Image.open(out.with_suffix(".gif"))
    assert gif.n_frames == 2 * frames - 2  # played forth and back
    assert gif.size == (16, 16)
    assert png_shape(out) == (3 * TILE + 2, 3 * TILE + 2, 3)


@pytest.mark.parametrize("method", ["slerp", "linear"])
def test_interpolation_ends_at_its_points(method):
    points = np.random.default_rng(0).normal(size=(3, 8))
    walk = latent.interpolate(points, 4, method)
    assert walk.shape == (7, 8)
    np.testing.assert_allclose(walk[[0, 3, 6]], points, rtol=1e-5)


def test_truncated_latents_stay_inside_psi():
    z = latent.sample(500, 32, seed=0, truncation=0.7).numpy()
    assert np.abs(z).max() <= 0.7 and z.std() > 0.3


def test_query_shows_the_fixed_points_and_a_user_vector(exported, tmp_path):
    path, generator, cfg = exported
    vector = np.linspace(-1, 1, cfg.latent_dim, dtype=np.float32)
    np.save(tmp_path / "v.npy", vector)
    out = tmp_path / "query.png"
    generate.main([str(path), "query", "--vector", str(tmp_path / "v.npy"), "--out", str(out)])
    grid = np.asarray(Image.open(out))
    assert grid.shape == (TILE + 2, 4 * TILE + 2, 3)
    zeros = latent.to_uint8(generator(np.zeros((1, cfg.latent_dim), np.float32), training=False)).numpy()[0]
    assert np.abs(grid[2:18, 2:18].astype(int) - zeros).max() <= 1


def error_of(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        generate.main(argv)
    message = exit_info.value.code if isinstance(exit_info.value.code, str) else capsys.readouterr().err
    assert exit_info.value.code != 0
    return message


def test_bad_inputs_give_one_line_errors_and_write_nothing(exported, tmp_path, capsys):
    path, _, _ = exported
    out = tmp_path / "out" / "faces.png"
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    other = tmp_path / "other_savedmodel"
    module = tf.Module()
    module.f = tf.function(lambda x: {"y": x * 2}, input_signature=[tf.TensorSpec([None], tf.float32)])
    tf.saved_model.save(module, str(other), signatures={"serving_default": module.f})
    np.save(tmp_path / "short.npy", np.zeros(3, np.float32))
    cases = [
        ([str(tmp_path / "missing")], "no model at"),
        ([str(not_a_model)], "is not a run directory with checkpoints, an export directory or a .keras file"),
        ([str(other)], "is a SavedModel but not a dcgan-tf generator"),
        ([str(path), "query", "--vector", str(tmp_path / "short.npy")], "the query vector has 3 values"),
        ([str(path), "--n", "0"], "--n must be positive, got 0"),
        ([str(path), "--truncation", "-1"], "--truncation must be positive"),
    ]
    for argv, expected in cases:
        message = error_of(argv + ["--out", str(out)], capsys)
        assert "Traceback" not in message
        assert expected in message.strip().splitlines()[-1], (argv, message)  # argparse prints usage above
        assert not out.parent.exists() or not any(out.parent.iterdir())
