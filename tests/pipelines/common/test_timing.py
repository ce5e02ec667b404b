import itertools

import pytest

from pipelines.common.timing import StageTimings, Stopwatch, time_variant


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


def test_stopwatch_accumulates_laps(monkeypatch):
    clock = iter([0, 2_000_000, 5_000_000, 6_500_000])  # ns: start, then 2 ms, 3 ms, 1.5 ms later
    monkeypatch.setattr("pipelines.common.timing.time.perf_counter_ns", lambda: next(clock))
    watch = Stopwatch()
    watch.lap("preprocess")
    watch.lap("inference")
    watch.lap("inference")  # a second inference lap adds to the first
    t = watch.timings()
    assert (t.preprocess_ms, t.inference_ms, t.postprocess_ms) == (2.0, 4.5, 0.0)
