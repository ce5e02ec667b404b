"""The Album tab: a gallery in, events, people, private photos and an interest profile out."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import gradio as gr

from pipelines.album.analysis import AlbumResult, RememberingEngine, TripSummary, analyse_album
from pipelines.album.events import REFERENCE_THRESHOLD, EventParams
from pipelines.album.export import album_json, photos_csv, profile_csv
from pipelines.album.interest import InterestModel, interest_model
from pipelines.album.ingest import (
    MAX_ALBUM_FILE_BYTES,
    MAX_PHOTOS,
    MAX_ZIP_MEMBERS,
    MAX_ZIP_RATIO,
    MAX_ZIP_TOTAL,
    gather,
)
from pipelines.album.profile import MIN_PHOTOS, READ_DIRECTLY, too_few_photos
from ui.context import AppContext
from ui.figures import profile_figure
from ui.requests import bind, error_box, request, wire
from ui.sessions import SESSION_TTL_S, new_workdir, remove_workdir


def _summary(result: AlbumResult, params: EventParams, reused: int = 0) -> str:
    dated = [t for t in result.trips if t.trip.dated]
    undated = len(result.trips) - len(dated)
    lines = [f"**{len(result.photos)} photos: {len(dated)} trips, {sum(len(t.trip.days) for t in dated)} days, "
             f"{sum(len(t.trip.moments) for t in dated)} moments"
             + (f", {undated} group(s) of photos without a capture time" if undated else "")
             + f"; {len(result.people)} people.** A new trip starts after {params.trip_gap_hours:g} hours without "
             "photos, or where the time zone or the place (GPS) changes; days are the camera's local dates; a "
             f"moment ends after a gap that is long for this album's rhythm, or when the scene changes (distance "
             f"over {params.scene_threshold:g} for photos within {params.window.total_seconds() / 60:g} minutes)."]
    decode = sum(p.decode_ms for p in result.photos)
    infer = sum(p.inference_ms for p in result.photos)
    lines.append(f"Time in decoding {decode / 1000:.1f} s, in the models {infer / 1000:.1f} s (summed over workers"
                 + (f", as measured when each photo was processed; {reused} of them were processed in this "
                    "session's previous analysis and not again" if reused else "") + ").")
    rare = too_few_photos(result.profile, [p.name for p in result.photos])
    if rare:
        lines.append(f"Seen in fewer than {MIN_PHOTOS} photos, so not in the profile: {rare}.")
    busy = result.busy_days
    if busy.dated_days:
        lines.append(f"Busy days: {len(busy.days)} of the {busy.dated_days} dated days hold at least the album's "
                     f"average of {busy.average:.1f} photos a day; the profile's *busy days* counts, per category, "
                     "those that show it (the reference counts only such days).")
    elif result.photos:
        lines.append("Busy days: none, as no photo has a capture time (a day is the camera's date).")
    if result.private:
        lines.append(f"{len(result.private)} photo(s) show someone seen in at least 2 photos: marked private "
                     "(the reference system keeps those on the phone).")
    if result.notes:
        lines.append("\n".join(f"- {note}" for note in result.notes))
    if result.skipped:
        lines.append(f"{len(result.skipped)} file(s) skipped:\n" +
                     "\n".join(f"- {s.name}: {s.reason}" for s in result.skipped[:50]))
    return "\n\n".join(lines)


def _figure(measured: dict | None) -> str:
    if not measured or measured["precision"] is None or measured["recall"] is None:
        return f"too few labeled photos ({measured['photos'] if measured else 0})"
    return (f"recall {100 * measured['recall']:.0f} %, precision {100 * measured['precision']:.0f} % "
            f"({measured['photos']} photos)" + (", weak: treat with care" if measured["precision"] < 0.6 else ""))


def _quality(model: InterestModel, category: str) -> str:
    """How well the models see a category, as measured on labeled photos kept out of training: the held-out mix
    (mostly scenes) and close-ups of one subject (each judged by a model trained without it)."""
    if category not in model.measured:
        return READ_DIRECTLY[category]
    return (f"scenes and mixed photos: {_figure(model.measured[category])}; close-ups of one subject: "
            f"{_figure(model.close_ups.get(category))}")


def _when(trip: TripSummary) -> str:
    if trip.start is None:
        return "no capture time (grouped by content and names)"
    if trip.start.date() == trip.end.date():
        return f"{trip.start:%Y-%m-%d %H:%M}–{trip.end:%H:%M}"
    return f"{trip.start:%Y-%m-%d} – {trip.end:%Y-%m-%d}"


def _trip_views(result: AlbumResult):
    rows = []
    for trip in result.trips:
        days = "; ".join(f"{d.date:%a %d %b}: {len(d.photos)} photo(s), {len(d.moments)} moment(s)"
                         for d in trip.trip.days if d.date) or f"{len(trip.trip.photos)} photo(s)"
        rows.append([trip.name, _when(trip), days, len(trip.trip.photos), ", ".join(trip.scenes),
                     ", ".join(trip.objects)])
    private = set(result.private)
    gallery = [(result.photos[t.cover].thumbnail, f"{t.name}: {_when(t)}, {len(t.trip.photos)} photo(s)"
                + (f", {sum(p in private for p in t.trip.photos)} private" if private & set(t.trip.photos) else ""))
               for t in result.trips]
    return rows, gallery


@request("album")
def run_album(ctx: AppContext, paths, folder_paths, window_minutes, threshold, w_f, workdir, trip_gap_hours=48,
              remembered=None, progress=gr.Progress()):
    files = [(Path(p).name, Path(p)) for p in (paths or []) + (folder_paths or [])]
    if not files:
        raise gr.Error("Upload photos, a .zip of photos, or a folder.", print_exception=False)
    remove_workdir(workdir)  # the previous results' files go with them, whatever happens to this run
    album = gather(files)
    params = EventParams(trip_gap_hours=float(trip_gap_hours), window=timedelta(minutes=float(window_minutes)),
                         scene_threshold=float(threshold))
    # the photos of this session's previous analysis are not processed again: other settings cost no model time
    engine = RememberingEngine(ctx.album_workers.engine(), remembered)
    result = analyse_album(ctx.hub, album, progress=lambda done, total: progress(done / total, desc="photos"),
                           params=params, w_f=float(w_f), engine=engine)
    event_rows, event_gallery = _trip_views(result)
    people = [(p.crop, f"person {p.number}: {len(p.photos)} photo(s)") for p in result.people]
    events_per, days_per = result.event_profile.counts(), result.busy_days.profile.counts()
    model = interest_model()
    profile_rows = [[e.category, e.group, len(e.photos), events_per.get(e.category, 0), days_per.get(e.category, 0),
                     round(e.mean_score, 3), _quality(model, e.category)] for e in result.profile.entries]
    folder = new_workdir("mvl-album-")
    exports = {"album.json": album_json(result), "photos.csv": photos_csv(result), "profile.csv": profile_csv(result)}
    for name, text in exports.items():
        (folder / name).write_text(text, encoding="utf-8")
    # the profile's categories first (in the table's order), then those seen in too few photos to be in it
    pickable = result.profile.entries + result.profile.hidden
    state = {"photos": [p.thumbnail for p in result.photos], "names": [p.name for p in result.photos],
             "categories": {e.category: list(zip(e.photos, e.evidence or [""] * len(e.photos))) for e in pickable},
             "private": set(result.private)}
    choices = [e.category for e in result.profile.entries] + [
        (f"{e.category} ({len(e.photos)} photo: too few for the profile)", e.category) for e in result.profile.hidden]
    return (_summary(result, params, engine.reused), event_rows, event_gallery, people,
            profile_figure(result.profile, "Interest profile: photos per category (at least 2 photos)"),
            profile_rows, gr.Dropdown(choices=choices, value=result.profile.entries[0].category
                                      if result.profile.entries else None),
            [str(folder / name) for name in exports], state, str(folder), engine.remembered)


@request("photos_behind_category")
def photos_behind(ctx: AppContext, category, state):
    if not state or not category:
        return []
    return [(state["photos"][i], state["names"][i] + (" (private)" if i in state["private"] else "")
             + (f" · {why}" if why else "")) for i, why in state["categories"].get(category, ())]


def category_at(state, row: int) -> str | None:
    """The category of a row of the profile table (the table lists the profile's entries in order)."""
    names = list(state["categories"]) if state else []
    return names[row] if 0 <= row < len(names) else None


def build(ctx: AppContext) -> None:
    gr.Markdown(
        "A gallery in, an interest profile out: every photo through the scene model, the ImageNet classifier, "
        "the object detector and the faces; the stream split into trips, days and moments; people found; the "
        "categories the photos imply. Capture time comes from EXIF only: a photo without one is shown without "
        "a time (never the file's), after the dated ones. Your photos stay in this session; its files are "
        "deleted after."
    )
    with gr.Accordion("Limits", open=False):
        gr.Markdown(
            f"- {MAX_PHOTOS} photos an album here (more: the first {MAX_PHOTOS}; the command line "
            "`python -m pipelines.album` takes any number, on Ray too)\n"
            f"- {MAX_ALBUM_FILE_BYTES // 2**30} GB an uploaded file; a .zip may hold {MAX_ZIP_MEMBERS} files and "
            f"unpack to {MAX_ZIP_TOTAL // 2**30} GB, no member compressed more than {MAX_ZIP_RATIO}:1 (photos are "
            "read from it one at a time)\n"
            "- archives inside archives, paths outside the archive and non-photos are skipped and listed; the "
            "same photo twice is processed once")
    album_state = gr.State(None)
    album_dir = gr.State(None, delete_callback=remove_workdir, time_to_live=SESSION_TTL_S)
    album_photos = gr.State(None, time_to_live=SESSION_TTL_S)  # the last analysis' photos, by content
    with gr.Row():
        album_files = gr.File(label="Photos or a .zip", file_count="multiple", type="filepath", elem_id="album-files",
                              height=120)
        album_folder = gr.File(label="Or a folder", file_count="directory", type="filepath", height=120)
    defaults = EventParams()
    learned = interest_model().weights
    with gr.Accordion("Event and profile settings", open=False):
        with gr.Row():
            trip_gap = gr.Slider(6, 168, value=defaults.trip_gap_hours, step=1,
                                 label="New trip after (hours without photos)")
            window = gr.Slider(5, 720, value=defaults.window.total_seconds() / 60, step=5,
                               label="Moment window (minutes)")
            event_threshold = gr.Slider(0.0005, 0.0055, value=defaults.scene_threshold, step=0.0005,
                                        label="Scene distance threshold (moments)",
                                        info=f"learned {defaults.scene_threshold:g} (the reference's "
                                             f"{REFERENCE_THRESHOLD:g}); at 0.0055 scenes never split")
            w_f_in = gr.Slider(0, 1, value=learned["scene"], step=0.05, label="w_f: weight of the scenes",
                               info=f"learned: scenes {learned['scene']:g}, objects {learned['objects']:g}, ImageNet "
                                    f"{learned['imagenet']:g}; the others share what the scenes leave")
    album_run = gr.Button("Analyse album", variant="primary", elem_id="album-run")
    errors = error_box("album-error")
    album_summary = gr.Markdown(elem_id="album-summary")
    profile_table = gr.Dataframe(headers=["category", "group", "photos", "trips/groups", "busy days", "mean score",
                                          "measured on held-out photos"],
                                 label="Profile: click a category to see its photos", interactive=False,
                                 wrap=True, elem_id="profile-table",
                                 column_widths=["16%", "12%", "8%", "10%", "9%", "9%", "36%"])
    category_pick = gr.Dropdown([], label="Photos behind a category", elem_id="category-pick",
                                allow_custom_value=True)  # the choices are this session's categories
    category_photos = gr.Gallery(label="The photos behind it", columns=8, height=200, elem_id="category-photos",
                                 object_fit="contain", fit_columns=False)  # one photo keeps a tile's width, uncropped
    events_table = gr.Dataframe(headers=["trip", "when", "days", "photos", "scenes", "objects"],
                                label="Trips and their days (t: dated trips, u: photos without a capture time)",
                                interactive=False, wrap=True, elem_id="events-table",
                                column_widths=["6%", "18%", "30%", "8%", "24%", "14%"])
    events_gallery = gr.Gallery(label="A photo of each trip", columns=8, height=200, elem_id="trip-photos",
                                object_fit="contain", fit_columns=False)  # whole, with its caption in the box
    people_gallery = gr.Gallery(label="People (faces grouped across the album; aligned 112 px crops)", columns=8,
                                height=170, object_fit="scale-down", allow_preview=False, fit_columns=False)
    with gr.Accordion("The profile as a chart", open=False):
        profile_plot = gr.Plot(label="Profile")
    album_exports = gr.File(label="Export: album.json (everything), photos.csv (one row per photo), profile.csv",
                            file_count="multiple", interactive=False)
    outputs = [album_summary, events_table, events_gallery, people_gallery, profile_plot, profile_table,
               category_pick, album_exports, album_state, album_dir]
    wire(album_run.click, bind(ctx, run_album),
         [album_files, album_folder, window, event_threshold, w_f_in, album_dir, trip_gap, album_photos],
         outputs + [album_photos], errors, api_name="analyse_album", concurrency_limit=1)

    def inputs_changed(workdir):
        # results belong to the photos and settings that made them: new ones clear them (and their files)
        remove_workdir(workdir)
        return ("The album or its settings changed: press **Analyse album**.", *[None] * (len(outputs) - 1), [],
                gr.Markdown("", visible=False))

    gr.on([album_files.change, album_folder.change, trip_gap.release, window.release, event_threshold.release,
           w_f_in.release], inputs_changed, [album_dir], outputs + [category_photos, errors], api_visibility="private")

    def uploads_changed(files, folder, remembered):
        return remembered if files or folder else None  # the photos taken away: what they gave goes with them

    gr.on([album_files.change, album_folder.change], uploads_changed, [album_files, album_folder, album_photos],
          album_photos, api_visibility="private")
    category_pick.change(bind(ctx, photos_behind), [category_pick, album_state], category_photos,
                         api_name="photos_behind_category")

    def on_select(state, event: gr.SelectData):
        category = category_at(state, event.index[0])
        return (gr.Dropdown(value=category), photos_behind(ctx, category, state)) if category else \
            (gr.skip(), gr.skip())

    profile_table.select(on_select, [album_state], [category_pick, category_photos], api_visibility="private")
