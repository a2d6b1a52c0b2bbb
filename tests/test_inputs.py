"""Discovery and image loading: each awkward file is created here and gets a defined outcome."""

from __future__ import annotations

import os
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from asl_eval.errors import InputError, UnreadableImage
from asl_eval.inputs import (
    BROKEN_LINK,
    CORRUPT,
    EXCLUSION_REASONS,
    LINK_OUTSIDE,
    NOT_AN_IMAGE,
    TOO_LARGE,
    TRUNCATED,
    UNSUPPORTED_MODE,
    ZERO_BYTE,
    discover_images,
    load_rgb,
    path_under,
)

# -- writers -------------------------------------------------------------------------------


def write_png16(path: Path, pixels: np.ndarray, color_type: int) -> Path:
    """Write a 16-bit PNG by hand (Pillow cannot write 16-bit RGB): color type 0 grey,
    2 RGB, 4 grey+alpha, 6 RGBA; ``pixels`` has shape (h, w) or (h, w, channels)."""
    height, width = pixels.shape[:2]
    rows = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    return path


def write_truncated_jpeg(path: Path) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path, quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def rgb(image: Image.Image) -> np.ndarray:
    assert image.mode == "RGB"
    return np.asarray(image, dtype=np.int16)


def reason_of(path: Path, **kwargs: object) -> str:
    with pytest.raises(UnreadableImage) as caught:
        load_rgb(path, **kwargs)  # type: ignore[arg-type]
    assert caught.value.path == path
    assert caught.value.reason in EXCLUSION_REASONS
    return caught.value.reason


# -- discovery -----------------------------------------------------------------------------


def test_discovery_is_recursive_case_insensitive_and_skips_hidden(tmp_path: Path) -> None:
    names = ["a.JPG", "b.Png", "c.TIFF", "d.webp", "e.bmp", "f.gif", "g.jpeg", "h.tif"]
    for i, name in enumerate(names):
        folder = tmp_path / "A" / ("deep" * (i % 3))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"x")
    (tmp_path / "A" / ".hidden.jpg").write_bytes(b"x")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "z.jpg").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "A" / "photo.jpg.bak").write_bytes(b"x")

    found = discover_images(tmp_path)

    assert sorted(p.name for p in found.images) == sorted(names)
    assert found.root == tmp_path
    assert list(found.images) == sorted(found.images, key=str)
    assert found.skipped == {"hidden": 2, "not an image extension": 2}
    assert found.entries == ()
    assert found.n_found == len(names)


def test_symlink_loops_end_and_each_folder_is_walked_once(tmp_path: Path) -> None:
    (tmp_path / "A").mkdir()
    (tmp_path / "A" / "one.png").write_bytes(b"x")
    os.symlink(tmp_path, tmp_path / "A" / "up")  # A/up -> root: a loop
    os.symlink(tmp_path / "A", tmp_path / "again")  # a second way into A
    result: list[object] = []
    walker = threading.Thread(target=lambda: result.append(discover_images(tmp_path)))
    walker.start()
    walker.join(timeout=60)
    assert not walker.is_alive(), "discovery did not finish on a symlink loop"
    (found,) = result
    assert [p.name for p in found.images] == ["one.png"]  # type: ignore[attr-defined]
    assert found.skipped["symlink loop or repeat"] == 2  # type: ignore[attr-defined]


def test_folder_named_like_an_image_is_walked_not_loaded(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").mkdir()
    (tmp_path / "x.jpg").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "x.jpg" / "inside.png")
    found = discover_images(tmp_path)
    assert found.images == (tmp_path / "x.jpg" / "inside.png",)


def test_broken_symlink_is_found_and_excluded(tmp_path: Path) -> None:
    Image.new("RGB", (8, 8)).save(tmp_path / "ok.png")
    os.symlink(tmp_path / "gone.png", tmp_path / "dangling.png")
    found = discover_images(tmp_path)
    assert [p.name for p in found.images] == ["ok.png"]
    assert [(Path(e.path).name, e.status, e.reason) for e in found.entries] == [
        ("dangling.png", "excluded", BROKEN_LINK)
    ]
    assert found.n_found == 2
    assert reason_of(tmp_path / "dangling.png") == BROKEN_LINK


