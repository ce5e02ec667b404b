"""The Faces tab: faces found, aligned, embedded and matched with the session's gallery; enrolment, people
across photos, and an opt-in saved gallery."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from pipelines.common.photos import Photo, PhotoError, read_photo
from pipelines.faces.errors import FaceError
from pipelines.faces.gallery import Gallery, export_json, match_faces
from pipelines.faces.pipeline import (
    FacePipeline,
    group_analyses,
    match_threshold,
    person_embeddings,
)
from pipelines.vision.face_detection import DetectorOptions
from ui.context import FACE_EXAMPLES, AppContext
from ui.figures import draw_landmarks
from ui.format import PHONE_HEADERS, PHONE_WIDTHS, faces_latency_line, gallery_rows, phone_latency_rows, phone_markdown
from ui.pickers import model_choices, threads_picker, variant_label
from ui.requests import bind, error_box, request, wire
from ui.sessions import SESSION_TTL_S, new_workdir, remove_workdir

MAX_GROUP_PHOTOS = 20
LATENCY_RUNS = 10  # warm runs behind the figure in view, as the Photo tab's
LATENCY_BUDGET_MS = 1500  # a crowd's runs stop here (at least 3): the answer is not kept waiting for its timing


def _one_of_several(path) -> Photo:
    """A photo of a several-photo upload: one that cannot be read is named, so the person knows which."""
    try:
        return read_photo(path)
    except PhotoError as exc:
        raise FaceError(f"{Path(path).name} cannot be used: {exc}") from None


def detector_options(min_face, p_net, r_net, o_net, shorter_side, max_faces) -> DetectorOptions:
    return DetectorOptions(int(min_face), (float(p_net), float(r_net), float(o_net)), int(shorter_side), int(max_faces))


def _summary(analysis, detector: str, embedder: str, options: DetectorOptions, gallery: Gallery, comparable: bool,
             speed: str):
    faces = analysis.detections.faces
    lines = [f"**{len(faces)} face(s)** found by {detector}" if faces else
             f"**No face found** by {detector} (none at least {options.min_face} px).", speed]
    if analysis.detections.skipped:
        lines.append(f"{analysis.detections.skipped} more face(s) skipped: the {options.max_faces} largest are shown.")
    if analysis.detections.downscale < 1:
        lines.append(f"The photo was downscaled to {analysis.detections.downscale:.0%} first (shorter side "
                     f"{options.max_shorter_side} px, the reference app's setting).")
    present = faces[0].landmarks_present if faces else (True,) * 5
    if faces and not all(present):
        lines.append("This detector gives no mouth corners: faces are aligned on the eyes and the nose.")
    if not comparable:
        lines.append(f"Your gallery holds {gallery.card} embeddings; {embedder} is another network, so these faces "
                     "are not compared with it.")
    lines.append(f"Match threshold for {embedder}: cosine {analysis.threshold:.3f}, the value that best separates "
                 "same-person from different-person pairs of the labeled LFW photos (faces_lfw).")
    return "\n\n".join(lines)


@request("find_faces")
def find_faces(ctx: AppContext, path, detector, embedder, min_face, p_net, r_net, o_net, shorter_side, max_faces,
               threads, gallery):
    if not path:
        raise gr.Error("Upload a photo first (or click an example).", print_exception=False)
    gallery = gallery or Gallery()
    photo = read_photo(path)
    options = detector_options(min_face, p_net, r_net, o_net, shorter_side, max_faces)
    pipeline = FacePipeline.load(ctx.hub, detector, embedder, int(threads))
    analysis = pipeline(photo.image, options)
    comparable = not gallery.entries or gallery.space == analysis.embeddings.space
    matches = match_faces(gallery if comparable else Gallery(), analysis.embeddings, analysis.threshold)
    faces = analysis.detections.faces
    annotations = [(tuple(int(round(v)) for v in f.box), f"face {i + 1}: {m.describe()}")
                   for i, (f, m) in enumerate(zip(faces, matches))]
    crops = [(crop, f"face {i + 1} · score {f.score:.2f} · {m.describe()}")
             for i, (crop, f, m) in enumerate(zip(analysis.crops, faces, matches))]
    # timed again: that first call may have been cold, and it is the warm-up of these runs
    stages = pipeline.latency(photo.image, options, runs=LATENCY_RUNS, warmup=0, budget_ms=LATENCY_BUDGET_MS)
    latency = [[s.stage, round(s.median_ms, 2), round(s.p90_ms, 2)] for s in stages]
    cards = tuple(c for c in ctx.catalog if c.display == detector or c.name == embedder)
    phone = [row for card in cards for row in phone_latency_rows(card)]
    speed = faces_latency_line(stages, len(faces), int(threads), cards)
    state = {"crops": analysis.crops, "embeddings": analysis.embeddings}
    return ((draw_landmarks(photo.image, faces), annotations), crops,
            _summary(analysis, detector, embedder, options, gallery, comparable, speed), latency, phone,
            phone_markdown(cards), state)


@request("enroll_face")
def enroll_face(ctx: AppContext, number, name, last, gallery):
    gallery = gallery or Gallery()
    if not last or not len(last["crops"]):
        raise gr.Error("Find faces in a photo first; then enroll one of them by its number.", print_exception=False)
    index = int(number or 0) - 1
    if not 0 <= index < len(last["crops"]):
        raise gr.Error(f"There are faces 1 to {len(last['crops'])} in the last photo.", print_exception=False)
    gallery = gallery.enroll(name or "", last["embeddings"], index, last["crops"][index])
    return gallery, gallery_rows(gallery)


@request("enroll_photos")
def enroll_photos(ctx: AppContext, paths, name, detector, embedder, min_face, p_net, r_net, o_net, shorter_side,
                  max_faces, threads, gallery):
    gallery = gallery or Gallery()
    if not paths:
        raise gr.Error("Upload one or more reference photos of the person.", print_exception=False)
    options = detector_options(min_face, p_net, r_net, o_net, shorter_side, max_faces)
    faces_of = FacePipeline.load(ctx.hub, detector, embedder, int(threads))
    for path in paths:
        analysis = faces_of(_one_of_several(path).image, options)
        count = len(analysis.detections.faces)
        if count != 1:
            raise FaceError(
                f"{Path(path).name} has {'no face' if count == 0 else f'{count} faces'}: a reference photo must show "
                "exactly one. For a group photo, use Find faces and enroll the right face by its number"
            )
        gallery = gallery.enroll(name or "", analysis.embeddings, 0, analysis.crops[0])
    return gallery, gallery_rows(gallery)


@request("forget_person")
def forget(ctx: AppContext, name, gallery):
    gallery = (gallery or Gallery()).forget((name or "").strip())
    return gallery, gallery_rows(gallery)


@request("save_gallery")
def save_gallery(ctx: AppContext, gallery):
    return ctx.saved.save(gallery or Gallery())


@request("load_gallery")
def load_gallery(ctx: AppContext, key):
    gallery = ctx.saved.load(key or "")
    return gallery, gallery_rows(gallery)


@request("delete_saved_gallery")
def delete_saved(ctx: AppContext, key):
    ctx.saved.delete(key or "")
    return "The saved gallery was deleted from this server."


@request("export_gallery")
def export_gallery(ctx: AppContext, gallery, workdir):
    gallery = gallery or Gallery()
    if not gallery.entries:
        raise gr.Error("The gallery is empty: enroll someone first.", print_exception=False)
    remove_workdir(workdir)
    folder = new_workdir("mvl-export-")
    path = folder / "face_gallery.json"
    path.write_text(export_json(gallery), encoding="utf-8")
    return str(path), str(folder)


@request("group_faces")
def group_faces(ctx: AppContext, paths, detector, embedder, min_face, p_net, r_net, o_net, shorter_side, max_faces,
                threads, gallery):
    if not paths:
        raise gr.Error("Upload several photos to group their faces into people.", print_exception=False)
    if len(paths) > MAX_GROUP_PHOTOS:
        raise gr.Error(f"At most {MAX_GROUP_PHOTOS} photos at a time here (the Album tab takes more).",
                       print_exception=False)
    options = detector_options(min_face, p_net, r_net, o_net, shorter_side, max_faces)
    faces_of = FacePipeline.load(ctx.hub, detector, embedder, int(threads))
    analyses = [faces_of(_one_of_several(path).image, options) for path in paths]
    files = [Path(path).name for path in paths]
    threshold = match_threshold(embedder)
    people = group_analyses(analyses, threshold)
    gallery = gallery or Gallery()
    names = match_faces(gallery, person_embeddings(analyses, people), threshold)
    shown = [(person.crop, f"person {person.number}: {len(person.faces)} face(s)"
              + (f" · {m.describe()}" if gallery.entries else "")) for person, m in zip(people, names)]
    rows = [[person.number, len(person.faces), len(person.photos), ", ".join(sorted({files[p] for p in person.photos}))]
            for person in people]
    return shown, rows


def _detection_controls(ctx: AppContext):
    catalog = ctx.catalog
    detector = gr.Dropdown(model_choices(ctx, "face_detection"), value=ctx.default("face_detection"),
                           label="Face detector")
    embedders = [(f"{c.display}: {variant_label(ctx, c)}", c.name) for c in catalog.for_task("face_embedding")]
    embedder = gr.Dropdown(embedders, value=ctx.default("face_embedding"), label="Face embedder",
                           allow_custom_value=True)
    defaults = DetectorOptions()
    min_face = gr.Slider(12, 400, value=defaults.min_face, step=1,
                         label="Minimum face (px, longer side, on the downscaled photo)")
    with gr.Accordion("Detector settings", open=False):
        with gr.Row():
            p_net, r_net, o_net = (gr.Slider(0.1, 0.99, value=v, step=0.01, label=f"{stage} threshold")
                                   for stage, v in zip(("P-Net", "R-Net", "O-Net"), defaults.thresholds))
        shorter_side = gr.Slider(200, 2000, value=defaults.max_shorter_side, step=10,
                                 label="Downscale: shorter side at most (px)")
        max_faces = gr.Slider(1, 100, value=20, step=1, label="At most this many faces (the largest)")
        threads = threads_picker()
    return [detector, embedder, min_face, p_net, r_net, o_net, shorter_side, max_faces, threads]


def _gallery_section(ctx: AppContext, face_gallery: gr.State, last_faces: gr.State, options_in: list):
    gr.Markdown("### Your gallery (this session only)")
    with gr.Row():
        face_number = gr.Number(1, label="Face # (the number on the photo)", precision=0, minimum=1)
        face_name = gr.Textbox(label="Name", placeholder="who is it?")
        enroll = gr.Button("Enroll this face", elem_id="enroll")
    with gr.Row():
        reference_photos = gr.File(label="Or reference photos of one person (one face each)", file_count="multiple",
                                   type="filepath")
        enroll_refs = gr.Button("Enroll from photos")
    errors = error_box("gallery-error")
    enrolled = gr.Dataframe(headers=["name", "faces", "embedder"], label="Enrolled", interactive=False,
                            elem_id="enrolled")
    with gr.Row():
        forget_name = gr.Textbox(label="Forget a person", placeholder="name")
        forget_button = gr.Button("Forget")
    changed = [
        wire(enroll.click, bind(ctx, enroll_face), [face_number, face_name, last_faces, face_gallery],
             [face_gallery, enrolled], errors, api_name="enroll_face"),
        wire(enroll_refs.click, bind(ctx, enroll_photos), [reference_photos, face_name] + options_in + [face_gallery],
             [face_gallery, enrolled], errors, api_name="enroll_photos"),
        wire(forget_button.click, bind(ctx, forget), [forget_name, face_gallery], [face_gallery, enrolled], errors,
             api_name="forget_person"),
    ]
    return enrolled, changed


def _saving_section(ctx: AppContext, face_gallery: gr.State, enrolled):
    export_dir = gr.State(None, delete_callback=remove_workdir, time_to_live=SESSION_TTL_S)
    with gr.Accordion("Keep or export the gallery (opt-in)", open=False):
        gr.Markdown("Nothing is kept unless you press Save. Saving writes the names, embeddings and aligned "
                    "crops to this server's SQLite file and gives you a key; only that key loads or deletes "
                    "it. Export downloads the same as JSON.")
        with gr.Row():
            save_button = gr.Button("Save gallery")
            saved_key = gr.Textbox(label="Your key (keep it; it is not shown again)", interactive=False,
                                   elem_id="saved-key")
        with gr.Row():
            key_in = gr.Textbox(label="Key", type="password")
            load_button = gr.Button("Load saved gallery")
            delete_button = gr.Button("Delete saved gallery", variant="stop")
        errors = error_box("saving-error")
        deleted_note = gr.Markdown()
        export_button = gr.Button("Export gallery (JSON)")
        export_file = gr.File(label="Export", interactive=False)
    wire(save_button.click, bind(ctx, save_gallery), [face_gallery], [saved_key], errors, api_name="save_gallery")
    loaded = wire(load_button.click, bind(ctx, load_gallery), [key_in], [face_gallery, enrolled], errors,
                  api_name="load_gallery")
    wire(delete_button.click, bind(ctx, delete_saved), [key_in], [deleted_note], errors,
         api_name="delete_saved_gallery")
    wire(export_button.click, bind(ctx, export_gallery), [face_gallery, export_dir], [export_file, export_dir],
         errors, api_name="export_gallery")
    return loaded


def _people_section(ctx: AppContext, face_gallery: gr.State, options_in: list):
    gr.Markdown("### People across several photos")
    group_in = gr.File(label=f"Photos (up to {MAX_GROUP_PHOTOS})", file_count="multiple", type="filepath",
                       elem_id="group-input")
    group_button = gr.Button("Group faces into people", elem_id="group-faces")
    errors = error_box("people-error")
    people_shown = gr.Gallery(label="One face per person (aligned 112 px crops)", columns=6, height=170,
                              object_fit="scale-down", allow_preview=False, fit_columns=False, elem_id="people")
    people_table = gr.Dataframe(headers=["person", "faces", "photos", "in"], label="People", interactive=False)
    wire(group_button.click, bind(ctx, group_faces), [group_in] + options_in + [face_gallery],
         [people_shown, people_table], errors, api_name="group_faces")


def build(ctx: AppContext, face_gallery: gr.State) -> None:
    gr.Markdown(
        "Faces found by a detector, aligned to the 112x112 five-point template, embedded and matched with "
        "your gallery. Enrolled faces live in this session only; saving is your choice (below). Defaults "
        "are the reference app's: MTCNN thresholds 0.6 / 0.7 / 0.7, the photo downscaled so its shorter "
        "side is at most 600 px, and a minimum face of 96 px on that photo (lower it for group photos)."
    )
    last_faces = gr.State(None)
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=300):
            faces_in = gr.File(label="Photo", file_count="single", type="filepath", elem_id="faces-input", height=120)
            find = gr.Button("Find faces", variant="primary", elem_id="find-faces")
            errors = error_box("faces-error")
            options_in = _detection_controls(ctx)
            examples = ctx.examples(FACE_EXAMPLES)
            if examples:
                gr.Examples(examples, inputs=[faces_in], label="Example photos", cache_examples=False)
        with gr.Column(scale=3, min_width=300):
            faces_summary = gr.Markdown(elem_id="faces-summary")
            faces_shown = gr.AnnotatedImage(label="Faces, numbered, and their landmarks (dots)", elem_id="faces-image",
                                            height=320)
            face_crops = gr.Gallery(label="Aligned 112x112 crops, as the embedder sees them", columns=6, height=170,
                                    object_fit="scale-down", allow_preview=False, fit_columns=False, elem_id="face-crops")
            with gr.Accordion("Latency here and on phones", open=False):
                faces_latency = gr.Dataframe(headers=["stage", "median ms", "p90 ms"], interactive=False,
                                             label="Latency here (this host; warm runs)")
                faces_phone = gr.Dataframe(headers=PHONE_HEADERS, interactive=False, wrap=True,
                                           column_widths=PHONE_WIDTHS,
                                           elem_classes=["mvl-phone-table"],
                                           label="Latency published for real phones (not measured here)")
                faces_phone_missing = gr.Markdown()
    enrolled, gallery_changes = _gallery_section(ctx, face_gallery, last_faces, options_in)
    loaded = _saving_section(ctx, face_gallery, enrolled)
    _people_section(ctx, face_gallery, options_in)
    outputs = [faces_shown, face_crops, faces_summary, faces_latency, faces_phone, faces_phone_missing, last_faces]
    find_inputs = [faces_in] + options_in + [face_gallery]
    handler = bind(ctx, find_faces)
    wire(find.click, handler, find_inputs, outputs, errors, api_name="find_faces")

    def again(path, *options):
        # The photo's faces follow the photo, the settings and the gallery: names shown are never stale.
        return handler(path, *options) if path else tuple([None] * len(outputs))

    wire([faces_in.change, *(c.change for c in options_in[:2]), *(c.release for c in options_in[2:8]),
          options_in[8].change], again, find_inputs, outputs, errors)
    for event in gallery_changes + [loaded]:
        event.then(lambda path, *options: again(path, *options) if path else tuple(gr.skip() for _ in outputs),
                   find_inputs, outputs, api_visibility="private")
