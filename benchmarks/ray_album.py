"""The album's photos on Ray Data against the local thread pool, side by side in one run on this machine.

    MVL_MODEL_DIRS=../shared/models python benchmarks/ray_album.py [--photos 200]

The same album of 12-megapixel phone photos (COCO photos upscaled, as JPEG, written to a folder and read one
at a time) through the local pool (2 threads) and through Ray Data (a local Ray, one actor per core), both
steady state: models loaded and Ray started before the clock starts, as on a cluster that processes a
gallery after another. Prints photos/s, Ray's overhead as a ratio, the per-stage milliseconds, and the
cluster size 100,000 photos in 10 minutes would need.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.album.analysis import ThreadEngine, analyse_album  # noqa: E402
from pipelines.album.ingest import folder_files, gather  # noqa: E402
from pipelines.album.ray_engine import RayEngine  # noqa: E402
from pipelines.common.hub import open_hub  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"
GALLERY, MINUTES = 100_000, 10


def phone_photos(folder: Path, count: int) -> None:
    sources = sorted((EVAL / "coco" / "images").glob("*.jpg"))
    for i in range(count):
        with Image.open(sources[i % len(sources)]) as image:
            big = image.convert("RGB").resize((4032, 3024), Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        big.save(buffer, "JPEG", quality=85)
        (folder / f"IMG_{i:05d}.JPG").write_bytes(buffer.getvalue())


def run(hub, album, engine) -> tuple[float, list]:
    start = time.perf_counter()
    result = analyse_album(hub, album, engine=engine)
    return len(result.photos) / (time.perf_counter() - start), list(result.photos)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=200)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    hub = open_hub()
    with tempfile.TemporaryDirectory() as folder:
        phone_photos(Path(folder), args.photos)
        album = gather(folder_files(Path(folder)), max_photos=args.photos)
        warm = gather(folder_files(Path(folder))[:8])
        pool = ThreadEngine(hub, cores)
        ray = RayEngine(hub.store, actors=cores)
        try:
            for engine in (pool, ray):  # models loaded, actors started
                analyse_album(hub, warm, engine=engine)
            pool_rate, _ = run(hub, album, pool)
            ray_rate, photos = run(hub, album, ray)
        finally:
            ray.close()
    stages = {k: statistics.mean(p.stage_ms[k] for p in photos) for k in photos[0].stage_ms}
    per_photo = sum(stages.values())
    per_core = 1000 / per_photo
    efficiency = ray_rate / (cores * per_core)
    needed = GALLERY / (MINUTES * 60)
    print(f"\n{args.photos} photos of 12 MP (JPEG, decoded to a 600 px shorter side through 1/4-scale draft), "
          f"{cores} cores, steady state\n")
    print("| engine | photos/s | against the pool |\n|---|---|---|")
    print(f"| local pool, {cores} threads | {pool_rate:.1f} | 1.00 |")
    print(f"| Ray Data, local, {cores} actors | {ray_rate:.1f} | {ray_rate / pool_rate:.2f} |")
    print("\nPer photo and worker (Ray actors): " + ", ".join(f"{k} {v:.0f} ms" for k, v in stages.items())
          + f"; {per_photo:.0f} ms in all: {per_core:.1f} photos/s per core; Ray delivers {efficiency:.0%} of that "
          f"per core here.")
    print(f"{GALLERY:,} photos in {MINUTES} minutes = {needed:.0f} photos/s: about "
          f"{needed / (per_core * efficiency):.0f} cores (e.g. {-(-needed / (per_core * efficiency) // 16):.0f} nodes "
          f"of 16 cores), if the photos are read as fast from shared storage.")


if __name__ == "__main__":
    main()
