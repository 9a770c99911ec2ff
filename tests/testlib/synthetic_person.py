"""Synthetic driving clips: a drawn figure on a plain background that the stand-in detector finds."""
import cv2
import numpy as np


def person_frame(t: int, height: int = 208, width: int = 120, present: bool = True) -> np.ndarray:
    frame = np.full((height, width, 3), 128, np.uint8)
    if not present:
        return frame
    cx = width // 2 + int(6 * np.sin(t / 4))
    cv2.circle(frame, (cx, height // 5), height // 14, (230, 190, 160), -1)                   # head
    cv2.rectangle(frame, (cx - width // 7, height // 4), (cx + width // 7, height * 3 // 5), (40, 60, 200), -1)
    cv2.line(frame, (cx - width // 10, height * 3 // 5), (cx - width // 8, height * 9 // 10), (30, 30, 30), 6)
    cv2.line(frame, (cx + width // 10, height * 3 // 5), (cx + width // 8, height * 9 // 10), (30, 30, 30), 6)
    return frame


def person_clip(n: int, **kwargs) -> np.ndarray:
    return np.stack([person_frame(t, **kwargs) for t in range(n)])
