"""Command line: a talking video with sound from a portrait (or a video) and speech, through the same
engine the ComfyUI nodes call.

    python -m wanvideo generate --image portrait.png --audio speech.wav --output talk.mp4

With no model options it runs an embedded tiny random-weight model set made on the fly: the picture is
noise, the sound and the timing are real (a check that everything works, in a minute on a CPU). Give
real weights with `--models-dir` (a ComfyUI `models/` folder) or one path per model.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from ..audio.settings import AudioSettings
from ..errors import WanVideoError
from ..model.parallel.settings import MultiGPUSettings
from ..model.settings import LoaderSettings, ParallelSettings, SpeedSettings
from ..options import add_argument, add_arguments
from ..outputs import is_user_fault, output_error
from ..sampling.animate_settings import AnimateSettings
from ..sampling.cache import CacheOptions
from ..sampling.guidance_settings import GuidanceOptions
from ..sampling.settings import SamplerSettings
from ..validation import check_command_line
from ..video.run_lock import RunLockSettings
from . import preprocess_job

EPILOG = """\
model files (real weights; any option not given is looked up in --models-dir):
  --model         Wan2.1 I2V 14B       models/diffusion_models/wan2.1_i2v_480p_14B_fp8_e4m3fn.safetensors
  --infinitetalk  InfiniteTalk         models/diffusion_models/Wan2_1-InfiniteTalk-Single_fp8_e4m3fn_scaled_KJ.safetensors
  --wav2vec       wav2vec2             models/wav2vec2/wav2vec2-chinese-base_fp16.safetensors (or a HF folder)
  --vae           Wan 2.1 VAE          models/vae/wan_2.1_vae.safetensors
  --clip-vision   CLIP ViT-H/14        models/clip_vision/clip_vision_h.safetensors
  --text-encoder  umt5-xxl             models/text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors
  --lora          e.g. the step-distillation LoRA (then --steps 4..8 --cfg 1 --audio-cfg 2..4)
  --model and --infinitetalk may also be GGUF files (wan2.1-i2v-14b-480p-Q8_0.gguf, ...Q4_K_M.gguf,
  Wan2_1-InfiniteTalk_Single_Q8.gguf): they stay quantised in memory, each layer dequantised as it runs

examples:
  python -m wanvideo generate --image face.png --audio speech.wav --output talk.mp4
  torchrun --nproc_per_node 4 -m wanvideo generate --image face.png --audio speech.wav --output talk.mp4 \\
      --models-dir ~/ComfyUI/models --sequence-parallel ulysses
  python -m wanvideo generate --image face.png --audio speech.wav --output talk.mp4 \\
      --models-dir ~/ComfyUI/models --lora ~/ComfyUI/models/loras/lightx2v_I2V_14B_480p_cfg_step_distill_rank64_bf16.safetensors \\
      --steps 6 --cfg 1 --audio-cfg 3
