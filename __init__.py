"""WanVideo InfiniteTalk: ComfyUI entry point.

ComfyUI imports this folder as a package by path; everything below is imported
relatively so the pack never depends on its folder name or on sys.path.

In a host with V3 nodes (`comfy_api.latest`) the pack registers through `comfy_entrypoint()` (nodes/schema_v3.py);
elsewhere (an older host, tests, the command line) through the V1 `NODE_CLASS_MAPPINGS`. ComfyUI reads
NODE_CLASS_MAPPINGS first when a pack defines both, so only one of the two is defined.
"""
WEB_DIRECTORY = "./js"

if __package__:
    from .nodes import NODE_CLASS_MAPPINGS as _V1_NODES
    from .nodes import NODE_DISPLAY_NAME_MAPPINGS as _V1_NAMES
    from .nodes import schema_v3 as _schema_v3
else:
    # Imported as a lone file, not as the pack: pytest does this to a checkout whose folder name is not a
    # Python identifier (e.g. the README's ComfyUI-WanVideo-InfiniteTalk). Nothing to register then.
    _V1_NODES, _V1_NAMES, _schema_v3 = {}, {}, None

if _schema_v3 is not None and _schema_v3.available():

    def comfy_entrypoint():
        """The pack's nodes as V3 nodes (io.ComfyNode), for ComfyUI's loader."""
        return _schema_v3.extension(_V1_NODES, _V1_NAMES)

    __all__ = ["comfy_entrypoint", "WEB_DIRECTORY"]
else:
    NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = _V1_NODES, _V1_NAMES
    __all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
