"""The example graphs written by `scripts/examples/build_examples.py` (see there).

Model file names are those of the common repacks (Comfy-Org, Kijai); the recommended settings are the
step-distillation LoRA ones (6 steps, cfg 1, audio_cfg 3): see docs/sampler.md, "Recommended settings".
"""
from example_models import MODELS, NEGATIVE_PROMPT, models_note

WAN = "wan2.1_i2v_480p_14B_fp8_e4m3fn.safetensors"
IT_SINGLE = "Wan2_1-InfiniteTalk-Single_fp8_e4m3fn_scaled_KJ.safetensors"
IT_MULTI = "Wan2_1-InfiniteTalk-Multi_fp8_e4m3fn_scaled_KJ.safetensors"
UMT5 = "umt5_xxl_fp8_e4m3fn_scaled.safetensors"
CLIP_H = "clip_vision_h.safetensors"
VAE = "wan_2.1_vae.safetensors"
WAV2VEC = "wav2vec2-chinese-base_fp16.safetensors"
LORA = "lightx2v_I2V_14B_480p_cfg_step_distill_rank64_bf16.safetensors"
ANIMATE = "Wan2_2-Animate-14B_fp8_e4m3fn_scaled_KJ.safetensors"
RELIGHT = "WanAnimate_relight_lora_fp16.safetensors"
PREPROCESS_FILES = ["yolov10m.onnx", "vitpose_h_wholebody_model.onnx", "vitpose_h_wholebody_data.bin"]

assert all(name in MODELS for name in (WAN, IT_SINGLE, IT_MULTI, UMT5, CLIP_H, VAE, WAV2VEC, LORA, ANIMATE, RELIGHT))

SETTINGS_NOTE = """## Settings
- **Step-distillation LoRA** (lightx2v, in this workflow): `steps` 4–8, `cfg` 1, `audio_cfg` 2–4.
- **Without the LoRA** (bypass the LoRA node with Ctrl+B): `steps` 40, `cfg` 5, `audio_cfg` 4 (the reference).
- `width`/`height` 0 = the reference's 480p size closest to the image (e.g. 448×896 for a portrait).
- Any length: the sampler works window by window (81 frames, 9 carried over) and keeps finished windows
  on disk; a rerun after a crash or Cancel resumes.
- Out of VRAM: raise `blocks_to_swap` in the model loader (10–20 for 16 GB, 25–40 for 12 GB)."""


# The columns, left to right: notes, loaders, inputs and prompts, sampler, output. A node placed at
# (column, None) goes below the previous node of its column (see Graph in build_examples.py).
NOTES, LOADERS, INPUTS, SAMPLER, OUTPUT = -480, 0, 420, 880, 1290


def _loaders(g, infinitetalk, x=LOADERS):
    """Model loader (+ LoRA), text encoder, CLIP vision, VAE: the left column."""
    lora = g.add("InfiniteTalkLoraSelect", (x, None), {"lora": LORA, "strength": 1.0},
                 title="LoRA: step distillation (lightx2v)", size=(360, 0))
    loader = g.add("InfiniteTalkModelLoader", (x, None),
                   {"model": WAN, "infinitetalk": infinitetalk, "precision": "bf16", "quantization": "keep_fp8",
                    "blocks_to_swap": 0, "attention": "sdpa"}, size=(360, 0))
    g.link(lora, "lora", loader, "lora")
    clip = g.add("CLIPLoader", (x, None), {"clip_name": UMT5, "type": "wan", "device": "default"}, size=(360, 0))
    vision = g.add("CLIPVisionLoader", (x, None), {"clip_name": CLIP_H}, size=(360, 0))
    vae = g.add("VAELoader", (x, None), {"vae_name": VAE}, size=(360, 0))
    return loader, clip, vision, vae


def _wav2vec(g, x=LOADERS):
    return g.add("InfiniteTalkWav2VecLoader", (x, None), {"model": WAV2VEC, "precision": "fp32", "device": "main"},
                 size=(360, 0))


