"""An album's results as files a person can keep: the profile with its evidence (JSON) and the table (CSV)."""

from __future__ import annotations

import csv
import io
import json

from pipelines.album.analysis import AlbumResult


def profile_json(result: AlbumResult) -> str:
    """The profile with the evidence behind every number: which photos support each category."""
    names = [p.name for p in result.photos]
    return json.dumps({
        "format": "mobile-vision-lab interest profile 1",
        "photos": len(result.photos),
        "groups": result.profile.groups(),
        "categories": [{"category": e.category, "group": e.group, "photos": [names[i] for i in e.photos],
                        "events": next((len(x.photos) for x in result.event_profile.entries if x.category == e.category), 0),
                        "mean_score": round(e.mean_score, 4)} for e in result.profile.entries],
        "events": [{"photos": [names[i] for i in e.photos], "start": e.start.isoformat() if e.start else None,
                    "end": e.end.isoformat() if e.end else None, "scenes": list(e.scenes), "objects": list(e.objects)}
                   for e in result.events],
        "people": [{"person": p.number, "photos": [names[i] for i in p.photos]} for p in result.people],
        "private_photos": [names[i] for i in result.private],
        "skipped": [{"file": s.name, "reason": s.reason} for s in result.skipped],
        "notes": list(result.notes),
    }, indent=1)


def profile_csv(result: AlbumResult) -> str:
    names = [p.name for p in result.photos]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["category", "group", "photos", "mean_score", "photo_names"])
    for e in result.profile.entries:
        writer.writerow([e.category, e.group, len(e.photos), round(e.mean_score, 4), ";".join(names[i] for i in e.photos)])
    return out.getvalue()
