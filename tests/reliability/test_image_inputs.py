"""Portraits in every PIL mode read as a viewer shows them (never white, never black), and huge images
refused from their header before anything is decoded."""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from wanvideo.errors import InputError
from wanvideo.images import MAX_IMAGE_PIXELS, read_image_file

H, W = 24, 32
RAMP = np.tile(np.linspace(0, 255, W, dtype=np.float64), (H, 1))  # every tone, dark to light


def _grey_check(rgb: np.ndarray, expected=RAMP, tol=2.0):
    assert rgb.dtype == np.uint8 and rgb.shape == (H, W, 3)
    assert np.abs(rgb[..., 0].astype(np.float64) - expected).max() <= tol
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()


def test_16_bit_grey_png_is_not_white(tmp_path):
    path = tmp_path / "g16.png"
    Image.fromarray(np.rint(RAMP * 257).astype(np.uint16)).save(path)
    assert Image.open(path).mode == "I;16"
    _grey_check(read_image_file(str(path)))


def test_32_bit_integer_grey_tiff(tmp_path):
    path = tmp_path / "g32.tif"
    Image.fromarray(np.rint(RAMP * 257).astype(np.int32)).save(path)
    assert Image.open(path).mode == "I"
    _grey_check(read_image_file(str(path)))


@pytest.mark.parametrize("scale", [1 / 255, 1.0], ids=["0..1", "0..255"])
def test_float_grey_tiff_is_not_black(tmp_path, scale):
    path = tmp_path / "f.tif"
    Image.fromarray((RAMP * scale).astype(np.float32)).save(path)
    assert Image.open(path).mode == "F"
    _grey_check(read_image_file(str(path)))


def test_float_image_with_nan_is_refused(tmp_path):
    path = tmp_path / "nan.tif"
    data = (RAMP / 255).astype(np.float32)
    data[0, 0] = np.nan
    Image.fromarray(data).save(path)
    with pytest.raises(InputError, match="NaN or infinite"):
        read_image_file(str(path))


def test_palette_with_transparency_and_la_and_one_bit(tmp_path):
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[:, : W // 2] = (200, 30, 30)
    rgb[:, W // 2:] = (20, 40, 220)
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(tmp_path / "p.png", transparency=0)
    got = read_image_file(str(tmp_path / "p.png"))
    assert got.shape == (H, W, 3) and abs(int(got[5, 2, 0]) - 200) < 8 and abs(int(got[5, -2, 2]) - 220) < 8
    la = Image.merge("LA", [Image.fromarray(RAMP.astype(np.uint8)), Image.new("L", (W, H), 128)])
    la.save(tmp_path / "la.png")
    _grey_check(read_image_file(str(tmp_path / "la.png")))
    Image.fromarray(RAMP > 127).save(tmp_path / "one.png")
    one = read_image_file(str(tmp_path / "one.png"))
    assert set(np.unique(one).tolist()) == {0, 255}


def test_cmyk_jpeg_reads_as_rgb(tmp_path):
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[...] = (30, 160, 220)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    got = read_image_file(str(tmp_path / "c.jpg"))
    assert np.abs(got.reshape(-1, 3).mean(0) - np.array([30, 160, 220])).max() < 12


def _png_header_only(path, width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [9000, 40000], ids=["above our limit", "decompression bomb"])
def test_huge_images_are_refused_from_the_header_with_the_limit(tmp_path, side):
    path = tmp_path / "huge.png"
    _png_header_only(path, side, side)
    with pytest.raises(InputError, match=f"limit (here )?(is|of) {MAX_IMAGE_PIXELS / 1e6:.0f} MP"):
        read_image_file(str(path))


def test_not_an_image(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(b"hello")
    with pytest.raises(InputError, match="not an image that can be read"):
        read_image_file(str(path))
