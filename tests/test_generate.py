"""Export and generation: a SavedModel usable without dcgan_tf, and every generate.py mode."""

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, random_images
from PIL import Image

from dcgan_tf.cli import evaluate as evaluate_cli
from dcgan_tf.cli import generate
from dcgan_tf.config import preset
from dcgan_tf.edit import conditioning
from dcgan_tf.model import latent
from dcgan_tf.model.gan import build_gan
from dcgan_tf.serve.export import export_generator
from dcgan_tf.serve.generation import FaceGenerator, write_grid, write_walk
from dcgan_tf.serve.loader import load
from dcgan_tf.utils import precision
from dcgan_tf.utils.images import to_uint8

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


HIDE_DCGAN_TF = """
    import sys

    class NoDcganTf:  # the package may be installed (pip install -e .): here it must not be needed
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "dcgan_tf":
                raise ImportError("dcgan_tf is hidden in this process")

    sys.meta_path.insert(0, NoDcganTf())
    try:
        import dcgan_tf  # noqa: F401
        raise SystemExit("dcgan_tf was importable")
    except ImportError:
        pass
"""
CLEAN_LOAD = HIDE_DCGAN_TF + """
    import numpy as np, tensorflow as tf
    model = tf.saved_model.load(sys.argv[1] if len(sys.argv) > 1 else "{path}")
    z = np.load("z.npy")
    assert list(model.signatures) == ["serving_default"], list(model.signatures)  # what converters see
    np.save("served.npy", model.signatures["serving_default"](z=tf.constant(z))["images"].numpy())
    np.save("sampled_{tag}.npy", model.sample(num=tf.constant(5), seed=tf.constant(7, tf.int64))["images"].numpy())
    import keras  # generator.keras holds Keras' own layers only (no fused BatchNorm class of ours)
    np.save("keras.npy", keras.saving.load_model("{path}/generator.keras")(z, training=False).numpy())
"""


@pytest.mark.slow
def test_savedmodel_loads_without_dcgan_tf_and_matches_the_generator(exported, tmp_path):
    path, generator, cfg = exported
    z = latent.sample(6, cfg.latent_dim, seed=3).numpy()
    np.save(tmp_path / "z.npy", z)
    for tag in ("a", "b"):
        run_clean_python(CLEAN_LOAD.format(path=path, tag=tag), cwd=tmp_path)
    served = np.load(tmp_path / "served.npy")
    expected = to_uint8(generator(z, training=False)).numpy()
    assert served.shape == (6, 16, 16, 3) and served.dtype == np.uint8
    assert np.abs(served.astype(int) - expected).max() <= 1
    first, second = np.load(tmp_path / "sampled_a.npy"), np.load(tmp_path / "sampled_b.npy")
    np.testing.assert_array_equal(first, second)
    assert first.shape == (5, 16, 16, 3) and first.std() > 0
    assert (path / "generator.keras").is_file() and (path / "dcgan_config.json").is_file()
    np.testing.assert_allclose(np.load(tmp_path / "keras.npy"), generator(z, training=False).numpy(), atol=1e-5)
    weight_bytes = sum(w.numpy().nbytes for w in generator.weights)
    stored = sum(f.stat().st_size for f in (path / "variables").glob("variables.data-*"))
    assert weight_bytes <= stored < 1.2 * weight_bytes  # each weight stored once


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


def test_same_seed_same_grid_from_bare_savedmodel_and_from_keras_file(exported, tmp_path):
    path, _, _ = exported
    # without generator.keras (and its config) only the SavedModel can be loaded
    bare = shutil.copytree(path, tmp_path / "bare", ignore=shutil.ignore_patterns("generator.keras", "dcgan_config.json"))
    assert (bare / "saved_model.pb").is_file() and not (bare / "generator.keras").exists()
    generate.main([str(bare), "--n", "4", "--seed", "5", "--out", str(tmp_path / "a.png")])
    generate.main([str(path / "generator.keras"), "--n", "4", "--seed", "5", "--out", str(tmp_path / "b.png")])
    a, b = np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "b.png"))
    assert a.shape == b.shape == (2 * TILE + 2, 2 * TILE + 2, 3) and a[2:18, 2:18].std() > 0
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


