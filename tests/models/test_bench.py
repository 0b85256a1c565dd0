"""The churn training benchmark runs (tiny size) and reports what benchmarks/run.py expects."""

from benchmarks.churn_train import bench_churn_train


def test_bench_churn_train_reports_ratio_scaling_and_auc_over_oracle():
    out = bench_churn_train(sizes=(4_500, 9_000), repeats=1)
    assert {"project", "baseline", "ratio", "auc_over_oracle", "scaling", "unit", "goal"} <= set(out)
    assert set(out["scaling"]) == {"4500", "9000"}
    assert out["ratio"] > 0 and 0.5 < out["auc_over_oracle"] <= 1.05
