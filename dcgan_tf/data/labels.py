"""Attribute labels: CelebA's list_attr_celeba.txt, matched to images by file name.

The format: a line with the number of images, a line of attribute names, then one row
per image, its file name and one value per attribute, 1 (present) or -1 (absent):

    202599
    5_o_Clock_Shadow Arched_Eyebrows Attractive ...
    000001.jpg -1  1  1 ...

Rows match images by file name without folder or extension, so `img_align_celeba/000001.jpg`
in a zip and a PNG copy `000001.png` both take the row of `000001.jpg`.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dcgan_tf.data.decoding import DataError
from dcgan_tf.data.download import ATTRIBUTES, resolve_dataset_path
from dcgan_tf.data.sources import load_images
from dcgan_tf.utils.files import regular_file


class LabelError(DataError):
    """A malformed attribute file; the message names the file and the line."""


@dataclass(frozen=True)
class AttributeTable:
    names: tuple  # attribute names, in the file's column order
    files: tuple  # image file names, in the file's row order
    values: np.ndarray  # uint8 [rows, attributes], 1 = present, 0 = absent

    def columns(self, wanted):
        return attribute_indices(self.names, wanted, "the labels")

    def match(self, image_names):
        """Row index for each image name, -1 where the file has no row for it."""
        rows = {_key(name): i for i, name in enumerate(self.files)}
        return np.array([rows.get(_key(name), -1) for name in image_names], np.int64)


def attribute_indices(names, wanted, owner):
    """Indices of the attributes `wanted` among `names`; ValueError names any unknown one."""
    unknown = [name for name in wanted if name not in names]
    if unknown:
        raise ValueError(f"unknown attribute(s) {', '.join(unknown)}; {owner} know(s) {', '.join(names)}")
    return [names.index(name) for name in wanted]


def _key(file_name):
    return Path(file_name).stem


VALUES = {"1": 1, "-1": 0}
COUNT_DIGITS = 12  # a count line longer than this is not a number of images


def read_attributes(path):
    """Parse a list_attr_celeba.txt-format file -> AttributeTable; LabelError names a bad line."""
    path = regular_file(path, "attribute labels")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()  # -sig: a byte-order mark is not part of the count
    except (OSError, UnicodeDecodeError) as error:
        raise LabelError(f"{path}: cannot read the attribute file ({error})") from None

    def fail(number, problem):
        raise LabelError(f"{path} line {number}: {problem}")

    if len(lines) < 2:
        fail(len(lines) + 1, "expected a count line, a line of attribute names, then one row per image")
    if not lines[0].strip().isdecimal():
        fail(1, f"expected the number of images (list_attr_celeba.txt format), got {lines[0][:40]!r}")
    if len(lines[0].strip()) > COUNT_DIGITS:
        fail(1, f"a count of {len(lines[0].strip()):,} digits: expected the number of images")
    names = tuple(lines[1].split())
    if not names:
        fail(2, "expected the attribute names, found an empty line")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        fail(2, f"attribute name(s) given twice: {', '.join(repeated)}")
    files, values, seen = [], [], {}
    for number, line in enumerate(lines[2:], start=3):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != len(names) + 1:
            fail(number, f"{len(fields) - 1} values for {len(names)} attributes")
        bad = next((v for v in fields[1:] if v not in VALUES), None)
        if bad is not None:
            fail(number, f"value {bad!r}: expected 1 or -1")
        if _key(fields[0]) in seen:
            fail(number, f"{fields[0]} already has a row (line {seen[_key(fields[0])]})")
        seen[_key(fields[0])] = number
        files.append(fields[0])
        values.append([VALUES[v] for v in fields[1:]])
    if int(lines[0]) != len(files):
        fail(1, f"says {int(lines[0])} images, the file has rows for {len(files)}")
    array = np.array(values, np.uint8).reshape(len(files), len(names))
    return AttributeTable(names, tuple(files), array)


@dataclass
class LabelledImages:
    images: np.ndarray  # uint8 [n, size, size, 3]: the images that have a row
    labels: np.ndarray  # uint8 [n, attributes]
    names: list  # their file names
    attributes: tuple  # the attribute names, one per label column


def load_labelled_images(spec, attrs, size, crop="auto", progress=True, strict=False, holdout=0, part="all",
                         limit=0, attributes=None):
    """The images of an image folder or zip with their labels -> (LabelledImages, LoadReport).

    `attrs` is a file in CelebA's format, or "celeba" for the downloaded one. holdout, part
    and limit choose the images as for load_images. Images without a row are left out and
    counted in the report (report.names still lists every image loaded). `attributes` keeps
    only those label columns, in that order (checked before any image is read).
    """
    table = read_attributes(resolve_dataset_path(str(attrs), ATTRIBUTES))
    if attributes is not None:
        table = AttributeTable(tuple(attributes), table.files, table.values[:, table.columns(attributes)])
    images, report = load_images(spec, size, crop, limit, progress=progress, strict=strict, holdout=holdout, part=part)
    if report.names is None:
        raise DataError(f"{spec}: --attrs needs an image folder or a zip, whose file names match the labels' rows")
    rows = table.match(report.names)
    has_row = rows >= 0
    if not has_row.any():
        raise DataError(f"none of the {len(rows)} images of {spec} has a row in {attrs} "
                        f"(e.g. {report.names[0]} against {table.files[0]})")
    report.labels, report.unlabelled = str(attrs), int((~has_row).sum())
    kept = [name for name, ok in zip(report.names, has_row) if ok]
    return LabelledImages(images[has_row], table.values[rows[has_row]], kept, table.names), report
