"""A model written in the forms other tools run, each checked against the SavedModel.

  savedmodel  OUT/1/: the export (SavedModel, generator.keras, config) in TF Serving's layout:
              tensorflow_model_server --model_base_path=OUT serves it as version 1
  keras       OUT/generator.keras: keras.saving.load_model alone loads it; it computes in float32
  tflite      OUT/generator.tflite: serving_default converted by tf.lite.TFLiteConverter
  onnx        OUT/generator.onnx: serving_default converted by tf2onnx (pip install 'dcgan-tf[onnx]')
  web         OUT/web/: a static page making faces with generator.onnx in the browser (dcgan_tf.serve.web;
              implies onnx, needs onnxruntime-web's files from npm; unconditional models)

The SavedModel is always written: the other forms are converted from it and checked against
it. Each form's images of CHECK_FACES fixed latents must be within MAX_DIFFERENCE levels of 255
of the SavedModel's everywhere (the SavedModel's own: of the Keras generator's), or the export
fails and that form is not written.
"""

import dataclasses
import shutil
import time
import warnings
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from dcgan_tf.config import EXPORT_FORMATS
from dcgan_tf.model import latent
from dcgan_tf.serve import loader, web
from dcgan_tf.serve.export import check_replaceable, export_generator, uint8_images
from dcgan_tf.utils.files import written_atomically

SERVING_VERSION = "1"  # TF Serving loads numbered versions under --model_base_path
MAX_DIFFERENCE = 1  # levels of 255, anywhere in any face
CHECK_FACES = 64
CHECK_BATCH = 16  # faces per call: 64 at 64x64 at once took some runtimes past 12 GB
CHECK_SEED = 0
ONNX_OPSET = 17
ONNX_MISSING = "--format onnx needs tf2onnx and onnxruntime: pip install 'dcgan-tf[onnx]'"


class ConversionError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Artefact:
    form: str
    path: Path
    size: int  # bytes on disk
    max_difference: int  # levels of 255 against the reference
    mean_difference: float
    reference: str  # what it was checked against
    write_seconds: float
    run_seconds: float  # the CHECK_FACES faces, loaded and called once before

    def report(self):
        size = f"{self.size / 2**20:.1f} MiB" if self.size >= 2**20 else f"{self.size / 2**10:.0f} KiB"
        return (f"{self.form:<10} {self.path}  {size}, written in {self.write_seconds:.1f} s; "
                f"against the {self.reference} on {CHECK_FACES} fixed latents: max {self.max_difference}/255, "
                f"mean {self.mean_difference:.4f}/255; {CHECK_FACES} faces in {1000 * self.run_seconds:.0f} ms")


def export_forms(model, forms, out_dir, weights="float32", ort_dir=web.ORT_DIR):
    """Write `model` (any path the loader takes) in each of `forms` under out_dir; one Artefact each.
    The web form takes onnxruntime-web's files from ort_dir."""
    unknown = sorted(set(forms) - set(EXPORT_FORMATS))
    if unknown:
        raise ValueError(f"unknown format {', '.join(unknown)}: choose from {', '.join(EXPORT_FORMATS)}")
    if "web" in forms:  # the page runs the ONNX form
        forms = [form for form in forms if form != "web"] + ["onnx", "web"]
        web.check_ort_dir(ort_dir)  # before any work, as the ONNX modules
    if "onnx" in forms:
        _onnx_modules()
    loaded = loader.load(model)
    if loaded.generator is None or loaded.cfg is None:
        raise ValueError(f"{model}: a SavedModel alone cannot be exported; give its run, checkpoint or generator.keras")
    if "web" in forms and loaded.cfg.condition:
        raise ValueError(f"{model} is a conditional model: the web page feeds z alone; export it without --format web")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir} exists and is not a folder; choose another --out")
    inputs = check_inputs(loaded.cfg)
    expected = _in_batches(uint8_images(loaded.generator))(inputs)
    savedmodel = _write_savedmodel(loaded, out_dir / SERVING_VERSION, weights, inputs, expected)
    served = _in_batches(_load_savedmodel(savedmodel.path))(inputs)
    artefacts = [savedmodel]
    for form in dict.fromkeys(forms):
        if form == "web":
            artefacts.append(_write_web(artefacts[-1], out_dir, loaded.cfg, ort_dir))
        elif form != "savedmodel":
            artefacts.append(_write_form(form, savedmodel.path, out_dir, inputs, served))
    return artefacts


def _write_web(onnx, out_dir, cfg, ort_dir):
    """The page folder around the ONNX form just written and checked (its differences are the
    ONNX form's; the page's own faces are tested in Chromium: tests/test_web_export.py)."""
    start = time.perf_counter()
    path = web.write_web(onnx.path, out_dir / "web", cfg.latent_dim, cfg.image_size, ort_dir)
    return dataclasses.replace(onnx, form="web", path=path, size=_size_on_disk(path),
                               write_seconds=time.perf_counter() - start)


