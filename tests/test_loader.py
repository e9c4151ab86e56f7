"""The one loader: every kind of model path, the config beside it and the size check before building."""

import json
import os
import shutil
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, random_images

from dcgan_tf.config import preset
from dcgan_tf.model import latent
from dcgan_tf.model.gan import build_gan
from dcgan_tf.model.networks import build_generator, generator_weight_count
from dcgan_tf.serve import loader
from dcgan_tf.train.run import train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny run of two epochs (EMA on), exported; returns (run dir, export dir, cfg)."""
    work = tmp_path_factory.mktemp("loader")
    np.save(work / "faces.npy", random_images(32, 16))
    cfg = preset("tiny", data=str(work / "faces.npy"), epochs=2, ema=0.5)
    train(cfg, work / "run", verbose=0, log=lambda message: None, export_dir=work / "export")
    return work / "run", work / "export", cfg


def outputs(model, cfg):
    """The tanh images of a model's Keras generator (floats: a few steps' faces are all near grey)."""
    return loader.load(model).generator(latent.sample(4, cfg.latent_dim, seed=1), training=False).numpy()


def faces(model, cfg):
    return loader.load(model).faces(latent.sample(4, cfg.latent_dim, seed=1).numpy()).astype(int)


def test_every_kind_of_path_gives_the_same_generator_and_its_config(run, tmp_path):
    run_dir, export, cfg = run
    checkpoints = sorted((run_dir / "checkpoints").glob("ckpt-*.index"))
    latest = str(checkpoints[-1]).removesuffix(".index")
    keras_only = shutil.copytree(export, tmp_path / "keras_only", ignore=shutil.ignore_patterns("saved_model.pb",
                                                                                                 "variables"))
    expected = outputs(run_dir, cfg)
    for model in (latest, export, keras_only, export / "generator.keras"):
        # a run keeps its data's path; an export names the file alone (export.without_machine_paths)
        assert loader.load(model).cfg == (cfg if model == latest else cfg.replace(data="faces.npy")), model
        np.testing.assert_allclose(outputs(model, cfg), expected, atol=1e-5, err_msg=str(model))
    first = str(checkpoints[0]).removesuffix(".index")
    assert np.abs(outputs(first, cfg) - expected).max() > 1e-4  # a checkpoint is itself, not the run's latest
    bare = shutil.copytree(export, tmp_path / "bare", ignore=shutil.ignore_patterns("generator.keras"))
    loaded = loader.load(bare)  # a SavedModel alone: no Keras generator, faces from its signature
    assert loaded.generator is None and np.abs(faces(bare, cfg) - faces(export, cfg)).max() <= 1
    assert loader.model_dir(latest) == run_dir and loader.model_dir(export / "generator.keras") == export
    assert loader.export_name(latest) == "run" and loader.export_name(export / "generator.keras") == "generator"
    assert all(loader.is_model(path) for path in (run_dir, export, keras_only, bare))
    assert not loader.is_model(tmp_path)


def test_a_whole_gan_keras_file_gives_its_ema_generator(tmp_path):
    cfg = preset("tiny", ema=0.5)
    gan = build_gan(cfg)
    for weight in gan.ema_generator.weights:  # far from G's, so the test can tell which one was loaded
        if weight.path.endswith("kernel"):
            weight.assign(8 * weight)
    gan.save(tmp_path / "gan.keras")
    generator = loader.load(tmp_path / "gan.keras").generator
    z = latent.sample(4, cfg.latent_dim, seed=0)
    ema, raw = (g(z, training=False).numpy() for g in (gan.ema_generator, gan.generator))
    assert np.abs(ema - raw).max() > 0.1
    np.testing.assert_allclose(generator(z, training=False).numpy(), ema, atol=1e-5)


def test_what_is_not_a_model_is_refused_in_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model at"):
        loader.load(tmp_path / "missing")
    with pytest.raises(ValueError, match="is not a run directory with checkpoints, an export directory or a .keras"):
        loader.load(tmp_path)
    cfg = preset("tiny")
    run = tmp_path / "run"
    tf.train.CheckpointManager(tf.train.Checkpoint(generator=build_generator(cfg)), str(run / "checkpoints"), 1).save()
    with pytest.raises(FileNotFoundError, match="has checkpoints but no config"):
        loader.load(run)


def test_the_weight_count_from_the_config_is_the_built_generators():
    for cfg in (preset("tiny"), preset("dcgan32"), preset("keras64", condition=("Smiling", "Male"), attrs="a.txt"),
                preset("dcgan64", g_out="conv", g_start=8)):
        assert generator_weight_count(cfg) == build_generator(cfg).count_params(), cfg.preset


@pytest.mark.parametrize("change", [{"conv_dim": 10**6}, {"latent_dim": 2**40}])
def test_a_config_too_large_for_any_generator_is_refused_before_building(run, tmp_path, change):
    """Issue 33 case 11: a crafted config in a model folder; generate.py in a subprocess, every kind of path."""
    run_dir, export, _ = run
    copies = {"run": shutil.copytree(run_dir, tmp_path / "run"), "export": shutil.copytree(export, tmp_path / "export")}
    for copy in copies.values():
        config = copy / "dcgan_config.json"
        config.write_text(json.dumps({**json.loads(config.read_text()), **change}))
    checkpoint = max((copies["run"] / "checkpoints").glob("ckpt-*.index")).with_suffix("")
    for model in (copies["run"], checkpoint, copies["export"], copies["export"] / "generator.keras"):
        with pytest.raises(ValueError, match="its config describes a generator of .* weights"):
            loader.load(model)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, str(ROOT / "generate.py"), str(copies["run"]), "--out", "faces.png"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"generate.py: error: {copies['run']}: its config describes a generator of ")
    assert "the config is damaged or not a dcgan-tf model's" in last and not (tmp_path / "faces.png").exists()


def test_an_old_float16_generator_keras_loads_in_float32(run, tmp_path):
    """Exports made before generator.keras held float32 layers stored float16 ones."""
    _, export, cfg = run
    old = shutil.copytree(export, tmp_path / "old")
    generator = keras.saving.load_model(export / "generator.keras")
    half = keras.models.clone_model(generator, clone_function=lambda layer: layer.__class__.from_config(
        {**layer.get_config(), "dtype": "float16"}))
    half.set_weights([w.astype("float16") for w in generator.get_weights()])
    half.save(old / "generator.keras")
    loaded = loader.load(old).generator
    assert {w.dtype for w in loaded.weights} == {"float32"}
    assert np.abs(outputs(old, cfg) - outputs(export, cfg)).max() < 1e-2


def test_evaluate_takes_an_export_of_generator_keras_and_config_alone(run, tmp_path, capsys):
    """Issue 33 case 20: such an export is a model (generate.py takes it), not a folder of images."""
    from dcgan_tf.cli import evaluate as evaluate_cli
    from dcgan_tf.metrics import inception
    try:
        inception.default_weights_path()
    except inception.WeightsError as error:
        pytest.skip(str(error))
    _, export, _ = run
    keras_only = shutil.copytree(export, tmp_path / "keras_only", ignore=shutil.ignore_patterns("saved_model.pb",
                                                                                                 "variables"))
    evaluate_cli.main(["--model", str(keras_only), "--data", "builtin:8", "--n", "4", "--cache-dir", str(tmp_path)])
    assert "4 generated vs 4 real images, 16 px" in capsys.readouterr().out


def test_extracting_generator_keras_in_place_leaves_the_export_loadable(run, tmp_path):
    """Issue 31 item 4: the tensorflowjs converter extracts the .keras archive (which holds its
    own config.json) into the export's folder; the run's config has another name."""
    _, export, cfg = run
    copy = shutil.copytree(export, tmp_path / "export")
    with zipfile.ZipFile(copy / "generator.keras") as archive:
        assert "config.json" in archive.namelist()
        archive.extractall(copy)
    assert loader.load(copy).cfg == cfg.replace(data="faces.npy")
    np.testing.assert_allclose(outputs(copy, cfg), outputs(export, cfg), atol=1e-6)