def _prompts(g, clip, text, x=INPUTS):
    pos = g.add("CLIPTextEncode", (x, None), {"text": text}, title="Prompt", size=(400, 150), color=("#232", "#353"))
    neg = g.add("CLIPTextEncode", (x, None), {"text": NEGATIVE_PROMPT}, title="Negative prompt", size=(400, 150),
                color=("#322", "#533"))
    g.link(clip, "CLIP", pos, "clip")
    g.link(clip, "CLIP", neg, "clip")
    return pos, neg


def _sampler(g, x=SAMPLER, **widgets):
    values = {"width": 0, "height": 0, "size_bucket": "480p", "frame_window": 81, "motion_frames": 9, "steps": 6,
              "shift": 7.0, "cfg": 1.0, "audio_cfg": 3.0, "scheduler": "euler", "seed": 42,
              "color_correction": 1.0, "max_frames": 0, "frames_folder": "temp", "vae_precision": "fp32",
              "audio_scale": 1.0, "face_only": False, "face_margin": 0.25, "mask_feather": 8}
    values.update(widgets)
    return g.add("InfiniteTalkSampler", (x, None), values, size=(360, 0))


def _clip_vision_encode(g, vision, image):
    encode = g.add("CLIPVisionEncode", (SAMPLER, None), {"crop": "none"}, size=(360, 0))
    g.link(vision, "CLIP_VISION", encode, "clip_vision")
    g.link(image[0], image[1], encode, "image")
    return encode


def _combine(g, sampler, audio, prefix, x=OUTPUT):
    combine = g.add("InfiniteTalkVideoCombine", (x, None),
                    {"frame_rate": 25.0, "filename_prefix": prefix, "format": "h264-mp4", "crf": 19,
                     "length_policy": "fit_audio_to_video", "save_output": True, "save_metadata": True},
                    size=(420, 560))
    g.link(sampler, "frames", combine, "frames")
    if audio is not None:
        g.link(audio[0], audio[1], combine, "audio")
    return combine


def single_speaker(g):
    g.note(models_note([WAN, IT_SINGLE, LORA, UMT5, CLIP_H, VAE, WAV2VEC],
                       "**Inputs**: load your portrait in *Load Image* and the speech in *Load Audio* "
                       "(any length, any format).\nThe video is exactly as long as the speech and is saved to "
                       "`output/InfiniteTalk/` as an MP4 with the sound; the node plays it with sound controls."),
           (NOTES, None), size=(440, 520))
    g.note(SETTINGS_NOTE, (NOTES, None), size=(440, 330))
    loader, clip, vision, vae = _loaders(g, IT_SINGLE)
    pos, neg = _prompts(g, clip, "A woman is talking to the camera, natural head movements and facial expressions, "
                                 "clear lip movements, soft studio light.")
    image = g.add("LoadImage", (INPUTS, None), {"image": "portrait.png"}, size=(320, 360))
    audio = g.add("LoadAudio", (INPUTS, None), {"audio": "speech.wav"}, size=(320, 140))
    wav2vec = _wav2vec(g)
    embeds = g.add("InfiniteTalkAudioEmbeds", (INPUTS, None),
                   {"speaker_mode": "para", "normalize_loudness": True, "fps": 25.0, "frame_limit": 0})
    g.link(wav2vec, "wav2vec", embeds, "wav2vec")
    g.link(audio, "AUDIO", embeds, "audio_1")
    encode = _clip_vision_encode(g, vision, (image, "IMAGE"))
    sampler = _sampler(g)
    for src, out, dst in ((loader, "model", "model"), (vae, "VAE", "vae"), (image, "IMAGE", "image"),
                          (encode, "CLIP_VISION_OUTPUT", "clip_vision_output"), (vision, "CLIP_VISION", "clip_vision"),
                          (embeds, "audio_embeds", "audio_embeds"),
                          (pos, "CONDITIONING", "positive"), (neg, "CONDITIONING", "negative")):
        g.link(src, out, sampler, dst)
    _combine(g, sampler, (embeds, "audio"), "InfiniteTalk/single")


