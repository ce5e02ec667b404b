"""The album from the command line, for galleries too big to upload:

    python -m pipelines.album PHOTOS --out album.json [--csv photos.csv] [--profile-csv profile.csv]
    python -m pipelines.album PHOTOS --out album.json --engine ray [--address ray://head:10001]

album.json holds everything (the profile with its evidence, trips with their days and moments, people, one
record per photo); photos.csv one row per photo (capture time or empty, its source, trip / day / moment,
scene, objects, people, private, categories); profile.csv the category table.

With --features FOLDER (the default with --engine ray: OUT.features) every photo's features are written to
Parquet as they are made; a rerun reads them from there instead of processing the photos again, so a stopped
run resumes and a gallery is processed once and profiled many times.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from pipelines.album.analysis import PhotoResult, ProcessEngine, ThreadEngine, analyse_album
from pipelines.album.export import album_json, photos_csv, profile_csv
from pipelines.album.ingest import AlbumError, folder_files, gather
from pipelines.album.profile import MIN_PHOTOS, too_few_photos
from pipelines.common.hub import open_hub

ENGINES = {"threads": "threads of this process (the default)",
           "processes": "worker processes at a lower priority (the app's)",
           "ray": "Ray Data: an actor pool on a local Ray or an existing cluster (--address)"}


def _engine(args, hub):
    if args.engine == "processes":
        return ProcessEngine(hub.store, args.workers)
    if args.engine == "ray":
        from pipelines.album.ray_engine import RayEngine

        return RayEngine(hub.store, args.address, args.workers, args.batch_size)
    return ThreadEngine(hub, args.workers)


def stage_summary(photos: list[PhotoResult], seconds: float) -> str:
    """Photos/s over the run and, per stage, the mean milliseconds one worker spent on a photo."""
    if not photos:
        return "no photos processed in this run"
    stages = {k: statistics.mean(p.stage_ms.get(k, 0.0) for p in photos) for k in photos[0].stage_ms}
    per_photo = sum(stages.values())
    parts = ", ".join(f"{k} {v:.0f} ms" for k, v in stages.items())
    return (f"{len(photos)} photos processed in {seconds:.1f} s: {len(photos) / seconds:.1f} photos/s; per photo "
            f"and worker {per_photo:.0f} ms ({parts}): {1000 / per_photo:.1f} photos/s per worker")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", type=Path, help="a folder of photos (sub-folders included) or a .zip")
    parser.add_argument("--out", type=Path, required=True, help="everything, as JSON")
    parser.add_argument("--csv", type=Path, help="one row per photo, as CSV")
    parser.add_argument("--profile-csv", type=Path, help="the interest profile's category table, as CSV")
    parser.add_argument("--engine", choices=tuple(ENGINES), default="threads",
                        help="; ".join(f"{k}: {v}" for k, v in ENGINES.items()))
    parser.add_argument("--workers", type=int, help="threads, processes or Ray actors (default: one per core)")
    parser.add_argument("--address", help="Ray: an existing cluster's address (default: start a local Ray)")
    parser.add_argument("--batch-size", type=int, default=8, help="Ray: photos per batch")
    parser.add_argument("--features", type=Path, help="keep every photo's features here (Parquet) and resume from them")
    parser.add_argument("--max-photos", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    if args.address and args.engine != "ray":
        parser.error("--address is for --engine ray")
    if not args.photos.exists():
        parser.error(f"{args.photos} does not exist")
    files = folder_files(args.photos) if args.photos.is_dir() else [(args.photos.name, args.photos)]
    try:
        album = gather(files, args.max_photos)
    except AlbumError as exc:
        print(exc, file=sys.stderr)
        return 2
    hub = open_hub()
    engine = _engine(args, hub)
    features = args.features or (args.out.with_suffix(".features") if args.engine == "ray" else None)
    if features:
        from pipelines.album.features import FeatureTable, TabledEngine, made_by

        engine = TabledEngine(engine, FeatureTable(features, made_by(hub.store.catalog)))
    try:
        from tqdm import tqdm
        bar = tqdm(total=len(album.items), unit="photo", file=sys.stderr)
    except ImportError:  # the bar is a convenience
        bar = None
    start = time.perf_counter()
    try:
        result = analyse_album(hub, album, progress=lambda done, total: bar and bar.update(1), engine=engine)
    except AlbumError as exc:
        print(exc, file=sys.stderr)
        return 2
    finally:
        if hasattr(engine, "close"):
            engine.close()
        if bar:
            bar.close()
    seconds = time.perf_counter() - start
    args.out.write_text(album_json(result), encoding="utf-8")
    if args.csv:
        args.csv.write_text(photos_csv(result), encoding="utf-8")
    if args.profile_csv:
        args.profile_csv.write_text(profile_csv(result), encoding="utf-8")
    dated = [t for t in result.trips if t.trip.dated]
    print(f"{len(result.photos)} photos: {len(dated)} trips, {sum(len(t.trip.days) for t in dated)} days, "
          f"{sum(len(t.trip.moments) for t in dated)} moments; {len(result.trips) - len(dated)} groups of photos "
          f"without a capture time; {len(result.people)} people; profile:")
    busy = result.busy_days
    per_day = busy.profile.counts()
    if busy.dated_days:
        print(f"  busy days: {len(busy.days)} of {busy.dated_days} dated days hold the average "
              f"{busy.average:.1f} photos a day or more")
    for e in result.profile.entries:
        print(f"  {e.category:18s} {len(e.photos):4d} photos {per_day.get(e.category, 0):3d} busy days  ({e.group})")
    rare = too_few_photos(result.profile, [p.name for p in result.photos])
    if rare:
        print(f"  seen in fewer than {MIN_PHOTOS} photos, so not in the profile: {rare}")
    for s in result.skipped:
        print(f"  skipped {s.name}: {s.reason}")
    fresh = getattr(engine, "processed", {item.name for item in album.items})
    if features:
        print(f"features: {features} ({len(album.items) - len(fresh)} files read from it, {len(fresh)} processed now)")
    print(stage_summary([p for p in result.photos if p.name in fresh], seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
