"""An album's results as files a person can keep: everything as JSON, one row per photo as CSV, and the
interest profile's category table as CSV. A photo without a capture time has an empty time, never another."""

from __future__ import annotations

import csv
import io
import json

from pipelines.album.analysis import AlbumResult

PHOTO_COLUMNS = ("file", "capture_time", "time_source", "trip", "day", "moment", "top_scene", "objects", "people",
                 "private", "categories")


def photo_rows(result: AlbumResult) -> list[dict]:
    """Per photo: where it sits (trip, day, moment), what it shows, who is in it and what it supports."""
    people = {i: [] for i in range(len(result.photos))}
    for person in result.people:
        for i in person.photos:
            people[i].append(person.number)
    categories = result.profile.categories_per_photo(len(result.photos))
    private = set(result.private)
    rows = []
    for i, (photo, (trip, day, moment)) in enumerate(zip(result.photos, result.placement)):
        rows.append({
            "file": photo.name, "capture_time": photo.time.isoformat() if photo.time else "",
            "time_source": photo.time_source, "trip": trip, "day": day, "moment": moment,
            "top_scene": photo.top_scenes[0] if photo.top_scenes else "", "objects": list(photo.objects),
            "people": people[i], "private": i in private, "categories": categories[i],
        })
    return rows


def album_json(result: AlbumResult) -> str:
    """The profile with the evidence behind every number, the trips with their days and moments, people, and
    one record per photo."""
    names = [p.name for p in result.photos]
    per_trip = result.event_profile.counts()
    busy = result.busy_days
    per_day = busy.profile.counts()
    return json.dumps({
        "format": "mobile-vision-lab album 3",  # 3: busy days
        "photos": len(result.photos),
        "groups": result.profile.groups(),
        "categories": [{"category": e.category, "group": e.group, "photos": [names[i] for i in e.photos],
                        "evidence": list(e.evidence), "trips": per_trip.get(e.category, 0),
                        "busy_days": per_day.get(e.category, 0),
                        "mean_score": round(e.mean_score, 4)} for e in result.profile.entries],
        "busy_days": {"dated_days": busy.dated_days, "average_photos_per_day": round(busy.average, 3),
                      "days": [{"date": d.date.isoformat(), "photos": [names[i] for i in d.photos]}
                               for d in busy.days]},
        "seen_in_too_few_photos": [{"category": e.category, "photos": [names[i] for i in e.photos],
                                    "evidence": list(e.evidence)} for e in result.profile.hidden],
        "weights": result.weights,
        "trips": [{"trip": t.name, "dated": t.trip.dated, "start": t.start.isoformat() if t.start else None,
                   "end": t.end.isoformat() if t.end else None, "scenes": list(t.scenes), "objects": list(t.objects),
                   "cover": names[t.cover], "days": [{"date": d.date.isoformat() if d.date else None,
                             "moments": [[names[i] for i in m] for m in d.moments]} for d in t.trip.days]}
                  for t in result.trips],
        "people": [{"person": p.number, "photos": [names[i] for i in p.photos]} for p in result.people],
        "private_photos": [names[i] for i in result.private],
        "photo_records": photo_rows(result),
        "skipped": [{"file": s.name, "reason": s.reason} for s in result.skipped],
        "notes": list(result.notes),
    }, indent=1)


def photos_csv(result: AlbumResult) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=PHOTO_COLUMNS)
    writer.writeheader()
    for row in photo_rows(result):
        writer.writerow({k: ";".join(map(str, v)) if isinstance(v, list) else v for k, v in row.items()})
    return out.getvalue()


def profile_csv(result: AlbumResult) -> str:
    names = [p.name for p in result.photos]
    out = io.StringIO()
    writer = csv.writer(out)
    per_day = result.busy_days.profile.counts()
    writer.writerow(["category", "group", "photos", "busy_days", "mean_score", "photo_names"])
    for e in result.profile.entries:
        writer.writerow([e.category, e.group, len(e.photos), per_day.get(e.category, 0), round(e.mean_score, 4),
                         ";".join(names[i] for i in e.photos)])
    return out.getvalue()
