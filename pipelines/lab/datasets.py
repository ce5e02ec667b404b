"""The labeled photo sets the lab measures on (labels.csv + images/ folders of ../shared/eval)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LabeledPhoto:
    path: Path
    label: int  # index into the model's real classes


def imagenet_photos(folder: Path) -> list[LabeledPhoto]:
    """ImageNet validation photos; class_index is the usual 1000-class order."""
    with (folder / "labels.csv").open(newline="") as fh:
        return [LabeledPhoto(folder / "images" / r["filename"], int(r["class_index"])) for r in csv.DictReader(fh)]


def places365_photos(folder: Path) -> list[LabeledPhoto]:
    """MiniPlaces photos with a Places365 twin class (rows without one are left out)."""
    with (folder / "labels.csv").open(newline="") as fh:
        return [
            LabeledPhoto(folder / "images" / r["filename"], int(r["places365_index"]))
            for r in csv.DictReader(fh) if r["places365_index"].strip()
        ]
