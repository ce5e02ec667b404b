"""One module per task: pure pre- and post-processing, typed results with per-stage timings."""
