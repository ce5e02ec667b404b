"""The lab's results as Markdown: the README's model table, regenerated between its markers."""

from __future__ import annotations

import re
from pathlib import Path

from pipelines.lab.records import CardEvaluation

README_BEGIN, README_END = "<!-- model-table:begin -->", "<!-- model-table:end -->"


def license_note(license_: str) -> str:
    """A card's license as a table shows it: unclear licenses said plainly."""
    return "unclear: demo use only" if license_.startswith("UNCLEAR") else license_


def markdown_table(rows: list[CardEvaluation]) -> str:
    lines = [
        "| card | runtime | precision | size MB | params M | MACs M | eval photos | top-1 % | top-5 % | "
        "agrees with fp32 % | cosine | host ms 1 thr | 2 thr | license |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        license_ = license_note(r.license)
        agreement = f"{r.agreement_pct:.1f}" if r.agreement_pct is not None else "–"
        cosine = f"{r.cosine:.4f}" if r.cosine is not None else "–"
        lines.append(
            f"| {r.card} | {r.runtime} | {r.variant} | {r.size_mb:.2f} | {r.params / 1e6:.3f} | {r.macs / 1e6:.1f} | "
            f"{r.photos} {r.eval_set} | {r.top1_pct:.1f} | {r.top5_pct:.1f} | {agreement} | {cosine} | "
            f"{r.latency_1t_ms:.2f} | {r.latency_2t_ms:.2f} | {license_} |"
        )
    return "\n".join(lines)


def update_readme(readme: Path, table: str) -> None:
    text = readme.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(README_BEGIN) + ".*?" + re.escape(README_END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{readme} has no {README_BEGIN} ... {README_END} section")
    readme.write_text(pattern.sub(lambda _: f"{README_BEGIN}\n{table}\n{README_END}", text), encoding="utf-8")