def _size_on_disk(path):
    """Bytes of a file, or of all the files in a folder."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size


def check_inputs(cfg):
    """The fixed inputs every form is checked on: z, and for a conditional model random 0/1 attributes."""
    inputs = {"z": latent.sample(CHECK_FACES, cfg.latent_dim, CHECK_SEED).numpy()}
    if cfg.condition:
        rng = np.random.default_rng(CHECK_SEED)
        inputs["attributes"] = rng.integers(0, 2, (CHECK_FACES, len(cfg.condition))).astype(np.float32)
    return inputs


def _write_savedmodel(loaded, directory, weights, inputs, expected):
    check_replaceable(directory)
    start = time.perf_counter()
    with written_atomically(directory) as (partial,):
        export_generator(loaded.generator, loaded.cfg, partial, weights)
        seconds = time.perf_counter() - start
        artefact = _checked("savedmodel", partial, _load_savedmodel, inputs, expected, "Keras generator", seconds)
    return dataclasses.replace(artefact, path=directory)


def _write_form(form, savedmodel, out_dir, inputs, served):
    path = out_dir / {"keras": loader.GENERATOR_FILE, "tflite": "generator.tflite", "onnx": "generator.onnx"}[form]
    if path.is_dir():
        raise ValueError(f"{path} is a folder; choose another --out")
    start = time.perf_counter()
    with written_atomically(path, suffix=path.suffix) as (partial,):  # Keras loads only NAME.keras
        WRITERS[form](savedmodel, partial)
        seconds = time.perf_counter() - start
        artefact = _checked(form, partial, LOADERS[form], inputs, served, "SavedModel", seconds)
    return dataclasses.replace(artefact, path=path)


def _checked(form, path, load, inputs, reference, reference_name, write_seconds):
    run = _in_batches(load(path))
    run({name: value[:CHECK_BATCH] for name, value in inputs.items()})  # a first call builds and traces
    start = time.perf_counter()
    images = run(inputs)
    run_seconds = time.perf_counter() - start
    if images.shape != reference.shape or images.dtype != np.uint8:
        raise ConversionError(f"the {form} form makes {images.dtype} {images.shape}, not uint8 {reference.shape}")
    difference = np.abs(images.astype(np.int16) - reference)
    if difference.max() > MAX_DIFFERENCE:
        raise ConversionError(f"the {form} form's faces differ from the {reference_name}'s by up to "
                              f"{difference.max()} levels of 255 (at most {MAX_DIFFERENCE}); nothing was written "
                              "for it (with --weights float16, try float32)")
    return Artefact(form, path, _size_on_disk(path), int(difference.max()), float(difference.mean()), reference_name,
                    write_seconds, run_seconds)


def _in_batches(run):
    """run (inputs -> uint8 images) called CHECK_BATCH faces at a time."""
    def batched(inputs):
        count = len(next(iter(inputs.values())))
        return np.concatenate([np.asarray(run({name: value[i:i + CHECK_BATCH] for name, value in inputs.items()}))
                               for i in range(0, count, CHECK_BATCH)])
    return batched


def _load_savedmodel(path):
    imported = tf.saved_model.load(str(path))
    signature = imported.signatures["serving_default"]
    return lambda inputs: signature(**{name: tf.constant(value) for name, value in inputs.items()})["images"].numpy()


def _write_keras(savedmodel, path):
    shutil.copyfile(savedmodel / loader.GENERATOR_FILE, path)


def _load_keras(path):
    return uint8_images(keras.saving.load_model(path, safe_mode=True))  # plain Keras: no dcgan_tf code in between


def _write_tflite(savedmodel, path):
    converter = tf.lite.TFLiteConverter.from_saved_model(str(savedmodel), signature_keys=["serving_default"])
    path.write_bytes(converter.convert())


def _load_tflite(path):
    with warnings.catch_warnings():  # its notice that LiteRT (ai_edge_litert) is to replace it
        warnings.filterwarnings("ignore", "\\s*Warning: tf.lite.Interpreter is deprecated", UserWarning)
        runner = tf.lite.Interpreter(model_path=str(path)).get_signature_runner("serving_default")
    return lambda inputs: runner(**inputs)["images"]


def _onnx_modules():
    try:
        import onnxruntime
        import tf2onnx
    except ImportError:
        raise ValueError(ONNX_MISSING) from None
    return tf2onnx, onnxruntime


def _write_onnx(savedmodel, path):
    tf2onnx, _ = _onnx_modules()
    imported = tf.saved_model.load(str(savedmodel))  # kept referenced: the function reads its variables
    signature = imported.signatures["serving_default"]
    specs = [tf.TensorSpec(spec.shape, spec.dtype, name=name)
             for name, spec in signature.structured_input_signature[1].items()]

    @tf.function(input_signature=specs)
    def serving_default(*tensors):
        return imported.signatures["serving_default"](**{spec.name: t for spec, t in zip(specs, tensors)})
    tf2onnx.convert.from_function(serving_default, input_signature=specs, opset=ONNX_OPSET, output_path=str(path))


def _load_onnx(path):
    _, onnxruntime = _onnx_modules()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [given.name for given in session.get_inputs()]  # z, attributes (tf2onnx may add :0)
    return lambda inputs: session.run(None, {name: inputs[name.split(":")[0]] for name in names})[0]


WRITERS = {"keras": _write_keras, "tflite": _write_tflite, "onnx": _write_onnx}
LOADERS = {"keras": _load_keras, "tflite": _load_tflite, "onnx": _load_onnx}
