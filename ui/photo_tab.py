"""The Photo tab: ImageNet labels, scenes, objects and faces of one photo, with latency here and on phones,
and every precision of the chosen models compared on it.

What a person came for (the label, the milliseconds here, the phone's figure) is in a summary above
everything else; the detail sits in closed sections below it. Results follow their inputs: a new photo or a
changed setting runs again and clears the comparison of the old one."""

from __future__ import annotations

import gradio as gr

from pipelines.common.photos import MAX_FILE_BYTES, MAX_PIXELS, read_photo
from pipelines.faces.gallery import Gallery, match_faces
from pipelines.faces.pipeline import FacePipeline
from pipelines.lab.photo import (
    MAX_RUNS,
    PhotoAnalysis,
    PhotoOptions,
    analyse_photo,
)
from pipelines.lab.precision import compare_precisions
from pipelines.vision.face_detection import DetectorOptions
from ui.context import EXAMPLE_PHOTOS, AppContext
from ui.format import (
    COMPARISON_HEADERS,
    COMPARISON_WIDTHS,
    HOST_HEADERS,
    HOST_WIDTHS,
    PHONE_HEADERS,
    PHONE_WIDTHS,
    card_markdown,
    comparison_rows,
    host_latency_rows,
    phone_latency_rows,
    phone_markdown,
    photo_summary,
)
from ui.pickers import model_picker, threads_picker
from ui.requests import bind, error_box, request, wire

DISPLAY_MAX_SIDE = 1024


def _display_image(analysis: PhotoAnalysis):
    image = analysis.photo.image
    if max(image.size) > DISPLAY_MAX_SIDE:
        image = image.copy()
        image.thumbnail((DISPLAY_MAX_SIDE, DISPLAY_MAX_SIDE))
    return image


def _photo_faces(ctx: AppContext, photo, gallery: Gallery, threads: int):
    """Faces with the Faces tab's defaults, embedded in the gallery's own network when there is one."""
    detector = ctx.default("face_detection")
    embedder = gallery.card or ctx.default("face_embedding")
    faces = FacePipeline.load(ctx.hub, detector, embedder, threads)(photo.image, DetectorOptions())
    matches = match_faces(gallery, faces.embeddings, faces.threshold)
    shown = [(crop, f"face {i + 1} · {m.describe()}") for i, (crop, m) in enumerate(zip(faces.crops, matches))]
    if faces.detections.faces:
        note = (f"{len(faces.detections.faces)} face(s) at least 96 px found by {detector}, identified with "
                f"{embedder} against your gallery (the Faces tab has every option).")
    else:
        note = f"No face of at least 96 px ({detector}; the Faces tab finds smaller ones)."
    return shown, note, [m.describe() for m in matches]


@request("photo")
def classify(ctx: AppContext, path, imagenet_card, scene_card, threads, runs, object_card=None, score=0.3, iou=0.45,
             gallery=None):
    if not path:
        raise gr.Error("Upload a photo first (or click an example).", print_exception=False)
    photo = read_photo(path)
    options = PhotoOptions(imagenet_card, scene_card, int(threads), int(runs), object_card or None, float(score),
                           float(iou))
    analysis = analyse_photo(ctx.hub, photo, options)
    faces, faces_note, who = _photo_faces(ctx, photo, gallery or Gallery(), int(threads))
    scene = analysis.scene.result
    tasks = [("ImageNet", analysis.imagenet), ("scene", analysis.scene)]
    if analysis.objects:
        tasks.append(("objects", analysis.objects))
    cards = tuple(item.model.card for _, item in tasks)
    boxes = []
    if analysis.objects:
        boxes = [(tuple(int(round(v)) for v in d.box), f"{i + 1}. {d.label} {d.score:.2f}")
                 for i, d in enumerate(analysis.objects.result.detections)]
    return (
        _display_image(analysis),
        f"{photo.size[0]}x{photo.size[1]} {photo.format}, {photo.source_mode}: {'; '.join(photo.notes) or 'used as uploaded'}",
        {p.label: p.score for p in analysis.imagenet.result.top},
        {p.label: p.score for p in scene.top},
        f"**{scene.environment}** ({scene.indoor_share:.0%} of the top-10 scenes are indoor scenes)",
        [row for name, item in tasks for row in host_latency_rows(name, item)],
        [row for card in cards for row in phone_latency_rows(card)],
        phone_markdown(cards),
        "\n\n".join(card_markdown(item, ctx.evaluations) for _, item in tasks),
        faces,
        faces_note,
        (_display_image(analysis), boxes),
        photo_summary(analysis, who, ctx.evaluations),
        None,  # the comparison, if any, was of other inputs
    )


@request("compare_precisions")
def compare(ctx: AppContext, path, imagenet_card, scene_card, threads, runs):
    if not path:
        raise gr.Error("Upload a photo first (or click an example).", print_exception=False)
    photo = read_photo(path)
    rows = []
    for task, name in (("classification", imagenet_card), ("scene", scene_card)):
        card = ctx.catalog[name]
        if card.task != task:
            raise ValueError(f"{name} is not a {task} model")
        rows += comparison_rows("ImageNet" if task == "classification" else "scene",
                                compare_precisions(ctx.hub, photo, task, card.display, int(threads), int(runs)),
                                ctx.evaluations)
    return rows


