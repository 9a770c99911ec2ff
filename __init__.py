"""WanVideo InfiniteTalk: ComfyUI entry point.

ComfyUI imports this folder as a package by path; everything below is imported
relatively so the pack never depends on its folder name or on sys.path.
"""
from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./js"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
