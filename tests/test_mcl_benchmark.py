"""benchmarks/mcl_step_cost.py runs end to end on one timed step and writes its JSON."""
import json
import math

from benchmarks import mcl_step_cost


def test_mcl_step_cost_benchmark_runs_and_writes_the_ratio(tmp_path):
    out = tmp_path / "mcl_step_cost.json"
    result = mcl_step_cost.main(["--steps", "1", "--repeats", "1", "--out", str(out)])
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(result))
    assert (written["with_mal_variant"], written["without_mal_variant"]) == ("ta_sa_mal", "ta_sa")
    for key in ("with_mal_clips_per_second", "without_mal_clips_per_second"):
        assert len(written[key]) == 1 and written[key][0] > 0
    assert written["ratio_with_over_without"] > 0 and written["median_paired_ratio"] > 0
    assert all(math.isfinite(v) for v in written["final_losses"].values())