def two_speakers(g):
    g.note(models_note([WAN, IT_MULTI, LORA, UMT5, CLIP_H, VAE, WAV2VEC],
                       "**Two people**: the image shows both; *speech 1* drives the person in the speaker 1 mask, "
                       "*speech 2* the one in the speaker 2 mask. Use the **Multi** InfiniteTalk file.\n\n"
                       "**Masks**: here the left and right halves of an 832×480 image (Solid Mask + Mask "
                       "Composite); set the sizes to your image's, or paint each face in the mask editor of a "
                       "*Load Image* node and connect its MASK instead. Leave both mask inputs empty for the "
                       "reference's default halves.\n\n`speaker_mode`: **para** = both talk at the same time "
                       "(a duet, overlapping speech), **add** = speaker 1 first, then speaker 2."),
           (NOTES, None), size=(440, 700))
    g.note(SETTINGS_NOTE, (NOTES, None), size=(440, 330))
    loader, clip, vision, vae = _loaders(g, IT_MULTI)
    pos, neg = _prompts(g, clip, "Two people sit side by side and talk to each other in turn, natural gestures, "
                           "clear lip movements.")
    image = g.add("LoadImage", (INPUTS, None), {"image": "two_people.png"}, size=(320, 360))
    audio_1 = g.add("LoadAudio", (INPUTS, None), {"audio": "speech_1.wav"}, title="Load Audio (speaker 1)", size=(320, 140))
    audio_2 = g.add("LoadAudio", (INPUTS, None), {"audio": "speech_2.wav"}, title="Load Audio (speaker 2)", size=(320, 140))
    wav2vec = _wav2vec(g)
    embeds = g.add("InfiniteTalkAudioEmbeds", (INPUTS, None),
                   {"speaker_mode": "add", "normalize_loudness": True, "fps": 25.0, "frame_limit": 0})
    g.link(wav2vec, "wav2vec", embeds, "wav2vec")
    g.link(audio_1, "AUDIO", embeds, "audio_1")
    g.link(audio_2, "AUDIO", embeds, "audio_2")
    encode = _clip_vision_encode(g, vision, (image, "IMAGE"))
    # Speaker masks at the image's size: an empty 832x480 mask with one half filled.
    empty = g.add("SolidMask", (LOADERS, None), {"value": 0.0, "width": 832, "height": 480}, title="Empty mask (image size)")
    half = g.add("SolidMask", (LOADERS, None), {"value": 1.0, "width": 416, "height": 480}, title="Half-width mask")
    left = g.add("MaskComposite", (INPUTS, None), {"x": 0, "y": 0, "operation": "add"}, title="Speaker 1: left half")
    right = g.add("MaskComposite", (INPUTS, None), {"x": 416, "y": 0, "operation": "add"}, title="Speaker 2: right half")
    for comp in (left, right):
        g.link(empty, "MASK", comp, "destination")
        g.link(half, "MASK", comp, "source")
    sampler = _sampler(g)
    for src, out, dst in ((loader, "model", "model"), (vae, "VAE", "vae"), (image, "IMAGE", "image"),
                          (encode, "CLIP_VISION_OUTPUT", "clip_vision_output"), (vision, "CLIP_VISION", "clip_vision"),
                          (embeds, "audio_embeds", "audio_embeds"),
                          (pos, "CONDITIONING", "positive"), (neg, "CONDITIONING", "negative"),
                          (left, "MASK", "speaker_1_mask"), (right, "MASK", "speaker_2_mask")):
        g.link(src, out, sampler, dst)
    _combine(g, sampler, (embeds, "audio"), "InfiniteTalk/two_speakers")


