"""Every derived int8 static variant against its fp32 parent, side by side in one run: the model alone, warm
median at 1 and 2 threads on a real photo, and what the variant keeps of the parent's figure (from the lab's cache).

    MVL_MODEL_DIRS=../shared/models python benchmarks/int8.py [--runs 30] [--where CARD ...]

A variant no faster than its parent at 1 thread (and any card given with --where) then gets where its time
goes: ONNX Runtime's own profile of both files at 1 thread, per op type, and per module of the graph (nodes
grouped by their name's path): the time if every module ran in its faster form with nothing converting
between them, the most any mix of int8 and float modules could reach.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.common.calibration import calibration_photos  # noqa: E402
from pipelines.common.hub import open_hub  # noqa: E402
from pipelines.common.preprocess import to_input_tensor  # noqa: E402
from pipelines.lab.quantization import inference_latency  # noqa: E402
from pipelines.lab.records import read_evaluations  # noqa: E402


def node_times(path: Path, tensor: np.ndarray, runs: int, warmup: int = 3) -> dict[tuple[str, str], float]:
    """Mean ms a warm run per (node name, op type) from ONNX Runtime's profiler, 1 thread, spinning off as the
    backend runs it."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="mvl-profile-") as tmp:
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "profile")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feeds = {session.get_inputs()[0].name: tensor}
        for _ in range(warmup + runs):
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    seen: Counter = Counter()
    totals: Counter = Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            key = (event["name"].removesuffix("_kernel_time"), event["args"]["op_name"])
            seen[key] += 1
            if seen[key] > warmup:  # each node's first runs are the warm-up
                totals[key] += event["dur"]
    return {key: us / runs / 1000 for key, us in totals.items()}


def where_time_goes(parent_path: Path, variant_path: Path, tensor: np.ndarray, runs: int) -> None:
    parent, variant = node_times(parent_path, tensor, runs), node_times(variant_path, tensor, runs)
    for label, times in (("parent", parent), ("int8", variant)):
        ops: Counter = Counter()
        for (_, op), ms in times.items():
            ops[op] += ms
        print(f"  {label} {sum(times.values()):.2f} ms: "
              + ", ".join(f"{op} {ms:.2f}" for op, ms in ops.most_common(8)))

    def modules(times):
        """Nodes by the module that holds them: ".../dconv/conv/Conv_token_7" and ".../dconv/act/Mul" (and the
        fused ".../dconv/act/Mul/QuickGeluFusion/") are all ".../dconv"."""
        grouped: Counter = Counter()
        for (name, _), ms in times.items():
            parts = name.rstrip("/").split("/")
            parts = parts[:next((i for i, p in enumerate(parts) if p.endswith("Fusion")), len(parts))]
            grouped["/".join(parts[:-2]) if len(parts) > 2 else "(the runtime's own nodes)"] += ms
        return grouped

    mp, mv = modules(parent), modules(variant)
    shared = set(mp) & set(mv)
    faster = [m for m in shared if mv[m] < mp[m]]
    best = sum(min(mp[m], mv[m]) for m in shared) + sum(mp[m] for m in set(mp) - shared)
    print(f"  modules faster in int8: {len(faster)} of {len(shared)}, saving {sum(mp[m] - mv[m] for m in faster):.2f} "
          f"ms; slower: {len(shared) - len(faster)}, costing {sum(mv[m] - mp[m] for m in shared - set(faster)):.2f} "
          f"ms; conversions only the int8 file has: {sum(mv[m] for m in set(mv) - shared):.2f} ms")
    print(f"  every module in its faster form, conversions free: {best:.2f} ms "
          f"({best / sum(parent.values()):.2f}x the parent's profiled time)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--where", nargs="*", default=[], metavar="CARD",
                        help="int8 static cards to profile per op type whatever their speed-up")
    args = parser.parse_args()
    hub = open_hub()
    cached = read_evaluations()
    print("| int8 static variant | kept in float | parent ms 1 thr | int8 ms 1 thr | speed-up | 2 thr | "
          "figure: parent -> int8 |")
    print("|---|---|---|---|---|---|---|")
    slow = []
    for card in hub.store.catalog:
        if card.recipe is None or card.recipe.kind != "int8_static":
            continue
        rows = {}
        # a real photo of the kind it was calibrated on (faces for a face embedder), as the pipeline feeds it
        tensor = to_input_tensor(calibration_photos(card.recipe.calibration)[0], card.input)  # the parent's contract
        for threads in (1, 2):
            for name in (card.derived_from, card.name):
                model = hub.load(name, threads)
                rows[(name, threads)] = inference_latency(model, tensor, args.runs).median_ms
        parent, mine = cached.get(card.derived_from), cached.get(card.name)
        figure = f"{parent.metric} {parent.score:.1f} -> {mine.score:.1f}" if parent and mine else "not evaluated"
        p1, q1, p2, q2 = (rows[(card.derived_from, 1)], rows[(card.name, 1)], rows[(card.derived_from, 2)],
                          rows[(card.name, 2)])
        print(f"| {card.name} | {len(card.recipe.keep_float)} tensors | {p1:.2f} | {q1:.2f} | {p1 / q1:.2f}x | "
              f"{p2 / q2:.2f}x | {figure} |", flush=True)
        if p1 <= q1 or card.name in args.where:
            slow.append((card, tensor))
    for card, tensor in slow:
        print(f"\nwhere the time goes, {card.name} against {card.derived_from}, 1 thread, ONNX Runtime's profiler:")
        where_time_goes(hub.load(card.derived_from).file.path, hub.load(card.name).file.path, tensor, args.runs)


if __name__ == "__main__":
    main()
