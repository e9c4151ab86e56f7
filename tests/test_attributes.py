"""The attribute classifier's held-out split, latent directions, edit strips and vector arithmetic, on tiny models."""

import json
import re

import keras
import numpy as np
import pytest
from conftest import ROOT, random_images
from PIL import Image

from dcgan_tf.cli import attributes, generate
from dcgan_tf.config import preset
from dcgan_tf.data.sources import load_images
from dcgan_tf.edit import classifier
from dcgan_tf.edit.arithmetic import expected_attributes, parse_expression, vector_arithmetic
from dcgan_tf.edit.classifier import (
    AttributeClassifier,
    AttributeHead,
    build_classifier,
)
from dcgan_tf.edit.directions import (
    Directions,
    edit_points,
    fit_boundary,
    fit_directions,
    load_directions,
    logistic_regression,
)
from dcgan_tf.model import latent
from dcgan_tf.model.networks import build_generator
from dcgan_tf.serve.generation import FaceGenerator
from dcgan_tf.serve.loader import load, model_dir

NAMES = ("Bright", "Reddish", "Smiling")


@pytest.fixture(scope="module")
def labelled_folder(tmp_path_factory):
    """40 faces 000001-000040.png; rows for 000001-000035 only. Bright and Reddish follow the pixels."""
    root = tmp_path_factory.mktemp("labelled")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(1, 41):
        brightness, red = rng.uniform(-60, 60), rng.uniform(-40, 40)
        image = np.clip(random_images(1, 16, seed=i)[0] * 0.3 + 90 + brightness + [red, 0, 0], 0, 255)
        Image.fromarray(image.astype(np.uint8)).save(root / f"{i:06d}.png")
        if i <= 35:
            values = [brightness > 0, red > 0, rng.random() < 0.5]
            rows.append(f"{i:06d}.jpg " + " ".join("1" if v else "-1" for v in values))
    attrs = root.parent / "attrs.txt"
    attrs.write_text(f"{len(rows)}\n{' '.join(NAMES)}\n" + "\n".join(rows) + "\n")
    return root, attrs


def test_classifier_never_trains_on_the_held_out_images(labelled_folder, tmp_path, monkeypatch, capsys):
    folder, attrs = labelled_folder
    trained = []
    original = classifier.train_classifier

    def recording(images, labels, names, *args, **kwargs):
        trained.append(images.copy())
        return original(images, labels, names, *args, **kwargs)

    monkeypatch.setattr(classifier, "train_classifier", recording)
    out, report = tmp_path / "attr16.keras", tmp_path / "scores.json"
    attributes.main(["train", "--data", str(folder), "--attrs", str(attrs), "--image-size", "16", "--holdout", "10",
                     "--epochs", "2", "--batch-size", "8", "--out", str(out), "--report", str(report)])
    printed = capsys.readouterr().out
    all_images, _ = load_images(str(folder), 16, progress=False)
    np.testing.assert_array_equal(trained[0], all_images[:30])  # 000031-000040 are held out, 36-40 unlabelled
    assert "30 have a row in" in printed and "10 images loaded of 40 found (holdout part)" in printed
    assert "5 have a row in" in printed and "5 without one are left out" in printed
    assert ("the last 10 images by file name (000031.png to 000040.png); the classifier is scored on the 5 of "
            "them with labels") in printed
    scores = json.loads(report.read_text())
    assert (scores["train_images"], scores["held_out_images"]) == (30, 5)
    assert [s["name"] for s in scores["scores"]] == list(NAMES)
    assert "| **mean** |" in printed and "majority baseline" in printed
    loaded = AttributeClassifier.load(out)
    assert loaded.names == NAMES and loaded.image_size == 16
    assert loaded.logits(all_images[:4]).shape == (4, 3)


