"""A bounded load test against the app on 127.0.0.1: N concurrent gradio_client sessions x M requests each,
mixing photo, faces and album calls. Every answer must equal the answer the same input gets alone.

    python scripts/load_test.py [--clients 8] [--requests 20] [--url http://127.0.0.1:7860/]

Without --url it starts the app itself on a free loopback port. Only loopback addresses are accepted.
Prints p50 / p95 latency and throughput; exits non-zero on any error or differing answer.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EVAL = ROOT.parent / "shared" / "eval"
MAX_SECONDS = 900  # the whole run stops after this, whatever is left


def session_requests(index: int) -> list[tuple[str, tuple, str]]:
    """Session `index`'s own inputs, (api name, arguments, kind) for the three kinds of call: no two sessions
    send the same photo, so an answer given to the wrong session cannot pass for the right one."""
    from gradio_client import handle_file

    photos = sorted((EVAL / "coco" / "images").glob("*.jpg"))
    groups = sorted((EVAL / "faces_groups" / "images").glob("*.jpg"))
    photo = str(photos[(7 * index) % len(photos)])
    group = str(groups[index % len(groups)])
    album = [str(photos[(4 * index + k + 31) % len(photos)]) for k in range(4)]
    return [
        ("/classify", (handle_file(photo), "mobilenet_v1_0.25_128.uint8_qat_tflite", "squeezenet1.1_places365.fp32_onnx",
                       1, 1, "nanodet_m.fp32_onnx", 0.3, 0.45), "photo"),
        ("/find_faces", (handle_file(group), "MTCNN (ONNX Runtime)", "mobilefacenet.fp32_onnx", 20, 0.6, 0.7, 0.7, 600,
                         20, 1), "faces"),
        ("/analyse_album", ([handle_file(p) for p in album], None, 60, 0.003, 0.5), "album"),
    ]


def _captions(gallery) -> tuple:
    return tuple(item.get("caption") for item in gallery or ())


def _labels(label) -> tuple:
    return (label["label"], tuple((c["label"], round(c["confidence"], 4)) for c in label["confidences"]))


def answer(kind: str, result) -> tuple:
    """Everything in an answer that does not depend on timing (latencies differ from run to run)."""
    if kind == "photo":  # labels with their scores, environment, faces, numbered objects with their scores
        return (_labels(result[2]), _labels(result[3]), result[4], _captions(result[9]), result[10],
                tuple(a["label"] for a in result[11]["annotations"]))
    if kind == "faces":  # the summary without its line of milliseconds
        summary = "\n\n".join(part for part in result[2].split("\n\n") if " ms</b> here " not in part)
        return (tuple(a["label"] for a in result[0]["annotations"]), _captions(result[1]), summary)
    summary = "\n".join(line for line in result[0].split("\n") if not line.startswith("Time in"))
    return (summary, tuple(tuple(row) for row in result[1]["data"]), _captions(result[3]),
            tuple(tuple(row) for row in result[5]["data"]))


def run(url: str, clients: int, per_client: int) -> dict:
    from gradio_client import Client

    host = urlparse(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"load tests run against loopback addresses only, not {host}")
    mixes = [session_requests(i) for i in range(clients)]
    alone = {}
    client = Client(url, verbose=False)
    try:  # each session's inputs answered one at a time first: what each must get under load
        for i, mix in enumerate(mixes):
            for k in range(min(per_client, len(mix))):
                api, args, kind = mix[(i + k) % len(mix)]
                alone[(i, api)] = answer(kind, client.predict(*args, api_name=api))
    finally:
        client.close()
    deadline = time.monotonic() + MAX_SECONDS
    latencies, errors, mismatches = [], [], []

    def session(index: int) -> None:
        client = Client(url, verbose=False)
        try:
            for k in range(per_client):
                if time.monotonic() > deadline:
                    errors.append("time limit reached")
                    return
                api, args, kind = mixes[index][(index + k) % len(mixes[index])]
                start = time.perf_counter()
                try:
                    got = answer(kind, client.predict(*args, api_name=api))
                except Exception as exc:  # a load test counts every failure, whatever its type
                    errors.append(f"{api}: {type(exc).__name__}: {exc}")
                    continue
                latencies.append(time.perf_counter() - start)
                if got != alone[(index, api)]:
                    mismatches.append((index, api, got, alone[(index, api)]))
        finally:
            client.close()

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(session, range(clients)))
    wall = time.perf_counter() - start
    ordered = sorted(latencies)
    return {
        "requests": len(latencies), "errors": errors, "mismatches": mismatches, "seconds": wall,
        "p50": statistics.median(ordered) if ordered else float("nan"),
        "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else float("nan"),
        "throughput": len(latencies) / wall if wall else 0.0,
        # sessions whose answers to one kind of call differ from every other session's: a swap would show
        "distinct": {api: len({got for (_, a), got in alone.items() if a == api}) for api in {a for _, a in alone}},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--url")
    args = parser.parse_args()
    demo = None
    url = args.url
    if url is None:
        import socket

        import app

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        demo = app.build_app()
        url = app.serve(demo, port=port, block=False, quiet=True)
    try:
        result = run(url, args.clients, args.requests)
    finally:
        if demo is not None:
            demo.close()
    print("| clients | requests | errors | differing answers | p50 s | p95 s | requests/s |\n|---|---|---|---|---|---|---|")
    print(f"| {args.clients} | {result['requests']} | {len(result['errors'])} | {len(result['mismatches'])} | "
          f"{result['p50']:.2f} | {result['p95']:.2f} | {result['throughput']:.2f} |")
    for problem in result["errors"][:10] + [str(m) for m in result["mismatches"][:10]]:
        print("  ", problem)
    return 1 if result["errors"] or result["mismatches"] else 0


if __name__ == "__main__":
    sys.exit(main())
