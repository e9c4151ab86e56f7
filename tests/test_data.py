import io
import os
import struct
import zipfile
import zlib

import numpy as np
import pytest
from conftest import CELEBA_ZIP, random_images
from PIL import Image

from dcgan_tf.data.decoding import DataError, parse_crop
from dcgan_tf.data.pipeline import make_dataset
from dcgan_tf.data.sources import holdout_count, is_named_source, load_images
from dcgan_tf.utils.memory import NotEnoughMemory


def write_mixed_images(folder):
    """JPEG, PNG, grayscale, RGBA, palette and odd sizes, some in a subfolder."""
    rng = np.random.default_rng(0)
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(random_images(1, 40)[0]).save(folder / "a.jpg")
    Image.fromarray(random_images(1, 30, seed=1)[0]).save(folder / "b.png")
    Image.fromarray(rng.integers(0, 256, (50, 20), dtype=np.uint8), "L").save(folder / "sub" / "gray.png")
    Image.fromarray(rng.integers(0, 256, (24, 24, 4), dtype=np.uint8), "RGBA").save(folder / "sub" / "rgba.png")
    Image.fromarray(random_images(1, 36, seed=2)[0]).convert("P").save(folder / "sub" / "palette.bmp")
    (folder / "notes.txt").write_text("not an image")
    return 5


def zip_folder(folder, archive, pattern="*", compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(archive, "w", compression=compression) as z:
        for path in sorted(folder.rglob(pattern)):
            if path.is_file():
                z.write(path, path.relative_to(folder))
    return archive


def test_directory_of_mixed_images(tmp_path):
    count = write_mixed_images(tmp_path / "faces")
    images, report = load_images(str(tmp_path / "faces"), 16, progress=False)
    assert images.shape == (count, 16, 16, 3) and images.dtype == np.uint8
    assert (report.found, report.loaded, report.skipped) == (count, count, [])
    gray = images[2]  # sorted order: a.jpg, b.png, sub/gray.png, ...
    np.testing.assert_array_equal(gray[..., 0], gray[..., 1])


def test_progress_says_what_it_counts_and_writes_no_escape_codes_into_a_log(tmp_path, capsys):
    count = write_mixed_images(tmp_path / "faces")
    load_images(str(tmp_path / "faces"), 16, progress=True)  # capsys's stdout is not a terminal
    out = capsys.readouterr().out
    assert out.startswith(f"reading {count} images from {tmp_path / 'faces'}:\n"), out
    assert f"{count}/{count} - " in out and "\x1b" not in out and "\r" not in out


def test_zip_reads_like_the_directory(tmp_path):
    write_mixed_images(tmp_path / "faces")
    archive = zip_folder(tmp_path / "faces", tmp_path / "faces.zip")
    from_dir, _ = load_images(str(tmp_path / "faces"), 16, progress=False)
    from_zip, _ = load_images(str(archive), 16, progress=False)
    np.testing.assert_array_equal(from_dir, from_zip)


@pytest.mark.parametrize("source", ["faces", "faces.zip"])
def test_loaded_images_become_float_batches(tmp_path, source):
    count = write_mixed_images(tmp_path / "faces")
    zip_folder(tmp_path / "faces", tmp_path / "faces.zip")
    images, _ = load_images(str(tmp_path / source), 16, progress=False)
    [batch] = list(make_dataset(images, count, shuffle=False))
    batch = batch.numpy()
    assert batch.shape == (count, 16, 16, 3) and batch.dtype == np.float32
    # Resized noise is smoothed, so the ends are approached, not always hit.
    assert batch.min() >= -1 and batch.max() <= 1 and batch.min() < -0.8 and batch.max() > 0.8
    np.testing.assert_allclose(batch, images / 127.5 - 1, atol=1e-6)


def test_unreadable_files_are_skipped_and_reported(tmp_path):
    write_mixed_images(tmp_path)
    (tmp_path / "empty.jpg").write_bytes(b"")
    jpeg = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    images, report = load_images(str(tmp_path), 16, progress=False)
    assert len(images) == 5 and report.found == 7
    assert [name for name, _ in report.skipped] == ["empty.jpg", "truncated.jpg"]
    assert "truncated.jpg" in report.summary() and "not a readable image" in report.summary()


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: p, "no images found"),
    (lambda p: (p / "notes.txt").write_text("x") and p, "no images found"),
    (lambda p: (p / "x.txt").write_text("x") and p / "x.txt", "expected a directory, a .zip"),
])
def test_bad_sources_name_the_problem(tmp_path, make, message):
    with pytest.raises(DataError, match=message):
        load_images(str(make(tmp_path)), 16, progress=False)


