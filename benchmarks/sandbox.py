"""What an uploaded model's worker costs everyone else: another session's photo on the Photo tab, answered by
the served app through its API, alone and while a compute bomb (a 1 KB graph of minutes of matrix products)
runs in an upload's limited worker until the time limit stops it. Side by side in one run; prints a Markdown
table with the ratio.

    MVL_MODEL_DIRS=../shared/models python benchmarks/sandbox.py [--bombs 3] [--seconds 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import app  # noqa: E402  (sets the telemetry variables first)
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from models.store import ModelStore  # noqa: E402
from pipelines.common.calibration import sample_photo_paths  # noqa: E402
from tests.graphs import compute_bomb  # noqa: E402
from tests.helpers import LIGHT_CLASSIFY_ARGS, free_port, upload_args  # noqa: E402


def photo_seconds(client: Client, photo: Path) -> float:
    start = time.perf_counter()
    # the Photo tab's lightest view (as the sandbox tests ask): mostly the server's own work, slowed first
    client.predict(handle_file(str(photo)), *LIGHT_CLASSIFY_ARGS, api_name="/classify")
    return time.perf_counter() - start


def upload_bomb(url: str, model: Path, photo: Path, ended: threading.Event, outcomes: list[str]) -> None:
    """Upload the bomb in a session of its own; how the upload ended goes to `outcomes`."""
    client = Client(url, verbose=False)
    try:
        client.predict(*upload_args(model, photo, 1024), api_name="/run_uploaded_model")
        outcomes.append("finished (the time limit did not stop it)")
    except AppError as refused:
        outcomes.append(str(refused))
    finally:
        client.close()
        ended.set()


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bombs", type=int, default=3, help="compute bombs uploaded one after another")
    parser.add_argument("--seconds", type=int, default=20, help="the upload time limit each bomb runs into")
    args = parser.parse_args()
    os.environ.update(MVL_UPLOAD_MEMORY_MB="1024", MVL_UPLOAD_SECONDS=str(args.seconds))
    photo = next(p for p in sample_photo_paths() if p.stem == "coffee")
    demo = app.build_app(ModelStore.from_env())
    url = app.serve(demo, port=free_port(), block=False, quiet=True)
    client = Client(url, verbose=False)
    solo, during, outcomes = [], [], []
    try:
        for _ in range(3):
            photo_seconds(client, photo)  # models loaded, caches warm
        with tempfile.TemporaryDirectory() as tmp:
            bomb = compute_bomb(Path(tmp) / "compute.onnx")
            for _ in range(args.bombs):
                solo += [photo_seconds(client, photo) for _ in range(5)]
                ended = threading.Event()
                threading.Thread(target=upload_bomb, args=(url, bomb, photo, ended, outcomes)).start()
                time.sleep(2)  # the worker has started and is multiplying
                while True:
                    seconds = photo_seconds(client, photo)
                    if ended.is_set():
                        break  # this photo may have outlived the bomb
                    during.append(seconds)
                ended.wait()
    finally:
        client.close()
        demo.close()
    print(f"cores: {os.cpu_count()}; photo: {photo.name} through /classify (1 thread, 1 timed run); "
          f"{args.bombs} compute bombs, each to be stopped at {args.seconds} s")
    for outcome in sorted(set(outcomes)):
        print(f"- {outcomes.count(outcome)} bomb(s): {outcome}")
    print()
    print("| another session's photo | photos | median s | p90 s | median / alone |")
    print("|---|---|---|---|---|")
    for name, values in (("alone", solo), ("while a bomb runs in an upload's worker", during)):
        print(f"| {name} | {len(values)} | {statistics.median(values):.2f} | {p90(values):.2f} | "
              f"{statistics.median(values) / statistics.median(solo):.2f} |")


if __name__ == "__main__":
    main()
