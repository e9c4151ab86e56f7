"""Conditional generation: models that take attributes, training on labelled faces, export and generate.py."""

import json
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import random_images
from PIL import Image

from dcgan_tf.cli import evaluate as evaluate_cli
from dcgan_tf.cli import explore as explore_cli
from dcgan_tf.cli import generate
from dcgan_tf.cli import train as train_cli
from dcgan_tf.config import preset
from dcgan_tf.edit import conditioning
from dcgan_tf.model import latent
from dcgan_tf.model.gan import build_gan
from dcgan_tf.model.networks import build_discriminator, build_generator
from dcgan_tf.serve.export import export_generator
from dcgan_tf.serve.generation import FaceGenerator
from dcgan_tf.serve.loader import load
from dcgan_tf.utils.images import to_uint8

TILE = 16 + 2  # tiny preset images plus grid padding
NAMES = ("Smiling", "Eyeglasses")


def tiny(**overrides):
    return preset("tiny", **{"condition": NAMES, "attrs": "attrs.txt", **overrides})


@pytest.mark.parametrize("d_condition", ["projection", "concat"])
def test_conditional_models_take_z_and_attributes(d_condition):
    cfg = tiny(d_condition=d_condition, d_dropout=0.0)
    generator, discriminator = build_generator(cfg), build_discriminator(cfg)
    assert [i.name for i in generator.inputs] == ["z", "attributes"]
    assert [tuple(i.shape) for i in generator.inputs] == [(None, 16), (None, 2)]
    assert generator.output_shape == (None, 16, 16, 3)
    assert [tuple(i.shape) for i in discriminator.inputs] == [(None, 16, 16, 3), (None, 2)]
    assert discriminator.output_shape == (None, 1)
    images = tf.constant(random_images(4, 16).astype("float32") / 127.5 - 1)
    logits = {y: discriminator([images, tf.constant([y] * 4, tf.float32)]).numpy() for y in
              [(0, 0), (1, 0), (0, 1), (1, 1)]}
    assert not np.allclose(logits[(0, 0)], logits[(1, 1)])  # D judges the image with its attributes
    if d_condition == "projection":
        # psi(phi(x)) + <W y, phi(x)> is linear in y: the attributes' contributions add up.
        both = logits[(1, 0)] + logits[(0, 1)] - logits[(0, 0)]
        np.testing.assert_allclose(logits[(1, 1)], both, rtol=1e-4, atol=1e-5)
    else:  # the attributes are input channels of D's first convolution
        first_conv = next(layer for layer in discriminator.layers if isinstance(layer, keras.layers.Conv2D))
        assert first_conv.kernel.shape[2] == 3 + 2


@pytest.mark.parametrize("d_condition", ["projection", "concat"])
def test_sizes_from_the_config_count_the_conditional_weights(d_condition):
    """models.sizes (the run's memory check) counts the attributes' weights too."""
    from dcgan_tf.model.networks import sizes
    cfg = tiny(d_condition=d_condition)
    weights, _ = sizes(cfg)
    assert weights == build_generator(cfg).count_params() + build_discriminator(cfg).count_params()
    assert weights > sizes(preset("tiny"))[0]


@pytest.mark.parametrize("d_condition", ["projection", "concat"])
def test_the_gan_learns_what_an_attribute_means(d_condition):
    """Faces are bright where the attribute is present, dark where absent: after a short
    training, G makes brighter faces for the attribute than without it from the same z."""
    cfg = preset("tiny", condition=("Bright",), attrs="attrs.txt", batch_size=32, ema=0.0, lr=1e-3,
                 d_condition=d_condition)
    labels = np.tile([[0.0], [1.0]], (64, 1))
    images = np.where(labels[:, :, None, None] > 0, 0.7, -0.7) + np.random.default_rng(0).normal(0, 0.1, (128, 16, 16, 3))
    dataset = tf.data.Dataset.from_tensor_slices((images.astype("float32"), labels.astype("float32"))).batch(32)
    gan = build_gan(cfg)
    gan.fit(dataset.repeat(80), epochs=1, verbose=0, shuffle=False)
    z = latent.sample(16, cfg.latent_dim, seed=1)
    bright = gan.generator([z, tf.ones((16, 1))], training=False).numpy().mean(axis=(1, 2, 3))
    dark = gan.generator([z, tf.zeros((16, 1))], training=False).numpy().mean(axis=(1, 2, 3))
    assert (bright > dark + 0.25).all(), (bright, dark)