def _linked_folder(tmp_path: Path) -> Path:
    """A test folder with links inside it and out of it; returns the folder.

    Outside: ``elsewhere/secret.png``, ``elsewhere/notes.txt`` and the folder
    ``elsewhere/album`` with one photo. Inside ``test``: ``A/own.png`` (a real file),
    ``A/same.png`` and ``B`` (links that stay inside), ``A/away.png``, ``A/away.txt``,
    ``A/album`` (links out), and ``A/hop.png`` (a link inside to a link out).
    """
    elsewhere, root = tmp_path / "elsewhere", tmp_path / "test"
    (elsewhere / "album").mkdir(parents=True)
    Image.new("RGB", (8, 8), "red").save(elsewhere / "secret.png")
    Image.new("RGB", (8, 8), "blue").save(elsewhere / "album" / "face.png")
    (elsewhere / "notes.txt").write_text("private")
    (root / "A").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(root / "A" / "own.png")
    os.symlink(root / "A" / "own.png", root / "A" / "same.png")
    os.symlink(root / "A", root / "B")
    os.symlink(elsewhere / "secret.png", root / "A" / "away.png")
    os.symlink(elsewhere / "notes.txt", root / "A" / "away.txt")
    os.symlink(elsewhere / "album", root / "A" / "album")
    os.symlink(root / "A" / "away.png", root / "A" / "hop.png")
    return root


def test_links_out_of_the_folder_are_recorded_not_followed(tmp_path: Path) -> None:
    root = _linked_folder(tmp_path)
    found = discover_images(root)
    assert sorted(p.relative_to(root).as_posix() for p in found.images) == [
        "A/own.png",
        "A/same.png",
    ]
    assert [
        (Path(e.path).relative_to(root).as_posix(), e.status, e.reason) for e in found.entries
    ] == [
        ("A/album", "excluded", LINK_OUTSIDE),
        ("A/away.png", "excluded", LINK_OUTSIDE),
        ("A/hop.png", "excluded", LINK_OUTSIDE),
    ]
    assert found.n_found == 5  # every image counted: 2 to evaluate, 3 excluded with a reason
    assert found.skipped["not an image extension"] == 1  # away.txt: not an input
    assert found.skipped["symlink loop or repeat"] == 1  # B is A again
    assert LINK_OUTSIDE in EXCLUSION_REASONS
    assert not any("elsewhere" in str(p.resolve()) for p in found.images)


def test_follow_links_walks_out_of_the_folder(tmp_path: Path) -> None:
    root = _linked_folder(tmp_path)
    found = discover_images(root, follow_links=True)
    assert sorted(p.relative_to(root).as_posix() for p in found.images) == [
        "A/album/face.png",
        "A/away.png",
        "A/hop.png",
        "A/own.png",
        "A/same.png",
    ]
    assert found.entries == ()


def test_a_linked_root_is_taken_as_given(tmp_path: Path) -> None:
    root = _linked_folder(tmp_path)
    os.symlink(root, tmp_path / "shortcut")
    found = discover_images(tmp_path / "shortcut")
    assert sorted(p.name for p in found.images) == ["own.png", "same.png"]
    assert len(found.entries) == 3


def test_single_image_file_is_its_own_input(tmp_path: Path) -> None:
    Image.new("RGB", (8, 8)).save(tmp_path / "one.png")
    found = discover_images(tmp_path / "one.png")
    assert found.root == tmp_path
    assert found.images == (tmp_path / "one.png",)


def test_missing_path_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nowhere does not exist\. Pass a folder"):
        discover_images(tmp_path / "nowhere")


def test_empty_folder_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"is empty; looked for \.bmp, \.gif"):
        discover_images(tmp_path)