def video_dubbing(g):
    g.note(models_note([WAN, IT_SINGLE, LORA, UMT5, CLIP_H, VAE, WAV2VEC, *PREPROCESS_FILES],
                       "**Video-to-video dubbing**: *Load Video* holds the source clip (25 fps works best: the "
                       "output runs at 25 fps and takes the source frame at the same index), *Load Audio* the new "
                       "speech. Each window is conditioned on the source frame at its start, so head and body "
                       "follow the source while the lips follow the new speech. The output is as long as the "
                       "speech; past the end of the clip its last frame conditions the rest.\n\n"
                       "CLIP Vision Encode gets the whole clip (one image feature per frame): for very long clips "
                       "feed it the first frame only to save memory.\n\n"
                       "**Face-only** (`face_only` on, as here): only the face changes; hands, body, background "
                       "and camera keep the source's pixels. The face is found in every frame by the WanAnimate "
                       "preprocessing's person detector and pose model (the `.onnx`/`.bin` files above, in "
                       "`models/detection`). Without them, or to choose the region yourself, paint it in a "
                       "*Load Image* mask editor (the video's size) and connect its MASK to `edit_mask` (no model "
                       "file needed). Turn `face_only` off to regenerate the whole frame (the reference's "
                       "dubbing)."),
           (NOTES, None), size=(440, 800))
    g.note(SETTINGS_NOTE, (NOTES, None), size=(440, 330))
    loader, clip, vision, vae = _loaders(g, IT_SINGLE)
    pos, neg = _prompts(g, clip, "A person is talking to the camera, natural head movements, clear lip movements.")
    video = g.add("LoadVideo", (INPUTS, None), {"file": "source_clip.mp4"}, size=(320, 360))
    parts = g.add("GetVideoComponents", (INPUTS, None), {}, size=(260, 90))
    g.link(video, "VIDEO", parts, "video")
    audio = g.add("LoadAudio", (INPUTS, None), {"audio": "new_speech.wav"}, size=(320, 140))
    wav2vec = _wav2vec(g)
    embeds = g.add("InfiniteTalkAudioEmbeds", (INPUTS, None),
                   {"speaker_mode": "para", "normalize_loudness": True, "fps": 25.0, "frame_limit": 0})
    g.link(wav2vec, "wav2vec", embeds, "wav2vec")
    g.link(audio, "AUDIO", embeds, "audio_1")
    encode = _clip_vision_encode(g, vision, (parts, "images"))
    sampler = _sampler(g, face_only=True)
    for src, out, dst in ((loader, "model", "model"), (vae, "VAE", "vae"), (parts, "images", "image"),
                          (encode, "CLIP_VISION_OUTPUT", "clip_vision_output"), (vision, "CLIP_VISION", "clip_vision"),
                          (embeds, "audio_embeds", "audio_embeds"),
                          (pos, "CONDITIONING", "positive"), (neg, "CONDITIONING", "negative")):
        g.link(src, out, sampler, dst)
    _combine(g, sampler, (embeds, "audio"), "InfiniteTalk/dubbing")


def wan_i2v_no_audio(g):
    g.note(models_note([WAN, LORA, UMT5, CLIP_H, VAE],
                       "**Standard image-to-video, no audio**: the plain Wan 2.1 I2V model animates the image "
                       "following the prompt. No InfiniteTalk file (`infinitetalk` = none) and no audio "
                       "embeddings; `max_frames` sets the length (81 = 3.24 s at 25 fps; more frames = more "
                       "windows). The MP4 has no sound."),
           (NOTES, None), size=(440, 480))
    g.note(SETTINGS_NOTE, (NOTES, None), size=(440, 330))
    loader, clip, vision, vae = _loaders(g, "none")
    pos, neg = _prompts(g, clip, "A woman smiles, turns her head slowly toward the window and brushes her hair back.")
    image = g.add("LoadImage", (INPUTS, None), {"image": "portrait.png"}, size=(320, 360))
    encode = _clip_vision_encode(g, vision, (image, "IMAGE"))
    sampler = _sampler(g, max_frames=81)
    for src, out, dst in ((loader, "model", "model"), (vae, "VAE", "vae"), (image, "IMAGE", "image"),
                          (encode, "CLIP_VISION_OUTPUT", "clip_vision_output"), (vision, "CLIP_VISION", "clip_vision"),
                          (pos, "CONDITIONING", "positive"), (neg, "CONDITIONING", "negative")):
        g.link(src, out, sampler, dst)
    _combine(g, sampler, None, "InfiniteTalk/i2v")


