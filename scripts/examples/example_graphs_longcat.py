"""The LongCat-Video-Avatar 1.5 example graphs (single speaker, two speakers), written by scripts/examples/build_examples.py.

Settings are the official v1.5 defaults: the distillation LoRA, 8 steps, guidance 1, 480p buckets, 93-frame
segments with 13 condition frames, ref_img_index 10, mask_frame_range 3, seed 42.
"""
from example_models import MODELS, models_note

from wanvideo.app.longcat_cli import LONGCAT_NEGATIVE_PROMPT

LONGCAT = "LongCat-Video-Avatar-1.5/base_model"
DMD_LORA = "dmd_lora.safetensors"
WHISPER = "whisper-large-v3"
UMT5 = "umt5_xxl_fp8_e4m3fn_scaled.safetensors"
VAE = "wan_2.1_vae.safetensors"
assert all(name in MODELS for name in (LONGCAT, DMD_LORA, WHISPER, UMT5, VAE))

NOTES, LOADERS, INPUTS, SAMPLER, OUTPUT = -480, 0, 420, 880, 1290

SETTINGS_NOTE = """## Settings (official LongCat-Video-Avatar 1.5 defaults)
- **Distilled** (`use_distill` on, the distillation LoRA in the loader): 8 steps, guidance 1 (one model pass per step).
- **Base model** (`use_distill` off, LoRA `none`): 50 steps, text/audio guidance 4, `enhance_hf` tail.
- `shift`: the value in the checkpoint's `scheduler/scheduler_config.json` (1 when absent).
- Any length: 93-frame segments, each continuing from the last 13 frames of the one before; finished
  segments stay on disk and a rerun after a crash or Cancel resumes.
- Out of VRAM: raise `blocks_to_swap` in the model loader, or load the official `base_model_int8` folder."""


def _loaders(g, x=LOADERS):
    loader = g.add("InfiniteTalkLongCatModelLoader", (x, None),
                   {"model": LONGCAT, "distill_lora": DMD_LORA, "lora_strength": 1.0, "precision": "bf16",
                    "quantization": "disabled", "blocks_to_swap": 0, "attention": "sdpa"}, size=(360, 0))
    clip = g.add("CLIPLoader", (x, None), {"clip_name": UMT5, "type": "wan", "device": "default"}, size=(360, 0))
    vae = g.add("VAELoader", (x, None), {"vae_name": VAE}, size=(360, 0))
    whisper = g.add("InfiniteTalkLongCatWhisperLoader", (x, None), {"model": WHISPER}, size=(360, 0))
    return loader, clip, vae, whisper


def _prompts(g, clip, text, x=INPUTS):
    pos = g.add("CLIPTextEncode", (x, None), {"text": text}, title="Prompt", size=(400, 150), color=("#232", "#353"))
    neg = g.add("CLIPTextEncode", (x, None), {"text": LONGCAT_NEGATIVE_PROMPT}, title="Negative prompt",
                size=(400, 150), color=("#322", "#533"))
    g.link(clip, "CLIP", pos, "clip")
    g.link(clip, "CLIP", neg, "clip")
    return pos, neg


def _sampler(g, links, prefix, audio):
    sampler = g.add("InfiniteTalkLongCatSampler", (SAMPLER, None), {"frames_folder": "temp"}, size=(360, 0))
    for src, out, dst in links:
        g.link(src, out, sampler, dst)
    combine = g.add("InfiniteTalkVideoCombine", (OUTPUT, None),
                    {"frame_rate": 25.0, "filename_prefix": prefix, "format": "h264-mp4", "crf": 19,
                     "length_policy": "fit_audio_to_video", "save_output": True, "save_metadata": True},
                    size=(420, 560))
    g.link(sampler, "frames", combine, "frames")
    g.link(audio, "audio", combine, "audio")
    return sampler


