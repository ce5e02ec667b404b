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


@dataclass(frozen=True)
class FaceBoxes:
    path: Path
    faces: tuple[tuple[float, float, float, float], ...]  # annotated faces to find (x1, y1, x2, y2)
    ignored: tuple[tuple[float, float, float, float], ...]  # marked ignore: finding them is neither hit nor error


def face_group_photos(folder: Path) -> list[FaceBoxes]:
    """Group photos with every annotated face (labels.csv names the photos, boxes.csv the faces)."""
    with (folder / "labels.csv").open(newline="") as fh:
        names = sorted({r["filename"] for r in csv.DictReader(fh)})
    with (folder / "boxes.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))

    def boxes(name: str, ignore: str) -> tuple:
        return tuple(tuple(float(r[k]) for k in ("x1", "y1", "x2", "y2")) for r in rows
                     if r["filename"] == name and r["ignore"] == ignore)

    return [FaceBoxes(folder / "images" / name, boxes(name, "0"), boxes(name, "1")) for name in names]