ANIMATE_NOTE = """**WanAnimate** (Wan2.2-Animate-14B, `infinitetalk` = none in the loader) from a raw driving
video: **Load Video** (any clip of one person, with its sound) → **InfiniteTalk Animate Preprocess**, which makes
what the model needs the way the official preprocessing does (person detector + ViTPose-H whole-body pose in
onnxruntime, the official skeleton drawing and retargeting, 512×512 face crops; for replacement the person mask and
the background) → Animate sampler → Video Combine with the clip's sound.

The preprocessing files go to `models/detection/` (above; the official single-file
`vitpose_h_wholebody.onnx` from Wan-AI/Wan2.2-Animate-14B `process_checkpoint/pose2d` works too). onnxruntime runs
them on the CPU unless `onnxruntime-gpu` is installed (see docs/wananimate-preprocess.md).

The clip is resampled to 30 fps (`preprocess_fps`); keep the sampler's `fps` and Video Combine's `frame_rate` at
the same value so the sound stays in sync. Settings: 20 steps UniPC, shift 5, cfg 1 (official); with a lightx2v
LoRA 4–8 steps. `refert_frames` 5 joins the 77-frame clips more smoothly."""


def _animate_common(g, lora_name, lora_title, steps, mode):
    lora = g.add("InfiniteTalkLoraSelect", (LOADERS, None), {"lora": lora_name, "strength": 1.0}, title=lora_title,
                 size=(360, 0))
    loader = g.add("InfiniteTalkModelLoader", (LOADERS, None),
                   {"model": ANIMATE, "infinitetalk": "none", "precision": "bf16", "quantization": "keep_fp8",
                    "blocks_to_swap": 0, "attention": "sdpa"}, size=(360, 0))
    g.link(lora, "lora", loader, "lora")
    clip = g.add("CLIPLoader", (LOADERS, None), {"clip_name": UMT5, "type": "wan", "device": "default"}, size=(360, 0))
    vision = g.add("CLIPVisionLoader", (LOADERS, None), {"clip_name": CLIP_H}, size=(360, 0))
    vae = g.add("VAELoader", (LOADERS, None), {"vae_name": VAE}, size=(360, 0))
    pos, neg = _prompts(g, clip, "视频中的人在做动作")
    image = g.add("LoadImage", (INPUTS, None), {"image": "character.png"}, size=(320, 360))
    encode = _clip_vision_encode(g, vision, (image, "IMAGE"))
    load = g.add("LoadVideo", (INPUTS, None), {"file": "driving.mp4"}, title="Load Video (driving clip)",
                 size=(320, 200))
    parts = g.add("GetVideoComponents", (INPUTS, None), {}, size=(260, 90))
    g.link(load, "VIDEO", parts, "video")
    pre = g.add("InfiniteTalkAnimatePreprocess", (INPUTS, None),
                {"mode": mode, "resolution_width": 1280, "resolution_height": 720, "preprocess_fps": 30.0,
                 "retarget": mode == "animate", "mask_kernel": 7, "mask_iterations": 3, "mask_grid_w": 1,
                 "mask_grid_h": 1, "sam2_model": "none (pose-hull masks)"}, size=(360, 0))
    for src, out, dst in ((parts, "images", "driving_video"), (parts, "fps", "driving_fps"),
                          (image, "IMAGE", "character")):
        g.link(src, out, pre, dst)
    sampler = g.add("InfiniteTalkAnimateSampler", (SAMPLER, None),
                    {"width": 0, "height": 0, "clip_len": 77, "refert_frames": 1, "steps": steps, "shift": 5.0,
                     "cfg": 1.0, "scheduler": "unipc", "seed": 42, "fps": 30.0, "max_frames": 0,
                     "frames_folder": "temp"}, size=(360, 0))
    for src, out, dst in ((loader, "model", "model"), (vae, "VAE", "vae"), (image, "IMAGE", "image"),
                          (encode, "CLIP_VISION_OUTPUT", "clip_vision_output"), (pre, "pose_video", "pose_video"),
                          (pre, "face_video", "face_video"), (pos, "CONDITIONING", "positive"),
                          (neg, "CONDITIONING", "negative"), (vision, "CLIP_VISION", "clip_vision")):
        g.link(src, out, sampler, dst)
    return sampler, parts, pre


