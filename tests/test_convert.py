"""dcgan-tf export: each form written, run with its own tool and checked against the SavedModel."""

import importlib.util
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT

from dcgan_tf.cli import export as export_cli
from dcgan_tf.config import preset
from dcgan_tf.model.networks import build_generator
from dcgan_tf.serve import convert
from dcgan_tf.serve.export import export_generator

HAS_ONNX = all(importlib.util.find_spec(name) for name in ("tf2onnx", "onnxruntime"))
HAS_SERVING_API = importlib.util.find_spec("tensorflow_serving") is not None


@pytest.fixture(scope="module")
def converted(tiny_model, tmp_path_factory):
    """The tiny export written by dcgan-tf export in every form that installs here; its printed report."""
    out = tmp_path_factory.mktemp("converted") / "tiny"
    forms = ["keras", "tflite", *(["onnx"] if HAS_ONNX else [])]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "dcgan_tf", "export", str(tiny_model), *(f"--format={f}" for f in forms),
               "--out", str(out)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    return out, result.stdout


def serving_default_images(savedmodel, z):
    signature = tf.saved_model.load(str(savedmodel)).signatures["serving_default"]
    return signature(z=tf.constant(z))["images"].numpy()


def z_batch(count=8, latent_dim=16):
    return np.random.default_rng(5).standard_normal((count, latent_dim)).astype(np.float32)


def test_every_form_is_reported_with_its_size_and_difference(converted):
    out, printed = converted
    lines = printed.strip().splitlines()
    forms = [line.split()[0] for line in lines]
    assert forms == ["savedmodel", "keras", "tflite", *(["onnx"] if HAS_ONNX else [])]
    for line in lines:
        assert " KiB, written in " in line and "on 64 fixed latents: max " in line and "mean " in line, line
        assert int(line.split("max ")[1].split("/")[0]) <= 1, line
    assert (out / "1" / "saved_model.pb").is_file() and (out / "1" / "dcgan_config.json").is_file()


def test_the_tflite_form_makes_the_savedmodels_faces_in_the_tflite_interpreter(converted):
    out, _ = converted
    z = z_batch()
    runner = tf.lite.Interpreter(model_path=str(out / "generator.tflite")).get_signature_runner("serving_default")
    images = runner(z=z)["images"]
    expected = serving_default_images(out / "1", z)
    assert images.dtype == np.uint8 and images.shape == (8, 16, 16, 3) and expected.std() > 0
    assert np.abs(images.astype(int) - expected).max() <= 1


def test_the_keras_form_loads_in_plain_keras_and_computes_in_float32(converted):
    out, _ = converted
    model = keras.saving.load_model(out / "generator.keras", safe_mode=True)
    z = z_batch()
    images = model(z, training=False)
    assert images.dtype == "float32" and {w.dtype for w in model.weights} == {"float32"}
    uint8 = np.clip(np.round((images.numpy() + 1) * 127.5), 0, 255)
    assert np.abs(uint8 - serving_default_images(out / "1", z)).max() <= 1


@pytest.mark.skipif(not HAS_ONNX, reason="tf2onnx and onnxruntime are not installed (pip install 'dcgan-tf[onnx]')")
def test_the_onnx_form_makes_the_savedmodels_faces_in_onnxruntime(converted):
    import onnxruntime
    out, _ = converted
    session = onnxruntime.InferenceSession(str(out / "generator.onnx"), providers=["CPUExecutionProvider"])
    (given,) = session.get_inputs()
    z = z_batch()
    images = session.run(None, {given.name: z})[0]
    assert images.dtype == np.uint8 and np.abs(images.astype(int) - serving_default_images(out / "1", z)).max() <= 1