def write_labelled_folder(root, count=70, labelled=64):
    """Random faces 000001.png...; the first `labelled` have a row of NAMES plus a third attribute."""
    folder = root / "faces"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i, image in enumerate(random_images(count, 20), start=1):
        Image.fromarray(image).save(folder / f"{i:06d}.png")
        if i <= labelled:
            rows.append(f"{i:06d}.jpg " + " ".join(rng.choice(["1", "-1"], 3)))
    attrs = root / "attrs.txt"
    attrs.write_text(f"{len(rows)}\nSmiling Male Eyeglasses\n" + "\n".join(rows) + "\n")
    return folder, attrs


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("conditional")
    folder, attrs = write_labelled_folder(root)
    train_cli.main(["--preset", "tiny", "--data", str(folder), "--attrs", str(attrs), "--condition", ",".join(NAMES),
                    "--epochs", "1", "--out", str(root / "run"), "--export-dir", str(root / "exports")])
    return root, root / "run", root / "exports" / "run"


def checkpoint_objects(run):
    """The names the latest checkpoint saves its objects under: the root's (gan, generator,
    optimizers, epoch) and the GAN's (generator, discriminator, ema_generator, step...)."""
    from tensorflow.core.protobuf.trackable_object_graph_pb2 import TrackableObjectGraph
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(run / "checkpoints")))
    graph = TrackableObjectGraph.FromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    root = {child.local_name: child.node_id for child in graph.nodes[0].children}
    return set(root), {child.local_name for child in graph.nodes[root["gan"]].children}


def test_training_reads_the_labels_and_checkpoints_like_the_unconditional_model(conditional_run, tmp_path):
    root, run, _ = conditional_run
    saved = json.loads((run / "dcgan_config.json").read_text())
    assert saved["condition"] == list(NAMES) and saved["d_condition"] == "projection"
    assert (run / "samples" / "epoch_001.png").is_file()
    plain = tmp_path / "plain"
    np.save(tmp_path / "faces.npy", random_images(64, 16))
    train_cli.main(["--preset", "tiny", "--data", str(tmp_path / "faces.npy"), "--out", str(plain), "--no-export"])
    top, gan = checkpoint_objects(run)
    assert {"gan", "generator", "d_optimizer", "g_optimizer", "epoch"} <= top
    assert {"generator", "discriminator", "ema_generator", "step"} <= gan
    assert (top, gan) == checkpoint_objects(plain)


def test_images_without_a_row_are_left_out_and_reported(tmp_path, capsys):
    folder, attrs = write_labelled_folder(tmp_path, count=40, labelled=33)
    train_cli.main(["--preset", "tiny", "--data", str(folder), "--attrs", str(attrs), "--condition", "Male",
                    "--epochs", "1", "--out", str(tmp_path / "run"), "--no-export"])
    out = capsys.readouterr().out
    assert "33 have a row in" in out and "7 without one are left out" in out
    with open(tmp_path / "run" / "steps.csv") as f:
        assert f.read().splitlines()[-1].startswith("2,")  # 33 labelled images: 2 batches of 16


def test_resume_continues_a_conditional_run(conditional_run, tmp_path):
    root, run, _ = conditional_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    train_cli.main(["--out", str(copy), "--resume", "--epochs", "2", "--no-export"])
    assert tf.train.latest_checkpoint(str(copy / "checkpoints")).endswith("ckpt-8")  # 4 steps an epoch
    assert (copy / "samples" / "epoch_002.png").is_file()
    assert json.loads((copy / "dcgan_config.json").read_text())["condition"] == list(NAMES)


