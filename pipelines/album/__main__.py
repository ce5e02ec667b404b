"""The album from the command line, for galleries too big to upload:

    python -m pipelines.album PHOTOS_FOLDER --out album.json [--csv photos.csv] [--profile-csv profile.csv]

album.json holds everything (the profile with its evidence, trips with their days and moments, people, one
record per photo); photos.csv one row per photo (capture time or empty, its source, trip / day / moment,
scene, objects, people, private, categories); profile.csv the category table.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipelines.album.analysis import ProcessEngine, analyse_album
from pipelines.album.export import album_json, photos_csv, profile_csv
from pipelines.album.ingest import folder_files, gather
from pipelines.common.hub import open_hub


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", type=Path, help="a folder of photos (sub-folders included) or a .zip")
    parser.add_argument("--out", type=Path, required=True, help="everything, as JSON")
    parser.add_argument("--csv", type=Path, help="one row per photo, as CSV")
    parser.add_argument("--profile-csv", type=Path, help="the interest profile's category table, as CSV")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--engine", choices=("threads", "processes"), default="threads",
                        help="threads of this process (fastest), or worker processes at a lower priority")
    parser.add_argument("--max-photos", type=int, default=10_000)
    args = parser.parse_args(argv)
    files = folder_files(args.photos) if args.photos.is_dir() else [(args.photos.name, args.photos.read_bytes())]
    album = gather(files, args.max_photos)
    try:
        from tqdm import tqdm
        bar = tqdm(total=len(album.items), unit="photo", file=sys.stderr)
    except ImportError:  # the bar is a convenience
        bar = None

    def progress(done: int, total: int) -> None:
        if bar:
            bar.update(1)

    hub = open_hub()
    engine = ProcessEngine(hub.store, args.workers) if args.engine == "processes" else None
    try:
        result = analyse_album(hub, album, args.workers, progress, engine=engine)
    finally:
        if engine:
            engine.close()
    if bar:
        bar.close()
    args.out.write_text(album_json(result), encoding="utf-8")
    if args.csv:
        args.csv.write_text(photos_csv(result), encoding="utf-8")
    if args.profile_csv:
        args.profile_csv.write_text(profile_csv(result), encoding="utf-8")
    dated = [t for t in result.trips if t.trip.dated]
    print(f"{len(result.photos)} photos: {len(dated)} trips, {sum(len(t.trip.days) for t in dated)} days, "
          f"{sum(len(t.trip.moments) for t in dated)} moments; {len(result.trips) - len(dated)} groups of photos "
          f"without a capture time; {len(result.people)} people; profile:")
    for e in result.profile.entries:
        print(f"  {e.category:18s} {len(e.photos):4d} photos  ({e.group})")
    for s in result.skipped:
        print(f"  skipped {s.name}: {s.reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