def _settings(ctx: AppContext):
    imagenet = model_picker(ctx, "classification", "ImageNet classifier")
    scene = model_picker(ctx, "scene", "Scene model")
    objects = model_picker(ctx, "object_detection", "Object detector (COCO)")
    with gr.Row():
        score = gr.Slider(0.05, 0.95, value=0.3, step=0.05, label="Object score threshold", info="reference system: 0.3")
        iou = gr.Slider(0.1, 0.9, value=0.45, step=0.05, label="NMS IoU threshold")
    with gr.Row():
        threads = threads_picker()
        runs = gr.Slider(1, MAX_RUNS, value=10, step=1, label="Timed runs (after 2 warm-up runs)")
    return imagenet.card, scene.card, objects.card, score, iou, threads, runs


def _details():
    """Everything behind the summary, in closed sections."""
    with gr.Row():
        imagenet_out = gr.Label(num_top_classes=5, label="ImageNet top-5", elem_id="imagenet-labels")
        scene_out = gr.Label(num_top_classes=5, label="Scene top-5 (Places365)", elem_id="scene-labels")
    environment = gr.Markdown()
    comparison = gr.Dataframe(
        headers=COMPARISON_HEADERS, interactive=False, wrap=True, elem_id="comparison", column_widths=COMPARISON_WIDTHS,
        label="Every precision of the chosen models on this photo (Compare precisions; against the fp32 file)",
    )
    faces_note = gr.Markdown(elem_id="photo-faces-note")
    faces = gr.Gallery(label="Faces (aligned 112 px crops) and who they are", columns=6, height=170,
                       object_fit="scale-down", allow_preview=False, fit_columns=False, elem_id="photo-faces")
    with gr.Accordion("Latency measured here, stage by stage", open=False):
        host_latency = gr.Dataframe(headers=HOST_HEADERS, interactive=False, wrap=True, elem_classes=["mvl-host-table"],
                                    column_widths=HOST_WIDTHS,
                                    label="This host, warm runs (not a phone figure)")
    with gr.Accordion("Latency published for real phones", open=False):
        phone_latency = gr.Dataframe(headers=PHONE_HEADERS, interactive=False, wrap=True, column_widths=PHONE_WIDTHS,
                                     elem_classes=["mvl-phone-table"],
                                     label="Published, never measured here; 'published model' says how it relates")
        phone_missing = gr.Markdown()
    with gr.Accordion("The photo as read, and the model cards", open=False):
        shown = gr.Image(label="Your photo, upright", interactive=False, height=240)
        photo_notes = gr.Markdown()
        cards_out = gr.Markdown()
    return (shown, photo_notes, imagenet_out, scene_out, environment, host_latency, phone_latency, phone_missing,
            cards_out, faces, faces_note), comparison


def build(ctx: AppContext, face_gallery: gr.State) -> None:
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=300):
            photo_in = gr.File(
                label=f"Photo (JPEG, PNG, WebP, HEIC, GIF, BMP, TIFF; up to {MAX_FILE_BYTES // 2**20} MB "
                      f"and {MAX_PIXELS // 1_000_000} megapixels)",
                file_count="single", type="filepath", elem_id="photo-input", height=120,
            )
            with gr.Row():
                run = gr.Button("Classify", variant="primary", elem_id="classify", min_width=100)
                compare_button = gr.Button("Compare precisions", elem_id="compare", min_width=100)
            errors = error_box("photo-error")
            with gr.Accordion("Models, precision and settings", open=False, elem_id="photo-settings"):
                imagenet_card, scene_card, object_card, score, iou, threads, runs = _settings(ctx)
            examples = ctx.examples(EXAMPLE_PHOTOS)
            if examples:
                gr.Examples(examples, inputs=[photo_in], label="Example photos (scikit-image samples)",
                            cache_examples=False)
        with gr.Column(scale=3, min_width=300):
            summary = gr.HTML(elem_id="photo-summary")
            objects_shown = gr.AnnotatedImage(label="Objects (COCO), numbered", elem_id="objects-image", height=300)
            details, comparison = _details()
    outputs = [*details, objects_shown, summary, comparison]
    inputs = [photo_in, imagenet_card, scene_card, threads, runs]
    classify_inputs = inputs + [object_card, score, iou, face_gallery]
    handler = bind(ctx, classify)

    def again(path, *options):
        # A new photo or a changed setting runs at once; removing the photo clears what it showed.
        return handler(path, *options) if path else tuple([None] * len(outputs))

    wire(run.click, handler, classify_inputs, outputs, errors, api_name="classify")
    wire(compare_button.click, bind(ctx, compare), inputs, [comparison], errors, api_name="compare_precisions")
    wire([photo_in.change, imagenet_card.change, scene_card.change, object_card.change, score.release, iou.release,
          threads.change, runs.release], again, classify_inputs, outputs, errors)
