"""Shared helpers for the tests (importable as `testlib`; tests/ is on pytest's pythonpath)."""
import importlib.util
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = REPO_ROOT.parent / "shared"
FIXTURES = SHARED / "fixtures"
MEDIA = SHARED / "media"

# The name the pack is imported under in tests, the way ComfyUI imports it: as a
# package loaded by path, so its relative imports (nodes -> ..wanvideo) work.
PACK_NAME = "wanvideo_infinitetalk_pack"


def load_pack():
    """Import the pack (the repo root) as a package, exactly as ComfyUI's loader does."""
    if PACK_NAME in sys.modules:
        return sys.modules[PACK_NAME]
    spec = importlib.util.spec_from_file_location(
        PACK_NAME, REPO_ROOT / "__init__.py", submodule_search_locations=[str(REPO_ROOT)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK_NAME] = module
    spec.loader.exec_module(module)
    return module
