"""Face verification on the standard LFW protocol: its pairs file, its sets, accuracy over held-out sets.

    python -m pipelines.faces.lfw LFW_FOLDER pairs.txt [--embedder CARD ... | --embedder all]

LFW_FOLDER holds a folder a person (Name/Name_0001.jpg), as the LFW archives unpack (lfw, lfw-deepfunneled).
The pairs file is the protocol's own: a first line "10 300" (10 sets, each of 300 same-person pairs then 300
different-person pairs; a single number N, as in pairsDevTest.txt, is one set of N and N), then a pair a line,
"Name i j" for the same person and "Name1 i Name2 j" for two people. Each photo's face nearest the centre is
found and aligned as for the app's match thresholds (MTCNN, smallest face 20 px; a photo with none found is
embedded whole and counted). Each set is judged with the threshold chosen on the other sets, as the protocol
asks (accuracy: mean and standard error over the sets), and with the app's own threshold, which was chosen on
faces_lfw: how the threshold the Faces tab uses fares on pairs it never saw.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.hub import ModelHub
from pipelines.common.hub import open_hub
from pipelines.faces.thresholds import read_thresholds
from pipelines.faces.verification import accuracy, held_out_scores, portrait_faces
from pipelines.vision.face_embedding import Embedder


class PairsError(ValueError):
    """A pairs file or photo folder the protocol cannot be run on; the message says where and why."""


@dataclass(frozen=True)
class Pair:
    first: str  # Name/Name_0001.jpg, relative to the LFW folder
    second: str
    same: bool
    fold: int  # the set it belongs to, from 0
    line: int  # in the pairs file, from 1


def _photo(name: str, number: str, line: int) -> str:
    if not number.isdigit() or int(number) < 1:
        raise PairsError(f"pairs file line {line}: {number!r} is not a photo number (1, 2, ...)")
    return f"{name}/{name}_{int(number):04d}.jpg"


def read_pairs(path: Path) -> list[Pair]:
    """The pairs of an LFW pairs file, each with its set; a malformed file is refused naming the line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise PairsError(f"the pairs file cannot be read ({type(exc).__name__})") from exc
    numbered = [(k, line.split()) for k, line in enumerate(lines, 1) if line.strip()]
    if not numbered:
        raise PairsError("the pairs file is empty")
    header_line, header = numbered[0]
    if not (1 <= len(header) <= 2 and all(h.isdigit() and int(h) > 0 for h in header)):
        raise PairsError(f"pairs file line {header_line}: the first line gives the sets and the pairs of each kind "
                         f"per set (\"10 300\") or one count (\"500\"), not {' '.join(header)[:80]!r}")
    sets, per_kind = (1, int(header[0])) if len(header) == 1 else (int(header[0]), int(header[1]))
    rows = numbered[1:]
    if len(rows) != 2 * sets * per_kind:
        raise PairsError(f"the pairs file's first line announces {sets} set(s) of {per_kind} same-person and "
                         f"{per_kind} different-person pairs ({2 * sets * per_kind} lines), but {len(rows)} "
                         "lines follow it")
    pairs = []
    for index, (line, fields) in enumerate(rows):
        fold, same = index // (2 * per_kind), index % (2 * per_kind) < per_kind
        if same and len(fields) == 3:
            pairs.append(Pair(_photo(fields[0], fields[1], line), _photo(fields[0], fields[2], line), True, fold,
                              line))
        elif not same and len(fields) == 4:
            pairs.append(Pair(_photo(fields[0], fields[1], line), _photo(fields[2], fields[3], line), False, fold,
                              line))
        else:
            expected = "'Name i j' (a same-person pair)" if same else "'Name1 i Name2 j' (a different-person pair)"
            raise PairsError(f"pairs file line {line}: set {fold + 1} expects {expected} here, found "
                             f"{' '.join(fields)[:80]!r}")
    return pairs


def photo_paths(folder: Path, pairs: list[Pair]) -> list[Path]:
    """Every photo the pairs name, once, in order of first mention; all of them must be there."""
    names = list(dict.fromkeys(name for pair in pairs for name in (pair.first, pair.second)))
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        line = next(p.line for p in pairs if missing[0] in (p.first, p.second))
        raise PairsError(f"{len(missing)} of the {len(names)} photos the pairs name are not in the LFW folder, "
                         f"the first {missing[0]} (line {line}): give the folder that holds a folder a person")
    return [folder / name for name in names]