def longcat_single_speaker(g):
    g.note(models_note([LONGCAT, DMD_LORA, WHISPER, UMT5, VAE],
                       "**LongCat-Video-Avatar 1.5**: put the whole `base_model` folder (config.json and the "
                       "shards) in `models/diffusion_models/LongCat-Video-Avatar-1.5/`, `lora/dmd_lora.safetensors` in "
                       "`models/loras/` and the `whisper-large-v3` folder in `models/audio_encoders/`. The VAE and "
                       "text encoder are Wan 2.1's.\n\n**Inputs**: the portrait in *Load Image*, the speech in *Load "
                       "Audio* (clean vocals work best). The video is as long as the speech."),
           (NOTES, None), size=(440, 560))
    g.note(SETTINGS_NOTE, (NOTES, None), size=(440, 330))
    loader, clip, vae, whisper = _loaders(g)
    pos, neg = _prompts(g, clip, "A woman talks to the camera with natural expressions and clear lip movements.")
    image = g.add("LoadImage", (INPUTS, None), {"image": "portrait.png"}, size=(320, 360))
    audio = g.add("LoadAudio", (INPUTS, None), {"audio": "speech.wav"}, size=(320, 140))
    embeds = g.add("InfiniteTalkLongCatAudioEmbeds", (INPUTS, None), {"speaker_mode": "para"})
    g.link(whisper, "whisper", embeds, "whisper")
    g.link(audio, "AUDIO", embeds, "audio")
    _sampler(g, ((loader, "model", "model"), (vae, "VAE", "vae"), (image, "IMAGE", "image"),
                 (embeds, "audio_embeds", "audio_embeds"), (pos, "CONDITIONING", "positive"),
                 (neg, "CONDITIONING", "negative")), "LongCat/single", embeds)


def longcat_two_speakers(g):
    g.note(models_note([LONGCAT, DMD_LORA, WHISPER, UMT5, VAE],
                       "**Two people**: *speech 1* drives the person in the speaker 1 mask, *speech 2* the one in "
                       "the speaker 2 mask (here the left and right halves of an 832×480 image; leave both mask "
                       "inputs empty for the official default halves, or paint each face in a *Load Image* mask "
                       "editor). `speaker_mode`: **para** = at the same time, **add** = one after the other.\n\n"
                       "Folders: `base_model` in `models/diffusion_models/LongCat-Video-Avatar-1.5/`, "
                       "`dmd_lora.safetensors` in `models/loras/`, `whisper-large-v3` in `models/audio_encoders/`."),
           (NOTES, None), size=(440, 620))
    g.note(SETTINGS_NOTE, (NOTES, None), size=(440, 330))
    loader, clip, vae, whisper = _loaders(g)
    pos, neg = _prompts(g, clip, "Two people sit side by side and talk to each other in turn, natural gestures.")
    image = g.add("LoadImage", (INPUTS, None), {"image": "two_people.png"}, size=(320, 360))
    audio_1 = g.add("LoadAudio", (INPUTS, None), {"audio": "speech_1.wav"}, title="Load Audio (speaker 1)",
                    size=(320, 140))
    audio_2 = g.add("LoadAudio", (INPUTS, None), {"audio": "speech_2.wav"}, title="Load Audio (speaker 2)",
                    size=(320, 140))
    embeds = g.add("InfiniteTalkLongCatAudioEmbeds", (INPUTS, None), {"speaker_mode": "add"})
    g.link(whisper, "whisper", embeds, "whisper")
    g.link(audio_1, "AUDIO", embeds, "audio")
    g.link(audio_2, "AUDIO", embeds, "audio_2")
    empty = g.add("SolidMask", (LOADERS, None), {"value": 0.0, "width": 832, "height": 480},
                  title="Empty mask (image size)")
    half = g.add("SolidMask", (LOADERS, None), {"value": 1.0, "width": 416, "height": 480}, title="Half-width mask")
    left = g.add("MaskComposite", (INPUTS, None), {"x": 0, "y": 0, "operation": "add"}, title="Speaker 1: left half")
    right = g.add("MaskComposite", (INPUTS, None), {"x": 416, "y": 0, "operation": "add"},
                  title="Speaker 2: right half")
    for comp in (left, right):
        g.link(empty, "MASK", comp, "destination")
        g.link(half, "MASK", comp, "source")
    _sampler(g, ((loader, "model", "model"), (vae, "VAE", "vae"), (image, "IMAGE", "image"),
                 (embeds, "audio_embeds", "audio_embeds"), (pos, "CONDITIONING", "positive"),
                 (neg, "CONDITIONING", "negative"), (left, "MASK", "speaker_1_mask"),
                 (right, "MASK", "speaker_2_mask")), "LongCat/two_speakers", embeds)


GRAPHS = {"longcat_single_speaker": longcat_single_speaker, "longcat_two_speakers": longcat_two_speakers}
