"""The node pages ComfyUI shows in its documentation panel (`js/docs/<NodeId>.md`) are current."""
import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _builder():
    spec = importlib.util.spec_from_file_location("build_node_docs", REPO / "scripts" / "docs" / "build_node_docs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_node_docs", module)
    spec.loader.exec_module(module)
    return module


def test_every_node_has_a_current_page():
    builder = _builder()
    pages = builder.all_pages()
    committed = {p.name: p.read_text(encoding="utf-8") for p in (REPO / "js" / "docs").glob("*.md")}
    assert sorted(committed) == sorted(pages), "run scripts/docs/build_node_docs.py: pages missing or left over"
    stale = [name for name, text in pages.items() if committed[name] != text]
    assert not stale, f"node pages out of date (run scripts/docs/build_node_docs.py): {stale}"


def test_pages_carry_the_registry_values():
    """A page shows the option registry's default, range and help text for a sampler input."""
    from wanvideo.options import get_option
    from wanvideo.sampling import SamplerSettings

    steps = get_option(SamplerSettings, "steps")
    page = (REPO / "js" / "docs" / "InfiniteTalkSampler.md").read_text(encoding="utf-8")
    row = next(line for line in page.splitlines() if line.startswith("| `steps` |"))
    assert f"`{steps.default}`" in row
    assert f"{steps.spec.min} … {steps.spec.max}" in row
    assert steps.help.replace("|", "\\|") in row


def test_check_mode_reports_an_edited_page(tmp_path, monkeypatch):
    builder = _builder()
    for page in (REPO / "js" / "docs").glob("*.md"):
        (tmp_path / page.name).write_text(page.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(builder, "DOCS", tmp_path)
    assert builder.main(["--check"]) == 0
    edited = tmp_path / "InfiniteTalkSampler.md"
    edited.write_text(edited.read_text(encoding="utf-8").replace("`40`", "`30`"), encoding="utf-8")
    assert builder.main(["--check"]) == 1
    assert builder.main([]) == 0 and builder.main(["--check"]) == 0  # writing makes it current again
