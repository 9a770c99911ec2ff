import os

import pytest
from testlib import FIXTURES, MEDIA, load_pack

# Deterministic, CI-sized CPU runs.
os.environ.setdefault("OMP_NUM_THREADS", "2")

# Node modules import the engine relatively, so node tests go through the pack
# package (`wanvideo_infinitetalk_pack.nodes...`), loaded once here.
load_pack()


@pytest.fixture
def fixtures_dir():
    if not FIXTURES.is_dir():
        pytest.fail(f"reference fixtures missing at {FIXTURES}: run the tests with shared/ beside the repo")
    return FIXTURES


@pytest.fixture
def media_dir():
    if not MEDIA.is_dir():
        pytest.fail(f"test media missing at {MEDIA}: run the tests with shared/ beside the repo")
    return MEDIA


@pytest.fixture
def comfy_dirs(tmp_path, monkeypatch):
    """Standalone output/temp folders for node tests (what ComfyUI's folder_paths gives in the host)."""
    out = tmp_path / "output"
    tmp = tmp_path / "temp"
    out.mkdir()
    tmp.mkdir()
    monkeypatch.setenv("WANVIDEO_OUTPUT_DIR", str(out))
    monkeypatch.setenv("WANVIDEO_TEMP_DIR", str(tmp))
    return out, tmp
