import itertools

import numpy as np
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
    assert report.stage("preprocess").p90_ms == pytest.approx(np.percentile(range(1, 11), 90))
    assert report.stage("inference").median_ms == pytest.approx(11.0)
    assert report.stage("total").median_ms == pytest.approx(5.5 * 3 + 0.5)


def test_time_variant_refuses_zero_runs():
    with pytest.raises(ValueError):
        time_variant(lambda: StageTimings(1, 1, 1), card="x", threads=1, runs=0)


def test_stopwatch_accumulates_laps():
    watch = Stopwatch()
    watch.lap("preprocess")
    watch.lap("inference")
    watch.lap("inference")
    t = watch.timings()
    assert t.postprocess_ms == 0 and t.preprocess_ms >= 0 and t.inference_ms >= 0
