"""Pictures in any PIL mode turned into the 8-bit RGB a viewer shows, or refused with the reason.

PIL's own `convert("RGB")` clips 16/32-bit grey to white and float images to black; here every mode
is scaled from its real range: 16-bit grey (I;16*) by 65535, 32-bit integer grey (I) by its bit
depth, float (F) from 0..1 or 0..255. Palette images go through RGBA (their transparency); alpha
is dropped, as ComfyUI's Load Image does. Size limits are checked from the header before decoding.
"""
from __future__ import annotations

import logging
import os
import warnings

import numpy as np

from .errors import InputError

log = logging.getLogger(__name__)

MAX_IMAGE_PIXELS = 8192 * 8192  # 64 MP: far above any useful portrait, far below a decompression bomb


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[..., None], 3, axis=-1)


def _scale_to_uint8(values: np.ndarray, top: float) -> np.ndarray:
    return np.clip(np.rint(values.astype(np.float64) * (255.0 / top)), 0, 255).astype(np.uint8)


def _float_grey(arr: np.ndarray, name: str) -> np.ndarray:
    if not np.isfinite(arr).all():
        raise InputError(f"{name}: the float image holds NaN or infinite values; save it as an 8/16-bit PNG")
    high = float(arr.max()) if arr.size else 0.0
    if high <= 1.0 + 1e-3:
        return _scale_to_uint8(arr, 1.0)
    if high <= 255.0 + 1e-3:
        log.warning("%s: float image with values up to %.4g read as 0..255", name, high)
        return _scale_to_uint8(arr, 255.0)
    log.warning("%s: float image with values up to %.4g scaled to its maximum", name, high)
    return _scale_to_uint8(arr, high)


def _int_grey(arr: np.ndarray, name: str) -> np.ndarray:
    high = int(arr.max()) if arr.size else 0
    if int(arr.min()) < 0:
        raise InputError(f"{name}: the 32-bit image holds negative values; save it as an 8/16-bit PNG")
    top = 255 if high <= 255 else 65535 if high <= 65535 else (1 << 32) - 1
    return _scale_to_uint8(arr, top)


def pil_to_rgb(img, name: str = "image") -> np.ndarray:
    """[H, W, 3] uint8 of a PIL image in any mode."""
    mode = img.mode
    if mode.startswith("I;16"):
        return _grey_to_rgb(_scale_to_uint8(np.asarray(img).astype(np.uint16), 65535.0))
    if mode == "I":
        return _grey_to_rgb(_int_grey(np.asarray(img), name))
    if mode == "F":
        return _grey_to_rgb(_float_grey(np.asarray(img, dtype=np.float32), name))
    if mode in ("P", "PA"):
        img = img.convert("RGBA")  # applies the palette's transparency before alpha is dropped
    try:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (ValueError, OSError) as exc:
        raise InputError(f"{name}: images in PIL mode {mode} cannot be converted to RGB ({exc}); "
                         "save it as an 8-bit RGB PNG or JPEG") from None


def check_pixels(width: int, height: int, name: str = "image") -> None:
    if width <= 0 or height <= 0:
        raise InputError(f"{name} has no pixels ({width}×{height})")
    if width * height > MAX_IMAGE_PIXELS:
        raise InputError(f"{name} is {width}×{height} ({width * height / 1e6:.0f} MP), above the limit of "
                         f"{MAX_IMAGE_PIXELS / 1e6:.0f} MP: scale it down first (the video is made at 480p or 720p)")


def read_image_file(path: str, name: str | None = None) -> np.ndarray:
    """[H, W, 3] uint8 of an image file (EXIF rotation applied), its size checked before it is decoded."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    name = name or os.path.basename(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies below
            with Image.open(path) as img:
                check_pixels(img.width, img.height, name)
                img = ImageOps.exif_transpose(img)
                return pil_to_rgb(img, name)
    except Image.DecompressionBombError as exc:
        raise InputError(f"{name}: {exc}; the limit here is {MAX_IMAGE_PIXELS / 1e6:.0f} MP: scale it down first") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InputError(f"{name}: not an image that can be read ({exc}); use a PNG, JPEG or WebP file") from None
