"""`python -m wanvideo animate-preprocess` and the --driving-video route of `animate`: a driving video file and the
character image in; the pose, face (and background, mask) videos written as MP4 files, frame by frame.

The driving video is decoded one frame at a time (it is read twice in replacement mode, once per pass) and every
output frame goes straight into its encoder, so a long clip needs no more memory than a short one.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..animate_preprocess import PreprocessSettings, find_preprocess_models, run_preprocess
from ..errors import InputError
from ..options import add_arguments
from .jobs import settings_from_args

log = logging.getLogger(__name__)

OUTPUT_NAMES = ("pose", "face", "background", "mask")
SETTINGS_ARGS = ("mode", "resolution_width", "resolution_height", "preprocess_fps", "retarget", "mask_kernel",
                 "mask_iterations", "mask_grid_w", "mask_grid_h")


class VideoFrames:
    """Frames of a video file by index, decoded in order and one at a time (seeking back restarts decoding)."""

    def __init__(self, path: str):
        import av

        self.path = path
        try:
            with av.open(path) as container:
                if not container.streams.video:
                    raise InputError(f"--driving-video {path}: the file has no video stream")
                stream = container.streams.video[0]
                self.fps = float(stream.average_rate or Fraction(25))
                self.count = sum(1 for packet in container.demux(stream) if packet.size)
        except av.error.FFmpegError as exc:
            raise InputError(f"--driving-video {path}: cannot read the video ({exc})") from None
        if self.count == 0:
            raise InputError(f"--driving-video {path}: the video has no frames")
        self._container = self._frames = None
        self._position, self._frame = -1, None

    def __len__(self) -> int:
        return self.count

    def _restart(self):
        import av

        self.close()
        self._container = av.open(self.path)
        self._frames = self._container.decode(self._container.streams.video[0])
        self._position, self._frame = -1, None

    def __getitem__(self, index: int) -> np.ndarray:
        index = int(index)
        if self._frames is None or index < self._position:
            self._restart()
        while self._position < index:
            try:
                self._frame = next(self._frames).to_ndarray(format="rgb24")
            except StopIteration:
                break  # fewer frames than packets: the last one stands in
            self._position += 1
        return self._frame

    def close(self):
        if self._container is not None:
            self._container.close()
            self._container = self._frames = None


class VideoFileSink:
    """One encoder thread per output video, fed through a short queue (a few frames in memory at most)."""

    def __init__(self, folder: str, fps: float, audio=None, sample_rate=None, audio_on: str = "pose"):
        self.folder, self.fps = folder, fps
        self.audio, self.sample_rate, self.audio_on = audio, sample_rate, audio_on
        self.queues: dict[str, queue.Queue] = {}
        self.threads: dict[str, threading.Thread] = {}
        self.errors: dict[str, BaseException] = {}
        self.paths: dict[str, str] = {}

    def _encode(self, name: str, frames: queue.Queue) -> None:
        from ..video import write_video

        def stream():
            while (frame := frames.get()) is not None:
                yield frame

        try:
            with_audio = name == self.audio_on and self.audio is not None
            write_video(stream(), self.paths[name], self.fps, audio=self.audio if with_audio else None,
                        sample_rate=self.sample_rate if with_audio else None)
        except BaseException as exc:  # noqa: BLE001 - reported by close()
            self.errors[name] = exc
            while frames.get() is not None:  # keep the producer from blocking
                pass

    def __call__(self, name: str, index: int, image: np.ndarray) -> None:
        if name not in self.queues:
            self.paths[name] = os.path.join(self.folder, f"{name}.mp4")
            self.queues[name] = queue.Queue(maxsize=4)
            self.threads[name] = threading.Thread(target=self._encode, args=(name, self.queues[name]), daemon=True)
            self.threads[name].start()
        self.queues[name].put(image)

    def close(self) -> dict[str, str]:
        for q in self.queues.values():
            q.put(None)
        for thread in self.threads.values():
            thread.join()
        if self.errors:
            name, exc = next(iter(self.errors.items()))
            raise exc
        return dict(self.paths)


@dataclass
class PreprocessOutputs:
    pose: str
    face: str
    background: str | None
    mask: str | None
    character: str
    frames: int
    fps: float


def _driving_sound(path: str):
    from .media import read_audio

    try:
        return read_audio(path, "--driving-video")
    except InputError as exc:
        log.info("no sound in the driving video (%s)", exc)
        return None, None


def _segmenter(sam2: str | None, settings: PreprocessSettings, device: str):
    if settings.mode != "replace" or not sam2:
        return None
    from ..animate_preprocess.segmentation import Sam2Segmenter

    return Sam2Segmenter.from_folder(sam2, device="cuda" if device == "auto" and _cuda() else
                                     ("cpu" if device == "auto" else device))


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def preprocess_files(image: str, driving_video: str, out_dir: str, settings: PreprocessSettings,
                     models_dirs: list[str], sam2: str | None = None, device: str = "auto",
                     quiet: bool = False) -> PreprocessOutputs:
    """Preprocess `driving_video` for the character in `image`; the videos go to `out_dir` (created)."""
    from PIL import Image

    from ..images import read_image_file
    from .media import need_file

    need_file(image, "character image", "--image")
    need_file(driving_video, "driving video", "--driving-video")
    models = find_preprocess_models(models_dirs)  # missing files named before any decoding
    character = read_image_file(image, f"--image {image}")
    frames = VideoFrames(driving_video)
    settings = PreprocessSettings(**{**settings.__dict__, "driving_fps": frames.fps}).validated()
    os.makedirs(out_dir, exist_ok=True)
    audio, rate = _driving_sound(driving_video)
    out_fps = frames.fps if settings.preprocess_fps == -1 else settings.preprocess_fps
    sink = VideoFileSink(out_dir, out_fps, audio, rate)
    progress = None if quiet else _log_progress
    try:
        result = run_preprocess(settings, frames, character, models, segmenter=_segmenter(sam2, settings, device),
                                sink=sink, progress=progress)
    finally:
        frames.close()
        paths = sink.close()
    character_path = os.path.join(out_dir, "character.png")
    Image.fromarray(result["character"]).save(character_path)
    return PreprocessOutputs(pose=paths["pose"], face=paths["face"], background=paths.get("background"),
                             mask=paths.get("mask"), character=character_path, frames=len(result["frame_indices"]),
                             fps=float(result["fps"]))


def _log_progress(stage: str, done: int, total: int) -> None:
    if done == total or done % 50 == 0:
        log.info("preprocess %s: %d/%d frames", stage, done, total)


def add_preprocess_options(parser, with_mode: bool = True) -> None:
    """The preprocessing options (from PreprocessSettings) and its model folders on a command's parser."""
    g = parser.add_argument_group("preprocessing (defaults: the official preprocess_data.py's)")
    add_arguments(g, PreprocessSettings, *(SETTINGS_ARGS if with_mode else SETTINGS_ARGS[1:]))
    g.add_argument("--detection-dir", help="folder with yolov10m.onnx and the ViTPose-H ONNX file(s) "
                   "(default: <models-dir>/detection, <models-dir>)")
    g.add_argument("--sam2", help="replace mode: a transformers SAM2 folder (e.g. sam2.1-hiera-large); "
                   "without it the masks are pose hulls")