def test_all_files_unreadable(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="none of the 1 images could be read.*bad.png"):
        load_images(str(tmp_path), 16, progress=False)


def test_numpy_arrays(tmp_path):
    floats = random_images(10, 32).astype("float32") / 127.5 - 1
    np.save(tmp_path / "floats.npy", floats)
    np.savez(tmp_path / "uint8.npz", images=random_images(10, 16))
    resized, _ = load_images(str(tmp_path / "floats.npy"), 16, limit=4, progress=False)
    ready, _ = load_images(str(tmp_path / "uint8.npz"), 16, progress=False)
    assert resized.shape == (4, 16, 16, 3) and ready.shape == (10, 16, 16, 3)
    np.save(tmp_path / "wrong.npy", np.zeros((3, 5), np.uint8))
    with pytest.raises(DataError, match=r"wrong.npy: expected an array of images .* shape \(3, 5\)"):
        load_images(str(tmp_path / "wrong.npy"), 16, progress=False)


def test_crops():
    assert parse_crop("celeba")(178, 218) == (30, 55, 150, 175)
    assert parse_crop("auto")(89, 109) == pytest.approx((15, 27.5, 75, 87.5), abs=0.3)
    assert parse_crop("auto")(100, 60) == (20, 0, 80, 60)
    assert parse_crop("center:108")(178, 218) == (35, 55, 143, 163)
    assert parse_crop("box:1,2,30,40")(64, 64) == (1, 2, 30, 40)
    assert parse_crop("none")(64, 64) is None
    for bad in ("middle", "center:-3", "box:1,2,3", "box:5,5,1,1"):
        with pytest.raises(DataError, match="bad crop"):
            parse_crop(bad)


def test_crop_outside_the_image_is_an_error(tmp_path):
    Image.fromarray(random_images(1, 20)[0]).save(tmp_path / "small.png")
    with pytest.raises(DataError, match="crop box .* outside the 20x20 image"):
        load_images(str(tmp_path / "small.png").rsplit("/", 1)[0], 16, crop="box:0,0,50,50", progress=False)


def test_dataset_batches_scaled_and_reshuffled():
    images = random_images(70, 8)
    dataset = make_dataset(images, 16, seed=0)
    first, second = list(dataset), list(dataset)
    assert len(first) == 4  # 70 // 16, the partial batch dropped
    batch = first[0].numpy()
    assert batch.shape == (16, 8, 8, 3) and batch.dtype == np.float32
    assert batch.min() >= -1 and batch.max() <= 1 and batch.min() < -0.9 and batch.max() > 0.9
    assert not np.array_equal(first[0], second[0])  # a new order each epoch
    seen = np.concatenate([b.numpy() for b in first])
    originals = {img.tobytes() for img in images}
    assert all(np.round((img + 1) * 127.5).astype(np.uint8).tobytes() in originals for img in seen)
    with pytest.raises(DataError, match="only 70 images for a batch size of 128"):
        make_dataset(images, 128)


@pytest.mark.skipif(not CELEBA_ZIP.exists(), reason="needs ../shared/data/celeba_10k.zip")
def test_celeba_zip_face_crop():
    images, report = load_images(str(CELEBA_ZIP), 32, limit=50, progress=False)
    assert images.shape == (50, 32, 32, 3) and report.skipped == []
    # Faces fill the crop: the centre is brighter and more skin-coloured (red > blue) than random.
    centre = images[:, 10:22, 10:22].astype(float)
    assert centre[..., 0].mean() > centre[..., 2].mean() + 10