def test_truncated_latents_follow_the_truncated_normal_not_a_clip():
    from math import erf, sqrt
    psi = 0.7
    z = np.sort(latent.sample(500, 32, seed=0, truncation=psi).numpy().ravel())
    assert np.abs(z).max() <= psi
    normal_cdf = np.vectorize(lambda x: 0.5 * (1 + erf(x / sqrt(2))))
    expected = (normal_cdf(z) - normal_cdf(-psi)) / (normal_cdf(psi) - normal_cdf(-psi))
    ks = np.max(np.abs(expected - np.arange(1, len(z) + 1) / len(z)))
    assert ks < 0.03  # a clip to [-psi, psi] (30% of the mass on the bounds) or a rescaling fails this


def test_query_shows_the_fixed_points_and_a_user_vector(exported, tmp_path):
    path, generator, cfg = exported
    vector = np.linspace(-1, 1, cfg.latent_dim, dtype=np.float32)
    np.save(tmp_path / "v.npy", vector)
    out = tmp_path / "query.png"
    generate.main([str(path), "query", "--vector", str(tmp_path / "v.npy"), "--out", str(out)])
    grid = np.asarray(Image.open(out))
    assert grid.shape == (TILE + 2, 4 * TILE + 2, 3)
    zeros = to_uint8(generator(np.zeros((1, cfg.latent_dim), np.float32), training=False)).numpy()[0]
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


def partial_files(root):
    return [p for p in root.rglob("*") if p.name.startswith(".") and ".partial" in p.name]


def failing_generator(error, latent_dim=8):
    """Grey faces for the first batch, then `error`: a failure in the middle of a generation."""
    calls = []

    def fn(z):
        calls.append(len(z))
        if len(calls) > 1:
            raise error
        return np.full((len(z), 16, 16, 3), 128, np.uint8)

    return FaceGenerator(fn, latent_dim), calls


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()], ids=["error", "ctrl-c"])
def test_a_failed_grid_leaves_nothing_half_written(tmp_path, error):
    generator, calls = failing_generator(error)
    out, faces = tmp_path / "faces.png", tmp_path / "faces"
    out.write_bytes(b"earlier grid")
    with pytest.raises(type(error)):
        write_grid(generator, np.zeros((6, 8), np.float32), out, batch_size=4, individual_dir=faces)
    assert calls == [4, 2]  # it failed on the second batch, after writing faces of the first
    assert out.read_bytes() == b"earlier grid"
    assert not faces.exists() and partial_files(tmp_path) == []
    # a folder of earlier faces is kept as it was
    faces.mkdir()
    (faces / "face_00000.png").write_bytes(b"earlier face")
    generator, _ = failing_generator(error)
    with pytest.raises(type(error)):
        write_grid(generator, np.zeros((6, 8), np.float32), out, batch_size=4, individual_dir=faces)
    assert out.read_bytes() == b"earlier grid" and partial_files(tmp_path) == []
    assert [p.name for p in faces.iterdir()] == ["face_00000.png"]
    assert (faces / "face_00000.png").read_bytes() == b"earlier face"


def test_a_failed_walk_leaves_nothing_half_written(tmp_path, monkeypatch):
    generator, calls = failing_generator(RuntimeError("boom"))
    png, gif = tmp_path / "walk.png", tmp_path / "walk.gif"
    png.write_bytes(b"earlier walk")
    with pytest.raises(RuntimeError):
        write_walk(generator, np.zeros((300, 8), np.float32), png, gif)  # two batches of 256
    assert len(calls) == 2
    assert png.read_bytes() == b"earlier walk" and not gif.exists() and partial_files(tmp_path) == []
    # failing after the PNG is written but before the GIF is: neither replaces its target
    save = Image.Image.save

    def save_but_no_gif(self, fp, format=None, **kwargs):
        if format == "GIF":
            raise OSError("disk full")
        return save(self, fp, format=format, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save_but_no_gif)
    generator, _ = failing_generator(RuntimeError("unused"))
    with pytest.raises(OSError, match="disk full"):
        write_walk(generator, np.zeros((5, 8), np.float32), png, gif)
    assert png.read_bytes() == b"earlier walk" and not gif.exists() and partial_files(tmp_path) == []


