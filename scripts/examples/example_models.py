"""The model files the example workflows name: where users get them and the note each example carries."""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from wanvideo.sampling.prompts import DEFAULT_NEGATIVE_PROMPT

NEGATIVE_PROMPT = DEFAULT_NEGATIVE_PROMPT  # the reference's (wanvideo/sampling/prompts.py)

HF_COMFY = "https://huggingface.co/Comfy-Org/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files"
HF_KIJAI_FP8 = "https://huggingface.co/Kijai/WanVideo_comfy_fp8_scaled/resolve/main"
HF_KIJAI = "https://huggingface.co/Kijai/WanVideo_comfy/resolve/main"
HF_LONGCAT = "https://huggingface.co/meituan-longcat/LongCat-Video-Avatar-1.5"
HF_ANIMATE = "https://huggingface.co/Wan-AI/Wan2.2-Animate-14B/resolve/main"
HF_VITPOSE = "https://huggingface.co/Kijai/vitpose_comfy/resolve/main/onnx"

# Model files as users have them from the common repacks: name -> (folder, url).
MODELS = {
    "wan2.1_i2v_480p_14B_fp8_e4m3fn.safetensors":
        ("diffusion_models", f"{HF_COMFY}/diffusion_models/wan2.1_i2v_480p_14B_fp8_e4m3fn.safetensors"),
    "Wan2_1-InfiniteTalk-Single_fp8_e4m3fn_scaled_KJ.safetensors":
        ("diffusion_models", f"{HF_KIJAI_FP8}/InfiniteTalk/Wan2_1-InfiniteTalk-Single_fp8_e4m3fn_scaled_KJ.safetensors"),
    "Wan2_1-InfiniteTalk-Multi_fp8_e4m3fn_scaled_KJ.safetensors":
        ("diffusion_models", f"{HF_KIJAI_FP8}/InfiniteTalk/Wan2_1-InfiniteTalk-Multi_fp8_e4m3fn_scaled_KJ.safetensors"),
    "umt5_xxl_fp8_e4m3fn_scaled.safetensors":
        ("text_encoders", f"{HF_COMFY}/text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors"),
    "clip_vision_h.safetensors": ("clip_vision", f"{HF_COMFY}/clip_vision/clip_vision_h.safetensors"),
    "wan_2.1_vae.safetensors": ("vae", f"{HF_COMFY}/vae/wan_2.1_vae.safetensors"),
    "wav2vec2-chinese-base_fp16.safetensors":
        ("wav2vec2", "https://huggingface.co/Kijai/wav2vec2_safetensors/resolve/main/wav2vec2-chinese-base_fp16.safetensors"),
    "lightx2v_I2V_14B_480p_cfg_step_distill_rank64_bf16.safetensors":
        ("loras", f"{HF_KIJAI}/Lightx2v/lightx2v_I2V_14B_480p_cfg_step_distill_rank64_bf16.safetensors"),
    "Wan2_2-Animate-14B_fp8_e4m3fn_scaled_KJ.safetensors":
        ("diffusion_models", f"{HF_KIJAI_FP8}/Wan22Animate/Wan2_2-Animate-14B_fp8_e4m3fn_scaled_KJ.safetensors"),
    "WanAnimate_relight_lora_fp16.safetensors":
        ("loras", f"{HF_KIJAI}/LoRAs/Wan22_relight/WanAnimate_relight_lora_fp16.safetensors"),
    # LongCat-Video-Avatar 1.5: the official folders (Hugging Face layout) and the distillation LoRA
    "LongCat-Video-Avatar-1.5/base_model": ("diffusion_models", f"{HF_LONGCAT}/tree/main/base_model"),
    "dmd_lora.safetensors": ("loras", f"{HF_LONGCAT}/resolve/main/lora/dmd_lora.safetensors"),
    "whisper-large-v3": ("audio_encoders", f"{HF_LONGCAT}/tree/main/whisper-large-v3"),
    # WanAnimate preprocessing (InfiniteTalk Animate Preprocess): person detector and whole-body pose, ONNX.
    "yolov10m.onnx": ("detection", f"{HF_ANIMATE}/process_checkpoint/det/yolov10m.onnx"),
    "vitpose_h_wholebody_model.onnx": ("detection", f"{HF_VITPOSE}/vitpose_h_wholebody_model.onnx"),
    "vitpose_h_wholebody_data.bin": ("detection", f"{HF_VITPOSE}/vitpose_h_wholebody_data.bin"),
}


def models_note(files, extra=""):
    lines = ["## Model files for this workflow", "",
             "Download each file and put it in the ComfyUI folder shown (then press **R** in the UI to refresh "
             "the lists). The full table, with other precisions, is in the pack's docs/models.md.", ""]
    for name in files:
        folder, url = MODELS[name]
        lines.append(f"- `models/{folder}/` ← [{name}]({url})")
    if extra:
        lines += ["", extra]
    return "\n".join(lines)
