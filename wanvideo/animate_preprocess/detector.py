"""Person detection with the official YOLOv10 ONNX model: preprocessing, box decoding, NMS, person choice."""
from __future__ import annotations

import cv2
import numpy as np

from .onnx_runtime import onnx_model

DETECTOR_INPUT = 640
PERSON_CLASS = 0
SHAPE_RATIO = 0.4  # a person box whose longer side is under 0.4 of the largest one is skipped


def detector_input(frame: np.ndarray) -> np.ndarray:
    """RGB uint8 [H,W,3] -> float32 [1,3,640,640] in 0..1 (plain resize, no letterbox, as the official)."""
    resized = cv2.resize(frame, (DETECTOR_INPUT, DETECTOR_INPUT))
    return (np.transpose(resized / 255.0, (2, 0, 1)).astype(np.float32))[None]


def _end_to_end_boxes(rows: np.ndarray, x_factor: float, y_factor: float, conf: float):
    keep = rows[:, 4] >= conf
    scores, classes = rows[keep, 4], rows[keep, 5]
    boxes = rows[keep, :4].copy()
    boxes[:, [0, 2]] *= x_factor
    boxes[:, [1, 3]] *= y_factor
    boxes[:, 2] -= boxes[:, 0]
    boxes[:, 3] -= boxes[:, 1]
    return boxes.astype(np.int32), scores, classes


def _raw_boxes(rows: np.ndarray, x_factor: float, y_factor: float, conf: float):
    class_scores = rows[:, 4:]
    best = np.amax(class_scores, -1)
    keep = best >= conf
    classes = np.argmax(class_scores[keep], -1)
    cx, cy, w, h = (rows[keep, i:i + 1] for i in range(4))
    boxes = np.concatenate([(cx - w / 2) * x_factor, (cy - h / 2) * y_factor, w * x_factor, h * y_factor], -1)
    return boxes.astype(np.int32), best[keep], classes


def detector_postprocess(output: np.ndarray, frame_hw, conf: float = 0.05, iou: float = 0.5) -> np.ndarray:
    """Detector output -> float64 [M,6] boxes (x1, y1, x2, y2, score, class) in frame pixels, after NMS.

    Reads both the YOLOv10 end-to-end layout `[1,300,6]` and the raw `[1,84,8400]` layout. Corners are
    truncated to whole pixels and NMS is class-agnostic, as in the official code.
    """
    rows = np.squeeze(np.asarray(output))
    if rows.ndim == 1:
        rows = rows[None]
    if rows.shape[-1] != 6 and rows.shape[0] == 84:
        rows = rows.T
    x_factor = frame_hw[1] / DETECTOR_INPUT
    y_factor = frame_hw[0] / DETECTOR_INPUT
    decode = _end_to_end_boxes if rows.shape[-1] == 6 else _raw_boxes
    boxes, scores, classes = decode(rows, x_factor, y_factor, conf)
    keep = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), conf, iou)
    results = [[b[0], b[1], b[0] + b[2], b[1] + b[3], float(scores[i]), classes[i]]
               for i in np.asarray(keep, dtype=np.int64).reshape(-1) for b in (boxes[i].tolist(),)]
    return np.array(results, dtype=np.float64).reshape(-1, 6)


def select_person(boxes: np.ndarray, frame_hw, conf: float = 0.05) -> np.ndarray:
    """The one person to follow: the largest person box (by area) not much thinner than the largest.

    Returns float64 [5] (x1, y1, x2, y2, score), or the whole frame `[0, 0, W, H, -1]` when no person
    is found (the official fallback: the pose model then looks at the whole frame).
    """
    height, width = frame_hw[:2]
    fallback = np.array([0.0, 0.0, 1.0 * width, 1.0 * height, -1.0])
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 6)
    persons = boxes[(boxes[:, 5] == PERSON_CLASS) & (boxes[:, 4] > conf)]
    if not len(persons):
        return fallback
    sides = np.maximum(persons[:, 2] - persons[:, 0], persons[:, 3] - persons[:, 1])
    best, best_area, best_side = -1, height * width * -10, sides.max()
    for i, box in enumerate(persons):
        area = (box[2] - box[0]) * (box[3] - box[1])
        # The side limit is checked against the largest side at first, then against the chosen box's.
        if area > best_area and sides[i] >= best_side * SHAPE_RATIO:
            best, best_area, best_side = i, area, sides[i]
    return persons[best, :5].copy() if best >= 0 else fallback


def detect_person(frame: np.ndarray, detector_path: str) -> np.ndarray:
    """The followed person's box in an RGB uint8 frame (see `select_person`), with the detector at `detector_path`."""
    model = onnx_model(detector_path)
    output = model(detector_input(frame))
    return select_person(detector_postprocess(output, frame.shape[:2]), frame.shape[:2])
