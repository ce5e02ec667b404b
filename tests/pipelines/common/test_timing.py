import itertools

import pytest

from pipelines.common.timing import StageTimings, Stopwatch, stage_latencies, time_variant


def test_warm_up_runs_are_discarded_and_median_and_p90_are_of_the_timed_runs():
    calls = itertools.count()
    values = [1000.0, 1000.0] + [float(v) for v in range(1, 11)]  # two slow warm-up runs, then 1..10

    def call():
        v = values[next(calls)]
        return StageTimings(v, 2 * v, 0.5)

    report = time_variant(call, card="x", threads=2, runs=10, warmup=2)
    assert next(calls) == 12
    assert (report.threads, report.runs, report.warmup) == (2, 10, 2)
    assert report.stage("preprocess").median_ms == pytest.approx(5.5)
    assert report.stage("preprocess").p90_ms == pytest.approx(9.1)  # 9 + 0.1 of the way to 10 (linear, as numpy)
    assert report.stage("inference").median_ms == pytest.approx(11.0)
    assert report.stage("total").median_ms == pytest.approx(5.5 * 3 + 0.5)


def test_time_variant_refuses_zero_runs():
    with pytest.raises(ValueError):
        time_variant(lambda: StageTimings(1, 1, 1), card="x", threads=1, runs=0)


def test_named_stages_keep_their_order_and_a_stage_a_run_skips_counts_zero():
    runs = iter([[("detect", 500.0)]] + [[("detect", float(v)), ("embed", 2.0)] if v % 2 else [("detect", float(v))]
                                         for v in range(1, 11)])
    stages = stage_latencies(lambda: next(runs), runs=10, warmup=1)
    assert [s.stage for s in stages] == ["detect", "embed"]
    assert stages[0].median_ms == pytest.approx(5.5) and stages[0].p90_ms == pytest.approx(9.1)
    assert stages[1].median_ms == pytest.approx(1.0)  # five runs at 2 ms, five without the stage
    with pytest.raises(ValueError):
        stage_latencies(lambda: [("detect", 1.0)], runs=0, warmup=0)


def test_a_budget_stops_the_runs_once_spent_but_never_below_three(monkeypatch):
    now = [0]  # ns
    monkeypatch.setattr("pipelines.common.timing.time.perf_counter_ns", lambda: now[0])

    def run():  # each run takes 10 ms
        now[0] += 10_000_000
        return [("total", 1.0)]

    assert stage_latencies(run, runs=10, warmup=0, budget_ms=50)[0].runs == 5  # 50 ms spent after five runs
    assert stage_latencies(run, runs=10, warmup=0, budget_ms=45)[0].runs == 5
    assert stage_latencies(run, runs=10, warmup=0, budget_ms=5)[0].runs == 3  # spent after one, but three at least
    assert stage_latencies(run, runs=10, warmup=2, budget_ms=50)[0].runs == 5  # warm-up runs are not in the budget
    assert stage_latencies(run, runs=10, warmup=0, budget_ms=10_000)[0].runs == 10  # at most `runs`
    assert stage_latencies(run, runs=2, warmup=0, budget_ms=1)[0].runs == 2  # fewer asked than three: all of them
    assert stage_latencies(run, runs=10, warmup=0)[0].runs == 10  # no budget: every run


def test_stopwatch_accumulates_laps(monkeypatch):
    clock = iter([0, 2_000_000, 5_000_000, 6_500_000])  # ns: start, then 2 ms, 3 ms, 1.5 ms later
    monkeypatch.setattr("pipelines.common.timing.time.perf_counter_ns", lambda: next(clock))
    watch = Stopwatch()
    watch.lap("preprocess")
    watch.lap("inference")
    watch.lap("inference")  # a second inference lap adds to the first
    t = watch.timings()
    assert (t.preprocess_ms, t.inference_ms, t.postprocess_ms) == (2.0, 4.5, 0.0)
