"""Attribute labels: parsing CelebA's format, matching rows to images, the held-out rule."""

import zipfile

import numpy as np
import pytest
from conftest import CELEBA_ATTRS, CELEBA_ZIP, random_images
from PIL import Image

from dcgan_tf.data.decoding import DataError
from dcgan_tf.data.labels import LabelError, load_labelled_images, read_attributes
from dcgan_tf.data.sources import split_part

GOOD = """3
Smiling Male  Eyeglasses
000001.jpg -1  1 -1
000002.jpg  1  1 -1
000003.jpg  1 -1  1
"""


def write(tmp_path, text, name="list_attr.txt"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reads_the_celeba_format(tmp_path):
    table = read_attributes(write(tmp_path, GOOD))
    assert table.names == ("Smiling", "Male", "Eyeglasses")
    assert table.files == ("000001.jpg", "000002.jpg", "000003.jpg")
    np.testing.assert_array_equal(table.values, [[0, 1, 0], [1, 1, 0], [1, 0, 1]])
    assert table.columns(["Eyeglasses", "Smiling"]) == [2, 0]
    with pytest.raises(ValueError, match="unknown attribute.*Smile; the labels know.s. Smiling, Male"):
        table.columns(["Smile"])


def test_rows_match_by_file_name_without_folder_or_extension(tmp_path):
    table = read_attributes(write(tmp_path, GOOD))
    rows = table.match(["celeba/000003.jpg", "000001.png", "000009.jpg", "x/000002.jpg"])
    np.testing.assert_array_equal(rows, [2, 0, -1, 1])


@pytest.mark.parametrize("text, line, problem", [
    (GOOD.replace("000002.jpg  1  1 -1", "000002.jpg  1  1"), 4, "2 values for 3 attributes"),
    (GOOD.replace("000003.jpg  1 -1  1", "000003.jpg  1 -1  1 1"), 5, "4 values for 3 attributes"),
    (GOOD.replace("000002.jpg  1  1 -1", "000002.jpg  1  0 -1"), 4, "value '0': expected 1 or -1"),
    (GOOD.replace("000002.jpg  1  1 -1", "000002.jpg  1  yes -1"), 4, "value 'yes'"),
    (GOOD.replace("000003.jpg", "000001.png"), 5, r"000001.png already has a row \(line 3\)"),
    (GOOD.replace("Eyeglasses", "Male"), 2, "attribute name\\(s\\) given twice: Male"),
    (GOOD.replace("3\n", "4\n", 1), 1, "says 4 images, the file has rows for 3"),
    ("image_id,Smiling\n000001.jpg,1\n", 1, "expected the number of images"),
    ("3\n", 2, "expected a count line, a line of attribute names"),
    ("3\n   \n000001.jpg 1\n", 2, "expected the attribute names"),
])
def test_malformed_files_name_the_line(tmp_path, text, line, problem):
    path = write(tmp_path, text)
    with pytest.raises(LabelError, match=f"^{path} line {line}: {problem}") as caught:
        read_attributes(path)
    assert "\n" not in str(caught.value)


def test_unreadable_file_is_one_line(tmp_path):
    path = tmp_path / "attrs.txt"
    path.write_bytes(b"3\n\xff\xfe\n")
    with pytest.raises(LabelError, match="cannot read the attribute file"):
        read_attributes(path)
    with pytest.raises(LabelError, match="cannot read"):
        read_attributes(tmp_path / "missing.txt")


@pytest.mark.parametrize("source", ["folder", "zip"])
def test_images_without_a_row_are_left_out_and_counted(tmp_path, source):
    folder = tmp_path / "faces" / "img_align_celeba"
    folder.mkdir(parents=True)
    for i, image in enumerate(random_images(5, 20), start=1):  # 000004 and 000005 have no row
        Image.fromarray(image).save(folder / f"{i:06d}.jpg")
    data = tmp_path / "faces"
    if source == "zip":
        data = tmp_path / "faces.zip"
        with zipfile.ZipFile(data, "w") as archive:
            for path in sorted(folder.iterdir()):
                archive.write(path, f"img_align_celeba/{path.name}")
    labelled, report = load_labelled_images(str(data), write(tmp_path, GOOD), 16, progress=False)
    assert labelled.images.shape == (3, 16, 16, 3) and labelled.attributes == ("Smiling", "Male", "Eyeglasses")
    assert [name.split("/")[-1] for name in labelled.names] == ["000001.jpg", "000002.jpg", "000003.jpg"]
    np.testing.assert_array_equal(labelled.labels, [[0, 1, 0], [1, 1, 0], [1, 0, 1]])
    assert (report.loaded, report.unlabelled, len(report.names)) == (5, 2, 5)
    assert "3 have a row in" in report.summary() and "2 without one are left out" in report.summary()


def test_sources_without_file_names_or_matching_rows_are_refused(tmp_path):
    attrs = write(tmp_path, GOOD)
    with pytest.raises(DataError, match="--attrs needs an image folder or a zip"):
        load_labelled_images("builtin:4", attrs, 16, progress=False)
    (tmp_path / "other").mkdir()
    Image.fromarray(random_images(1, 20)[0]).save(tmp_path / "other" / "cat.png")
    with pytest.raises(DataError, match="none of the 1 images.*has a row.*cat.png against 000001.jpg"):
        load_labelled_images(str(tmp_path / "other"), attrs, 16, progress=False)


@pytest.mark.skipif(not CELEBA_ATTRS.exists(), reason="needs ../shared/data/celeba_10k_attrs.txt")
def test_reads_celeba_labels():
    table = read_attributes(CELEBA_ATTRS)
    assert len(table.names) == 40 and table.values.shape == (9701, 40)
    assert table.files[0] == "000001.jpg" and table.files[-1] == "009701.jpg"
    glasses, smiling = (table.values[:, i].mean() for i in table.columns(["Eyeglasses", "Smiling"]))
    assert 0.03 < glasses < 0.12 and 0.4 < smiling < 0.6  # CelebA: ~6.5% glasses, ~48% smiling


@pytest.mark.skipif(not CELEBA_ZIP.exists(), reason="needs ../shared/data/celeba_10k.zip")
@pytest.mark.skipif(not CELEBA_ATTRS.exists(), reason="needs ../shared/data/celeba_10k_attrs.txt")
def test_celeba_10k_holds_out_images_009001_to_010000():
    table = read_attributes(CELEBA_ATTRS)
    with zipfile.ZipFile(CELEBA_ZIP) as archive:
        names = sorted(name for name in archive.namelist() if name.endswith(".jpg"))
    held = split_part(names, 1000, "holdout")
    assert [name.split("/")[-1] for name in held] == [f"{i:06d}.jpg" for i in range(9001, 10001)]
    assert (table.match(held) >= 0).sum() == 701  # the labels stop at 009701


def test_a_byte_order_mark_is_not_part_of_the_first_line(tmp_path):
    """Issue 33, case 19: an editor's UTF-8 BOM before the count (labels) or the first file name (partition)."""
    from dcgan_tf.data.sources import holdout_count
    path = tmp_path / "list_attr.txt"
    path.write_text("\ufeff" + GOOD, encoding="utf-8")
    assert read_attributes(path).files == ("000001.jpg", "000002.jpg", "000003.jpg")
    partition = tmp_path / "list_eval_partition.txt"
    partition.write_text("\ufeff" + "".join(f"{i:06d}.jpg {mark}\n" for i, mark in enumerate([0, 0, 1, 2, 2], 1)),
                         encoding="utf-8")
    assert holdout_count(str(partition)) == 2


def test_a_count_of_5000_digits_names_the_file(tmp_path):
    path = write(tmp_path, "9" * 5000 + GOOD[1:])
    with pytest.raises(LabelError) as error:
        read_attributes(path)
    assert str(error.value) == f"{path} line 1: a count of 5,000 digits: expected the number of images"
