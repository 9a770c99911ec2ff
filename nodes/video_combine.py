"""Video Combine: frames (+ the speech) -> one MP4/WebM with sound, previewed on the node.

A thin layer over wanvideo.video.encode_video: picks the numbered file name in ComfyUI's output
(or temp) folder, adapts IMAGE / INFINITETALK_FRAMES / AUDIO, wires the host's progress bar and
Cancel button, embeds the workflow, and returns the preview entry the front end plays.
"""
from __future__ import annotations

import logging
import os

from ..wanvideo.errors import InputError
from ..wanvideo.options import node_input
from ..wanvideo.validation import check_options
from ..wanvideo.video import (
    EncodingInterrupted,
    encode_video,
    get_format,
    output_folder,
    reserve_path,
)
from ..wanvideo.video.settings import VideoSettings
from . import host

log = logging.getLogger(__name__)
_D = VideoSettings()  # the engine's defaults


def _audio_arrays(audio):
    """(waveform, sample_rate) from a ComfyUI AUDIO dict, or None when nothing is connected."""
    if audio is None:
        return None
    if not isinstance(audio, dict) or "waveform" not in audio or "sample_rate" not in audio:
        raise InputError("audio is not an AUDIO value (expected {'waveform': [1, C, T], 'sample_rate': int}): "
                         "connect a Load Audio node or another AUDIO output")
    return audio["waveform"], audio["sample_rate"]


def _metadata(prompt, extra_pnginfo) -> dict:
    """What ComfyUI's own savers embed: each extra_pnginfo entry (the UI workflow) and the API prompt."""
    meta = {}
    if isinstance(extra_pnginfo, dict):
        meta.update(extra_pnginfo)
    if prompt is not None:
        meta["prompt"] = prompt
    return meta


def _drop_empty(path: str) -> None:
    try:
        if os.path.getsize(path) == 0:
            os.remove(path)
    except OSError:
        pass


class InfiniteTalkVideoCombine:
    CATEGORY = "InfiniteTalk"
    FUNCTION = "combine"
    OUTPUT_NODE = True
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("path",)
    OUTPUT_TOOLTIPS = ("Full path of the saved video file.",)
    DESCRIPTION = ("Saves frames and the speech as ONE video file with sound (H.264 + AAC MP4 by default) that plays "
                   "in the browser and in this node's preview. Frames stream to the encoder one by one, so any "
                   "length fits in memory.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "frame_rate": node_input(VideoSettings, "frame_rate"),
                "filename_prefix": ("STRING", {
                    "default": "InfiniteTalk/InfiniteTalk",
                    "tooltip": "File name inside ComfyUI's output folder; a counter is added (InfiniteTalk_00001.mp4) "
                               "and nothing is overwritten. May contain sub-folders ('video/talk'); '..', absolute "
                               "paths and names starting with '-' are refused."}),
                "format": node_input(VideoSettings, "format"),
                "crf": node_input(VideoSettings, "crf"),
                "length_policy": node_input(VideoSettings, "length_policy"),
                "save_output": ("BOOLEAN", {
                    "default": True,
                    "tooltip": "On: save into ComfyUI's output folder. Off: save into the temp folder (a preview that "
                               "ComfyUI cleans up)."}),
                "save_metadata": ("BOOLEAN", {
                    "default": True,
                    "tooltip": "Embed the workflow and prompt in the file, so dropping the video onto ComfyUI "
                               "restores this graph (not done when ComfyUI runs with --disable-metadata)."}),
            },
            "optional": {
                "images": ("IMAGE", {
                    "tooltip": "Frames as an IMAGE batch. Connect this or `frames`, not both."}),
                "frames": ("INFINITETALK_FRAMES", {
                    "tooltip": "Frames straight from the InfiniteTalk sampler (kept on disk, streamed to the encoder, "
                               "never all in memory). Connect this or `images`, not both."}),
                "audio": ("AUDIO", {
                    "tooltip": "The speech to put in the video (e.g. from Load Audio). Any sample rate; more than two "
                               "channels are mixed down. Leave unconnected for a silent video."}),
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO", "unique_id": "UNIQUE_ID"},
        }

    def combine(self, frame_rate=_D.frame_rate, filename_prefix="InfiniteTalk/InfiniteTalk", format=_D.format,
                crf=_D.crf, length_policy=_D.length_policy, save_output=True, save_metadata=True,
                images=None, frames=None, audio=None, prompt=None, extra_pnginfo=None, unique_id=None):
        check_options(VideoSettings, dict(frame_rate=frame_rate, format=format, crf=crf, length_policy=length_policy))
        if images is None and frames is None:
            raise InputError("Video Combine has no frames: connect `images` (IMAGE) or `frames` (INFINITETALK_FRAMES)")
        if images is not None and frames is not None:
            raise InputError("Video Combine got both `images` and `frames`: disconnect one of them")
        fmt = get_format(format)
        source = images if images is not None else frames
        fps = frame_rate
        if frames is not None:
            fps = float(getattr(frames, "fps", frame_rate) or frame_rate)
            if abs(fps - float(frame_rate)) > 1e-6:
                log.info("Video Combine: using the frames' own rate %.3g fps (frame_rate %.3g ignored)", fps, frame_rate)
        sound = _audio_arrays(audio)
        metadata = _metadata(prompt, extra_pnginfo) if save_metadata and not host.metadata_disabled() else None

        base = host.output_directory() if save_output else host.temp_directory()
        folder, stem, subfolder = output_folder(base, filename_prefix)
        path = reserve_path(folder, stem, fmt.extension)

        total = len(source) if hasattr(source, "__len__") else None
        bar = host.progress_bar(total or 1)

        def progress(done, count):
            bar.update_absolute(done, count or done)

        try:
            result = encode_video(
                source, path, fps,
                audio=sound[0] if sound else None, sample_rate=sound[1] if sound else None,
                format=fmt.name, crf=crf, length_policy=length_policy, metadata=metadata,
                progress=progress, interrupt=host.interrupt_requested, temp_dir=host.temp_directory(),
            )
        except EncodingInterrupted:
            # The frames so far are in a playable file; let the host show "interrupted", not an error.
            host.raise_if_interrupted()
            raise
        except BaseException:
            _drop_empty(path)  # our reserved name, if nothing was written into it
            raise

        kind = "output" if save_output else "temp"
        entry = {"filename": os.path.basename(result.path), "subfolder": subfolder, "type": kind}
        details = dict(entry, format=fmt.mime, frame_rate=result.fps, frames=result.frames,
                       duration=round(result.duration, 3), width=result.width, height=result.height,
                       has_audio=result.has_audio, writer=result.writer, browser_playable=result.browser_playable,
                       notes=list(result.notes))
        ui = {
            # What the stock front end plays (the shape of ComfyUI's own SaveVideo / SaveWEBM preview).
            "images": [entry],
            "animated": (True,),
            # Details for this pack's player (js/video_combine_preview.js).
            "infinitetalk_video": [details],
        }
        return {"ui": ui, "result": (result.path,)}


NODE_CLASS_MAPPINGS = {"InfiniteTalkVideoCombine": InfiniteTalkVideoCombine}
NODE_DISPLAY_NAME_MAPPINGS = {"InfiniteTalkVideoCombine": "InfiniteTalk Video Combine (with audio)"}