def test_classifier_errors_are_one_line(labelled_folder, tmp_path, capsys):
    folder, attrs = labelled_folder
    bad = tmp_path / "bad.txt"
    bad.write_text(attrs.read_text().replace("000002.jpg", "000001.jpg"))
    for argv, expected in [
        (["--attrs", str(bad)], f"{bad} line 4: 000001.jpg already has a row (line 3)"),
        (["--attrs", str(attrs), "--holdout", "40"], "--holdout 40 leaves no training images of the 40 found"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            attributes.main(["train", "--data", str(folder), "--image-size", "16", "--out",
                             str(tmp_path / "c.keras"), *argv])
        assert exit_info.value.code.startswith("dcgan-tf attributes: error: ") and expected in exit_info.value.code
    assert not (tmp_path / "c.keras").exists()


def test_attribute_scores_against_the_majority_baseline():
    labels = np.array([[1, 0], [1, 0], [0, 0], [1, 1]])
    logits = np.array([[2.0, -1], [-1, -1], [-1, -1], [3, -1]])  # second attribute: always "absent"
    first, second = classifier.attribute_scores(logits, labels, np.array([[1, 0], [1, 0], [0, 0]]), ["A", "B"])
    assert (first.accuracy, first.majority, first.balanced) == (0.75, 0.75, pytest.approx((2 / 3 + 1) / 2))
    assert (second.accuracy, second.majority, second.balanced, second.positives) == (0.75, 0.75, 0.5, 0.25)


def test_logistic_regression_finds_a_known_boundary():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 20))
    normal = rng.standard_normal(20)
    normal /= np.linalg.norm(normal)
    y = (x @ normal + 0.3 + 0.1 * rng.standard_normal(2000) > 0).astype(float)
    w, b = logistic_regression(x, y)
    assert w @ normal / np.linalg.norm(w) > 0.99 and b / np.linalg.norm(w) == pytest.approx(0.3, abs=0.05)
    unit, offset, accuracy = fit_boundary(x, x @ normal)
    assert unit @ normal > 0.99 and np.linalg.norm(unit) == pytest.approx(1) and accuracy == 1.0


def linear_generator(path, seed=0):
    """A 16 px generator, tanh of a random linear map of z, saved as .keras: its colours follow
    directions of z (an untrained DCGAN's faces are all mid-grey)."""
    initializer = keras.initializers.RandomNormal(stddev=0.1, seed=seed)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(16 * 16 * 3, kernel_initializer=initializer),
                              keras.layers.Reshape((16, 16, 3)), keras.layers.Activation("tanh")])
    model.save(path)
    return path


def pixel_meter(path):
    """A classifier of known response, in the classifier's format: Bright = mean pixel above 127,
    Reddish = red above green, Smiling = green above blue (logits in tenths of a grey level)."""
    inputs = keras.Input((16, 16, 3))
    head = AttributeHead(NAMES, name="attributes")
    model = keras.Model(inputs, head(keras.layers.GlobalAveragePooling2D()(inputs)))
    weights = np.array([[1 / 3, 1, 0], [1 / 3, -1, 1], [1 / 3, 0, -1]], np.float32) / 10
    head.set_weights([weights, np.array([-12.7, 0, 0], np.float32)])
    model.save(path)
    return path


@pytest.fixture(scope="module")
def edit_model(tmp_path_factory):
    """A tiny generator with a classifier of known response and directions fitted for it."""
    root = tmp_path_factory.mktemp("tiny")
    (root / "model").mkdir()
    export = linear_generator(root / "model" / "generator.keras")
    pixel_meter(root / "classifier.keras")
    generator, meter = load(export).faces, AttributeClassifier.load(root / "classifier.keras")
    attributes.main(["directions", str(export), "--classifier", str(root / "classifier.keras"), "--n", "400",
                     "--measure", "20"])
    return export, root / "classifier.keras", generator, meter


def test_directions_are_stored_beside_the_model_and_scores_rise(edit_model, capsys):
    export, _, generator, meter = edit_model
    with np.load(export.parent / "directions.npz", allow_pickle=False) as archive:
        assert set(NAMES) <= set(archive.files)
        assert all(np.linalg.norm(archive[name]) == pytest.approx(1, abs=1e-5) for name in NAMES)
        meta = json.loads(str(archive["meta"]))
    assert meta["attributes"] == list(NAMES) and meta["samples"] == 400 and meta["latent_dim"] == 16
    directions = Directions.load(export.parent / "directions.npz", 16)
    z = latent.sample(50, 16, seed=9).numpy()
    for i, name in enumerate(NAMES):
        logits = meter.logits(generator(edit_points(z, directions.vector(name), [-3, 0, 3])))[:, i]
        assert np.all(np.diff(logits.reshape(50, 3).mean(axis=0)) > 0), name