def write_awkward_images(folder):
    """Formats a real photo folder holds: 16-bit PNG, palette PNG, CMYK JPEG, grayscale, RGBA, a huge image."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    gradient = np.linspace(0, 65535, 20).round().astype(np.uint16)
    Image.fromarray(np.tile(gradient, (20, 1))).save(folder / "deep16.png")
    Image.fromarray(random_images(1, 20)[0]).convert("P").save(folder / "palette.png")
    Image.fromarray(random_images(1, 20, seed=3)[0]).convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray(rng.integers(0, 256, (20, 20), dtype=np.uint8), "L").save(folder / "gray.jpg")
    Image.fromarray(rng.integers(0, 256, (20, 20, 4), dtype=np.uint8), "RGBA").save(folder / "rgba.png")
    Image.fromarray(random_images(1, 3000, seed=4)[0]).save(folder / "huge.png")


def test_awkward_formats_become_rgb_faces(tmp_path):
    write_awkward_images(tmp_path)
    images, report = load_images(str(tmp_path), 16, crop="none", progress=False)
    assert images.shape == (6, 16, 16, 3) and report.skipped == []
    assert all(image.std() > 0 for image in images)
    deep16 = images[1]  # sorted: cmyk.jpg, deep16.png, ...; 16 bits scaled to 8, not clipped at 255
    np.testing.assert_allclose(deep16, np.broadcast_to(np.linspace(0, 255, 16)[:, None], (16, 16, 3)), atol=3)



def test_a_32_bit_integer_image_is_read_in_the_16_bit_range_or_refused(tmp_path):
    """Issue 33, case 22: mode I (a 16-bit PGM, or a 32-bit TIFF under an image name) is never all white."""
    ramp = np.broadcast_to(np.arange(16, dtype=np.int32)[:, None] * 4369, (16, 16))  # 0 ... 65535
    Image.fromarray(np.ascontiguousarray(ramp)).save(tmp_path / "a16.png", format="TIFF")
    Image.fromarray(np.ascontiguousarray(ramp) * 32768).save(tmp_path / "b32.png", format="TIFF")
    assert Image.open(tmp_path / "b32.png").mode == "I"
    images, report = load_images(str(tmp_path), 16, crop="none", progress=False)
    rows = np.broadcast_to(np.linspace(0, 255, 16)[:, None, None], (16, 16, 3))
    np.testing.assert_allclose(images[0], rows, atol=3)
    refused = ("32-bit integer pixels from 0 to 2147450880, outside the 16-bit range 0-65535 this reads: "
               "save it as an 8- or 16-bit image")
    assert report.skipped == [("b32.png", refused)]


def test_strict_turns_a_skipped_file_into_an_error(tmp_path):
    write_mixed_images(tmp_path)
    (tmp_path / "fake.jpg").write_text("this is text with an image extension")
    with pytest.raises(DataError, match="1 unreadable image.*--strict.*fake.jpg: not a readable image"):
        load_images(str(tmp_path), 16, progress=False, strict=True)


def test_zip_with_a_corrupt_member_skips_it(tmp_path):
    write_mixed_images(tmp_path / "faces")
    archive = zip_folder(tmp_path / "faces", tmp_path / "faces.zip", "*.png")
    data = bytearray(archive.read_bytes())
    first = data.find(b"IDAT")  # damage the pixel data of the first stored PNG (b.png)
    data[first + 8:first + 40] = bytes(32)
    archive.write_bytes(bytes(data))
    images, report = load_images(str(archive), 16, progress=False)
    assert [name for name, _ in report.skipped] == ["b.png"] and len(images) == report.found - 1


@pytest.mark.parametrize("damage, reason", [
    ("deflate stream", "zlib.error: Error -3 while decompressing data"),
    ("encrypted", "RuntimeError: File 'b.png' is encrypted"),
    ("unknown method", "NotImplementedError: That compression method is not supported"),
])
def test_zip_member_that_cannot_be_extracted_is_skipped(tmp_path, damage, reason):
    write_mixed_images(tmp_path / "faces")
    archive = zip_folder(tmp_path / "faces", tmp_path / "faces.zip", "*.png", zipfile.ZIP_DEFLATED)
    data = bytearray(archive.read_bytes())
    central = data.find(b"PK\x01\x02")  # the first member's directory entry: b.png
    if damage == "deflate stream":
        start = 30 + sum(struct.unpack("<HH", data[26:30]))  # b.png's data, after its local header
        data[start:start + 8] = b"\xff" * 8  # block type 3 does not exist: zlib fails, not only the CRC
    elif damage == "encrypted":
        data[central + 8] |= 1
    else:
        struct.pack_into("<H", data, central + 10, 99)
    archive.write_bytes(bytes(data))
    images, report = load_images(str(archive), 16, progress=False)
    assert [name for name, _ in report.skipped] == ["b.png"] and len(images) == report.found - 1 == 2
    assert "b.png: cannot extract it from the zip" in report.summary()
    assert reason in report.skipped[0][1]


def test_decompression_bomb_is_skipped(tmp_path, monkeypatch):
    Image.fromarray(random_images(1, 64)[0]).save(tmp_path / "bomb.png")
    Image.fromarray(random_images(1, 16)[0]).save(tmp_path / "small.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 64x64 is over twice the limit: an error
    images, report = load_images(str(tmp_path), 16, progress=False)
    assert len(images) == 1 and report.skipped[0][0] == "bomb.png"
    assert "DecompressionBombError" in report.skipped[0][1]
    with pytest.raises(DataError, match="bomb.png: not a readable image .DecompressionBombError"):
        load_images(str(tmp_path), 16, progress=False, strict=True)


@pytest.mark.parametrize("array, message", [
    (np.zeros((4, 8, 8, 2), np.uint8), r"expected an array of images \[N, H, W, 1\|3\|4\], got shape \(4, 8, 8, 2\)"),
    (np.zeros((4, 8), np.uint8), r"got shape \(4, 8\)"),
    (np.zeros((4, 8, 8, 3), np.int64), "expected uint8 or float images, got dtype int64"),
])
def test_numpy_array_of_the_wrong_shape_or_dtype(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(DataError, match=message):
        load_images(str(tmp_path / "bad.npy"), 16, progress=False)


def test_holdout_is_the_last_images_by_file_name_and_never_trained_on(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    images = random_images(10, 16)
    for i in reversed(range(10)):  # written out of order: the split follows the sorted names
        Image.fromarray(images[i]).save(folder / f"{i:06d}.png")
    train, report = load_images(str(folder), 16, "none", holdout=3, part="train", progress=False)
    held, _ = load_images(str(folder), 16, "none", holdout=3, part="holdout", progress=False)
    np.testing.assert_array_equal(train, images[:7])
    np.testing.assert_array_equal(held, images[7:])
    assert "7 images loaded of 10 found (train part)" in report.summary()
    limited, _ = load_images(str(folder), 16, "none", limit=2, holdout=3, part="holdout", progress=False)
    np.testing.assert_array_equal(limited, images[7:9])  # --limit takes from the part, never across it
    np.save(tmp_path / "faces.npy", images)
    np.testing.assert_array_equal(load_images(str(tmp_path / "faces.npy"), 16, holdout=4, part="holdout",
                                              progress=False)[0], images[6:])
    builtin_all, _ = load_images("builtin:6", 16, progress=False)
    np.testing.assert_array_equal(load_images("builtin:6", 16, holdout=2, part="holdout", progress=False)[0],
                                  builtin_all[4:])
    with pytest.raises(DataError, match="leaves no training images"):
        load_images(str(folder), 16, holdout=10, part="train", progress=False)


def test_celebas_partition_file_holds_out_its_test_images(tmp_path):
    partition = tmp_path / "list_eval_partition.txt"
    marks = [0] * 6 + [1] * 2 + [2] * 3  # CelebA's shape: train, then validation, then test, by file name
    partition.write_text("".join(f"{i:06d}.jpg {m}\n" for i, m in reversed(list(enumerate(marks, 1)))))
    assert holdout_count(str(partition)) == 3
    assert holdout_count("7") == 7
    partition.write_text("000001.jpg 2\n000002.jpg 0\n")
    with pytest.raises(DataError, match="its 1 test images are not its last 1 by file name"):
        holdout_count(str(partition))
    partition.write_text("000001.jpg 0\n")
    with pytest.raises(DataError, match="marks no test images"):
        holdout_count(str(partition))
    partition.write_text("000001.jpg -1 x\n")
    with pytest.raises(DataError, match="not in list_eval_partition.txt's format"):
        holdout_count(str(partition))
    with pytest.raises(DataError, match="expected a count or CelebA's list_eval_partition.txt"):
        holdout_count(str(tmp_path / "missing.txt"))


# --- issue 15: hostile inputs ----------------------------------------------------------

def test_a_zero_d_array_with_limit_is_an_error_not_an_index_error(tmp_path):
    np.save(tmp_path / "scalar.npy", np.float32(3))
    with pytest.raises(DataError, match=r"scalar.npy: expected an array of images .* got shape \(\)"):
        load_images(str(tmp_path / "scalar.npy"), 16, limit=5, progress=False)


def test_one_colour_image_array_is_one_image_not_rows_of_grayscale(tmp_path):
    image = random_images(1, 20)[0]
    np.save(tmp_path / "one.npy", image)
    images, report = load_images(str(tmp_path / "one.npy"), 20, crop="none", progress=False)
    assert images.shape == (1, 20, 20, 3) and report.loaded == 1
    np.testing.assert_array_equal(images[0], image)
    np.save(tmp_path / "gray.npy", random_images(5, 20)[..., 0])  # [N, H, W]: still N grayscale images
    assert load_images(str(tmp_path / "gray.npy"), 20, progress=False)[0].shape == (5, 20, 20, 3)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_float_arrays_with_nan_or_inf_are_refused(tmp_path, bad):
    floats = random_images(6, 16).astype("float32") / 255
    floats[4, 3, 2, 1] = bad
    np.save(tmp_path / "floats.npy", floats)
    with pytest.raises(DataError, match="floats.npy: image 4 holds NaN or Inf values: fix or remove it"):
        load_images(str(tmp_path / "floats.npy"), 16, progress=False)


def test_a_truncated_zip_is_called_damaged(tmp_path):
    write_mixed_images(tmp_path / "faces")
    archive = zip_folder(tmp_path / "faces", tmp_path / "faces.zip")
    data = archive.read_bytes()
    for name in ("faces.zip", "faces.bin"):  # named .zip or not: a zip's first bytes say what it is
        (tmp_path / name).write_bytes(data[: len(data) // 2])
        with pytest.raises(DataError, match=f"{name}: a damaged or truncated zip .*: copy or download it again"):
            load_images(str(tmp_path / name), 16, progress=False)


def test_a_fifo_is_refused_instead_of_blocking(tmp_path):
    os.mkfifo(tmp_path / "faces.npy")
    with pytest.raises(DataError, match="faces.npy is not a regular file or a folder"):
        load_images(str(tmp_path / "faces.npy"), 16, progress=False)
    os.mkfifo(tmp_path / "in_a_folder.png")  # in a folder it is not an image file, so not read
    Image.fromarray(random_images(1, 16)[0]).save(tmp_path / "real.png")
    images, report = load_images(str(tmp_path), 16, progress=False)
    assert len(images) == 1 and report.found == 1


def test_more_images_than_memory_holds_is_refused_before_allocating(monkeypatch):
    monkeypatch.setattr("dcgan_tf.utils.memory.available", lambda: 2**30)
    with pytest.raises(NotEnoughMemory, match=r"builtin:100000000: 100000000 images at 16x16 needs about 71.5 GiB "
                                              r"of memory, 1.0 GiB is available: use --limit N"):
        load_images("builtin:100000000", 16, progress=False)


def test_oversized_zip_members_are_skipped_before_inflating(tmp_path, monkeypatch):
    write_mixed_images(tmp_path / "faces")
    archive = zip_folder(tmp_path / "faces", tmp_path / "faces.zip", "*.png", zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(archive, "a", zipfile.ZIP_DEFLATED) as z, z.open("huge.png", "w") as member:
        member.write(bytes(2**20))  # 1 MiB of zeros: a tiny member that inflates to more than the limit
    monkeypatch.setattr("dcgan_tf.data.sources.MAX_FILE_BYTES", 2**19)
    read = zipfile.ZipFile.read
    monkeypatch.setattr(zipfile.ZipFile, "read", lambda self, name, *a: read(self, name, *a) if name != "huge.png"
                        else pytest.fail("huge.png was inflated"))
    images, report = load_images(str(archive), 16, progress=False)
    assert len(images) == 3 and report.skipped == [("huge.png", "1 MiB is over the limit of 0 MiB for one image")]


def png_claiming(path, width, height):
    """A small PNG whose header is changed to claim width x height pixels."""
    buffer = io.BytesIO()
    Image.fromarray(random_images(1, 16)[0]).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    struct.pack_into(">II", data, 16, width, height)  # IHDR's fields, after the signature and chunk header
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))



def test_a_zip_member_is_checked_from_its_image_header_before_inflating(tmp_path, monkeypatch):
    """Issue 33, case 12: a member under the file-size cap (a PNG header claiming 92 megapixels,
    then 64 MiB of zeros that deflate to 64 KB) is refused after reading its first bytes, not inflated whole."""
    write_mixed_images(tmp_path / "faces")
    archive = zip_folder(tmp_path / "faces", tmp_path / "faces.zip", "*.png", zipfile.ZIP_DEFLATED)
    png_claiming(tmp_path / "huge.png", 10000, 9200)
    with zipfile.ZipFile(archive, "a", zipfile.ZIP_DEFLATED) as z, z.open("huge.png", "w") as member:
        member.write((tmp_path / "huge.png").read_bytes())
        for _ in range(64):
            member.write(bytes(2**20))
    inflated = {}
    read = zipfile.ZipExtFile.read

    def counted(self, n=-1):
        data = read(self, n)
        inflated[self.name] = inflated.get(self.name, 0) + len(data)
        return data
    monkeypatch.setattr(zipfile.ZipExtFile, "read", counted)
    images, report = load_images(str(archive), 16, progress=False)
    too_large = "10000x9200 is over the limit of 67 megapixels for one image"
    assert len(images) == 3 and report.skipped == [("huge.png", too_large)]
    assert inflated["huge.png"] < 2**20


def test_images_over_the_pixel_limit_are_skipped_before_decoding(tmp_path):
    png_claiming(tmp_path / "huge.png", 10000, 9200)  # 92 megapixels
    png_claiming(tmp_path / "sized.png", 8193, 8192)  # just over 2**26
    Image.fromarray(random_images(1, 16)[0]).save(tmp_path / "small.png")
    images, report = load_images(str(tmp_path), 16, progress=False)
    assert len(images) == 1
    assert report.skipped == [("huge.png", "10000x9200 is over the limit of 67 megapixels for one image"),
                              ("sized.png", "8193x8192 is over the limit of 67 megapixels for one image")]


@pytest.mark.parametrize("spec, named", [("builtin", True), ("builtin:64", True), ("celeba", True),
                                         ("celeba_10k.zip", False), ("faces/", False), ("builtins.npy", False)])
def test_builtin_and_celeba_are_named_sources_not_files(spec, named):
    assert is_named_source(spec) is named