def models_dirs_from_args(args) -> list[str]:
    return detection_folders(getattr(args, "detection_dir", None), getattr(args, "models_dir", None))


def detection_folders(detection_dir: str | None, models_dir: str | None) -> list[str]:
    """Where the detector and pose model files are looked for: --detection-dir, else <models-dir>/detection and
    <models-dir> (`animate-preprocess`, and `generate --face-only`)."""
    if detection_dir:
        return [detection_dir]
    base = models_dir or "models"
    return [os.path.join(base, "detection"), base]


def add_subcommand(sub) -> None:
    p = sub.add_parser("animate-preprocess", help="WanAnimate preprocessing: a driving video + the character -> "
                       "pose, face (and background, mask) videos",
                       description="Write the inputs of `animate` (pose.mp4, face.mp4, and in replace mode "
                       "background.mp4, mask.mp4, plus character.png) from any video of one person, as the official "
                       "preprocessing does.")
    p.add_argument("--image", required=True, help="the character (png/jpg/webp; alpha ignored)")
    p.add_argument("--driving-video", required=True, help="any video of one person")
    p.add_argument("--output-dir", required=True, help="folder for the videos (created)")
    p.add_argument("--models-dir", help="ComfyUI-style models folder (its detection/ is searched)")
    add_preprocess_options(p)
    p.add_argument("--device", default="auto", help="SAM2's device (auto, cpu, cuda, cuda:1)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def run_subcommand(args) -> PreprocessOutputs:
    settings = settings_from_args(PreprocessSettings, args)
    return preprocess_files(args.image, args.driving_video, args.output_dir, settings, models_dirs_from_args(args),
                            sam2=args.sam2, device=args.device, quiet=args.quiet)


def preprocess_for_animate(args) -> None:
    """`animate --driving-video`: preprocess into the work folder and point the pose/face/... arguments there."""
    if args.pose_video or args.face_video:
        raise InputError("give either --driving-video or --pose-video/--face-video, not both")
    from .animate_pipeline import AnimateRequest
    from .model_files import resolve_models

    request = AnimateRequest.from_args(args)
    if not request.models.embedded:  # missing model files reported before the preprocessing runs
        resolve_models(request.models, two_speakers=False, need_audio=False, model_kind="animate")
    mode = "replace" if args.replace else "animate"
    settings = PreprocessSettings(mode=mode, **{n: getattr(args, n) for n in SETTINGS_ARGS[1:]})
    work = args.work_dir or (os.path.abspath(args.output) + ".parts")
    out = preprocess_files(args.image, args.driving_video, os.path.join(work, "preprocess"), settings,
                           models_dirs_from_args(args), sam2=args.sam2, device=args.device, quiet=args.quiet)
    args.pose_video, args.face_video = out.pose, out.face
    args.background_video, args.mask_video = out.background, out.mask


def add_animate_route(parser) -> None:
    """The --driving-video route of `animate` (pose/face made here)."""
    g = parser.add_argument_group("from a raw driving video (instead of --pose-video/--face-video)")
    g.add_argument("--driving-video", help="any video of one person: preprocessed first, its sound kept")
    g.add_argument("--replace", action="store_true", help="with --driving-video: replacement mode (the character "
                   "takes the person's place in the clip)")
    add_preprocess_options(parser, with_mode=False)