def test_folder_without_images_says_what_it_skipped(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no images here")
    (tmp_path / ".DS_Store").write_bytes(b"x")
    with pytest.raises(
        InputError, match=r"holds no image files \(1 skipped as hidden, 1 skipped as not an image"
    ):
        discover_images(tmp_path)


def test_non_image_file_as_root_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("path,label\n")
    with pytest.raises(InputError, match="is not an image file or a folder of images"):
        discover_images(tmp_path / "labels.csv")


def test_awkward_file_names_are_found_and_loaded(tmp_path: Path) -> None:
    names = ["with space.png", 'quote\'s "double".png', "a<b&c>.png", "Ñandú é 手.png"]
    for name in names:
        Image.new("RGB", (4, 4), (10, 20, 30)).save(tmp_path / name)
    found = discover_images(tmp_path)
    assert sorted(p.name for p in found.images) == sorted(names)
    for path in found.images:
        assert rgb(load_rgb(path))[0, 0].tolist() == [10, 20, 30]


# -- loading: excluded files ---------------------------------------------------------------


def test_zero_byte_file(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert reason_of(tmp_path / "empty.jpg") == ZERO_BYTE


def test_truncated_jpeg(tmp_path: Path) -> None:
    path = write_truncated_jpeg(tmp_path / "cut.jpg")
    assert reason_of(path) == TRUNCATED


def test_text_file_named_jpg(tmp_path: Path) -> None:
    (tmp_path / "notes.jpg").write_text("this is not a photograph\n")
    assert reason_of(tmp_path / "notes.jpg") == NOT_AN_IMAGE


def test_corrupt_png_data(tmp_path: Path) -> None:
    path = write_png16(tmp_path / "bad.png", np.zeros((8, 8), dtype=np.uint16), color_type=0)
    data = bytearray(path.read_bytes())
    start = data.index(b"IDAT") + 4
    data[start : start + 6] = b"\xff" * 6  # garbage where the zlib stream starts
    path.write_bytes(bytes(data))
    assert reason_of(path) == CORRUPT


def test_float_tiff_is_an_unsupported_pixel_format(tmp_path: Path) -> None:
    Image.new("F", (4, 4), 0.5).save(tmp_path / "float.tif")
    assert reason_of(tmp_path / "float.tif") == UNSUPPORTED_MODE


def test_decompression_bomb_between_one_and_two_times_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Image.new("RGB", (40, 40)).save(tmp_path / "big.png")  # 1600 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    # Pillow would only warn here (it raises above 2x the limit); asl-eval excludes.
    assert reason_of(tmp_path / "big.png") == TOO_LARGE


def test_decompression_bomb_above_twice_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Image.new("RGB", (100, 100)).save(tmp_path / "bomb.png")  # 10,000 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(UnreadableImage, match=r"exceeds the decompression-bomb limit"):
        load_rgb(tmp_path / "bomb.png")


def test_max_pixels_parameter(tmp_path: Path) -> None:
    Image.new("RGB", (20, 10)).save(tmp_path / "wide.png")
    assert reason_of(tmp_path / "wide.png", max_pixels=199) == TOO_LARGE
    assert load_rgb(tmp_path / "wide.png", max_pixels=200).size == (20, 10)


# -- loading: converted files --------------------------------------------------------------


def test_rgba_png_is_composited_on_white(tmp_path: Path) -> None:
    pixels = np.zeros((2, 3, 4), dtype=np.uint8)
    pixels[0, 0] = (255, 0, 0, 128)  # half-transparent red
    pixels[0, 1] = (0, 0, 255, 0)  # fully transparent blue
    pixels[0, 2] = (0, 200, 0, 255)  # opaque green
    Image.fromarray(pixels, mode="RGBA").save(tmp_path / "alpha.png")
    alpha = pixels[..., 3:4] / 255
    expected = np.rint(pixels[..., :3] * alpha + 255 * (1 - alpha))

    out = rgb(load_rgb(tmp_path / "alpha.png"))

    assert np.abs(out - expected).max() <= 1
    assert out[0, 1].tolist() == [255, 255, 255]
    black = rgb(load_rgb(tmp_path / "alpha.png", background=(0, 0, 0)))
    assert black[0, 1].tolist() == [0, 0, 0]
    assert np.abs(black[0, 0] - [128, 0, 0]).max() <= 1


def test_cmyk_jpeg(tmp_path: Path) -> None:
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=95)
    with Image.open(tmp_path / "cmyk.jpg") as raw:
        assert raw.mode == "CMYK"
        cmyk = np.asarray(raw, dtype=np.float64)
    # independent naive conversion: R = (255 - C) * (255 - K) / 255, ...
    expected = (255 - cmyk[..., :3]) * (255 - cmyk[..., 3:4]) / 255
    out = rgb(load_rgb(tmp_path / "cmyk.jpg"))
    assert np.abs(out - expected).max() <= 1
    assert np.abs(out[8, 8] - [255, 0, 0]).max() <= 8


def test_16_bit_greyscale_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 257, 32768, 65535], [1000, 20000, 40000, 65000]], dtype=np.uint16)
    path = write_png16(tmp_path / "deep.png", values, color_type=0)
    with Image.open(path) as raw:
        assert raw.mode.startswith("I")  # Pillow reads it as 16-bit, not 8-bit

    out = rgb(load_rgb(path))

    expected = np.rint(values.astype(np.float64) * 255 / 65535)
    assert np.array_equal(out[..., 0], expected)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    assert out[0, 2, 0] == 128  # mid-grey stays mid-grey; clipping would give 255