def test_the_explorer_reads_fitted_and_hand_made_directions(edit_model, tmp_path, capsys):
    model, _, generator, _ = edit_model
    fitted = load_directions(model, 16)
    assert list(fitted) == list(NAMES)  # meta and probe_images are not directions
    np.testing.assert_allclose(fitted["Smiling"], Directions.load(model.parent / "directions.npz", 16).vector("Smiling"))
    hand_made = tmp_path / "hand_made.npz"
    np.savez(hand_made, Smiling=np.arange(16.0) - 7.5)  # no meta, no probe: nothing to check it against
    generate.main([str(model), "edit", "--attr", "Smiling", "--directions", str(hand_made), "--out",
                   str(tmp_path / "edit.png")])
    assert np.asarray(Image.open(tmp_path / "edit.png")).shape == (20, 7 * 18 + 2, 3)



def test_a_huge_n_is_refused_and_measure_is_drawn_in_batches(edit_model, tmp_path):
    """Issue 33, case 13: --n 2e9 is refused before any latent vector is drawn; --measure's faces
    come a batch at a time, and score as if drawn at once."""
    from dcgan_tf.edit.directions import edit_response, sigmoid
    export, classifier_file, generator, meter = edit_model
    with pytest.raises(SystemExit) as exit:
        attributes.main(["directions", str(export), "--classifier", str(classifier_file), "--n", "2000000000",
                         "--out", str(tmp_path / "d.npz")])
    assert re.fullmatch(r"dcgan-tf attributes: error: --n 2,000,000,000: fitting directions on 2,000,000,000 faces needs "
                        r"about \d+\.\d GiB of memory, \d+\.\d GiB is available: use a smaller --n \(default 10000\)",
                        exit.value.code), exit.value.code
    assert list(tmp_path.iterdir()) == []
    directions = Directions.load(export.parent / "directions.npz", 16)
    strengths = np.array([-3.0, 0.0, 3.0])
    rows = []
    counting = FaceGenerator(lambda z: rows.append(len(z)) or generator(z), 16)
    response = edit_response(counting, meter, directions, ["Smiling"], strengths, n=50, batch_size=30)
    assert max(rows) <= 30 and sum(rows) == 50 * 3
    z = latent.sample(50, 16, seed=1).numpy()
    direct = sigmoid(meter.logits(generator(edit_points(z, directions.vector("Smiling"), strengths))))
    np.testing.assert_allclose(response[0], direct.reshape(50, 3, -1).mean(axis=0), atol=1e-6)


def test_keep_projects_the_other_direction_out(edit_model):
    export, _, _, _ = edit_model
    directions = Directions.load(export.parent / "directions.npz", 16)
    kept = directions.vector("Bright", keep=["Reddish", "Smiling"])
    assert np.linalg.norm(kept) == pytest.approx(1, abs=1e-5)
    assert abs(kept @ directions.vector("Reddish")) < 1e-5 and abs(kept @ directions.vector("Smiling")) < 1e-5
    assert kept @ directions.vector("Bright") > 0
    with pytest.raises(ValueError, match="unknown attribute.*Smile; the directions know"):
        directions.vector("Smile")


