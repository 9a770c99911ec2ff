"""Step caching under sequence parallel (gloo CPU ranks): the split run skips the same calls as one process and
gives its predictions within float tolerance; each rank keeps its own shard's residuals."""
import json

import sp_cache_ranks
from testlib.ranks import run_ranks


def test_cached_split_run_equals_single_process_and_skips_the_same_calls(tmp_path):
    result = tmp_path / "result.json"
    run_ranks(sp_cache_ranks.split_equals_single, 2, str(result))
    report = json.loads(result.read_text())
    # every call reached both ranks: 3 passes x STEPS one by one, then two batched runs of STEPS calls, per mode
    calls = len(sp_cache_ranks.MODES) * sp_cache_ranks.STEPS * (3 + 1 + 1)
    assert report.pop("calls_served") == [calls, calls]
    assert set(report) == {f"{run}_{mode}" for run in sp_cache_ranks.RUNS for mode in sp_cache_ranks.MODES}
    for name, r in report.items():
        assert r["skipped_split"] == r["skipped_single"], (name, r)
        assert sum(r["skipped_single"].values()) > 0, (name, r)  # the cache really skipped calls
        assert r["max_abs_diff"] <= 1e-5, (name, r)
        assert r["scale"] > 0.1, (name, r)
