"""WanVideo InfiniteTalk: ComfyUI entry point.

ComfyUI imports this folder as a package by path; everything below is imported
relatively so the pack never depends on its folder name or on sys.path.
"""
if __package__:
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
else:
    # Imported as a lone file, not as the pack: pytest does this to a checkout whose folder name is not a
    # Python identifier (e.g. the README's ComfyUI-WanVideo-InfiniteTalk). Nothing to register then.
    NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = {}, {}

WEB_DIRECTORY = "./js"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
