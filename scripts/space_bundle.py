"""Build a folder that is a complete Hugging Face Space (code, requirements, README with its front matter,
the model files this machine has, LFS routing, MODELS.md), and optionally push it.

    MVL_MODEL_DIRS=../shared/models python scripts/space_bundle.py build/space [--include-unclear]
    HF_TOKEN=... python scripts/space_bundle.py build/space --push USER/SPACE [--dry-run]

Model files are copied through the store (sha256 checked) into models/files/, which the store searches by
default. Files whose license is unclear are left out unless --include-unclear is given (the Space's README
then says which are in it and that they are for a demo only). Files the builder does not have are left to
the Space: it downloads them from their pinned source, or rebuilds them from public weights, on first use.
int8 static variants calibrated or fine-tuned on labeled photos the Space does not have are derived here and
bundled under models/files/derived/ (with their record); the others the Space derives itself on first use.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.catalog import ModelCard  # noqa: E402
from models.store import BUNDLED_DIR, ModelStore, StoreError  # noqa: E402

CODE = ("app.py", "requirements.txt", "ui", "pipelines", "models", "docs")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "files", "*.part")
LFS_PATTERNS = ("*.onnx", "*.tflite", "*.pth", "*.params", "*.binaryproto")


@dataclass(frozen=True)
class Bundled:
    card: ModelCard
    status: str  # "bundled", "left out: unclear license", "left to the Space: ..."
    size: int = 0


def unclear(card: ModelCard) -> bool:
    return card.license.upper().startswith("UNCLEAR")


def copy_code(out: Path) -> None:
    for name in CODE:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, out / name, ignore=SKIP, dirs_exist_ok=True)
        elif source.is_file():
            shutil.copy2(source, out / name)


def copy_derived(card: ModelCard, store: ModelStore, files: Path) -> Bundled:
    """A variant whose calibration photos only this machine has: derived here, bundled with its record."""
    from pipelines.common.calibration import calibration_inputs

    try:
        resolved = store.resolve(card, calibration_inputs(card))
    except StoreError as exc:
        return Bundled(card, f"left out: cannot be derived here ({exc.person})")
    target = files / "derived" / resolved.path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(resolved.path, target)
    shutil.copyfile(resolved.path.with_suffix(".json"), target.with_suffix(".json"))
    why = "fine-tuning photos" if card.recipe.fine_tune else "calibration photos"
    return Bundled(card, f"bundled (derived here: its {why} are not in the Space)", target.stat().st_size)


def copy_models(store: ModelStore, out: Path, include_unclear: bool) -> list[Bundled]:
    from pipelines.common.calibration import SHIPPED_SETS

    files = out / BUNDLED_DIR.relative_to(ROOT)
    results = []
    for card in store.catalog:
        if card.is_derived:
            parent_left_out = unclear(store.catalog[card.derived_from]) and not include_unclear
            calibration, tuned = card.recipe.calibration, card.recipe.fine_tune
            if calibration and (calibration not in SHIPPED_SETS or tuned) and not parent_left_out:
                results.append(copy_derived(card, store, files))
            continue
        if unclear(card) and not include_unclear:
            results.append(Bundled(card, "left out: unclear license (--include-unclear bundles it)"))
            continue
        try:
            resolved = store.resolve(card)
        except StoreError as exc:
            results.append(Bundled(card, f"left to the Space ({exc.person})"))
            continue
        if resolved.sha256 != card.sha256:  # a rebuild here: the Space makes its own from the same weights
            results.append(Bundled(card, "left to the Space: rebuilt there from its public weights"))
            continue
        target = files / card.file
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(resolved.path, target)
        results.append(Bundled(card, "bundled", target.stat().st_size))
    return results


def models_md(results: list[Bundled]) -> str:
    lines = ["# Model files of this Space", "",
             "Each file's public source and license. Files marked demo only have no clear license: they are "
             "here to show the app, not to be shipped in a product.", "",
             "| card | file | in this Space | MB | license | source |", "|---|---|---|---|---|---|"]
    for r in results:
        source = "; ".join(s.what + (f" ({s.url})" if s.url else "") for s in r.card.sources)
        license_ = ("**demo only**: " if unclear(r.card) else "") + r.card.license
        lines.append(f"| {r.card.name} | `{r.card.file}` | {r.status} | {r.size / 1e6:.2f} | {license_} | {source} |")
    return "\n".join(lines) + "\n"


def readme(results: list[Bundled]) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    demo_only = [r.card.name for r in results if r.status == "bundled" and unclear(r.card)]
    note = ["", "## This Space", "",
            "Built by `scripts/space_bundle.py`. MODELS.md lists every model file, its source and its license."]
    if demo_only:
        note.append("It includes files whose license is unclear, for demonstration only: " + ", ".join(demo_only) + ".")
    return text.rstrip() + "\n" + "\n".join(note) + "\n"


def build(out: Path, include_unclear: bool, store: ModelStore | None = None) -> list[Bundled]:
    store = store or ModelStore.from_env()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    copy_code(out)
    results = copy_models(store, out, include_unclear)
    (out / "MODELS.md").write_text(models_md(results), encoding="utf-8")
    (out / "README.md").write_text(readme(results), encoding="utf-8")
    (out / ".gitattributes").write_text("".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in LFS_PATTERNS))
    return results


def listing(out: Path) -> tuple[list[tuple[str, int]], int]:
    files = sorted((str(p.relative_to(out)), p.stat().st_size) for p in out.rglob("*") if p.is_file())
    return files, sum(size for _, size in files)


def push(out: Path, repo_id: str) -> str:
    from huggingface_hub import HfApi

    token = os.environ.get("HF_TOKEN")
    if not token:
        raise SystemExit("set HF_TOKEN to a token with write access to push the Space")
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="space", space_sdk="gradio", exist_ok=True)
    commit = api.upload_folder(folder_path=str(out), repo_id=repo_id, repo_type="space",
                               commit_message="Mobile Vision Lab bundle")
    return str(commit)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the folder to build (replaced if it exists)")
    parser.add_argument("--include-unclear", action="store_true", help="also bundle files whose license is unclear")
    parser.add_argument("--push", metavar="REPO_ID", help="upload the folder to this Space (token from HF_TOKEN)")
    parser.add_argument("--dry-run", action="store_true", help="with --push: list what would go up, upload nothing")
    args = parser.parse_args(argv)
    results = build(args.out, args.include_unclear)
    for r in results:
        print(f"  {r.card.name:42s} {r.status}")
    files, total = listing(args.out)
    print(f"\n{args.out}: {len(files)} files, {total / 1e6:.1f} MB")
    if args.push and args.dry_run:
        for name, size in files:
            print(f"  {size / 1e6:9.3f} MB  {name}")
        print(f"would upload {len(files)} files ({total / 1e6:.1f} MB) to the Space {args.push}")
    elif args.push:
        print(f"pushed: {push(args.out, args.push)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