def exit_message(argv, capsys):
    """generate.main's error: exits non-zero with one line and prints nothing else."""
    message = error_of(argv, capsys)
    assert "Traceback" not in message and capsys.readouterr().err == ""
    assert len(message.strip().splitlines()) == 1, message
    return message


def test_individual_never_replaces_a_folder_of_other_files(exported, tmp_path, capsys):
    path, _, _ = exported
    out, faces = tmp_path / "faces.png", tmp_path / "faces"
    faces.mkdir()
    (faces / "notes.txt").write_text("mine")
    message = exit_message([str(path), "--n", "3", "--individual", "--out", str(out)], capsys)
    assert str(faces) in message and "--out" in message
    assert [p.name for p in faces.iterdir()] == ["notes.txt"] and (faces / "notes.txt").read_text() == "mine"
    assert not out.exists() and partial_files(tmp_path) == []
    # a file where the folder would go is not replaced either
    (faces / "notes.txt").rename(tmp_path / "notes.txt")
    faces.rmdir()
    (tmp_path / "notes.txt").rename(faces)
    assert str(faces) in exit_message([str(path), "--n", "3", "--individual", "--out", str(out)], capsys)
    assert faces.read_text() == "mine"
    # a folder of faces written before is replaced whole: no stale faces from the earlier, larger run
    faces.unlink()
    generate.main([str(path), "--n", "5", "--individual", "--out", str(out)])
    assert len(list(faces.iterdir())) == 5
    generate.main([str(path), "--n", "3", "--seed", "1", "--individual", "--out", str(out)])
    assert sorted(p.name for p in faces.iterdir()) == ["face_00000.png", "face_00001.png", "face_00002.png"]
    grid = np.asarray(Image.open(out))
    np.testing.assert_array_equal(grid[2:18, 2:18], np.asarray(Image.open(faces / "face_00000.png")))
    assert partial_files(tmp_path) == []


