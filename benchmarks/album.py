"""Album throughput: a 100-photo album of 12-megapixel JPEGs (made by upscaling the COCO eval photos) through
scene + objects + faces, at 1 and 2 workers, with the share of time in decoding and in the models; and
what JPEG draft mode saves on one such photo. Prints Markdown tables.

    MVL_MODEL_DIRS=../shared/models python benchmarks/album.py [--photos 100]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.album.analysis import MAX_SIDE, analyse_album  # noqa: E402
from pipelines.album.ingest import gather  # noqa: E402
from pipelines.common.hub import open_hub  # noqa: E402
from pipelines.common.photos import read_photo  # noqa: E402

DEFAULT_EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"


def twelve_megapixels(eval_dir: Path, count: int) -> list[tuple[str, bytes, None]]:
    sources = sorted((eval_dir / "coco" / "images").glob("*.jpg"))
    files = []
    for i in range(count):
        with Image.open(sources[i % len(sources)]) as image:
            big = image.convert("RGB").resize((4000, 3000), Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        big.save(buffer, "JPEG", quality=88)
        files.append((f"photo_{i:03d}.jpg", buffer.getvalue(), None))
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-dir", type=Path, default=Path(os.environ.get("MVL_EVAL_DIR", DEFAULT_EVAL)))
    parser.add_argument("--photos", type=int, default=100)
    args = parser.parse_args()
    files = twelve_megapixels(args.eval_dir, args.photos)
    hub = open_hub()
    analyse_album(hub, gather(files[:4]), workers=1)  # load the models and warm up
    print(f"{args.photos} JPEGs of 4000x3000 ({np.mean([len(f[1]) for f in files]) / 1e6:.1f} MB each), "
          f"{os.cpu_count()} cores, decoded to at most {MAX_SIDE} px\n")
    print("| workers | seconds | photos/s | decoding share | models share |")
    print("|---|---|---|---|---|")
    for workers in (1, 2):
        start = time.perf_counter()
        result = analyse_album(hub, gather(files), workers=workers)
        seconds = time.perf_counter() - start
        decode = sum(p.decode_ms for p in result.photos)
        infer = sum(p.inference_ms for p in result.photos)
        print(f"| {workers} | {seconds:.1f} | {len(result.photos) / seconds:.2f} | {decode / (decode + infer):.0%} | "
              f"{infer / (decode + infer):.0%} |", flush=True)
    data = files[0][1]
    timings = {}
    for label, side in (("draft mode, at most 1600 px", MAX_SIDE), ("whole 12 MP decode", None)):
        start = time.perf_counter()
        for _ in range(5):
            read_photo(data, max_side=side)
        timings[label] = (time.perf_counter() - start) / 5 * 1000
    print("\n| decoding one 12 MP JPEG | ms |\n|---|---|")
    for label, ms in timings.items():
        print(f"| {label} | {ms:.0f} |")


if __name__ == "__main__":
    main()
