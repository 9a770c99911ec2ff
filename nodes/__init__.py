"""Node registry: collects NODE_CLASS_MAPPINGS from each node module.

Node ids (the keys) are stored in users' saved workflows: never rename one.
A module that fails to import is logged and skipped, so one missing optional
dependency does not hide every other node of the pack from the user.
"""
import importlib
import logging

log = logging.getLogger(__name__)

# One module per node family; each defines NODE_CLASS_MAPPINGS and NODE_DISPLAY_NAME_MAPPINGS.
NODE_MODULES = (
    "video_combine",
    "audio_nodes",
    "model_nodes",
    "sampler_nodes",
    "prompt_nodes",
    "speed_nodes",
    "animate_nodes",
    "longcat_nodes",
    "animate_preprocess_nodes",
    "multi_gpu_nodes",
)

NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}
IMPORT_ERRORS = {}

for _name in NODE_MODULES:
    try:
        _module = importlib.import_module(f".{_name}", __name__)
    except ModuleNotFoundError as exc:
        if exc.name == f"{__name__}.{_name}":
            continue  # node family not present in this build
        IMPORT_ERRORS[_name] = exc
        log.error("WanVideo InfiniteTalk: nodes in %s not loaded: %s", _name, exc)
        continue
    except Exception as exc:  # noqa: BLE001 - report and keep the other nodes usable
        IMPORT_ERRORS[_name] = exc
        log.error("WanVideo InfiniteTalk: nodes in %s not loaded: %s", _name, exc)
        continue
    for _node_id, _cls in getattr(_module, "NODE_CLASS_MAPPINGS", {}).items():
        if _node_id in NODE_CLASS_MAPPINGS:
            raise RuntimeError(f"duplicate node id {_node_id!r} in nodes.{_name}")
        NODE_CLASS_MAPPINGS[_node_id] = _cls
    NODE_DISPLAY_NAME_MAPPINGS.update(getattr(_module, "NODE_DISPLAY_NAME_MAPPINGS", {}))