def test_the_savedmodel_loads_the_way_tf_serving_loads_it(converted):
    """TF Serving: --model_base_path=OUT holds numbered versions; it loads the MetaGraph tagged
    `serve` and runs the signature `serving_default`, feeding and fetching its tensors by name."""
    out, _ = converted
    assert [p.name for p in out.iterdir() if p.name.isdigit()] == ["1"]
    z = z_batch()
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(out / "1"))
        assert set(meta_graph.signature_def) - {"__saved_model_init_op"} == {"serving_default"}
        signature = meta_graph.signature_def["serving_default"]
        assert [dim.size for dim in signature.inputs["z"].tensor_shape.dim] == [-1, 16]
        assert signature.inputs["z"].dtype == tf.float32.as_datatype_enum
        assert signature.outputs["images"].dtype == tf.uint8.as_datatype_enum
        images = session.run(signature.outputs["images"].name, {signature.inputs["z"].name: z})
    assert np.abs(images.astype(int) - serving_default_images(out / "1", z)).max() <= 1
    if HAS_SERVING_API:  # the request a client sends, read as TF Serving reads it
        from tensorflow_serving.apis import predict_pb2
        request = predict_pb2.PredictRequest()
        request.model_spec.name, request.model_spec.signature_name = "tiny", "serving_default"
        request.inputs["z"].CopyFrom(tf.make_tensor_proto(z))
        received = predict_pb2.PredictRequest.FromString(request.SerializeToString())
        np.testing.assert_array_equal(tf.make_ndarray(received.inputs["z"]), z)


def test_a_form_that_does_not_make_the_savedmodels_faces_is_not_written(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setattr(convert, "MAX_DIFFERENCE", -1)  # no form can pass: the check must refuse it
    with pytest.raises(convert.ConversionError, match="differ from the Keras generator's by up to"):
        convert.export_forms(tiny_model, ["tflite"], tmp_path / "out")
    assert not (tmp_path / "out" / "1").exists() and not list((tmp_path / "out").glob("*tflite*"))


def test_a_conditional_model_converts_with_its_attributes(tmp_path):
    cfg = preset("tiny", condition=("Smiling", "Male"), attrs="attrs.txt")
    generator = build_generator(cfg)
    for weight in generator.weights:
        if weight.path.endswith("kernel"):
            weight.assign(8 * weight)
    model = export_generator(generator, cfg, tmp_path / "cond")
    artefacts = convert.export_forms(model, ["tflite"], tmp_path / "out")
    assert [a.form for a in artefacts] == ["savedmodel", "tflite"] and all(a.max_difference <= 1 for a in artefacts)
    runner = tf.lite.Interpreter(model_path=str(tmp_path / "out" / "generator.tflite")).get_signature_runner()
    z, attributes = z_batch(), np.eye(2, dtype=np.float32)[[0, 1, 0, 1, 0, 1, 0, 1]]
    assert runner(z=z, attributes=attributes)["images"].shape == (8, 16, 16, 3)


def test_without_tf2onnx_the_onnx_form_says_what_to_install(tiny_model, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # import tf2onnx now raises ImportError
    with pytest.raises(SystemExit) as exit_info:
        export_cli.main([str(tiny_model), "--format", "onnx", "--out", str(tmp_path / "out")])
    assert str(exit_info.value) == "dcgan-tf export: error: " + convert.ONNX_MISSING
    assert not (tmp_path / "out").exists()  # refused before any work


def test_the_web_form_without_onnxruntime_web_names_the_npm_command_before_any_work(tiny_model, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        export_cli.main([str(tiny_model), "--format", "web", "--out", str(tmp_path / "out"),
                         "--ort-dir", str(tmp_path / "none")])
    assert "run `npm install onnxruntime-web@" in str(exit_info.value) and not (tmp_path / "out").exists()


def test_bad_targets_are_one_line_errors(tiny_model, tmp_path):
    (tmp_path / "file").write_text("mine")
    with pytest.raises(SystemExit, match="dcgan-tf export: error: .*file exists and is not a folder"):
        export_cli.main([str(tiny_model), "--out", str(tmp_path / "file")])
    bare = shutil.copytree(tiny_model, tmp_path / "bare", ignore=shutil.ignore_patterns("generator.keras"))
    with pytest.raises(SystemExit, match="a SavedModel alone cannot be exported"):
        export_cli.main([str(bare), "--out", str(tmp_path / "out")])
    assert (tmp_path / "file").read_text() == "mine" and not (tmp_path / "out").exists()