def test_bad_keras_files_give_one_line_errors(exported, tmp_path, capsys):
    path, _, _ = exported
    classifier = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2, activation="softmax")])
    classifier.save(tmp_path / "classifier.keras")
    (tmp_path / "random.keras").write_bytes(np.random.default_rng(0).bytes(4096))
    whole = (path / "generator.keras").read_bytes()
    (tmp_path / "truncated.keras").write_bytes(whole[:len(whole) // 2])
    broken_export = shutil.copytree(path, tmp_path / "broken_export")
    (broken_export / "generator.keras").write_bytes(b"not a zip")
    out = tmp_path / "out" / "faces.png"
    cases = [
        (tmp_path / "classifier.keras", "is a Keras model but not a generator"),
        (tmp_path / "random.keras", "not a readable .keras model"),
        (tmp_path / "truncated.keras", "not a readable .keras model"),
        (broken_export / "generator.keras", "not a readable .keras model"),
    ]
    for model, expected in cases:
        argv = [str(broken_export if model.parent == broken_export else model), "--n", "2", "--out", str(out)]
        message = exit_message(argv, capsys)
        assert message.startswith("generate.py: error: ") and str(model) in message and expected in message, message
        assert not out.exists()


@pytest.mark.parametrize("flag", ["--rows", "--n"])
def test_non_positive_counts_are_one_line_usage_errors(flag, tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, str(ROOT / "generate.py"), "model", flag, "0"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [f"generate.py: error: {flag} must be positive, got 0 (see --help)"]


def test_export_never_replaces_a_folder_that_is_not_an_export(exported, tmp_path):
    path, generator, cfg = exported
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="is not an exported model"):
        export_generator(generator, cfg, mine)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"] and (mine / "notes.txt").read_text() == "mine"
    (tmp_path / "a_file").write_text("mine")
    with pytest.raises(ValueError, match="is not an exported model"):
        export_generator(generator, cfg, tmp_path / "a_file")
    assert (tmp_path / "a_file").read_text() == "mine" and partial_files(tmp_path) == []
    # an earlier export is replaced whole
    earlier = shutil.copytree(path, tmp_path / "earlier")
    (earlier / "stale.txt").write_text("from an earlier export")
    assert export_generator(generator, cfg, earlier) == earlier
    assert not (earlier / "stale.txt").exists() and partial_files(tmp_path) == []
    assert {"saved_model.pb", "generator.keras", "dcgan_config.json"} <= {p.name for p in earlier.iterdir()}
    z = latent.sample(3, cfg.latent_dim, seed=2).numpy()
    expected = to_uint8(generator(z, training=False)).numpy()
    assert np.abs(load(earlier).faces(z).astype(int) - expected).max() <= 1


def test_a_float16_export_is_half_the_size_and_makes_the_same_faces(exported, tmp_path):
    from dcgan_tf.serve.savedmodel import check_ops
    path, generator, cfg = exported
    half = export_generator(generator, cfg, tmp_path / "half", weights="float16")
    data = "variables/variables.data-00000-of-00001"
    stored = tf.train.load_checkpoint(str(half / "variables/variables")).get_variable_to_dtype_map()
    assert {dtype for name, dtype in stored.items() if "VARIABLE_VALUE" in name} == {tf.float16}
    assert (half / data).stat().st_size < 0.6 * (path / data).stat().st_size
    weights_size = lambda export: zipfile.ZipFile(export / "generator.keras").getinfo("model.weights.h5").file_size
    assert weights_size(path) - weights_size(half) >= 1.9 * generator.count_params()  # about 2 bytes less a weight
    z = latent.sample(64, cfg.latent_dim, seed=2).numpy()
    expected = to_uint8(generator(z, training=False)).numpy().astype(int)
    keras_generator = load(half).generator
    assert {w.dtype for w in keras_generator.weights} == {"float32"}  # computes in full precision
    savedmodel = tf.saved_model.load(str(half)).signatures["serving_default"]
    for images in (to_uint8(keras_generator(z, training=False)), savedmodel(z=tf.constant(z))["images"],
                   load(half).faces(z)):
        assert np.abs(np.asarray(images).astype(int) - expected).mean() <= 1
    check_ops(half)


PLAIN_KERAS = HIDE_DCGAN_TF + """
    import keras, numpy as np
    model = keras.saving.load_model("{path}/generator.keras", safe_mode=True)
    images = model(np.load("z.npy"), training=False)
    print(sorted({{w.dtype for w in model.weights}}), sorted({{l.dtype_policy.name for l in model.layers}}), images.dtype)
    np.save("out.npy", np.asarray(images))
"""


def test_a_float16_generator_keras_computes_in_float32_in_plain_keras(exported, tmp_path):
    """Issue 31 item 3: keras.saving.load_model alone, no dcgan_tf, gives float32 layers and images."""
    _, generator, cfg = exported
    half = export_generator(generator, cfg, tmp_path / "half", weights="float16")
    z = latent.sample(64, cfg.latent_dim, seed=2).numpy()
    np.save(tmp_path / "z.npy", z)
    printed = run_clean_python(PLAIN_KERAS.format(path=half), cwd=tmp_path)
    assert printed.split() == ["['float32']", "['float32']", "<dtype:", "'float32'>"]
    images = to_uint8(np.load(tmp_path / "out.npy")).numpy().astype(int)
    assert np.abs(images - to_uint8(generator(z, training=False)).numpy()).mean() <= 1


def test_an_export_computes_in_float32_whatever_the_global_policy(exported, tmp_path):
    """An export made while a mixed policy is global (set by the caller's own code) must not
    inherit it, or every user of the model would compute in bfloat16."""
    _, generator, cfg = exported
    with precision.policy("mixed_bfloat16"):
        path = export_generator(generator, cfg.replace(mixed_precision="mixed_bfloat16"), tmp_path / "bf16")
    reloaded = keras.saving.load_model(path / "generator.keras")
    assert {layer.dtype_policy.name for layer in reloaded.layers} == {"float32"}
    z = latent.sample(16, cfg.latent_dim, seed=3)
    assert np.allclose(reloaded(z, training=False), generator(z, training=False), atol=1e-5)


def test_an_export_that_does_not_make_the_generators_faces_is_not_written(exported, tmp_path, monkeypatch):
    from dcgan_tf.serve import export
    _, generator, cfg = exported
    monkeypatch.setattr(export, "MAX_MEAN_DIFFERENCE", -1.0)  # no export can pass: the check must refuse it
    with pytest.raises(ValueError, match="levels of 255 from the generator's"):
        export_generator(generator, cfg, tmp_path / "half", weights="float16")
    assert list(tmp_path.iterdir()) == []


# The shipped generators; saved_models/ also holds the attribute classifier, which makes no faces.
SHIPPED = sorted(card.parent for card in (ROOT / "saved_models").glob("*/MODEL_CARD.md")
                 if (card.parent / "generator.keras").exists())


@pytest.mark.parametrize("model", SHIPPED, ids=[path.name for path in SHIPPED])
def test_the_shipped_models_make_faces_in_both_saved_forms(model):
    """What the README's first generate.py command reads, with nothing trained first."""
    from dcgan_tf.config import Config
    cfg = Config.load(model)
    z = latent.sample(4, cfg.latent_dim, seed=1).numpy()
    inputs = {"z": z}
    if cfg.condition:  # a conditional model: each face its own mix of the attributes
        inputs["attributes"] = np.eye(4, len(cfg.condition), dtype=np.float32)
    faces = load(model).faces(conditioning.join_rows(z, inputs["attributes"]) if cfg.condition else z)
    assert faces.shape == (4, cfg.image_size, cfg.image_size, 3) and faces.dtype == np.uint8 and faces.std() > 10
    signatures = tf.saved_model.load(str(model)).signatures
    assert list(signatures) == ["serving_default"]  # what a converter takes as it is (docs/exports.md)
    served = signatures["serving_default"](**{name: tf.constant(value) for name, value in inputs.items()})["images"]
    assert np.abs(served.numpy().astype(int) - faces).mean() <= 1
    plain = keras.saving.load_model(model / "generator.keras", safe_mode=True)
    assert {w.dtype for w in plain.weights} == {"float32"}
    assert plain(list(inputs.values()) if cfg.condition else z, training=False).dtype == "float32"
    assert "/" not in cfg.data and "/" not in cfg.attrs  # no path of the machine it was trained on


def test_an_export_records_no_machine_paths_and_evaluate_asks_for_the_data(tmp_path, capsys, monkeypatch):
    from dcgan_tf.config import Config
    cfg = preset("tiny", data=str(tmp_path / "mine" / "faces.npy"), holdout=8)
    export_generator(build_gan(cfg).sampling_generator, cfg, tmp_path / "export")
    assert Config.load(tmp_path / "export").data == "faces.npy"
    with pytest.raises(SystemExit) as exit_info:
        evaluate_cli.main(["--model", str(tmp_path / "export"), "--cache-dir", str(tmp_path / "cache")])
    assert exit_info.value.code == ("dcgan-tf evaluate: error: the model was trained on faces.npy, which is not here: give "
                                    "--data, your copy of it (its last 8 images were held out from training)")
    class Scored(Exception):
        pass

    def scored(model, real, *args, **kwargs):
        raise Scored(real)
    monkeypatch.setattr(evaluate_cli, "evaluate", scored)
    with pytest.raises(Scored) as real:  # the user's copy, by its path: still the held-out part of the same data
        evaluate_cli.main(["--model", str(tmp_path / "export"), "--data", str(tmp_path / "mine" / "faces.npy")])
    assert (real.value.args[0].holdout, real.value.args[0].part) == (8, "holdout")


SHIPPED_DIRECTIONS = [model for model in SHIPPED if (model / "directions.npz").exists()]


@pytest.mark.parametrize("model", SHIPPED_DIRECTIONS, ids=[path.name for path in SHIPPED_DIRECTIONS])
def test_the_shipped_directions_were_fit_on_the_shipped_generator(model):
    """A shipped model replaced without fitting its directions again would edit with another
    model's directions: generate.py refuses that, and so must this test, before it ships."""
    from dcgan_tf.edit.directions import Directions
    generator = load(model).faces
    directions = Directions.of_model(model, generator)
    assert {"Smiling", "Male", "Eyeglasses"} <= set(directions.names) and directions.probe is not None


# --- untrusted SavedModels (issue 15, item 4) ----------------------------------------------

@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A SavedModel with a generator's signature that also reads the host name and writes it to
    `marker`: what a foreign SavedModel can do when it is run."""
    folder = tmp_path_factory.mktemp("hostile")
    marker = folder / "marker.txt"
    module = tf.Module()
    module.w = tf.Variable(tf.ones([16, 16 * 16 * 3]))

    def images_from_z(z):
        tf.io.write_file(str(marker), tf.io.read_file("/etc/hostname"))
        return {"images": tf.cast(tf.reshape(tf.sigmoid(z @ module.w) * 255, [-1, 16, 16, 3]), tf.uint8)}

    module.serve = tf.function(images_from_z, input_signature=[tf.TensorSpec([None, 16], tf.float32, name="z")],
                               autograph=False)
    tf.saved_model.save(module, str(folder / "model"), signatures={"serving_default": module.serve})
    return folder / "model", marker


@pytest.mark.slow
def test_a_savedmodel_with_file_ops_is_refused_unless_trusted(hostile, tmp_path):
    model, marker = hostile
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, str(ROOT / "generate.py"), str(model), "--n", "2", "--out", "faces.png"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"generate.py: error: {model}: refusing to run this SavedModel: its graph uses ops a generator does not "
        "need (ReadFile, WriteFile), which can read or write files or run other code; use its generator.keras "
        "if it has one, or, if you trust where it came from, pass generate.py or evaluate --trust-savedmodel")
    assert not marker.exists() and not (tmp_path / "faces.png").exists()
    result = subprocess.run(command + ["--trust-savedmodel"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert marker.is_file() and (tmp_path / "faces.png").is_file()  # what the check kept from running
    marker.unlink()


def test_evaluate_refuses_it_too_before_any_work(hostile, tmp_path):
    model, marker = hostile
    with pytest.raises(SystemExit, match=r"dcgan-tf evaluate: error: .*refusing to run this SavedModel.*\(ReadFile, WriteFile\)"):
        evaluate_cli.main(["--model", str(model), "--data", "builtin:8", "--n", "4", "--cache-dir", str(tmp_path)])
    assert not marker.exists() and not list(tmp_path.iterdir())


def test_an_export_is_read_from_its_generator_keras_not_its_savedmodel(exported, hostile, tmp_path):
    path, generator, cfg = exported
    model, marker = hostile
    mixed = shutil.copytree(path, tmp_path / "mixed")
    shutil.copytree(model, mixed, dirs_exist_ok=True)  # a foreign SavedModel beside our generator.keras
    z = latent.sample(3, cfg.latent_dim, seed=2).numpy()
    expected = to_uint8(generator(z, training=False)).numpy()
    assert np.abs(load(mixed).faces(z).astype(int) - expected).max() <= 1
    assert not marker.exists()


def test_our_exports_pass_the_op_check(exported, tmp_path):
    from dcgan_tf.model.networks import build_generator
    from dcgan_tf.serve.savedmodel import check_ops
    check_ops(exported[0])  # raises if an op of our own export were missing from the allowlist
    cfg = preset("dcgan32")  # ReLU, a Dense BatchNorm and a transposed-convolution output
    check_ops(export_generator(build_generator(cfg), cfg, tmp_path / "dcgan32"))



@pytest.fixture(scope="module")
def tensorflow1_savedmodel(tmp_path_factory):
    """A generator's SavedModel in the TensorFlow 1 format (its object graph removed) whose saver's
    restore step writes a checkpoint at `marker`: its SaveV2 sits in a function that only the saver
    calls, where the checkpoint ops are allowed (issue 33, case 1)."""
    folder = tmp_path_factory.mktemp("tf1")
    marker = folder / "marker"
    module = tf.Module()
    module.w = tf.Variable(tf.ones([16, 16 * 16 * 3]))
    module.serve = tf.function(
        lambda z: {"images": tf.cast(tf.reshape(tf.sigmoid(z @ module.w) * 255, [-1, 16, 16, 3]), tf.uint8)},
        input_signature=[tf.TensorSpec([None, 16], tf.float32, name="z")], autograph=False)

    def write_where_the_model_chooses(prefix):
        tf.raw_ops.SaveV2(prefix=str(marker), tensor_names=["x"], shape_and_slices=[""], tensors=[tf.ones([])])
        return tf.constant(0)
    hostile = tf.function(write_where_the_model_chooses, input_signature=[tf.TensorSpec([], tf.string)],
                          autograph=False).get_concrete_function().function_def
    tf.saved_model.save(module, str(folder / "tf2"), signatures={"serving_default": module.serve})
    from tensorflow.core.protobuf import saved_model_pb2
    proto = saved_model_pb2.SavedModel.FromString((folder / "tf2" / "saved_model.pb").read_bytes())
    graph = proto.meta_graphs[0]
    restore = next(node for node in graph.graph_def.node if node.name == graph.saver_def.restore_op_name)
    functions = [f for f in graph.graph_def.library.function if f.signature.name != restore.attr["f"].func.name]
    del graph.graph_def.library.function[:]
    graph.graph_def.library.function.extend([*functions, hostile])
    restore.attr["f"].func.name = hostile.signature.name
    del restore.input[1:]  # the file name only
    for key, dtype in (("Tin", tf.string), ("Tout", tf.int32)):
        restore.attr[key].list.ClearField("type")
        restore.attr[key].list.type.append(dtype.as_datatype_enum)
    graph.ClearField("object_graph_def")
    shutil.copytree(folder / "tf2" / "variables", folder / "tf1" / "variables")
    (folder / "tf1" / "saved_model.pb").write_bytes(proto.SerializeToString())
    return folder / "tf1", marker


TENSORFLOW1_REFUSED = ("refusing to load this SavedModel: it is in the TensorFlow 1 format (no object graph), whose "
                       "loading runs its own saver and init steps, which can read or write files; export it again "
                       "with TensorFlow 2 (tf.saved_model.save), or, if you trust where it came from, pass "
                       "generate.py or evaluate --trust-savedmodel")


def test_a_tensorflow1_savedmodel_is_refused_by_generate(tensorflow1_savedmodel, tmp_path):
    model, marker = tensorflow1_savedmodel
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, str(ROOT / "generate.py"), str(model), "--n", "2", "--out", "faces.png"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"generate.py: error: {model}: {TENSORFLOW1_REFUSED}"
    assert list(tmp_path.iterdir()) == [] and not list(marker.parent.glob("marker*"))


@pytest.mark.parametrize("command", ["evaluate", "attributes", "explore"])
def test_every_command_that_loads_a_savedmodel_checks_it(tensorflow1_savedmodel, tmp_path, command):
    """Issue 33, case 1: evaluate, attributes directions and the explorer refuse it as generate does."""
    from dcgan_tf.cli import attributes, explore
    model, marker = tensorflow1_savedmodel
    main, argv = {
        "evaluate": (evaluate_cli.main, ["--model", str(model), "--data", "builtin:8", "--n", "4",
                                         "--cache-dir", str(tmp_path)]),
        "attributes": (attributes.main, ["directions", str(model), "--classifier", str(tmp_path / "c.keras"),
                                         "--out", str(tmp_path / "d.npz")]),
        "explore": (explore.main, [str(model), "--port", "0"]),
    }[command]
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == f"dcgan-tf {command}: error: {model}: {TENSORFLOW1_REFUSED}"
    assert list(tmp_path.iterdir()) == [] and not list(marker.parent.glob("marker*"))

# --- memory bounds and bad vectors (issue 15, items 10 and 12) ----------------------------

@pytest.mark.parametrize("truncation", [None, 0.6])
def test_latents_drawn_in_batches_are_the_same_vectors(truncation):
    full = latent.sample(37, 101, seed=3, truncation=truncation).numpy()
    stream = latent.LatentStream(37, 101, seed=3, truncation=truncation)
    np.testing.assert_array_equal(np.concatenate([stream[i:i + 5] for i in range(0, 37, 5)]), full)
    np.testing.assert_array_equal(latent.sample(7, 101, 3, truncation, first=30).numpy(), full[30:])
    seed = tf.stack([tf.constant(3, tf.int64), tf.constant(0x5EED, tf.int64)])  # what sample() drew before
    if truncation is None:  # streaming: the same faces for the same --seed as before, e.g. the README's
        np.testing.assert_array_equal(full, tf.random.stateless_normal([37, 101], seed=seed, alg="philox").numpy())


def test_a_grid_too_large_to_hold_is_refused_at_once(exported, tmp_path):
    path, _, _ = exported
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, str(ROOT / "generate.py"), str(path), "--n", "10000000", "--out",
                             "faces.png"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "generate.py: error: a grid of 10000000 faces of 16x16 needs about 9.1 GiB, more than the 1.0 GiB a grid "
        "may use: lower --n, or add --individual to write each face to its own file")
    assert list(tmp_path.iterdir()) == []


def test_with_individual_files_a_large_grid_shows_the_first_faces(exported, tmp_path, monkeypatch, capsys):
    path, _, _ = exported
    monkeypatch.setattr("dcgan_tf.serve.generation.GRID_LIMIT_BYTES", 4 * TILE * TILE * 3)  # room for 4 tiles
    generate.main([str(path), "--n", "10", "--individual", "--batch-size", "3", "--out", str(tmp_path / "f.png")])
    assert "it shows the first 4; every face is written to its own file" in capsys.readouterr().out
    assert png_shape(tmp_path / "f.png") == (2 * TILE + 2, 2 * TILE + 2, 3)
    assert len(list((tmp_path / "f").iterdir())) == 10
    grid = np.asarray(Image.open(tmp_path / "f.png"))
    np.testing.assert_array_equal(grid[2 + TILE:18 + TILE, 2 + TILE:18 + TILE],
                                  np.asarray(Image.open(tmp_path / "f" / "face_00003.png")))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_nan_or_inf_query_vector_is_refused(exported, tmp_path, capsys, bad):
    path, _, cfg = exported
    vector = np.zeros(cfg.latent_dim, np.float32)
    vector[3] = bad
    np.save(tmp_path / "v.npy", vector)
    message = exit_message([str(path), "query", "--vector", str(tmp_path / "v.npy"), "--out",
                            str(tmp_path / "q.png")], capsys)
    assert message == "generate.py: error: the query vector holds NaN or Inf values: give finite numbers"
    assert not (tmp_path / "q.png").exists()


def test_a_fifo_vector_or_an_unwritable_out_fails_before_any_work(exported, tmp_path, capsys):
    path, _, _ = exported
    os.mkfifo(tmp_path / "v.npy")
    assert "--vector must be a .npy file" in error_of([str(path), "query", "--vector", str(tmp_path / "v.npy")],
                                                      capsys)
    message = exit_message([str(path), "--out", "/proc/dcgan-tf-test/faces.png"], capsys)
    assert message.startswith("generate.py: error: --out /proc/dcgan-tf-test is not writable")


def test_each_mode_writes_its_own_file_unless_out_names_one():
    outs = {mode: generate.parse_args(["m", mode, *extra]).out for mode, extra in (
        ("grid", []), ("interpolate", []), ("query", []), ("edit", ["--attr", "Smiling"]),
        ("arithmetic", ["Smiling", "--classifier", "c.keras"]))}
    assert outs == {"grid": Path("faces.png"), "interpolate": Path("walk.png"), "query": Path("query.png"),
                    "edit": Path("edit.png"), "arithmetic": Path("arithmetic.png")}
    assert generate.parse_args(["m", "edit", "--attr", "Smiling", "--out", "a.png"]).out == Path("a.png")