def test_export_signatures_take_the_attributes(conditional_run):
    _, run, export = conditional_run
    loaded = load(run)
    generator, cfg = loaded.generator, loaded.cfg
    model = tf.saved_model.load(str(export))
    serving = model.signatures["serving_default"]
    assert set(serving.structured_input_signature[1]) == {"z", "attributes"}
    z = latent.sample(4, cfg.latent_dim, seed=2)
    attributes = tf.constant([[1, 0], [0, 1], [1, 1], [0, 0]], tf.float32)
    served = serving(z=z, attributes=attributes)["images"].numpy()
    expected = to_uint8(generator([z, attributes], training=False)).numpy()
    assert np.abs(served.astype(int) - expected).max() <= 1
    from_keras = keras.saving.load_model(export / "generator.keras")([z, attributes], training=False)
    np.testing.assert_allclose(from_keras.numpy(), generator([z, attributes], training=False).numpy(), atol=1e-5)
    assert list(model.signatures) == ["serving_default"]  # what converters see; the rest are functions
    smiling = model.sample(num=tf.constant(3), seed=tf.constant(5, tf.int64), attributes=tf.constant([1.0, 0.0]))
    glasses = model.sample(num=tf.constant(3), seed=tf.constant(5, tf.int64), attributes=tf.constant([0.0, 1.0]))
    assert smiling["images"].shape == (3, 16, 16, 3) and not np.array_equal(smiling["images"], glasses["images"])
    assert [n.decode() for n in model.attribute_names()["names"].numpy()] == list(NAMES)


def tiles(path, rows, cols):
    grid = np.asarray(Image.open(path))
    assert grid.shape == (rows * TILE + 2, cols * TILE + 2, 3)
    return [[grid[2 + r * TILE:r * TILE + 18, 2 + c * TILE:c * TILE + 18] for c in range(cols)] for r in range(rows)]


def expected_faces(run, z, attributes):
    model = load(run)
    generator, cfg = model.generator, model.cfg
    return FaceGenerator.from_keras(generator, cfg.condition)(conditioning.join_rows(z, attributes))


@pytest.mark.parametrize("source", ["run", "export", "bare savedmodel"])
def test_attrs_makes_faces_with_those_attributes(conditional_run, tmp_path, source):
    _, run, export = conditional_run
    model = {"run": run, "export": export}.get(source)
    if model is None:
        model = shutil.copytree(export, tmp_path / "bare", ignore=shutil.ignore_patterns("generator.keras", "dcgan_config.json"))
    out = tmp_path / "faces.png"
    generate.main([str(model), "--attrs", "Smiling=1,Eyeglasses=0", "--n", "4", "--seed", "3", "--out", str(out)])
    z = latent.sample(4, 16, seed=3).numpy()
    expected = expected_faces(run, z, [[1, 0]] * 4)
    for i, tile in enumerate(t for row in tiles(out, 2, 2) for t in row):
        assert np.abs(tile.astype(int) - expected[i]).max() <= 1


def test_attributes_left_out_are_drawn_per_face_from_the_seed(conditional_run, tmp_path):
    _, run, _ = conditional_run
    rows = conditioning.attribute_rows(200, NAMES, {"Smiling": 1.0}, seed=4)
    assert (rows[:, 0] == 1).all() and 0.3 < rows[:, 1].mean() < 0.7
    np.testing.assert_array_equal(rows, conditioning.attribute_rows(200, NAMES, {"Smiling": 1.0}, seed=4))
    generate.main([str(run), "--attrs", "Smiling=0", "--n", "4", "--seed", "4", "--out", str(tmp_path / "f.png")])
    z = latent.sample(4, 16, seed=4).numpy()
    expected = expected_faces(run, z, conditioning.attribute_rows(4, NAMES, {"Smiling": 0.0}, seed=4))
    assert np.abs(tiles(tmp_path / "f.png", 2, 2)[1][1].astype(int) - expected[3]).max() <= 1


