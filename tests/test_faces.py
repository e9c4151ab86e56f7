import numpy as np
import pytest

from dcgan_tf.data.decoding import DataError
from dcgan_tf.data.faces import render_faces
from dcgan_tf.data.sources import load_images


def test_faces_have_the_requested_shape_and_use_the_value_range():
    faces = render_faces(6, size=32, seed=0)
    assert faces.shape == (6, 32, 32, 3) and faces.dtype == np.uint8
    assert faces.min() < 40 and faces.max() > 200


def test_same_seed_same_faces_and_a_longer_set_extends_a_shorter_one():
    np.testing.assert_array_equal(render_faces(4, 16, seed=3), render_faces(4, 16, seed=3))
    np.testing.assert_array_equal(render_faces(3, 16, seed=3), render_faces(5, 16, seed=3)[:3])
    assert np.abs(render_faces(4, 16, seed=3).astype(int) - render_faces(4, 16, seed=4)).mean() > 10


def test_faces_vary_but_share_a_face_layout():
    faces = render_faces(64, size=32, seed=1).astype(np.float32)
    per_pixel_spread = faces.std(axis=0).mean()
    assert per_pixel_spread > 25  # skin, hair, background differ from face to face
    mean_face = faces.mean(axis=0).mean(axis=-1)
    centre, corners = mean_face[10:22, 10:22].mean(), mean_face[:4, :4].mean()
    assert abs(centre - corners) > 5  # the face sits in the middle of the frame


def test_builtin_source_renders_the_requested_count_and_honours_limit():
    images, report = load_images("builtin:12", 16, limit=5, progress=False)
    assert images.shape == (5, 16, 16, 3) and report.loaded == 5
    np.testing.assert_array_equal(images, render_faces(5, 16, seed=0))


@pytest.mark.parametrize("spec", ["builtin:abc", "builtin:0", "builtin:-3"])
def test_builtin_source_rejects_a_bad_count(spec):
    with pytest.raises(DataError, match="positive image count"):
        load_images(spec, 16, progress=False)
