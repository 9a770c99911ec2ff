"""LongCat-Video-Avatar output sizes: the official aspect buckets (height, width) keyed by height/width ratio.

The image-to-video stage snaps the image to the bucket whose ratio is nearest to the image's, then resizes it to
cover that size and centre-crops it (the official `get_condition_shape` with spatial factor 16).
"""
from __future__ import annotations

from ..errors import InputError

BUCKETS_480P = {
    "0.26": (320, 1216), "0.31": (352, 1120), "0.38": (384, 1024), "0.43": (416, 960), "0.52": (448, 864),
    "0.58": (480, 832), "0.67": (512, 768), "0.74": (544, 736), "0.86": (576, 672), "0.95": (608, 640), "1.05":
    (640, 608), "1.17": (672, 576), "1.29": (704, 544), "1.35": (736, 544), "1.50": (768, 512), "1.67": (800,
    480), "1.73": (832, 480), "2.00": (896, 448), "2.31": (960, 416), "2.58": (992, 384), "2.75": (1056, 384),
    "3.09": (1088, 352), "3.70": (1184, 320), "3.80": (1216, 320), "3.90": (1248, 320), "4.00": (1280, 320),
}
BUCKETS_720P = {
    "0.25": (480, 1920), "0.29": (512, 1792), "0.32": (544, 1696), "0.36": (576, 1600), "0.40": (608, 1504),
    "0.49": (672, 1376), "0.54": (704, 1312), "0.59": (736, 1248), "0.69": (800, 1152), "0.74": (832, 1120),
    "0.82": (864, 1056), "0.88": (896, 1024), "0.94": (928, 992), "1.00": (960, 960), "1.07": (992, 928),
    "1.14": (1024, 896), "1.22": (1056, 864), "1.31": (1088, 832), "1.35": (1120, 832), "1.44": (1152, 800),
    "1.70": (1248, 736), "2.00": (1344, 672), "2.05": (1376, 672), "2.47": (1504, 608), "2.53": (1536, 608),
    "2.83": (1632, 576), "3.06": (1664, 544), "3.12": (1696, 544), "3.62": (1856, 512), "3.93": (1888, 480),
    "4.00": (1920, 480),
}
BUCKETS = {"480p": BUCKETS_480P, "720p": BUCKETS_720P}


def longcat_size(src_h: int, src_w: int, resolution: str = "480p") -> tuple[int, int]:
    """(height, width) of the official bucket nearest to the image's aspect ratio."""
    if resolution not in BUCKETS:
        raise InputError(f"resolution must be one of {sorted(BUCKETS)}, got {resolution!r}")
    ratio = src_h / src_w
    key = min(BUCKETS[resolution], key=lambda k: abs(float(k) - ratio))
    return BUCKETS[resolution][key]
