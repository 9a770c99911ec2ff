"""The pack loads both ways: as ComfyUI loads a custom node folder, and as plain Python."""
import ast
import subprocess
import sys

from testlib import PACK_NAME, REPO_ROOT, load_pack

EXPECTED_NODE_IDS = {  # grows as node families land; ids are forever
    "InfiniteTalkWav2VecLoader", "InfiniteTalkAudioEmbeds",
    "InfiniteTalkModelLoader", "InfiniteTalkLoraSelect",
    "InfiniteTalkVideoCombine",
    "InfiniteTalkSampler", "InfiniteTalkFramesToImages",
    "InfiniteTalkMultiGPU",
}


def test_pack_exports_comfy_entry_points():
    pack = load_pack()
    assert pack.WEB_DIRECTORY == "./js"
    assert (REPO_ROOT / "js").is_dir()
    assert isinstance(pack.NODE_CLASS_MAPPINGS, dict)
    assert set(pack.NODE_DISPLAY_NAME_MAPPINGS) <= set(pack.NODE_CLASS_MAPPINGS)
    assert EXPECTED_NODE_IDS <= set(pack.NODE_CLASS_MAPPINGS)
    from importlib import import_module

    assert import_module(PACK_NAME + ".nodes").IMPORT_ERRORS == {}


def test_every_node_declares_inputs_with_tooltips():
    pack = load_pack()
    for node_id, cls in pack.NODE_CLASS_MAPPINGS.items():
        assert node_id.startswith("InfiniteTalk"), f"node id {node_id} lacks the pack prefix"
        spec = cls.INPUT_TYPES()
        for section in ("required", "optional"):
            for name, decl in spec.get(section, {}).items():
                options = decl[1] if len(decl) > 1 else {}
                assert options.get("tooltip"), f"{node_id}.{name} has no tooltip"
        assert hasattr(cls, "RETURN_TYPES") and hasattr(cls, "FUNCTION") and hasattr(cls, "CATEGORY")
        # ComfyUI shows OUTPUT_TOOLTIPS on hover over an output socket and DESCRIPTION in the node library.
        tips = getattr(cls, "OUTPUT_TOOLTIPS", ())
        assert len(tips) == len(cls.RETURN_TYPES) and all(tips), f"{node_id} lacks output tooltips: {tips}"
        assert getattr(cls, "DESCRIPTION", ""), f"{node_id} has no DESCRIPTION"


def test_engine_never_imports_comfyui():
    banned = {"comfy", "folder_paths", "server", "comfy_execution", "nodes", "execution"}
    for path in (REPO_ROOT / "wanvideo").rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in banned, f"{path} imports {name}"


def test_engine_imports_as_plain_python():
    code = "import wanvideo, wanvideo.audio, wanvideo.model, wanvideo.sampling, wanvideo.video; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "comfy" not in result.stderr


def test_requirements_do_not_pin_torch():
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        assert not line.strip().lower().startswith("torch"), "users bring their own CUDA torch"