def test_16_bit_rgb_png(tmp_path: Path) -> None:
    pixels = np.zeros((3, 3, 3), dtype=np.uint16)
    pixels[..., 0], pixels[..., 1], pixels[..., 2] = 65535, 32896, 771
    path = write_png16(tmp_path / "deep_rgb.png", pixels, color_type=2)
    out = rgb(load_rgb(path))
    assert np.abs(out - pixels / 257).max() <= 1


def test_16_bit_grey_with_alpha_png(tmp_path: Path) -> None:
    pixels = np.zeros((2, 2, 2), dtype=np.uint16)
    pixels[..., 0], pixels[..., 1] = 40000, 65535
    pixels[1, 1, 1] = 0  # one transparent pixel
    out = rgb(load_rgb(write_png16(tmp_path / "la16.png", pixels, color_type=4)))
    assert np.abs(out[0, 0] - 40000 / 257).max() <= 1
    assert out[1, 1].tolist() == [255, 255, 255]


def test_greyscale_and_bilevel_are_replicated(tmp_path: Path) -> None:
    grey = np.arange(16, dtype=np.uint8).reshape(4, 4) * 16
    Image.fromarray(grey, mode="L").save(tmp_path / "grey.png")
    out = rgb(load_rgb(tmp_path / "grey.png"))
    assert all(np.array_equal(out[..., c], grey) for c in range(3))

    bits = Image.new("1", (4, 4), 0)
    bits.putpixel((1, 1), 1)
    bits.save(tmp_path / "bits.png")
    out = rgb(load_rgb(tmp_path / "bits.png"))
    assert out[1, 1].tolist() == [255, 255, 255] and out[0, 0].tolist() == [0, 0, 0]


def test_palette_gif_with_and_without_transparency(tmp_path: Path) -> None:
    image = Image.new("P", (4, 4), 0)
    image.putpalette([200, 10, 10, 10, 10, 200] + [0] * 762)
    image.putpixel((0, 0), 1)
    image.save(tmp_path / "plain.gif")
    image.save(tmp_path / "clear.gif", transparency=1)

    plain = rgb(load_rgb(tmp_path / "plain.gif"))
    assert plain[0, 0].tolist() == [10, 10, 200] and plain[3, 3].tolist() == [200, 10, 10]
    clear = rgb(load_rgb(tmp_path / "clear.gif"))
    assert clear[0, 0].tolist() == [255, 255, 255] and clear[3, 3].tolist() == [200, 10, 10]


def test_animated_gif_uses_the_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (4, 4), colour) for colour in [(255, 0, 0), (0, 0, 255)]]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    out = rgb(load_rgb(tmp_path / "anim.gif"))
    assert out[0, 0, 0] > 200 and out[0, 0, 2] < 50


@pytest.mark.parametrize("suffix", [".webp", ".bmp", ".tiff", ".JPEG"])
def test_other_formats_load_as_rgb(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"img{suffix}"
    kwargs = {"lossless": True} if suffix == ".webp" else {}
    Image.new("RGB", (8, 8), (30, 60, 90)).save(path, **kwargs)
    out = rgb(load_rgb(path))
    assert out.shape == (8, 8, 3) and out.dtype == np.int16
    assert np.abs(out[4, 4] - [30, 60, 90]).max() <= 3


def test_loaded_image_is_detached_from_the_file(tmp_path: Path) -> None:
    Image.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / "a.png")
    image = load_rgb(tmp_path / "a.png")
    (tmp_path / "a.png").unlink()
    assert image.getpixel((0, 0)) == (1, 2, 3)


def test_path_under_as_given_through_a_link_and_outside(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    image = tmp_path / "data" / "train" / "A" / "A1.jpg"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "data")
    assert path_under(image, tmp_path / "data") == "train/A/A1.jpg"
    # the root named through a symbolic link, the file by its real path
    assert path_under(image, tmp_path / "link" / "train") == "A/A1.jpg"
    # a relative root against an absolute path
    monkeypatch.chdir(tmp_path)
    assert path_under(image, "data/train") == "A/A1.jpg"
    assert path_under(image, tmp_path / "other") is None
    assert path_under(tmp_path / "data", image) is None