"""


def _add_generate(sub):
    p = sub.add_parser("generate", help="make a talking video with sound",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
                       description=__doc__.split("\n\n")[0])
    src = p.add_argument_group("inputs")
    what = src.add_mutually_exclusive_group(required=True)
    what.add_argument("--image", help="portrait (png/jpg/webp) that will talk")
    what.add_argument("--video", help="source video to re-voice (video-to-video dubbing)")
    src.add_argument("--audio", required=True, help="speech (wav/flac/mp3/m4a/... or a video's sound track)")
    src.add_argument("--audio-2", help="speech of a second person (two people in the picture)")
    add_argument(src, AudioSettings, "speaker_mode")
    src.add_argument("--output", required=True, help="the MP4 to write (H.264 + AAC)")
    src.add_argument("--prompt", default=None, help="what the video shows (default: a neutral talking-person "
                     "prompt); several prompts separated by '|' (\"a | b | c\"): prompt k for window k, the last for "
                     "the windows after it")
    src.add_argument("--negative-prompt", default=None, help="what to avoid (default: the reference's list)")
    d = p.add_argument_group("face-only dubbing (with --video; see docs/controls.md)")
    add_argument(d, SamplerSettings, "face_only")
    d.add_argument("--edit-mask", metavar="FILE", help="where the picture may change (white): an image (one mask for "
                   "every frame) or a video of masks (one per frame), the source video's size; the rest stays the "
                   "source's pixels")
    add_arguments(d, SamplerSettings, "face_margin", "mask_feather")
    d.add_argument("--detection-dir", help="--face-only: folder with yolov10m.onnx and the ViTPose-H ONNX file(s), "
                   "as for animate-preprocess (default: <models-dir>/detection, <models-dir>)")

    s = p.add_argument_group("sampling (defaults: the reference's, from wanvideo.sampling.SamplerSettings)")
    # steps/cfg/audio_cfg: None = decided at run time (the tiny embedded set and step-distillation LoRAs need other values)
    add_argument(s, SamplerSettings, "steps", default=None, help="denoising steps per window (default 40 as the "
                 "reference; 4 for the embedded set, 6 with a --lora)")
    add_argument(s, SamplerSettings, "cfg", default=None, help="text guidance (default 5 as the reference; 1 with a "
                 "step-distillation --lora)")
    add_argument(s, SamplerSettings, "audio_cfg", default=None, help="audio guidance (default 4 as the reference; 3 "
                 "with a --lora)")
    add_arguments(s, SamplerSettings, "shift", "scheduler", "seed", "width", "height")
    add_argument(s, SamplerSettings, "size_bucket", flag="--size")
    add_arguments(s, SamplerSettings, "frame_window", "motion_frames", "max_frames", "fps", "color_correction",
                  "vae_precision", "audio_scale")

    m = p.add_argument_group("models (none given: the embedded tiny random-weight set)")
    m.add_argument("--model", help="Wan2.1 I2V 14B weights (diffusion_models)")
    m.add_argument("--infinitetalk", help="InfiniteTalk weights (diffusion_models or model_patches); "
                   "'none' when the --model file already holds them")
    m.add_argument("--wav2vec", help="wav2vec2 file or Hugging Face folder (wav2vec2 / audio_encoders)")
    _add_model_options(m)

    _add_speed_options(p)

    g = p.add_argument_group("several GPUs (--parallel in one process; or torchrun with --sequence-parallel)")
    add_arguments(g, MultiGPUSettings)
    add_argument(g, ParallelSettings, "sequence_parallel")

    o = p.add_argument_group("other")
    o.add_argument("--work-dir", help="where finished windows are kept (default: <output>.parts/); "
                   "a rerun with the same inputs resumes there")
    o.add_argument("--keep-parts", action="store_true", help="keep the finished windows after the MP4 is written")
    add_argument(o, RunLockSettings, "wait_for_lock")
    o.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_model_options(m) -> None:
    """The model files both modes share, the device, and the loader's options (LoaderSettings)."""
    m.add_argument("--models-dir", help="a ComfyUI models/ folder to find the files below in")
    m.add_argument("--vae", help="Wan 2.1 VAE (vae)")
    m.add_argument("--clip-vision", help="CLIP ViT-H/14 image encoder (clip_vision)")
    m.add_argument("--text-encoder", help="umt5-xxl text encoder (text_encoders)")
    m.add_argument("--lora", action="append", default=[], metavar="FILE[:STRENGTH]",
                   help="LoRA to apply (repeatable), e.g. a step-distillation LoRA")
    m.add_argument("--device", default="auto", help="auto (cuda if present), cuda, cuda:1, cpu")
    add_argument(m, LoaderSettings, "precision", flag="--dtype")
    add_arguments(m, LoaderSettings, "quantization", "attention", "blocks_to_swap")


def _add_speed_options(p) -> None:
    """The speed options (guidance passes, APG, step cache, compile, fp8 matmul): the same for both commands."""
    speed = p.add_argument_group("speed (see docs/speed.md)")
    for settings_cls in (GuidanceOptions, CacheOptions, SpeedSettings):
        add_arguments(speed, settings_cls)


def _add_animate(sub):
    p = sub.add_parser("animate", help="WanAnimate: animate a character image with a driving clip, or replace its "
                       "person (Wan2.2-Animate-14B)",
                       description="Animate the character in --image with the motion of a driving clip (its pose "
                       "video and face crops), or put it into the clip in place of the person (add --background-video "
                       "and --mask-video). The MP4 has the pose video's frame count, frame rate and sound.")
    src = p.add_argument_group("inputs")
    src.add_argument("--image", required=True, help="the character (png/jpg/webp)")
    src.add_argument("--pose-video", help="the driving clip's rendered pose (skeleton) video (or --driving-video)")
    src.add_argument("--face-video", help="the driving person's face crops, one per frame (square)")
    src.add_argument("--background-video", help="replacement: the clip's background (person removed)")
    src.add_argument("--mask-video", help="replacement: the person mask video (white = person)")
    src.add_argument("--output", required=True, help="the MP4 to write (H.264 + AAC)")
    src.add_argument("--prompt", default=None, help="what the video shows (default: the official prompt)")
    src.add_argument("--negative-prompt", default=None, help="used when --cfg > 1")
    s = p.add_argument_group("sampling (defaults: the official generate.py's, from wanvideo.sampling.AnimateSettings)")
    # steps: None = decided at run time (the tiny embedded set and step-distillation LoRAs need fewer)
    add_argument(s, AnimateSettings, "steps", default=None, help=f"denoising steps per clip (default "
                 f"{AnimateSettings().steps} as the official code; 4 for the embedded set, 6 with a --lora)")
    add_arguments(s, AnimateSettings, "cfg", "shift", "scheduler", "seed", "width", "height", "clip_len",
                  "refert_frames", "max_frames")
    m = p.add_argument_group("models (none given: the embedded tiny random-weight set)")
    m.add_argument("--model", help="Wan2.2-Animate-14B weights (diffusion_models)")
    _add_model_options(m)
    _add_speed_options(p)
    o = p.add_argument_group("other")
    o.add_argument("--work-dir", help="where finished clips are kept (default: <output>.parts/)")
    o.add_argument("--keep-parts", action="store_true", help="keep the finished clips after the MP4 is written")
    add_argument(o, RunLockSettings, "wait_for_lock")
    o.add_argument("--quiet", action="store_true", help="no progress bars")
    preprocess_job.add_animate_route(p)


