"""Per-stage timings and the latency report: warm runs only, median and p90, threads recorded."""

from __future__ import annotations

import time
from collections.abc import Callable
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


@dataclass(frozen=True)
class LatencyReport:
    """Latency measured on this host (never a phone figure)."""

    card: str
    threads: int
    warmup: int
    runs: int
    stages: tuple[StageLatency, ...]  # preprocess, inference, postprocess, total

    def stage(self, name: str) -> StageLatency:
        return next(s for s in self.stages if s.stage == name)


def time_variant(call: Callable[[], StageTimings], card: str, threads: int, runs: int = 20, warmup: int = 3) -> LatencyReport:
    """Time one variant on one input: `call` runs the pipeline once and returns its stage timings."""
    if runs < 1 or warmup < 0:
        raise ValueError("runs must be at least 1 and warmup at least 0")
    for _ in range(warmup):
        call()
    rows = []
    for _ in range(runs):
        t = call()
        rows.append((t.preprocess_ms, t.inference_ms, t.postprocess_ms, t.total_ms))
    samples = np.array(rows, dtype=np.float64)
    stats = tuple(
        StageLatency(name, float(np.median(samples[:, i])), float(np.percentile(samples[:, i], 90)))
        for i, name in enumerate((*STAGES, "total"))
    )
    return LatencyReport(card=card, threads=threads, warmup=warmup, runs=runs, stages=stats)


def median_ms(call: Callable[[], object], runs: int = 15, warmup: int = 3) -> float:
    """Warm median milliseconds of a call (a model alone, a whole detector)."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))
