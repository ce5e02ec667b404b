"""The lab's results as Markdown: the README's model table, regenerated between its markers."""

from __future__ import annotations

import re
from pathlib import Path

from pipelines.lab.records import CardEvaluation

README_BEGIN, README_END = "<!-- model-table:begin -->", "<!-- model-table:end -->"


def license_note(license_: str) -> str:
    """A card's license as a table shows it: unclear licenses said plainly."""
    return "unclear: demo use only" if license_.startswith("UNCLEAR") else license_


def figure(r: CardEvaluation) -> str:
    """A row's own figure in words."""
    if r.metric == "faces found %":
        found = round(r.score * r.photos / 100)
        return f"{found}/{r.photos} faces, {r.false_positives} false"
    if r.metric == "top-1 %":
        return f"top-1 {r.score:.1f} % (top-5 {r.top5_pct:.1f})"
    if r.metric.endswith(" %"):
        return f"{r.metric[:-2]} {r.score:.1f} %"
    return f"{r.metric} {r.score:.1f}"


def against_parent(r: CardEvaluation, parent: CardEvaluation | None) -> str:
    """How far a derived row stays from its parent: the figure's change, then agreement and cosine."""
    if parent is None:
        return "–"
    parts = [f"{round(r.score - parent.score, 1) + 0.0:+.1f} {'points' if r.metric != 'mAP@0.5' else 'mAP'}"]
    if r.agreement_pct is not None:
        parts.append(f"{r.agreement_pct:.1f} % same {'top-1' if r.metric == 'top-1 %' else 'decisions'}")
    if r.cosine is not None:
        parts.append(f"cosine {r.cosine:.4f}")
    return "; ".join(parts)


def markdown_table(rows: list[CardEvaluation]) -> str:
    by_card = {r.card: r for r in rows}
    lines = [
        "| model | runtime | variant | size MB | params M | MACs M | measured on | figure | against its parent | "
        "host ms 1 / 2 threads, warm median (p90) | license |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.card} | {r.runtime} | {r.variant} | {r.size_mb:.2f} | {r.params / 1e6:.3f} | "
            f"{f'{r.macs / 1e6:.1f}' if r.macs else 'varies'} | "
            f"{r.photos} {r.eval_set} | {figure(r)} | {against_parent(r, by_card.get(r.derived_from))} | "
            f"{r.latency_1t_ms:.2f} ({r.latency_1t_p90_ms:.2f}) / {r.latency_2t_ms:.2f} ({r.latency_2t_p90_ms:.2f}) | "
            f"{license_note(r.license)} |"
        )
    return "\n".join(lines)


def update_readme(readme: Path, table: str) -> None:
    text = readme.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(README_BEGIN) + ".*?" + re.escape(README_END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{readme} has no {README_BEGIN} ... {README_END} section")
    readme.write_text(pattern.sub(lambda _: f"{README_BEGIN}\n{table}\n{README_END}", text), encoding="utf-8")