def test_edit_writes_a_strip_through_the_unedited_face(edit_model, tmp_path, capsys):
    export, classifier_file, generator, _ = edit_model
    out = tmp_path / "edit.png"
    generate.main([str(export), "edit", "--attr", "Smiling", "--seed", "5", "--strength", "-3:3", "--steps", "7",
                   "--keep", "Bright", "--classifier", str(classifier_file), "--out", str(out)])
    strip = np.asarray(Image.open(out))
    assert strip.shape == (16 + 4, 7 * 18 + 2, 3)
    unedited = generator(latent.sample(1, 16, 5).numpy())[0]
    middle = 2 + 3 * 18
    np.testing.assert_array_equal(strip[2:18, middle:middle + 16], unedited)
    printed = capsys.readouterr().out
    assert "strength -3.0 -2.0 -1.0 +0.0 +1.0 +2.0 +3.0" in printed and "Smiling: " in printed and "Bright: " in printed
    assert "Reddish: " in printed and printed.count("(moves most)") == 1  # the one attribute not asked for
    generate.main([str(export), "edit", "--attr", "Smiling", "--seeds", "1", "2", "--out", str(out)])
    assert np.asarray(Image.open(out)).shape == (2 * 18 + 2, 7 * 18 + 2, 3)


def test_directions_of_another_generator_are_refused(edit_model, tmp_path):
    export, classifier_file, _, meter = edit_model
    other = linear_generator(tmp_path / "other.keras", seed=1)
    with pytest.raises(SystemExit) as exit_info:
        generate.main([str(other), "edit", "--attr", "Smiling", "--directions", str(export.parent / "directions.npz"),
                       "--out", str(tmp_path / "edit.png")])
    assert "was fit on another generator" in exit_info.value.code
    with pytest.raises(SystemExit) as exit_info:
        generate.main([str(other), "edit", "--attr", "Smiling", "--out", str(tmp_path / "edit.png")])
    assert "no attribute directions at" in exit_info.value.code and "dcgan-tf attributes directions" in exit_info.value.code
    assert not (tmp_path / "edit.png").exists()


