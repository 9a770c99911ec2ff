"""scripts/gpu/gpu_checks.sh and scripts/gpu/gpu_option_checks.py: the prepared GPU run works as a script here too.

The figures need a GPU; on the CPU the option checks run their own code on a tiny config (`--cpu-dry-run`), and the
shell script runs a check, records its exit status and writes the RESULT lines where the device tool collects them.
"""
import os
import re
import subprocess
import sys

import pytest
from testlib import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts" / "gpu"))
import gpu_option_checks  # noqa: E402


def results(text: str) -> dict:
    return dict(re.findall(r"^RESULT (\w+)=(\S+)$", text, re.M))


@pytest.fixture
def dry_run(monkeypatch):
    monkeypatch.setattr(gpu_option_checks, "RUN", dict(gpu_option_checks.RUN))


def test_compile_check_gives_the_eager_output_without_recompiling(dry_run, capsys):
    assert gpu_option_checks.main(["compile", "--cpu-dry-run", "--repeats", "1"]) == 0
    got = results(capsys.readouterr().out)
    assert float(got["compile_rel_diff"]) < 1e-5
    assert got["compile_recompiles"] == "0"
    assert float(got["compiled_forward_ratio"]) > 0


def test_fp8_check_compares_scaled_mm_with_the_dequantised_path(dry_run, capsys):
    assert gpu_option_checks.main(["fp8", "--cpu-dry-run", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    got = results(out)
    if got["fp8_scaled_mm_layers"] == "0":  # a CPU torch without _scaled_mm says why
        assert "cannot run here" in out
        return
    assert int(got["fp8_scaled_mm_layers"]) > 0
    assert float(got["fp8_matmul_rel_diff"]) < 0.05  # e4m3 activations vs bf16 ones
    assert float(got["fp8_matmul_forward_ratio"]) > 0


def test_attention_check_reports_what_is_installed(dry_run, capsys):
    assert gpu_option_checks.main(["attention", "--cpu-dry-run", "--repeats", "1"]) == 0
    got = results(capsys.readouterr().out)
    assert got["sage_available"] in ("0", "1") and got["flash_available"] in ("0", "1")


def test_without_a_gpu_a_check_says_so_and_fails():
    if gpu_option_checks.torch.cuda.is_available():
        pytest.skip("a GPU is present")
    done = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "gpu" / "gpu_option_checks.py"), "fp8"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "needs a CUDA GPU" in done.stderr


def test_the_gpu_script_records_each_check_and_its_results(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path), PYTHON=sys.executable, GPU_CHECKS_ONLY="env", GPU_CHECKS_BUDGET="120")
    done = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "gpu" / "gpu_checks.sh")], capture_output=True, text=True,
                          timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    saved = (tmp_path / "results.txt").read_text()
    assert "RESULT check_env_rc=" in saved and "RESULT check_env_seconds=" in saved
    assert "check_side_by_side" not in saved  # only the checks asked for
    assert (tmp_path / "gpu_checks.log").read_text().count("=== env") == 1
