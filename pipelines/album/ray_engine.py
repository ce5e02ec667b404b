"""The album's photos on Ray Data: the photos as a dataset, an actor pool where each actor holds one set of
models and runs the album's own per-photo function on a batch, the features back as Arrow tables.

Runs on a local Ray the engine starts (this machine's cores) or on an existing cluster (`address`), with the
same code: the project's code travels as the job's working directory, model files come from the same store
on each node (a shared model folder, or a download checked against its sha256). Ray restarts a crashed actor
and retries its batch. Needs ray (requirements-ray.txt).
"""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_PASSED_ON = ("GRADIO_ANALYTICS_ENABLED", "HF_HUB_DISABLE_TELEMETRY", "ORT_DISABLE_TELEMETRY", "MVL_OFFLINE")
_NOT_CODE = [".venv", ".git", "models/files", "tests", "docs", "**/__pycache__", ".pytest_cache", ".hypothesis"]


class PhotoActor:
    """One actor: the album's models, loaded once, and the per-photo function the app uses."""

    def __init__(self, model_dirs: list[str], cache_dir: str, allow_download: bool):
        from models.store import ModelStore
        from pipelines.album.analysis import AlbumModels
        from pipelines.common.hub import open_hub

        self.models = AlbumModels(open_hub(ModelStore(model_dirs, cache_dir, allow_download)))

    def __call__(self, batch: dict):
        import pyarrow as pa

        from pipelines.album.features import row_of, table_of

        rows, indices = [], []
        for index, blob in zip(batch["index"], batch["item"]):
            item = pickle.loads(blob)
            rows.append(row_of(item, self.models.process(item)))
            indices.append(int(index))
        table = table_of(rows)
        return table.append_column("index", pa.array(indices, pa.int64()))


class RayEngine:
    def __init__(self, store, address: str | None = None, actors: int | None = None, batch_size: int = 8):
        import ray

        if not ray.is_initialized():
            ray.init(address=address, num_cpus=None if address else os.cpu_count(), include_dashboard=False,
                     logging_level="WARNING", configure_logging=True,
                     runtime_env={"working_dir": str(ROOT), "excludes": _NOT_CODE,
                                  "env_vars": {k: os.environ[k] for k in _PASSED_ON if k in os.environ}})
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the command line shows one bar, per photo
        self.ray = ray
        self.actors = actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.batch_size = batch_size
        # absolute: an actor's working directory is the job's copy of the code, not ours
        self.store_args = ([str(Path(d).resolve()) for d in store.model_dirs], str(Path(store.cache_dir).resolve()),
                           store.allow_download)

    def map_tables(self, items):
        """Arrow tables of feature rows (with each row's index into items), as batches finish."""
        items = list(items)
        if not items:
            return
        data = self.ray.data.from_items([{"index": i, "item": pickle.dumps(item)} for i, item in enumerate(items)],
                                        override_num_blocks=max(1, -(-len(items) // self.batch_size)))
        # Ray Data restarts a crashed actor and runs its batch again (its defaults for actor pools:
        # max_restarts=-1, max_task_retries=-1)
        features = data.map_batches(
            PhotoActor, fn_constructor_args=self.store_args, batch_size=self.batch_size, batch_format="numpy",
            compute=self.ray.data.ActorPoolStrategy(size=min(self.actors, -(-len(items) // self.batch_size))),
            num_cpus=1)
        yield from features.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=1)

    def map(self, items):
        """PhotoResult | Skipped per item, in order (the pool engines' contract)."""
        from pipelines.album.features import results_of

        ready, position, items = {}, 0, list(items)
        for part in self.map_tables(items):
            ready.update(zip(part.column("index").to_pylist(), results_of(part)))
            while position in ready:
                yield ready.pop(position)
                position += 1

    def close(self) -> None:
        self.ray.shutdown()
