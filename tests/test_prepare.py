import numpy as np
import pytest
from conftest import random_images
from PIL import Image

from dcgan_tf.cli import prepare as prepare_cli
from dcgan_tf.data.sources import load_images


def test_prepared_array_trains_on_the_same_pixels_as_its_source(tmp_path):
    for i, image in enumerate(random_images(6, 40)):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
    out = tmp_path / "prepared" / "faces16.npy"
    out.parent.mkdir()
    prepare_cli.main([str(tmp_path), str(out), "--image-size", "16", "--crop", "center"])
    from_source, _ = load_images(str(tmp_path), 16, crop="center", progress=False)
    from_prepared, _ = load_images(str(out), 16, progress=False)
    assert isinstance(from_prepared, np.memmap)  # read in place, not copied
    np.testing.assert_array_equal(from_prepared, from_source)
    assert [p.name for p in out.parent.iterdir()] == ["faces16.npy"]  # no partial file left


def test_prepare_refuses_a_bad_source_or_name(tmp_path, capsys):
    with pytest.raises(SystemExit, match="data path does not exist"):
        prepare_cli.main([str(tmp_path / "missing"), str(tmp_path / "x.npy"), "--image-size", "16"])
    with pytest.raises(SystemExit, match="must end in .npy"):
        prepare_cli.main(["builtin:4", str(tmp_path / "x.bin"), "--image-size", "16"])
    assert not list(tmp_path.iterdir())