@dataclass(frozen=True)
class ProtocolResult:
    card: str
    pairs: int
    same_pairs: int
    set_accuracies: tuple[float, ...]  # each set judged with the threshold chosen on the others (none with one set)
    app_threshold: float | None  # the Faces tab's, from faces_lfw (None: the embedder has none yet)
    app_accuracy: float | None  # every pair judged with it

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.set_accuracies)) if self.set_accuracies else None

    @property
    def standard_error(self) -> float | None:
        if len(self.set_accuracies) < 2:
            return None
        return float(np.std(self.set_accuracies, ddof=1) / np.sqrt(len(self.set_accuracies)))


def judge(card: str, similarities: np.ndarray, pairs: list[Pair], app_threshold: float | None) -> ProtocolResult:
    same = np.array([p.same for p in pairs])
    fold_of = np.array([p.fold for p in pairs])
    held_out = tuple(held_out_scores(similarities, same, fold_of)) if len(np.unique(fold_of)) > 1 else ()
    at_app = accuracy(similarities, same, app_threshold) if app_threshold is not None else None
    return ProtocolResult(card, len(pairs), int(same.sum()), held_out, app_threshold, at_app)


def run_protocol(hub: ModelHub, folder: Path, pairs: list[Pair], cards: list[str], threads: int = 2,
                 progress=None) -> tuple[list[ProtocolResult], int, int]:
    """Each embedder's result on the pairs, the photos embedded and how many had no face found."""
    paths = photo_paths(folder, pairs)
    crops, undetected = portrait_faces(hub, paths, threads, progress)
    row = {path.relative_to(folder).as_posix(): k for k, path in enumerate(paths)}
    first = np.array([row[p.first] for p in pairs])
    second = np.array([row[p.second] for p in pairs])
    thresholds = read_thresholds()
    results = []
    for name in cards:
        vectors = Embedder(hub.load(hub.store.catalog[name], threads))(crops).vectors
        similarities = np.sum(vectors[first] * vectors[second], 1)
        known = thresholds.get(name)
        results.append(judge(name, similarities, pairs, known.threshold if known else None))
    return results, len(paths), undetected


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f} %"


def table(results: list[ProtocolResult]) -> str:
    sets = max(len(r.set_accuracies) for r in results)
    lines = [f"| embedder | accuracy over {sets} held-out sets (mean ± s.e.) | at the app's threshold "
             "| pairs (same) |", "|---|---|---|---|"]
    for r in results:
        protocol = "– (one set: no held-out threshold)" if r.mean is None else \
            f"{_percent(r.mean)} ± {100 * r.standard_error:.2f}"
        app = "– (no threshold yet)" if r.app_threshold is None else \
            f"{_percent(r.app_accuracy)} (cosine {r.app_threshold:.3f})"
        lines.append(f"| {r.card} | {protocol} | {app} | {r.pairs} ({r.same_pairs}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lfw_folder", type=Path, help="the folder that holds a folder a person")
    parser.add_argument("pairs", type=Path, help="the protocol's pairs file (pairs.txt, pairsDevTest.txt)")
    parser.add_argument("--embedder", nargs="+", default=None,
                        help="face embedder cards (default: the app's default embedder; all: every one)")
    args = parser.parse_args(argv)
    hub = open_hub()
    catalog = hub.store.catalog
    everyone = [card.name for card in catalog.for_task("face_embedding")]
    cards = args.embedder or [catalog.default("face_embedding")]
    if cards == ["all"]:
        cards = everyone
    unknown = [name for name in cards if name not in everyone]
    if unknown:
        print(f"error: {', '.join(unknown)} is not a face embedder; these are: {', '.join(everyone)}", file=sys.stderr)
        return 2
    if not args.lfw_folder.is_dir():
        print(f"error: {args.lfw_folder} is not a folder", file=sys.stderr)
        return 2

    def progress(done: int, total: int) -> None:
        if done % 500 == 0 or done == total:
            print(f"faces found and aligned: {done} of {total} photos", file=sys.stderr, flush=True)

    try:
        pairs = read_pairs(args.pairs)
        results, photos, undetected = run_protocol(hub, args.lfw_folder, pairs, cards, progress=progress)
    except PairsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table(results))
    print(f"\n{photos} photos; on {undetected} no face was found (embedded whole, resized to 112x112)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
