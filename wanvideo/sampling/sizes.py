"""Output size: the reference's aspect buckets, resize-to-cover + centre crop, and size checks."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import InputError

# The reference's size buckets (wan/utils/multitalk_utils.py ASPECT_RATIO_627 / ASPECT_RATIO_960):
# height/width ratio -> (height, width). "480p" is the infinitetalk-480 bucket set, "720p" infinitetalk-720.
ASPECT_BUCKETS = {
    "480p": {
        0.26: (320, 1216), 0.38: (384, 1024), 0.50: (448, 896), 0.67: (512, 768),
        0.82: (576, 704), 1.00: (640, 640), 1.22: (704, 576), 1.50: (768, 512),
        1.86: (832, 448), 2.00: (896, 448), 2.50: (960, 384), 2.83: (1088, 384),
        3.60: (1152, 320), 3.80: (1216, 320), 4.00: (1280, 320),
    },
    "720p": {
        0.22: (448, 2048), 0.29: (512, 1792), 0.36: (576, 1600), 0.45: (640, 1408),
        0.55: (704, 1280), 0.63: (768, 1216), 0.76: (832, 1088), 0.88: (896, 1024),
        1.00: (960, 960), 1.14: (1024, 896), 1.31: (1088, 832), 1.50: (1152, 768),
        1.58: (1216, 768), 1.82: (1280, 704), 1.91: (1344, 704), 2.20: (1408, 640),
        2.30: (1472, 640), 2.67: (1536, 576), 2.89: (1664, 576), 3.62: (1856, 512),
        3.75: (1920, 512),
    },
}
# Width and height must be multiples of this: 8x VAE compression times the DiT's 2x2 patches.
SIZE_MULTIPLE = 16


def bucket_size(src_height: int, src_width: int, bucket: str = "480p") -> tuple[int, int]:
    """(height, width) of the bucket whose aspect is closest to the source's (ties: the first listed)."""
    try:
        table = ASPECT_BUCKETS[bucket]
    except KeyError:
        raise InputError(f"unknown size bucket {bucket!r}; choose one of {sorted(ASPECT_BUCKETS)}") from None
    ratio = src_height / src_width
    best = sorted(table, key=lambda key: abs(key - ratio))[0]
    return table[best]


def resolve_size(width: int, height: int, src_height: int, src_width: int, bucket: str = "480p") -> tuple[int, int]:
    """(height, width) to generate at: both 0 = automatic bucket; otherwise checked multiples of 16."""
    width, height = int(width), int(height)
    if width == 0 and height == 0:
        return bucket_size(src_height, src_width, bucket)
    if width == 0 or height == 0:
        # one side given: keep the source aspect, round to the multiple
        if width == 0:
            width = max(SIZE_MULTIPLE, round(height * src_width / src_height / SIZE_MULTIPLE) * SIZE_MULTIPLE)
        else:
            height = max(SIZE_MULTIPLE, round(width * src_height / src_width / SIZE_MULTIPLE) * SIZE_MULTIPLE)
    for name, value in (("width", width), ("height", height)):
        if value < SIZE_MULTIPLE or value % SIZE_MULTIPLE:
            lower = max(SIZE_MULTIPLE, value // SIZE_MULTIPLE * SIZE_MULTIPLE)
            raise InputError(
                f"{name} {value} is not a multiple of {SIZE_MULTIPLE} (the VAE's 8x compression times the "
                f"model's 2x2 patches); use {lower} or {lower + SIZE_MULTIPLE}, or 0 for the automatic size"
            )
    return height, width


def _crop_box(height: int, width: int, target_h: int, target_w: int) -> tuple[int, int]:
    # torchvision center_crop's rounding
    return int(round((height - target_h) / 2.0)), int(round((width - target_w) / 2.0))


def cover_size(src_h: int, src_w: int, target_h: int, target_w: int) -> tuple[int, int]:
    scale = max(target_h / src_h, target_w / src_w)
    return math.ceil(scale * src_h), math.ceil(scale * src_w)


def resize_and_crop_image(image: torch.Tensor, target_h: int, target_w: int) -> torch.Tensor:
    """[C, H, W] float -> [C, target_h, target_w]: scale to cover, centre crop (bilinear, antialiased).

    The reference resizes with PIL bilinear; torch's antialiased bilinear is the same filter family.
    """
    _, h, w = image.shape
    if (h, w) != (target_h, target_w):
        rh, rw = cover_size(h, w, target_h, target_w)
        image = F.interpolate(image[None], size=(rh, rw), mode="bilinear", align_corners=False,
                              antialias=True)[0]
        top, left = _crop_box(rh, rw, target_h, target_w)
        image = image[:, top:top + target_h, left:left + target_w]
    return image


def resize_and_crop_masks(masks: torch.Tensor, target_h: int, target_w: int) -> torch.Tensor:
    """[N, H, W] -> [N, target_h, target_w]: nearest resize to cover, centre crop (as the reference)."""
    _, h, w = masks.shape
    rh, rw = cover_size(h, w, target_h, target_w)
    masks = F.interpolate(masks[None].float(), size=(rh, rw), mode="nearest")[0]
    top, left = _crop_box(rh, rw, target_h, target_w)
    return masks[:, top:top + target_h, left:left + target_w]