def test_vary_rows_keep_z_and_flip_one_attribute(conditional_run, tmp_path):
    _, run, export = conditional_run
    out = tmp_path / "vary.png"
    generate.main([str(export), "--vary", "Smiling", "--attrs", "Eyeglasses=1", "--n", "3", "--seed", "6",
                   "--out", str(out)])
    grid = tiles(out, 3, 2)
    z = latent.sample(3, 16, seed=6).numpy()
    without, with_ = expected_faces(run, z, [[0, 1]] * 3), expected_faces(run, z, [[1, 1]] * 3)
    for r in range(3):
        assert np.abs(grid[r][0].astype(int) - without[r]).max() <= 1
        assert np.abs(grid[r][1].astype(int) - with_[r]).max() <= 1
    assert not np.array_equal(grid[0][0], grid[1][0])  # each row its own z


def test_a_walk_keeps_its_attributes(conditional_run, tmp_path):
    _, run, export = conditional_run
    out = tmp_path / "walk.png"
    generate.main([str(export), "interpolate", "--attrs", "Smiling=1", "--seeds", "1", "2", "--steps", "3",
                   "--method", "linear", "--seed", "3", "--out", str(out)])
    # One draw for the whole walk; drawn per face, the last would have no glasses with seed 3.
    attributes = conditioning.attribute_rows(1, NAMES, {"Smiling": 1.0}, seed=3)
    assert conditioning.attribute_rows(3, NAMES, {"Smiling": 1.0}, seed=3)[2, 1] != attributes[0, 1]
    ends = np.concatenate([latent.sample(1, 16, seed).numpy() for seed in (1, 2)])
    expected = expected_faces(run, ends, np.repeat(attributes, 2, axis=0))
    frames = tiles(out, 1, 3)[0]  # seed 1, halfway, seed 2
    assert np.abs(frames[0].astype(int) - expected[0]).max() <= 1
    assert np.abs(frames[2].astype(int) - expected[1]).max() <= 1


def error_of(argv, capsys, main=generate.main):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    message = exit_info.value.code if isinstance(exit_info.value.code, str) else capsys.readouterr().err
    assert exit_info.value.code != 0 and "Traceback" not in message
    return message.strip().splitlines()[-1]


def test_bad_attribute_requests_are_one_line_errors(conditional_run, tmp_path, capsys):
    _, _, export = conditional_run
    plain = export_generator(build_generator(preset("tiny")), preset("tiny"), tmp_path / "plain")
    out = str(tmp_path / "x.png")
    cases = [
        ([str(export), "--attrs", "Male=1"], "the model is not conditioned on 'Male'; it knows Smiling, Eyeglasses"),
        ([str(export), "--attrs", "Smiling=yes"], "expected NAME=1 or NAME=0 items"),
        ([str(export), "--attrs", "Smiling=1,Smiling=0"], "Smiling is given twice"),
        ([str(export), "--vary", "Male"], "--vary: the model is not conditioned on 'Male'"),
        ([str(export), "--vary", "Smiling", "--attrs", "Smiling=1"], "leave it out of --attrs"),
        ([str(export), "interpolate", "--vary", "Smiling"], "--vary is for the grid mode"),
        ([str(plain), "--attrs", "Smiling=1"], "is not a conditional model"),
    ]
    for argv, expected in cases:
        assert expected in error_of(argv + ["--out", out], capsys), argv
    assert not (tmp_path / "x.png").exists()


def test_tools_that_take_z_alone_refuse_a_conditional_model(conditional_run, tmp_path, capsys):
    from dcgan_tf.cli import attributes
    _, _, export = conditional_run
    classifier = tmp_path / "c.keras"  # never read: the model is refused first
    cases = [
        (generate.main, [str(export), "edit", "--attr", "Smiling", "--out", str(tmp_path / "x.png")], "edit works"),
        (generate.main, [str(export), "arithmetic", "Smiling", "--classifier", str(classifier),
                         "--out", str(tmp_path / "x.png")], "arithmetic works"),
        (attributes.main, ["directions", str(export), "--classifier", str(classifier)], "directions works"),
        (explore_cli.main, [str(export), "--port", "0"], "the explorer works"),
    ]
    for main, argv, expected in cases:
        message = error_of(argv, capsys, main)
        assert f"{expected} on unconditional models; this one is conditioned on Smiling, Eyeglasses" in message


