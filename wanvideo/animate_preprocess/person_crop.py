"""The pose model's input: the person box widened to 256x192 (rescale 1.25), cropped and normalised."""
from __future__ import annotations

import cv2
import numpy as np

POSE_INPUT_HW = (256, 192)
RESCALE = 1.25
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])


def box_center_scale(bbox, input_hw=POSE_INPUT_HW, rescale: float = RESCALE):
    """Centre (px) and scale (units of 200 px, [w, h]) of a box widened to the input's aspect ratio."""
    aspect = input_hw[0] / float(input_hw[1])
    center = np.array([(bbox[0] + bbox[2]) / 2.0, (bbox[1] + bbox[3]) / 2.0])
    size = max((bbox[2] - bbox[0]) * aspect, bbox[3] - bbox[1])
    return center, np.array([size / aspect, size]) / 200.0 * rescale


def _to_source(point, center, scale: float, res) -> np.ndarray:
    """Map a crop pixel (1-based) back to the source image, rounded as the official code (half to even)."""
    h = 200 * scale
    w = h / (res[0] / float(res[1]))
    t = np.zeros((3, 3))
    t[0, 0] = float(res[1]) / w
    t[1, 1] = float(res[0]) / h
    t[0, 2] = res[1] * (-float(center[0]) / w + .5)
    t[1, 2] = res[0] * (-float(center[1]) / h + .5)
    t[2, 2] = 1
    p = np.dot(np.linalg.inv(t), np.array([point[0] - 1, point[1] - 1, 1.0]))
    return np.array([round(p[0]), round(p[1])], dtype=int) + 1


def crop_box(image: np.ndarray, center, scale: float, res=POSE_INPUT_HW) -> np.ndarray:
    """Cut the square around `center` (zero outside the image, float32) and resize it to `res` (rows, cols)."""
    ul = _to_source([1, 1], center, scale, res) - 1
    br = _to_source([res[1] + 1, res[0] + 1], center, scale, res) - 1
    canvas = np.zeros([br[1] - ul[1], br[0] - ul[0]] + list(image.shape[2:]), dtype=np.float32)
    new_x = max(0, -ul[0]), min(br[0], image.shape[1]) - ul[0]
    new_y = max(0, -ul[1]), min(br[1], image.shape[0]) - ul[1]
    old_x = max(0, ul[0]), min(image.shape[1], br[0])
    old_y = max(0, ul[1]), min(image.shape[0], br[1])
    if new_x[1] > new_x[0] and new_y[1] > new_y[0]:
        canvas[new_y[0]:new_y[1], new_x[0]:new_x[1]] = image[old_y[0]:old_y[1], old_x[0]:old_x[1]]
    return cv2.resize(canvas, (res[1], res[0]))


def pose_crop(frame: np.ndarray, bbox):
    """RGB uint8 frame + person box [5] -> (crop float32 [3,256,192], center [2] px, scale [2] in 200 px).

    A missing or tiny box (score <= 0, or under 10 px) means the whole frame. The official pipeline hands
    the pose model the frame with red and blue swapped and still normalises with the RGB ImageNet
    statistics; the models were used that way, so the crop is made the same way.
    """
    image = np.ascontiguousarray(frame[..., ::-1])
    if bbox is None or bbox[-1] <= 0 or (bbox[2] - bbox[0]) < 10 or (bbox[3] - bbox[1]) < 10:
        bbox = np.array([0, 0, image.shape[1], image.shape[0]])
    center, scale = box_center_scale(bbox)
    crop = crop_box(image, center, max(scale))
    normalised = (crop / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return normalised.transpose(2, 0, 1).astype(np.float32), center, scale
