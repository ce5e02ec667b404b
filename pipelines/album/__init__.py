"""Albums: ingest, analysis, events, the interest profile, exports; `python -m pipelines.album` runs one."""