def test_arithmetic_averages_the_most_confident_exemplars(edit_model, tmp_path, capsys):
    export, classifier_file, generator, meter = edit_model
    terms = ["Smiling,!Bright", "-", "!Smiling,!Bright", "+", "!Smiling,Bright"]
    expression = parse_expression(terms)
    assert expected_attributes(expression) == {"Smiling": 1, "Bright": 1}
    result = vector_arithmetic(generator, meter, expression, pool=200, seed=3)
    z = latent.sample(200, 16, 3).numpy()
    p = 1 / (1 + np.exp(-meter.logits(generator(z))))
    best = np.argsort(-p[:, 2] * (1 - p[:, 0]))[:3]  # Smiling and not Bright
    np.testing.assert_allclose(result.exemplars[0], z[best], rtol=1e-6)
    np.testing.assert_allclose(result.averages, result.exemplars.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(result.results[4], result.averages[0] - result.averages[1] + result.averages[2],
                               rtol=1e-5, atol=1e-6)
    assert 0 < np.abs(result.results - result.results[4]).max() <= 0.25
    # colours follow z about linearly here, so the arithmetic does what it says
    assert result.result_probability["Smiling"] > 0.5 and result.result_probability["Bright"] > 0.5
    out = tmp_path / "arithmetic.png"
    generate.main([str(export), "arithmetic", *terms, "--classifier", str(classifier_file), "--pool", "200",
                   "--seed", "3", "--out", str(out)])
    figure = np.asarray(Image.open(out))
    assert figure.shape == (2 + 3 * 18 + 4 + 16 + 2, 2 + 3 * 24 + 3 * 18, 3)
    np.testing.assert_array_equal(figure[2:18, 2:18], result.images["exemplars"][0, 0])
    printed = capsys.readouterr().out
    assert "Smiling,!Bright: exemplars' probability" in printed
    assert "the 9 result faces, classifier probability: Smiling 0." in printed
    assert "Bright 0." in printed and "(expected present)" in printed


@pytest.mark.parametrize("argv, expected", [
    (["arithmetic", "Smiling", "-"], "arithmetic needs concepts and --classifier"),
    (["edit"], "edit needs --attr"),
    (["grid", "Smiling"], "unexpected arguments Smiling"),
    (["--attr", "Smiling"], "--attr, --keep and --directions are for the edit mode"),
    (["edit", "--attr", "Smiling", "--strength", "a:b"], "expected LOW:HIGH"),
])
def test_edit_and_arithmetic_usage_errors(argv, expected, capsys):
    with pytest.raises(SystemExit):
        generate.parse_args(["model", *argv])
    assert expected in capsys.readouterr().err


def test_bad_expressions_are_refused():
    # "+-" and "" are substrings of "+-" but not operators
    for terms in (["Smiling", "*", "Male"], ["Smiling", "-"], ["Smiling,,Male"], ["Smiling,!Smiling"],
                  ["Smiling", "+-", "Male"], ["Smiling", "", "Male"]):
        with pytest.raises(ValueError):
            parse_expression(terms)
    assert parse_expression(["Smiling,!Male"]) == [(1, {"Smiling": True, "Male": False})]


def test_companion_files_live_in_the_models_folder(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "ckpt-3.index").write_bytes(b"")
    assert model_dir(run) == run and model_dir(run / "checkpoints" / "ckpt-3") == run
    assert model_dir(tmp_path / "generator.keras") == tmp_path


def test_fit_directions_needs_the_classifier_at_the_models_size(tmp_path):
    cfg = preset("tiny")
    generator = FaceGenerator.from_keras(build_generator(cfg))
    build_classifier(32, NAMES).save(tmp_path / "c32.keras")
    with pytest.raises(ValueError, match="the classifier sees 32x32 faces, these are 16x16"):
        fit_directions(generator, AttributeClassifier.load(tmp_path / "c32.keras"), n=16)


SHIPPED_CLASSIFIER = ROOT / "saved_models" / "attr_classifier64" / "classifier.keras"
SHIPPED_GENERATOR = ROOT / "saved_models" / "celeba64"


def test_the_shipped_classifier_sees_the_shipped_directions_move_faces():
    """What the README's edit and arithmetic commands read after the install: the classifier
    loads with CelebA's 40 names, and a face pushed along the shipped Smiling and Male
    directions scores higher on that attribute than the same face pushed the other way."""
    clf = AttributeClassifier.load(SHIPPED_CLASSIFIER)
    assert len(clf.names) == 40 and {"Smiling", "Male", "Eyeglasses"} <= set(clf.names)
    generator = load(SHIPPED_GENERATOR).faces
    directions = Directions.of_model(SHIPPED_GENERATOR, generator)
    z = latent.sample(16, generator.latent_dim, seed=3).numpy()
    for name in ("Smiling", "Male"):
        step = 2.0 * directions.vector(name)
        more, less = (clf.logits(generator(z + sign * step))[:, clf.columns([name])[0]] for sign in (1, -1))
        assert np.isfinite(more).all() and np.mean(more > less) >= 0.75, name


def test_a_keras_file_with_a_lambda_layer_says_so(tmp_path):
    """Issue 33, case 20: safe mode refuses a Lambda layer; inside a nested model Keras says only
    "could not be deserialized". The message names the layer and the way out."""
    from dcgan_tf.utils.keras_files import safe_mode_refusal

    def double(x):
        return 2 * x
    inputs = keras.Input((16, 16, 3))
    inner = keras.Model(inputs, keras.layers.Lambda(double, name="doubled")(inputs), name="inner")
    outer_inputs = keras.Input((16, 16, 3))
    outer = keras.Model(outer_inputs, AttributeHead(NAMES, name="attributes")(
        keras.layers.GlobalAveragePooling2D()(inner(outer_inputs))))
    outer.save(tmp_path / "lambda.keras")
    expected = (f"{tmp_path / 'lambda.keras'} holds a Lambda layer (doubled): Python code that would run as it "
                "loads, which Keras' safe mode refuses; save the model again with Keras' own layers instead of the "
                "Lambda, or, if you trust where it came from, load it yourself with "
                "keras.saving.load_model(path, safe_mode=False)")
    with pytest.raises(ValueError) as error:
        AttributeClassifier.load(tmp_path / "lambda.keras")
    assert str(error.value) == expected
    pixel_meter(tmp_path / "plain.keras")
    assert safe_mode_refusal(tmp_path / "plain.keras") is None