def _animate_combine(g, sampler, driving_parts, prefix):
    combine = g.add("InfiniteTalkVideoCombine", (OUTPUT, None),
                    {"frame_rate": 30.0, "filename_prefix": prefix, "format": "h264-mp4", "crf": 19,
                     "length_policy": "fit_audio_to_video", "save_output": True, "save_metadata": True},
                    size=(420, 560))
    g.link(sampler, "frames", combine, "frames")
    g.link(driving_parts, "audio", combine, "audio")


def wananimate_animation(g):
    g.note(models_note([ANIMATE, UMT5, CLIP_H, VAE, LORA, *PREPROCESS_FILES], ANIMATE_NOTE + "\n\n**Animation**: "
                       "the character image moves like the driving person, on the character image's background "
                       "(the pose is retargeted to the character's proportions). With the lightx2v LoRA: 6 steps; "
                       "bypass it (Ctrl+B) for the official 20."), (NOTES, None), size=(440, 980))
    sampler, parts, _ = _animate_common(g, LORA, "LoRA: step distillation (lightx2v)", steps=6, mode="animate")
    _animate_combine(g, sampler, parts, "InfiniteTalk/animate")


def wananimate_replacement(g):
    g.note(models_note([ANIMATE, UMT5, CLIP_H, VAE, RELIGHT, *PREPROCESS_FILES], ANIMATE_NOTE + "\n\n"
                       "**Replacement**: the character takes the driving person's place in the clip; the relighting "
                       "LoRA matches it to the clip's light. For real person masks put a SAM2 folder "
                       "([facebook/sam2.1-hiera-large](https://huggingface.co/facebook/sam2.1-hiera-large), "
                       "transformers format) in `models/sam2/` and pick it in `sam2_model`; without it the masks are "
                       "pose hulls (coarser)."), (NOTES, None), size=(440, 1040))
    sampler, parts, pre = _animate_common(g, RELIGHT, "LoRA: relighting (replacement)", steps=20, mode="replace")
    g.link(pre, "background_video", sampler, "background_video")
    g.link(pre, "character_mask", sampler, "character_mask")
    _animate_combine(g, sampler, parts, "InfiniteTalk/replace")


GRAPHS = {
    "infinitetalk_single_speaker": single_speaker,
    "infinitetalk_two_speakers": two_speakers,
    "infinitetalk_video_dubbing": video_dubbing,
    "wan_i2v_no_audio": wan_i2v_no_audio,
    "wananimate_animation": wananimate_animation,
    "wananimate_replacement": wananimate_replacement,
}

from example_graphs_longcat import GRAPHS as _LONGCAT_GRAPHS  # noqa: E402 - the LongCat examples, in their own file

GRAPHS.update(_LONGCAT_GRAPHS)