def _add_tiny(sub):
    p = sub.add_parser("write-tiny-models",
                       help="write the tiny random-weight model files in ComfyUI's models/ layout "
                            "(to try the pack's own loaders without downloading anything)")
    p.add_argument("models_dir", help="folder to write into (diffusion_models/, wav2vec2/ are created)")
    p.add_argument("--clip-dim", type=int, default=None, help="image feature width of the tiny video model "
                   "(1280 matches ComfyUI's CLIP ViT-H output)")
    p.add_argument("--text-dim", type=int, default=None, help="text feature width of the tiny video model")
    p.add_argument("--gguf", default=None, metavar="TYPE", choices=("Q8_0", "Q5_1", "Q5_0", "Q4_1", "Q4_0", "F16"),
                   help="also write the video model and the InfiniteTalk adapter as GGUF files of this type "
                        "(Q8_0, Q5_0/1, Q4_0/1, F16), as the GGUF repacks are published")


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m wanvideo", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_generate(sub)
    _add_animate(sub)
    preprocess_job.add_subcommand(sub)
    _add_tiny(sub)
    from .longcat_cli import add_longcat_parser

    add_longcat_parser(sub)
    return parser


def _is_out_of_memory(exc: BaseException) -> bool:
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    return (oom is not None and isinstance(exc, oom)) or "out of memory" in str(exc).lower()


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
                        format="%(message)s")
    try:
        check_command_line(args, parser)  # every option, before any file is read or model loaded
        if args.command == "write-tiny-models":
            from ..tiny.files import write_tiny_models

            names = write_tiny_models(args.models_dir, clip_dim=args.clip_dim, text_dim=args.text_dim, gguf=args.gguf)
            print(json.dumps(names))
            return 0
        if args.command == "animate-preprocess":
            out = preprocess_job.run_subcommand(args)
            print(f"wrote {out.frames} frames at {out.fps:g} fps: " + ", ".join(
                p for p in (out.pose, out.face, out.background, out.mask, out.character) if p))
            return 0
        if args.command == "longcat":
            from .longcat_cli import LongCatRequest, make_longcat_file

            request = LongCatRequest.from_args(args)
            result = make_longcat_file(request)
        elif args.command == "animate":
            from .animate_pipeline import AnimateRequest, make_animate_file

            if args.driving_video:
                preprocess_job.preprocess_for_animate(args)
            request = AnimateRequest.from_args(args)
            result = make_animate_file(request)
        else:
            from .multi_gpu import make_video_file_on_ranks, process_count
            from .pipeline import GenerateRequest, make_video_file

            request = GenerateRequest.from_args(args)
            if request.sequence_parallel or process_count() > 1:
                result = make_video_file_on_ranks(request)
                if result is None:  # a helper rank: rank 0 reports
                    return 0
            elif request.multi_gpu.parallel:
                from ..model.parallel.settings import release_executors

                try:
                    result = make_video_file(request)
                finally:
                    release_executors()  # the worker processes end with the command
            else:
                result = make_video_file(request)
        sound = "with sound" if getattr(result, "has_audio", True) else "WITHOUT sound"
        print(f"wrote {result.path}: {result.frames} frames, {result.seconds:.2f} s at {result.fps:g} fps, {sound}")
        if result.embedded:
            print("(embedded tiny random-weight models: the picture is noise; the sound and the timing are real. "
                  "Give real weights with --models-dir to make the real video.)")
        return 0
    except WanVideoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if not is_user_fault(exc):
            raise  # truly unexpected: keep the traceback for the bug report
        print(f"error: {output_error(exc, exc.filename or 'a file', 'use')}", file=sys.stderr)
        return 2
    except MemoryError:
        print("error: out of memory (RAM): use a smaller --width/--height or --max-frames, --blocks-to-swap, "
              "or close other programs", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        if not _is_out_of_memory(exc):
            raise
        print(f"error: out of GPU memory ({str(exc).splitlines()[0][:200]}): use --blocks-to-swap 20 (or more), "
              "--quantization fp8_e4m3fn, or a smaller --width/--height; finished windows are kept and the same "
              "command resumes", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        request = locals().get("request")
        work = None
        if request is not None:
            work = request.work_dir or os.path.abspath(request.output) + ".parts"
        kept = f"; finished windows are kept in {work} and the same command resumes there" \
            if work and os.path.isdir(work) else ""
        print(f"interrupted{kept}", file=sys.stderr)
        return 130
