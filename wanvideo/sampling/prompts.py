"""The reference's default prompts.

DEFAULT_NEGATIVE_PROMPT is the InfiniteTalk config's `sample_neg_prompt` (MeiGen-AI/InfiniteTalk: the
infinitetalk-14B task's config overrides Wan's Chinese negative prompt with this English one); the pipeline
uses it whenever the negative prompt is empty. DEFAULT_PROMPT is a neutral talking-person prompt for the
command line when none is given.
"""

DEFAULT_PROMPT = "A person is talking to the camera with natural facial expressions and clear lip movements."
DEFAULT_NEGATIVE_PROMPT = (
    "bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images, static, "
    "overall gray, worst quality, low quality, JPEG compression residue, ugly, incomplete, extra fingers, "
    "poorly drawn hands, poorly drawn faces, deformed, disfigured, misshapen limbs, fused fingers, still picture, "
    "messy background, three legs, many people in the background, walking backwards"
)