def test_bad_conditions_are_one_line_train_errors(tmp_path, capsys):
    folder, attrs = write_labelled_folder(tmp_path, count=20, labelled=20)
    np.save(tmp_path / "faces.npy", random_images(32, 16))
    base = ["--preset", "tiny", "--out", str(tmp_path / "run"), "--no-export"]
    cases = [
        (["--data", str(folder), "--attrs", str(attrs), "--condition", "Smile"],
         "unknown attribute(s) Smile; the labels know(s) Smiling, Male, Eyeglasses"),
        (["--data", str(folder), "--condition", "Smiling"], "condition needs attrs"),
        (["--data", str(tmp_path / "faces.npy"), "--attrs", str(attrs), "--condition", "Smiling"],
         "--attrs needs an image folder or a zip"),
        (["--data", str(folder), "--attrs", str(attrs), "--condition", "Smiling", "--d-condition", "sum"],
         "d_condition must be projection or concat"),
    ]
    for argv, expected in cases:
        assert expected in error_of(base + argv, capsys, train_cli.main), argv
    assert not (tmp_path / "run" / "checkpoints").exists()
    with pytest.raises(ValueError, match="condition must be a list of names, got"):  # e.g. a config.json edited by hand
        tiny(condition=[1, 2])


def fake_inception(monkeypatch):
    """inception.features without the weights: random features; records the images it is given."""
    from dcgan_tf.metrics import inception
    seen = []

    def features(images, progress=False):
        batches = [images] if isinstance(images, np.ndarray) else list(images)
        seen.append(np.concatenate(batches))
        return np.random.default_rng(len(seen)).normal(size=(len(seen[-1]), 8))
    monkeypatch.setattr(inception, "features", features)
    return seen


def test_evaluate_gives_a_conditional_models_faces_the_real_attributes(conditional_run, tmp_path, monkeypatch, capsys):
    from dcgan_tf.metrics import evaluate
    root, run, export = conditional_run
    monkeypatch.setattr(evaluate, "face_rate_counter", lambda: None)
    seen = fake_inception(monkeypatch)
    other = shutil.copytree(root / "faces", tmp_path / "other")
    argv = ["--model", str(export), "--n", "6", "--cache-dir", str(tmp_path)]
    assert "is a conditional model: give --attrs" in error_of(argv + ["--data", str(other)], capsys, evaluate_cli.main)
    # its own data and labels, from the run's config (an export names them by file name alone)
    evaluate_cli.main(["--model", str(run), *argv[2:]])
    labels = [[int(v == "1") for v in line.split()[1::2]] for line in (root / "attrs.txt").read_text().splitlines()[2:8]]
    expected = expected_faces(run, latent.sample(6, 16, seed=0).numpy(), labels)  # Smiling and Eyeglasses columns
    assert np.abs(seen[-1].astype(int) - expected).max() <= 1


def test_eval_every_scores_a_conditional_run_with_the_held_out_labels(tmp_path, monkeypatch):
    from dcgan_tf.train.run import train
    seen = fake_inception(monkeypatch)
    folder, attrs = write_labelled_folder(tmp_path, count=40, labelled=40)
    cfg = tiny(data=str(folder), attrs=str(attrs), holdout=8, eval_every=1, eval_n=8)
    train(cfg, tmp_path / "run", verbose=0, log=lambda message: None)
    with open(tmp_path / "run" / "history.csv") as f:
        assert "fid" in f.readline()
    assert [len(images) for images in seen] == [8, 8, 8]  # 8 held-out faces, 8 training ones (the floor), 8 fakes


def test_attrs_celeba_reads_the_downloaded_label_file(tmp_path, monkeypatch):
    from dcgan_tf.data import download
    from dcgan_tf.data.labels import load_labelled_images
    folder, attrs = write_labelled_folder(tmp_path, count=4, labelled=4)
    monkeypatch.setattr(download, "DEFAULT_DIR", tmp_path)
    attrs.rename(tmp_path / download.ATTRIBUTES)
    labelled, _ = load_labelled_images(str(folder), "celeba", 16, progress=False, attributes=["Male"])
    assert labelled.attributes == ("Male",) and labelled.labels.shape == (4, 1)
