"""InfiniteTalkPromptsPerWindow: one prompt per window for the InfiniteTalk sampler's `positive_per_window`.

Why a node of its own and not `|` in CLIP Text Encode: that node hands umt5 the whole text, `|` included, and the
sampler cannot tell one prompt containing `|` from several; a CONDITIONING holding several entries already means
something else in ComfyUI (Conditioning Combine: all at once). So this node takes the text encoder (the same CLIP
object CLIP Text Encode takes, encoded the same way) and the prompts separated by `|`, and hands the sampler an
explicit list, a type of its own that cannot reach a KSampler by mistake.
"""
from __future__ import annotations

from ..wanvideo.errors import InputError
from ..wanvideo.sampling.window_prompts import split_prompts
from .host_adapters import conditioning_to_context

PROMPTS_TYPE = "INFINITETALK_PROMPTS"


def encode_text(clip, text: str):
    """CLIP Text Encode's own call on the host's CLIP object (older hosts: encode_from_tokens)."""
    tokens = clip.tokenize(text)
    if hasattr(clip, "encode_from_tokens_scheduled"):
        return clip.encode_from_tokens_scheduled(tokens)
    cond, pooled = clip.encode_from_tokens(tokens, return_pooled=True)
    return [[cond, {"pooled_output": pooled}]]


def prompts_to_contexts(prompts) -> list:
    """INFINITETALK_PROMPTS (a list of CONDITIONING) -> the engine's list of [1, tokens, dim] embeddings."""
    if not isinstance(prompts, (list, tuple)) or not prompts:
        raise InputError("positive_per_window must come from the InfiniteTalk Prompts Per Window node")
    return [conditioning_to_context(c, f"prompt {i + 1} of positive_per_window") for i, c in enumerate(prompts)]


class InfiniteTalkPromptsPerWindow:
    CATEGORY = "InfiniteTalk"
    FUNCTION = "encode"
    RETURN_TYPES = (PROMPTS_TYPE,)
    RETURN_NAMES = ("positive_per_window",)
    OUTPUT_TOOLTIPS = ("One encoded prompt per window: connect to the InfiniteTalk sampler's positive_per_window.",)
    DESCRIPTION = ("A prompt per window for long videos: prompts separated by | are encoded one by one with the "
                   "connected text encoder (umt5-xxl); prompt k conditions window k, the last prompt every window "
                   "after it. Changing one prompt and running again keeps the windows before it.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "clip": ("CLIP", {"tooltip": "The umt5-xxl text encoder (Load CLIP, type wan), as for CLIP Text "
                                             "Encode."}),
                "text": ("STRING", {"multiline": True, "dynamicPrompts": True, "tooltip": (
                    "Prompts separated by | , e.g. 'a woman talks calmly | she smiles | she turns to the camera'. "
                    "Window k (frame_window frames, the first; then frame_window - motion_frames new frames each) "
                    "uses prompt k; the last prompt is kept for the windows after it.")}),
            },
        }

    def encode(self, clip, text):
        if clip is None:
            raise InputError("connect the umt5 text encoder (Load CLIP, type wan) to clip")
        prompts = split_prompts(text)
        if prompts is None:
            raise InputError("write at least one prompt (several separated by |)")
        return ([encode_text(clip, p) for p in prompts],)


NODE_CLASS_MAPPINGS = {"InfiniteTalkPromptsPerWindow": InfiniteTalkPromptsPerWindow}
NODE_DISPLAY_NAME_MAPPINGS = {"InfiniteTalkPromptsPerWindow": "InfiniteTalk Prompts Per Window"}
