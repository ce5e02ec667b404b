"""Per-stage timings and the latency report: warm runs only, median and p90, threads recorded."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

STAGES = ("preprocess", "inference", "postprocess")


@dataclass(frozen=True)
class StageTimings:
    """Milliseconds spent in each stage of one pipeline call."""

    preprocess_ms: float
    inference_ms: float
    postprocess_ms: float

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.inference_ms + self.postprocess_ms


class Stopwatch:
    """Collects stage durations with perf_counter_ns."""

    def __init__(self) -> None:
        self._last = time.perf_counter_ns()
        self.ms: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = time.perf_counter_ns()
        self.ms[stage] = self.ms.get(stage, 0.0) + (now - self._last) / 1e6
        self._last = now

    def timings(self) -> StageTimings:
        return StageTimings(*(self.ms.get(stage, 0.0) for stage in STAGES))


@dataclass(frozen=True)
class StageLatency:
    stage: str
    median_ms: float
    p90_ms: float
    runs: int  # the warm runs behind the figures


@dataclass(frozen=True)
class LatencyReport:
    """Latency measured on this host (never a phone figure)."""

    card: str
    threads: int
    warmup: int
    stages: tuple[StageLatency, ...]  # preprocess, inference, postprocess, total

    @property
    def runs(self) -> int:
        return self.stages[0].runs  # every stage is measured on the same runs

    def stage(self, name: str) -> StageLatency:
        return stage_named(self.stages, name)


def stage_named(stages: Iterable[StageLatency], name: str) -> StageLatency:
    return next(s for s in stages if s.stage == name)


MIN_RUNS = 3  # a time budget never cuts the runs below this


def stage_latencies(call: Callable[[], Iterable[tuple[str, float]]], runs: int, warmup: int,
                    budget_ms: float | None = None) -> tuple[StageLatency, ...]:
    """Median and p90 of each named stage over warm runs: `call` runs once and returns its (stage, ms) pairs (a stage
    a run does not report counts 0 ms in it; the first run sets the order). With a budget, the timed runs stop once
    they have taken that long (after at least MIN_RUNS): a slow input is measured on fewer runs, and says so."""
    if runs < 1 or warmup < 0:
        raise ValueError("runs must be at least 1 and warmup at least 0")
    for _ in range(warmup):
        call()
    samples = []
    start = time.perf_counter_ns()
    while len(samples) < runs:
        samples.append(dict(call()))
        if budget_ms is not None and len(samples) >= MIN_RUNS and (time.perf_counter_ns() - start) / 1e6 >= budget_ms:
            break
    names = list(dict.fromkeys(name for sample in samples for name in sample))
    stats = []
    for name in names:
        values = np.array([sample.get(name, 0.0) for sample in samples], dtype=np.float64)
        stats.append(StageLatency(name, float(np.median(values)), float(np.percentile(values, 90)), len(samples)))
    return tuple(stats)


def time_variant(call: Callable[[], StageTimings], card: str, threads: int, runs: int = 20, warmup: int = 3) -> LatencyReport:
    """Time one variant on one input: `call` runs the pipeline once and returns its stage timings."""

    def stages() -> list[tuple[str, float]]:
        t = call()
        return [*zip(STAGES, (t.preprocess_ms, t.inference_ms, t.postprocess_ms)), ("total", t.total_ms)]

    return LatencyReport(card=card, threads=threads, warmup=warmup, stages=stage_latencies(stages, runs, warmup))


def call_latency(call: Callable[[], object], runs: int = 15, warmup: int = 3, name: str = "call") -> StageLatency:
    """Warm median and p90 milliseconds of a call (a model alone, a whole detector)."""

    def timed() -> list[tuple[str, float]]:
        start = time.perf_counter_ns()
        call()
        return [(name, (time.perf_counter_ns() - start) / 1e6)]

    return stage_latencies(timed, runs, warmup)[0]
