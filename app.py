"""Mobile Vision Lab: the UI only. Run `python app.py` and open http://127.0.0.1:7860."""

from __future__ import annotations

import os

# Before gradio, huggingface_hub or onnxruntime are imported: nothing calls home.
for _var, _value in (("GRADIO_ANALYTICS_ENABLED", "False"), ("HF_HUB_DISABLE_TELEMETRY", "1"), ("ORT_DISABLE_TELEMETRY", "1")):
    os.environ.setdefault(_var, _value)

import functools  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402

from models.backends import BackendError  # noqa: E402
from models.catalog import Catalog, ModelCard  # noqa: E402
from models.hub import ModelHub  # noqa: E402
from models.store import ModelStore, StoreError  # noqa: E402
from pipelines.album import (  # noqa: E402
    MAX_PHOTOS,
    MAX_ZIP_MEMBERS,
    MAX_ZIP_RATIO,
    MAX_ZIP_TOTAL,
    AlbumError,
    analyse_album,
    gather,
    profile_csv,
    profile_json,
)
from pipelines.calibration import sample_photo_paths  # noqa: E402
from pipelines.custom_model import (  # noqa: E402
    MAX_MODEL_BYTES,
    OUTPUT_KINDS,
    RESIZES,
    SCALINGS,
    CustomModelError,
    Form,
    derive_variants,
    load_custom_model,
    run_custom,
)
from pipelines.evaluate import CardEvaluation, read_evaluations  # noqa: E402
from pipelines.face_detection import DetectorOptions  # noqa: E402
from pipelines.faces import (  # noqa: E402
    FaceError,
    Gallery,
    SavedGalleries,
    analyse_faces,
    export_json,
    group_people,
    match_faces,
    match_threshold,
    person_embeddings,
)
from pipelines.photo import MAX_RUNS, THREAD_CHOICES, PhotoAnalysis, TaskResult, analyse_photo  # noqa: E402
from pipelines.photos import MAX_FILE_BYTES, MAX_PIXELS, PhotoError, read_photo  # noqa: E402
from pipelines.precision_lab import (  # noqa: E402
    HOST_AXES,
    PlotPoint,
    VariantOutcome,
    compare_precisions,
    pareto_front,
    phone_axes,
    plot_points,
)

EXAMPLE_PHOTOS = ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg")
DISPLAY_MAX_SIDE = 1024
FP16_NOTE = (
    "fp16 on this CPU: ONNX Runtime's CPU kernels compute most operators in fp32, so an fp16 graph adds "
    "casts and is usually no faster (often slower) here. On a phone GPU or NPU fp16 is native and faster."
)
INT8_DYNAMIC_NOTE = (
    "int8 dynamic on this CPU: every convolution re-quantizes its input at run time (ConvInteger), which "
    "costs more than it saves in a convolutional network; the recipe suits matrix-multiply-heavy models. "
    "int8 static, calibrated ahead of time, is the fast int8 path here."
)


REQUEST_LOG = logging.getLogger("mvl.requests")
TEMP_PREFIXES = ("mvl-upload-", "mvl-export-", "mvl-album-", "mvl-examples-")
STALE_AFTER_S = 2 * 3600  # sessions keep their folders at most an hour
QUEUE_SIZE = 32
CONCURRENCY = 2  # requests run at once per event (the machine has 2 cores); the album tab runs one at a time


# What a request can be refused for: the person sees the message, the app keeps serving.
USER_ERRORS = (PhotoError, FaceError, AlbumError, CustomModelError, StoreError, BackendError, KeyError, ValueError)


def user_error(exc: Exception) -> gr.Error:
    if isinstance(exc, PhotoError):
        return gr.Error(f"This photo cannot be used: {sentence(exc)}")
    if isinstance(exc, (StoreError, BackendError)):
        return gr.Error(f"The model could not be loaded: {sentence(exc)}")
    return gr.Error(sentence(exc))


def request(task: str, names: set[str]):
    """Every event handler: domain errors become a message for the person (gr.Error), and one JSON line is
    logged per request: the task, the models named in it, how long it took and how it ended. Only model names
    are taken from the arguments: never photo content, file names or face data."""

    def wrap(handler):
        @functools.wraps(handler)
        def run(*args, **kwargs):
            start = time.perf_counter()
            outcome = "ok"
            try:
                return handler(*args, **kwargs)
            except gr.Error:
                outcome = "refused"
                raise
            except USER_ERRORS as exc:
                outcome = "refused"
                raise user_error(exc) from None
            except Exception as exc:
                outcome = f"failed: {type(exc).__name__}"
                raise
            finally:
                REQUEST_LOG.info(json.dumps({
                    "task": task, "models": [a for a in args if isinstance(a, str) and a in names],
                    "ms": round(1000 * (time.perf_counter() - start), 1), "outcome": outcome,
                }))
        return run

    return wrap


def remove_stale_temp(now: float | None = None) -> int:
    """Session folders left by a previous run (a crash, a restart): removed at startup."""
    now = now or time.time()
    removed = 0
    for path in Path(tempfile.gettempdir()).iterdir():
        if path.name.startswith(TEMP_PREFIXES) and path.is_dir() and now - path.stat().st_mtime > STALE_AFTER_S:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


def health(store: ModelStore) -> dict:
    """What a Space or a load balancer polls: cheap (no hashing, no model load)."""
    missing = [card.file for card in store.catalog
               if not card.is_derived and not any(path.is_file() for path in store.local_paths(card))]
    return {"status": "ok", "cards": len(store.catalog.cards), "missing_model_files": missing}


def report_model_files(store: ModelStore, out=sys.stdout) -> None:
    """At startup: where each model file comes from (local folder, cache, download) and how long it took."""
    print("Model files (derived fp16/int8 variants are made on first use):", file=out)
    for card in store.catalog:
        if card.is_derived:
            continue
        try:
            resolved = store.resolve(card)
            print(f"  {card.name:42s} {resolved.origin:13s} {resolved.seconds:6.2f} s  {resolved.path}", file=out)
        except StoreError as exc:
            print(f"  {card.name:42s} UNAVAILABLE: {exc}", file=out)


def sentence(exc: Exception) -> str:
    """An error's message as one sentence for the person: quotes stripped, one final period."""
    text = str(exc).strip().strip("'\"")
    return text if text.endswith((".", "?", "!")) else text + "."


def _default(catalog: Catalog, task: str, display: str | None = None) -> ModelCard:
    cards = catalog.for_task(task)
    return next((c for c in cards if c.display == display), cards[0])


def variant_choices(catalog: Catalog, task: str, display: str) -> list[tuple[str, str]]:
    return [(card.variant, card.name) for card in catalog.variants(task, display)]


def host_latency_rows(task: str, item: TaskResult) -> list[list]:
    report = item.latency
    return [
        [task, item.model.card.display, item.model.card.variant, report.threads, s.stage,
         round(s.median_ms, 2), round(s.p90_ms, 2), report.runs]
        for s in report.stages
    ]


def phone_latency_rows(card: ModelCard) -> list[list]:
    return [
        [card.display, p.device, p.runtime, p.precision, p.compute_unit, p.latency_ms, p.match, p.source]
        for p in card.phone_latency
    ]


def card_markdown(item: TaskResult) -> str:
    card, file = item.model.card, item.model.file
    size_mb = file.path.stat().st_size / 1e6
    lines = [
        f"### {card.display}: {card.variant}",
        f"- card `{card.name}`; runtime **{card.runtime}**; task {card.task}",
        f"- size on disk **{size_mb:.2f} MB**; sha256 `{file.sha256[:16]}…`; file from the {file.origin}",
        f"- input: {card.input.describe()}",
        f"- output: {card.output.classes} {card.output.kind}"
        + ("; index 0 is 'background' and is dropped" if card.output.background_class else ""),
        f"- license: {card.license}",
    ]
    if card.derived_from:
        lines.append(f"- derived here from `{card.derived_from}` by the recipe {card.recipe.as_dict()}")
    lines += [f"- source: {s.what}" + (f" ({s.url})" if s.url else "") for s in card.sources]
    if card.precision == "fp16":
        lines.append(f"- {FP16_NOTE}")
    if card.recipe and card.recipe.kind == "int8_dynamic":
        lines.append(f"- {INT8_DYNAMIC_NOTE}")
    return "\n".join(lines)


def phone_markdown(cards: tuple[ModelCard, ...]) -> str:
    missing = dict.fromkeys(c.display + " " + c.variant for c in cards if not c.phone_latency)
    return "\n".join(f"- {name}: no published measurement for this model" for name in missing)


def _display_image(analysis: PhotoAnalysis):
    image = analysis.photo.image
    if max(image.size) > DISPLAY_MAX_SIDE:
        image = image.copy()
        image.thumbnail((DISPLAY_MAX_SIDE, DISPLAY_MAX_SIDE))
    return image


TASK_TITLES = {"classification": "ImageNet classifiers", "scene": "Scene models (Places365)"}
MODEL_TABLE_HEADERS = [
    "card", "task", "model", "variant", "runtime", "derived from", "license", "size MB", "params M", "MACs M",
    "1x1 conv % MACs / params", "depthwise %", "full conv %", "fully connected %", "eval photos", "top-1 %",
    "top-5 %", "agrees with fp32 %", "output cosine", "host ms, 1 thread", "host ms, 2 threads",
    "published phone figures",
]


def model_table_rows(catalog: Catalog, evaluations: dict[str, CardEvaluation]) -> list[list]:
    rows = []
    for card in (c for c in catalog if c.task in TASK_TITLES):
        r = evaluations.get(card.name)
        phones = f"{len(card.phone_latency)} (below)" if card.phone_latency else "none published"
        if r is None:
            rows.append([card.name, card.task, card.display, card.variant, card.runtime, card.derived_from or "",
                         card.license] + ["not evaluated yet: run python -m pipelines.evaluate"] + [""] * 13 + [phones])
            continue
        def pair(kind: str) -> str:
            return f"{getattr(r, f'macs_{kind}_pct'):.1f} / {getattr(r, f'params_{kind}_pct'):.1f}"
        rows.append([
            r.card, r.task, r.model, r.variant, r.runtime, r.derived_from or "original file",
            "demo use only (no license)" if r.license.startswith("UNCLEAR") else r.license,
            round(r.size_mb, 2), round(r.params / 1e6, 3), round(r.macs / 1e6, 1), pair("conv_1x1"),
            pair("depthwise"), pair("conv_full"), pair("fully_connected"), f"{r.photos} {r.eval_set}",
            round(r.top1_pct, 1), round(r.top5_pct, 1),
            "" if r.agreement_pct is None else round(r.agreement_pct, 1),
            "" if r.cosine is None else round(r.cosine, 4), round(r.latency_1t_ms, 2), round(r.latency_2t_ms, 2),
            phones,
        ])
    return rows


def all_phone_rows(catalog: Catalog, tasks=None) -> list[list]:
    return [[card.name] + row[1:] for card in catalog if tasks is None or card.task in tasks
            for row in phone_latency_rows(card)]


def accuracy_latency_figure(points: list[PlotPoint], task: str, axis: str):
    from matplotlib.figure import Figure  # no pyplot: no global state shared between requests

    figure = Figure(figsize=(9, 5.5), layout="constrained")
    ax = figure.add_subplot()
    if points:
        ax.scatter([p.latency_ms for p in points], [p.accuracy_pct for p in points],
                   s=[40 + 30 * p.size_mb for p in points], alpha=0.55, edgecolors="black", linewidths=0.6)
        for p in points:
            ax.annotate(p.label, (p.latency_ms, p.accuracy_pct), textcoords="offset points", xytext=(6, 4), fontsize=8)
        front = pareto_front(points)
        ax.plot([p.latency_ms for p in front], [p.accuracy_pct for p in front], "--", color="tab:red",
                label="Pareto front (faster and more accurate than the rest)")
        ax.legend(loc="lower right", fontsize=8)
        if max(p.latency_ms for p in points) / max(min(p.latency_ms for p in points), 1e-3) > 20:
            ax.set_xscale("log")
    ax.set_xlabel(f"latency, ms ({axis})")
    ax.set_ylabel("top-1 accuracy, % (labeled eval photos)")
    ax.set_title(f"{TASK_TITLES[task]}: accuracy against latency (marker area: file size)")
    ax.grid(alpha=0.3)
    return figure


def comparison_rows(task: str, outcomes: list[VariantOutcome]) -> list[list]:
    rows = []
    reference = {o.card.name: o for o in outcomes}[outcomes[0].reference]
    for o in outcomes:
        top = "; ".join(f"{p.label} {p.score:.2f}" for p in o.result.top)
        if o.card.name == o.reference:
            change = "reference"
        elif o.same_top1:
            change = f"same top-1; {o.top5_overlap}/5 of the top-5 shared"
        else:
            change = (f"top-1 differs: {o.result.top[0].label} (reference: {reference.result.top[0].label}); "
                      f"{o.top5_overlap}/5 of the top-5 shared")
        rows.append([task, o.card.variant, o.card.name, top, round(o.inference_ms, 2), change])
    return rows


def stats_rows(stats) -> list[list]:
    from models.graph_stats import LAYER_NAMES

    rows = []
    for row in stats.by_type:
        macs_share, params_share = stats.share(row.layer_type)
        rows.append([LAYER_NAMES[row.layer_type], row.layers, round(row.macs / 1e6, 2), round(100 * macs_share, 1),
                     round(row.params / 1e6, 4), round(100 * params_share, 1)])
    return rows + [["total", sum(r.layers for r in stats.by_type), round(stats.macs / 1e6, 2), 100.0,
                    round(stats.params / 1e6, 4), 100.0]]


FACE_EXAMPLES = ("astronaut.png", "coffee.png")
PHOTO_TAB_DETECTOR = "MTCNN (ONNX Runtime)"
PHOTO_TAB_EMBEDDER = "mobilefacenet.fp32_onnx"
MAX_GROUP_PHOTOS = 20


def default_data_dir() -> Path:
    return Path(os.environ.get("MVL_DATA_DIR") or Path.home() / ".local" / "share" / "mobile-vision-lab")


def draw_landmarks(image, faces):
    """The photo with each face's landmarks as dots (the boxes are drawn by AnnotatedImage)."""
    from PIL import ImageDraw

    image = image.copy()
    draw = ImageDraw.Draw(image)
    radius = max(2, round(max(image.size) / 300))
    for face in faces:
        for (x, y), present in zip(face.landmarks, face.landmarks_present):
            if present:
                draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(255, 40, 40), outline=(255, 255, 255))
    return image


def gallery_rows(gallery: Gallery) -> list[list]:
    return [[name, sum(e.name == name for e in gallery.entries), gallery.card] for name in gallery.names()]


def profile_figure(profile, title: str):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.2), layout="constrained")
    ax = figure.add_subplot()
    entries = list(profile.entries)[::-1]
    ax.barh([f"{e.category} ({e.group})" for e in entries], [len(e.photos) for e in entries], color="tab:blue")
    ax.set_xlabel("photos")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return figure


def remove_workdir(workdir) -> None:
    """A session's uploaded model and its derived files go when the session ends or uploads another."""
    if workdir:
        shutil.rmtree(workdir, ignore_errors=True)


def build_app(store: ModelStore | None = None) -> gr.Blocks:
    """The whole UI. Models load on first use, not here."""
    hub = ModelHub(store or ModelStore.from_env())
    catalog = hub.store.catalog
    remove_stale_temp()
    names = {c.name for c in catalog} | set(catalog.displays("face_detection"))
    evaluations = read_evaluations()  # computed by python -m pipelines.evaluate, not per page view
    imagenet_default = _default(catalog, "classification", "EfficientNet-Lite0")
    scene_default = _default(catalog, "scene")
    examples_dir = Path(tempfile.mkdtemp(prefix="mvl-examples-"))
    samples = {p.name: p for p in sample_photo_paths()}
    examples = [[str(shutil.copy(samples[name], examples_dir / name))] for name in EXAMPLE_PHOTOS if name in samples]

    @request("photo", names)
    def classify(path, imagenet_card, scene_card, threads, runs, object_card=None, score=0.3, iou=0.45, gallery=None):
        if not path:
            raise gr.Error("Upload a photo first (or click an example).")
        gallery = gallery or Gallery()
        photo = read_photo(path)
        analysis = analyse_photo(hub, photo, imagenet_card, scene_card, int(threads), int(runs),
                                 object_card or None, float(score), float(iou))
        # faces with the Faces tab's defaults, embedded in the gallery's own network when there is one
        embedder = gallery.card or PHOTO_TAB_EMBEDDER
        faces = analyse_faces(hub, photo, PHOTO_TAB_DETECTOR, embedder, DetectorOptions(), int(threads))
        matches = match_faces(gallery, faces.embeddings, faces.threshold)
        scene = analysis.scene.result
        notes = "; ".join(photo.notes) or "used as uploaded"
        tasks = [("ImageNet", analysis.imagenet), ("scene", analysis.scene)]
        if analysis.objects:
            tasks.append(("objects", analysis.objects))
        cards = tuple(item.model.card for _, item in tasks)
        phone_rows = [row for card in cards for row in phone_latency_rows(card)]
        boxes = []
        if analysis.objects:
            boxes = [(tuple(int(round(v)) for v in d.box), f"{d.label} {d.score:.2f}")
                     for d in analysis.objects.result.detections]
        return (
            _display_image(analysis),
            f"{photo.size[0]}x{photo.size[1]} {photo.format}, {photo.source_mode}: {notes}",
            {p.label: p.score for p in analysis.imagenet.result.top},
            {p.label: p.score for p in scene.top},
            f"**{scene.environment}** ({scene.indoor_share:.0%} of the top-10 scenes are indoor scenes)",
            [row for name, item in tasks for row in host_latency_rows(name, item)],
            phone_rows,
            phone_markdown(cards),
            "\n\n".join(card_markdown(item) for _, item in tasks),
            [(crop, f"face {i + 1} · {m.describe()}") for i, (crop, m) in enumerate(zip(faces.crops, matches))],
            (f"{len(faces.detections.faces)} face(s) at least 96 px found by {PHOTO_TAB_DETECTOR}, "
             f"identified with {embedder} against your gallery (the Faces tab has every option)."
             if faces.detections.faces else f"No face of at least 96 px ({PHOTO_TAB_DETECTOR}; the Faces tab "
                                            "finds smaller ones)."),
            (_display_image(analysis), boxes) if analysis.objects else None,
        )

    @request("compare_precisions", names)
    def compare(path, imagenet_card, scene_card, threads, runs):
        if not path:
            raise gr.Error("Upload a photo first (or click an example).")
        photo = read_photo(path)
        rows = []
        for task, name in (("classification", imagenet_card), ("scene", scene_card)):
            card = catalog[name]
            if card.task != task:
                raise ValueError(f"{name} is not a {task} model")
            rows += comparison_rows("ImageNet" if task == "classification" else "scene",
                                    compare_precisions(hub, photo, task, card.display, int(threads), int(runs)))
        return rows

    saved = SavedGalleries(default_data_dir() / "galleries.sqlite")

    def detector_options(min_face, p_net, r_net, o_net, shorter_side, max_faces):
        return DetectorOptions(int(min_face), (float(p_net), float(r_net), float(o_net)), int(shorter_side), int(max_faces))

    @request("find_faces", names)
    def find_faces(path, detector, embedder, min_face, p_net, r_net, o_net, shorter_side, max_faces, threads, gallery):
        if not path:
            raise gr.Error("Upload a photo first (or click an example).")
        gallery = gallery or Gallery()
        photo = read_photo(path)
        options = detector_options(min_face, p_net, r_net, o_net, shorter_side, max_faces)
        analysis = analyse_faces(hub, photo, detector, embedder, options, int(threads))
        comparable = not gallery.entries or gallery.space == analysis.embeddings.space
        matches = match_faces(gallery if comparable else Gallery(), analysis.embeddings, analysis.threshold)
        faces = analysis.detections.faces
        shown = draw_landmarks(photo.image, faces)
        annotations = [(tuple(int(round(v)) for v in f.box), f"face {i + 1}: {m.describe()}")
                       for i, (f, m) in enumerate(zip(faces, matches))]
        crops = [(crop, f"face {i + 1} · score {f.score:.2f} · {m.describe()}")
                 for i, (crop, f, m) in enumerate(zip(analysis.crops, faces, matches))]
        lines = [f"**{len(faces)} face(s)** found by {detector}" if faces else
                 f"**No face found** by {detector} (none at least {options.min_face} px)."]
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
        latency = [[stage, round(ms, 2)] for stage, ms in analysis.stage_ms]
        cards = [c for c in catalog if c.display == detector or c.name == embedder]
        phone = [row for card in cards for row in phone_latency_rows(card)]
        state = {"crops": analysis.crops, "embeddings": analysis.embeddings}
        return ((shown, annotations), crops, "\n\n".join(lines), latency, phone,
                phone_markdown(tuple(cards)), state)

    @request("enroll_face", names)
    def enroll_face(number, name, last, gallery):
        gallery = gallery or Gallery()
        if not last or not len(last["crops"]):
            raise gr.Error("Find faces in a photo first; then enroll one of them by its number.")
        index = int(number or 0) - 1
        if not 0 <= index < len(last["crops"]):
            raise gr.Error(f"There are faces 1 to {len(last['crops'])} in the last photo.")
        gallery = gallery.enroll(name or "", last["embeddings"], index, last["crops"][index])
        return gallery, gallery_rows(gallery)

    @request("enroll_photos", names)
    def enroll_photos(paths, name, detector, embedder, min_face, p_net, r_net, o_net, shorter_side, max_faces,
                      threads, gallery):
        gallery = gallery or Gallery()
        if not paths:
            raise gr.Error("Upload one or more reference photos of the person.")
        options = detector_options(min_face, p_net, r_net, o_net, shorter_side, max_faces)
        for path in paths:
            label = Path(path).name
            analysis = analyse_faces(hub, read_photo(path), detector, embedder, options, int(threads))
            count = len(analysis.detections.faces)
            if count != 1:
                raise FaceError(
                    f"{label} has {'no face' if count == 0 else f'{count} faces'}: a reference photo must show "
                    "exactly one. For a group photo, use Find faces and enroll the right face by its number"
                )
            gallery = gallery.enroll(name or "", analysis.embeddings, 0, analysis.crops[0])
        return gallery, gallery_rows(gallery)

    @request("forget_person", names)
    def forget(name, gallery):
        gallery = (gallery or Gallery()).forget((name or "").strip())
        return gallery, gallery_rows(gallery)

    @request("save_gallery", names)
    def save_gallery(gallery):
        key = saved.save(gallery or Gallery())
        return key

    @request("load_gallery", names)
    def load_gallery(key):
        gallery = saved.load(key or "")
        return gallery, gallery_rows(gallery)

    @request("delete_saved_gallery", names)
    def delete_saved(key):
        saved.delete(key or "")
        return "The saved gallery was deleted from this server."

    @request("export_gallery", names)
    def export_gallery(gallery, workdir):
        gallery = gallery or Gallery()
        if not gallery.entries:
            raise gr.Error("The gallery is empty: enroll someone first.")
        remove_workdir(workdir)
        folder = Path(tempfile.mkdtemp(prefix="mvl-export-"))
        path = folder / "face_gallery.json"
        path.write_text(export_json(gallery), encoding="utf-8")
        return str(path), str(folder)

    @request("group_faces", names)
    def group_faces(paths, detector, embedder, min_face, p_net, r_net, o_net, shorter_side, max_faces, threads, gallery):
        if not paths:
            raise gr.Error("Upload several photos to group their faces into people.")
        if len(paths) > MAX_GROUP_PHOTOS:
            raise gr.Error(f"At most {MAX_GROUP_PHOTOS} photos at a time here (the Album tab takes more).")
        options = detector_options(min_face, p_net, r_net, o_net, shorter_side, max_faces)
        analyses, files = [], []
        for path in paths:
            analyses.append(analyse_faces(hub, read_photo(path), detector, embedder, options, int(threads)))
            files.append(Path(path).name)
        threshold = match_threshold(embedder)
        people = group_people(analyses, threshold)
        gallery = gallery or Gallery()
        names = match_faces(gallery, person_embeddings(analyses, people), threshold)
        shown = [(person.crop, f"person {person.number}: {len(person.faces)} face(s)"
                  + (f" · {m.describe()}" if gallery.entries else "")) for person, m in zip(people, names)]
        rows = [[person.number, len(person.faces), len({p for p, _ in person.faces}),
                 ", ".join(sorted({files[p] for p, _ in person.faces}))] for person in people]
        return shown, rows

    @request("album", names)
    def run_album(paths, folder_paths, window_minutes, threshold, w_f, workdir, progress=gr.Progress()):
        from datetime import timedelta

        files = [(Path(p).name, Path(p).read_bytes(), None) for p in (paths or []) + (folder_paths or [])]
        if not files:
            raise gr.Error("Upload photos, a .zip of photos, or a folder.")
        album = gather(files)
        result = analyse_album(hub, album, progress=lambda done, total: progress(done / total, desc="photos"),
                               window=timedelta(minutes=float(window_minutes)), threshold=float(threshold),
                               w_f=float(w_f))
        names = [p.name for p in result.photos]
        lines = [f"**{len(result.photos)} photos, {len(result.events)} events, {len(result.people)} people.** "
                 f"Events: a photo joins the current event when it is within {float(window_minutes):g} minutes of one "
                 f"of its photos and their scene distance is under {float(threshold):g} (reference: 60 min, 0.003)."]
        decode = sum(p.decode_ms for p in result.photos)
        infer = sum(p.inference_ms for p in result.photos)
        lines.append(f"Time in decoding {decode / 1000:.1f} s, in the models {infer / 1000:.1f} s (summed over workers).")
        if result.private:
            lines.append(f"{len(result.private)} photo(s) show someone seen in at least 2 photos: marked private "
                         "(the reference system keeps those on the phone).")
        if result.notes:
            lines.append("\n".join(f"- {note}" for note in result.notes))
        if result.skipped:
            lines.append(f"{len(result.skipped)} file(s) skipped:\n" +
                         "\n".join(f"- {s.name}: {s.reason}" for s in result.skipped[:50]))
        event_rows = [[i + 1, e.start.isoformat(sep=" ") if e.start else "no time", e.end.isoformat(sep=" ") if e.end else "",
                       len(e.photos), ", ".join(e.scenes), ", ".join(e.objects)] for i, e in enumerate(result.events)]
        private = set(result.private)
        event_gallery = [(result.photos[e.photos[0]].thumbnail, f"event {i + 1}: {len(e.photos)} photo(s)"
                          + (f", {sum(p in private for p in e.photos)} private" if private & set(e.photos) else ""))
                         for i, e in enumerate(result.events)]
        people = [(p.crop, f"person {p.number}: {len(p.photos)} photo(s)") for p in result.people]
        events_per = {e.category: len(e.photos) for e in result.event_profile.entries}
        profile_rows = [[e.category, e.group, len(e.photos), events_per.get(e.category, 0), round(e.mean_score, 3)]
                        for e in result.profile.entries]
        remove_workdir(workdir)
        folder = Path(tempfile.mkdtemp(prefix="mvl-album-"))
        (folder / "profile.json").write_text(profile_json(result), encoding="utf-8")
        (folder / "profile.csv").write_text(profile_csv(result), encoding="utf-8")
        state = {"photos": [p.thumbnail for p in result.photos], "names": names,
                 "categories": {e.category: e.photos for e in result.profile.entries},
                 "private": set(result.private)}
        choices = [e.category for e in result.profile.entries]
        return ("\n\n".join(lines), event_rows, event_gallery, people,
                profile_figure(result.profile, "Interest profile: photos per category (at least 2 photos)"),
                profile_rows, gr.Dropdown(choices=choices, value=choices[0] if choices else None),
                [str(folder / "profile.json"), str(folder / "profile.csv")], state, str(folder))

    @request("photos_behind_category", names)
    def photos_behind(category, state):
        if not state or not category:
            return []
        return [(state["photos"][i], state["names"][i] + (" (private)" if i in state["private"] else ""))
                for i in state["categories"].get(category, ())]

    axes = list(HOST_AXES) + phone_axes(catalog)

    @request("your_model", names)
    def run_upload(model_path, labels_path, photo_path, height, width, channels, scaling, resize, output_kind,
                   threads, previous_workdir):
        if not model_path:
            raise gr.Error("Upload an .onnx or .tflite classifier first.")
        if not photo_path:
            raise gr.Error("Upload a photo to run the model on (or click an example).")
        remove_workdir(previous_workdir)
        workdir = Path(tempfile.mkdtemp(prefix="mvl-upload-"))
        try:
            photo = read_photo(photo_path)
            form = Form(int(height), int(width), channels, scaling, resize, output_kind)
            custom = load_custom_model(Path(model_path), Path(labels_path) if labels_path else None, form,
                                       workdir, int(threads))
            run = run_custom(custom, photo, int(threads))
            derived = derive_variants(custom, photo, int(threads))
        except Exception:
            remove_workdir(workdir)  # nothing of theirs is left behind, whatever went wrong
            raise
        card = custom.card
        summary = "\n".join([
            f"### {card.display} ({card.runtime}, {card.bytes / 1e6:.2f} MB)",
            f"- input used: {card.input.describe()}",
            f"- output: {card.output.classes} scores read as {card.output.kind}"
            + ("; output 0 is 'background'" if card.output.background_class else ""),
            f"- {custom.stats.params / 1e6:.3f} M parameters, {custom.stats.macs / 1e6:.1f} M multiply-adds",
            f"- inference here: {run.inference_ms:.2f} ms (median of 10 warm runs, {run.threads} thread(s))",
        ] + [f"- {note}" for note in custom.notes] + (
            ["- derived variants are made for ONNX models only"] if card.runtime != "onnx" else []))
        derived_rows = [
            [d.kind, "failed: " + d.error if d.error else "ok", round(d.size_mb, 2), round(d.inference_ms, 2),
             round(d.agreement_pct, 1), round(d.cosine, 4)]
            for d in derived
        ]
        files = [str(d.path) for d in derived if d.path]
        return (summary, stats_rows(custom.stats), {p.label: p.score for p in run.result.top}, derived_rows,
                files or None, str(workdir))

    def plot(task, axis):
        points, missing = plot_points(catalog, evaluations, task, axis)
        note = ""
        if missing:
            note = f"No figure on this axis for: {', '.join(missing)}."
        if points and axis not in HOST_AXES:
            note += "\n\n" + "\n".join(f"- {p.card}: {p.latency_ms:g} ms, {p.how}" for p in points)
        return accuracy_latency_figure(points, task, axis), note

    with gr.Blocks(title="Mobile Vision Lab", delete_cache=(300, 900)) as demo:
        face_gallery = gr.State(Gallery())  # this session's enrolled faces, used by the Photo and Faces tabs
        gr.Markdown(
            "# Mobile Vision Lab\nThe model files a phone runs (TFLite through LiteRT, ONNX through ONNX Runtime), "
            "run here on your photo. Host latency is measured on this machine "
            f"({os.cpu_count()} CPU cores); phone latency is as published, with its source. Busy times: "
            f"{CONCURRENCY} requests run at once and {QUEUE_SIZE} wait; past that you are asked to try again. Uploads "
            f"up to {MAX_FILE_BYTES // 2**20} MB a file. Nothing you upload is kept after your session or sent anywhere."
        )
        with gr.Tab("Photo"):
            with gr.Row():
                with gr.Column(scale=1):
                    photo_in = gr.File(
                        label=f"Photo (JPEG, PNG, WebP, HEIC, GIF, BMP, TIFF; up to {MAX_FILE_BYTES // 2**20} MB "
                        f"and {MAX_PIXELS // 1_000_000} megapixels)",
                        file_count="single", type="filepath", elem_id="photo-input",
                    )
                    if examples:
                        gr.Examples(examples, inputs=[photo_in], label="Example photos (scikit-image samples)",
                                    cache_examples=False)
                    imagenet_model = gr.Dropdown(
                        list(catalog.displays("classification")), value=imagenet_default.display, label="ImageNet classifier"
                    )
                    imagenet_card = gr.Dropdown(
                        variant_choices(catalog, "classification", imagenet_default.display),
                        value=imagenet_default.name, label="Precision", allow_custom_value=True,
                    )
                    scene_model = gr.Dropdown(list(catalog.displays("scene")), value=scene_default.display, label="Scene model")
                    scene_card = gr.Dropdown(
                        variant_choices(catalog, "scene", scene_default.display), value=scene_default.name, label="Precision",
                        allow_custom_value=True,  # API callers may name any card; analyse_photo checks it
                    )
                    object_model = gr.Dropdown(list(catalog.displays("object_detection")), value="YOLOX-nano",
                                               label="Object detector (COCO)")
                    object_card = gr.Dropdown(variant_choices(catalog, "object_detection", "YOLOX-nano"),
                                              value="yolox_nano.fp32_onnx", label="Precision", allow_custom_value=True)
                    with gr.Row():
                        object_score = gr.Slider(0.05, 0.95, value=0.3, step=0.05, label="Object score threshold",
                                                 info="reference system: 0.3")
                        object_iou = gr.Slider(0.1, 0.9, value=0.45, step=0.05, label="NMS IoU threshold")
                    threads = gr.Radio(list(THREAD_CHOICES), value=1, label="CPU threads",
                                       info=f"this machine has {os.cpu_count()} cores: more threads than cores oversubscribe")
                    runs = gr.Slider(1, MAX_RUNS, value=10, step=1, label="Timed runs (after 2 warm-up runs)")
                    run = gr.Button("Classify", variant="primary", elem_id="classify")
                    compare_button = gr.Button("Compare precisions", elem_id="compare")
                with gr.Column(scale=2):
                    shown = gr.Image(label="Your photo, upright", interactive=False, height=320)
                    photo_notes = gr.Markdown()
                    with gr.Row():
                        imagenet_out = gr.Label(num_top_classes=5, label="ImageNet top-5", elem_id="imagenet-labels")
                        scene_out = gr.Label(num_top_classes=5, label="Scene top-5 (Places365)", elem_id="scene-labels")
                    environment = gr.Markdown()
                    host_latency = gr.Dataframe(
                        headers=["task", "model", "variant", "threads", "stage", "median ms", "p90 ms", "runs"],
                        label="Latency measured here (this host, warm runs; not a phone figure)", interactive=False,
                    )
                    phone_latency = gr.Dataframe(
                        headers=["model", "device", "runtime", "precision", "compute unit", "ms", "published model", "source"],
                        label="Latency published for real phones (not measured here)", interactive=False, wrap=True,
                    )
                    phone_missing = gr.Markdown()
                    comparison = gr.Dataframe(
                        headers=["task", "variant", "card", "top-5", "inference ms (median)", "against the reference"],
                        label="Every precision of the chosen models on this photo (reference: the fp32 file, "
                              "or the first variant where there is none)",
                        interactive=False, wrap=True, elem_id="comparison",
                    )
                    objects_shown = gr.AnnotatedImage(label="Objects (COCO)", elem_id="objects-image")
                    photo_faces_note = gr.Markdown(elem_id="photo-faces-note")
                    photo_faces = gr.Gallery(label="Faces (aligned crops) and who they are", columns=6, height=180)
                    cards_out = gr.Markdown()
        with gr.Tab("Faces"):
            gr.Markdown(
                "Faces found by a detector, aligned to the 112x112 five-point template, embedded and matched with "
                "your gallery. Enrolled faces live in this session only; saving is your choice (below). Defaults "
                "are the reference app's: MTCNN thresholds 0.6 / 0.7 / 0.7, the photo downscaled so its shorter "
                "side is at most 600 px, and a minimum face of 96 px on that photo (lower it for group photos)."
            )
            last_faces = gr.State(None)
            export_dir = gr.State(None, delete_callback=remove_workdir, time_to_live=3600)
            with gr.Row():
                with gr.Column(scale=1):
                    faces_in = gr.File(label="Photo", file_count="single", type="filepath", elem_id="faces-input")
                    face_examples = [[str(shutil.copy(samples[n], examples_dir / n))] for n in FACE_EXAMPLES if n in samples]
                    if face_examples:
                        gr.Examples(face_examples, inputs=[faces_in], label="Example photos", cache_examples=False)
                    detector_in = gr.Dropdown(list(catalog.displays("face_detection")), value="MTCNN (ONNX Runtime)",
                                              label="Face detector")
                    embedder_in = gr.Dropdown([(f"{c.display}: {c.variant}", c.name) for c in catalog.for_task("face_embedding")],
                                              value="mobilefacenet.fp32_onnx", label="Face embedder", allow_custom_value=True)
                    min_face = gr.Slider(12, 400, value=96, step=1, label="Minimum face (px, longer side, on the downscaled photo)")
                    with gr.Row():
                        p_net = gr.Slider(0.1, 0.99, value=0.6, step=0.01, label="P-Net threshold")
                        r_net = gr.Slider(0.1, 0.99, value=0.7, step=0.01, label="R-Net threshold")
                        o_net = gr.Slider(0.1, 0.99, value=0.7, step=0.01, label="O-Net threshold")
                    shorter_side = gr.Slider(200, 2000, value=600, step=10, label="Downscale: shorter side at most (px)")
                    max_faces = gr.Slider(1, 100, value=20, step=1, label="At most this many faces (the largest)")
                    face_threads = gr.Radio(list(THREAD_CHOICES), value=1, label="CPU threads")
                    find = gr.Button("Find faces", variant="primary", elem_id="find-faces")
                with gr.Column(scale=2):
                    faces_shown = gr.AnnotatedImage(label="Faces (boxes) and landmarks (dots)", elem_id="faces-image")
                    faces_summary = gr.Markdown(elem_id="faces-summary")
                    face_crops = gr.Gallery(label="Aligned 112x112 crops, as the embedder sees them", columns=6,
                                            height=240, elem_id="face-crops")
                    faces_latency = gr.Dataframe(headers=["stage", "ms"], label="Latency here (this host)", interactive=False)
                    faces_phone = gr.Dataframe(
                        headers=["model", "device", "runtime", "precision", "compute unit", "ms", "published model", "source"],
                        label="Latency published for real phones (not measured here)", interactive=False, wrap=True)
                    faces_phone_missing = gr.Markdown()
            gr.Markdown("### Your gallery (this session only)")
            with gr.Row():
                face_number = gr.Number(1, label="Face #", precision=0, minimum=1)
                face_name = gr.Textbox(label="Name", placeholder="who is it?")
                enroll = gr.Button("Enroll this face", elem_id="enroll")
            with gr.Row():
                reference_photos = gr.File(label="Or reference photos of one person (one face each)", file_count="multiple",
                                           type="filepath")
                enroll_refs = gr.Button("Enroll from photos")
            enrolled = gr.Dataframe(headers=["name", "faces", "embedder"], label="Enrolled", interactive=False,
                                    elem_id="enrolled")
            with gr.Row():
                forget_name = gr.Textbox(label="Forget a person", placeholder="name")
                forget_button = gr.Button("Forget")
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
                deleted_note = gr.Markdown()
                export_button = gr.Button("Export gallery (JSON)")
                export_file = gr.File(label="Export", interactive=False)
            gr.Markdown("### People across several photos")
            group_in = gr.File(label=f"Photos (up to {MAX_GROUP_PHOTOS})", file_count="multiple", type="filepath",
                               elem_id="group-input")
            group_button = gr.Button("Group faces into people", elem_id="group-faces")
            people_shown = gr.Gallery(label="One face per person", columns=6, height=200)
            people_table = gr.Dataframe(headers=["person", "faces", "photos", "in"], label="People", interactive=False)
            options_in = [detector_in, embedder_in, min_face, p_net, r_net, o_net, shorter_side, max_faces, face_threads]
            find.click(find_faces, [faces_in] + options_in + [face_gallery],
                       [faces_shown, face_crops, faces_summary, faces_latency, faces_phone, faces_phone_missing, last_faces],
                       api_name="find_faces")
            enroll.click(enroll_face, [face_number, face_name, last_faces, face_gallery], [face_gallery, enrolled],
                         api_name="enroll_face")
            enroll_refs.click(enroll_photos, [reference_photos, face_name] + options_in + [face_gallery],
                              [face_gallery, enrolled], api_name="enroll_photos")
            forget_button.click(forget, [forget_name, face_gallery], [face_gallery, enrolled], api_name="forget_person")
            save_button.click(save_gallery, [face_gallery], [saved_key], api_name="save_gallery")
            load_button.click(load_gallery, [key_in], [face_gallery, enrolled], api_name="load_gallery")
            delete_button.click(delete_saved, [key_in], [deleted_note], api_name="delete_saved_gallery")
            export_button.click(export_gallery, [face_gallery, export_dir], [export_file, export_dir], api_name="export_gallery")
            group_button.click(group_faces, [group_in] + options_in + [face_gallery], [people_shown, people_table],
                               api_name="group_faces")
        with gr.Tab("Album"):
            gr.Markdown(
                f"A gallery in, an interest profile out: every photo through the scene model, the object detector "
                f"and the faces, the stream split into events, people found, and the categories the photos imply. "
                f"Limits: {MAX_PHOTOS} photos (more: the first {MAX_PHOTOS} are processed; the command line "
                f"`python -m pipelines.album` takes any number); a .zip may hold {MAX_ZIP_MEMBERS} files and unpack "
                f"to {MAX_ZIP_TOTAL // 2**20} MB, no member compressed more than {MAX_ZIP_RATIO}:1; archives inside "
                "archives, paths outside the archive and non-photos are skipped and listed; duplicates are processed "
                "once. Capture time: EXIF DateTimeOriginal with its offset (uploads carry no usable file time: photos "
                "without EXIF are ordered by name). Your photos stay in this session; its files are deleted after."
            )
            album_state = gr.State(None)
            album_dir = gr.State(None, delete_callback=remove_workdir, time_to_live=3600)
            with gr.Row():
                album_files = gr.File(label="Photos or a .zip", file_count="multiple", type="filepath",
                                      elem_id="album-files")
                album_folder = gr.File(label="Or a folder", file_count="directory", type="filepath")
            with gr.Row():
                window = gr.Slider(5, 720, value=60, step=5, label="Event time window (minutes)")
                event_threshold = gr.Slider(0.0005, 0.02, value=0.003, step=0.0005, label="Scene distance threshold")
                w_f_in = gr.Slider(0, 1, value=0.5, step=0.05, label="w_f: weight of scenes against objects")
            album_run = gr.Button("Analyse album", variant="primary", elem_id="album-run")
            album_summary = gr.Markdown(elem_id="album-summary")
            with gr.Row():
                profile_plot = gr.Plot(label="Profile")
                profile_table = gr.Dataframe(headers=["category", "group", "photos", "events", "mean score"],
                                             label="Profile (each category opens its photos below)", interactive=False,
                                             elem_id="profile-table")
            category_pick = gr.Dropdown([], label="Photos behind a category", elem_id="category-pick",
                                        allow_custom_value=True)  # the choices are this session's categories
            category_photos = gr.Gallery(label="The photos behind it", columns=8, height=200)
            events_table = gr.Dataframe(headers=["event", "start", "end", "photos", "scenes", "objects"],
                                        label="Events", interactive=False, wrap=True, elem_id="events-table")
            events_gallery = gr.Gallery(label="A photo of each event", columns=8, height=200)
            people_gallery = gr.Gallery(label="People (faces grouped across the album)", columns=8, height=180)
            album_exports = gr.File(label="Export: profile.json and profile.csv", file_count="multiple", interactive=False)
            album_run.click(
                run_album, [album_files, album_folder, window, event_threshold, w_f_in, album_dir],
                [album_summary, events_table, events_gallery, people_gallery, profile_plot, profile_table,
                 category_pick, album_exports, album_state, album_dir],
                api_name="analyse_album", concurrency_limit=1,
            )
            category_pick.change(photos_behind, [category_pick, album_state], category_photos,
                                 api_name="photos_behind_category")
        with gr.Tab("Models"):
            gr.Markdown(
                "Every image classifier and scene model in the catalog (face models: see the Faces tab), "
                "computed by `python -m pipelines.evaluate` and cached "
                "(`models/data/evaluation.csv`), not recomputed per view. Parameters and multiply-adds come "
                "from the graph itself; shares per layer type as in the MobileNet paper's Table 2. Accuracy: "
                "labeled photos in the project's evaluation set. Host latency: this machine, median inference "
                "stage of warm runs. Phone latency: published figures, never measured here."
            )
            gr.Dataframe(model_table_rows(catalog, evaluations), headers=MODEL_TABLE_HEADERS, interactive=False,
                         wrap=True, label="Variants", elem_id="model-table")
            with gr.Row():
                plot_task = gr.Radio([("ImageNet", "classification"), ("Scenes", "scene")], value="classification",
                                     label="Task")
                plot_axis = gr.Dropdown(axes, value=axes[0], label="Latency axis")
            initial_figure, initial_note = plot("classification", axes[0])
            figure = gr.Plot(initial_figure, label="Accuracy against latency", elem_id="accuracy-plot")
            plot_note = gr.Markdown(initial_note)
            gr.Dataframe(
                all_phone_rows(catalog, TASK_TITLES),
                headers=["card", "device", "runtime", "precision", "compute unit", "ms", "published model", "source"],
                label="Published phone latencies (not measured here)", interactive=False, wrap=True,
            )
            for control in (plot_task, plot_axis):
                control.change(plot, [plot_task, plot_axis], [figure, plot_note], api_visibility="private")
        with gr.Tab("Your model"):
            gr.Markdown(
                f"Upload your own .onnx or .tflite image classifier (up to {MAX_MODEL_BYTES // 2**20} MB) with an "
                "optional labels file (one label per line) and say how its input is scaled. The app measures its "
                "graph, runs it on your photo, and for ONNX derives fp16, int8 dynamic and int8 static variants "
                "(calibrated on the bundled sample photos) for download. Your model stays in your session only: "
                "it is never added to the catalog, and its folder is deleted when you leave or upload another."
            )
            upload_dir = gr.State(None, delete_callback=remove_workdir, time_to_live=3600)
            with gr.Row():
                with gr.Column():
                    model_file = gr.File(label="Model (.onnx or .tflite)", file_count="single", type="filepath",
                                         elem_id="upload-model")
                    labels_file = gr.File(label="Labels (optional .txt)", file_count="single", type="filepath",
                                          elem_id="upload-labels")
                    upload_photo = gr.File(label="Photo", file_count="single", type="filepath", elem_id="upload-photo")
                    if examples:
                        gr.Examples(examples, inputs=[upload_photo], label="Example photos", cache_examples=False)
                with gr.Column():
                    with gr.Row():
                        form_height = gr.Number(224, label="Input height", precision=0, minimum=8, maximum=2048)
                        form_width = gr.Number(224, label="Input width", precision=0, minimum=8, maximum=2048)
                    form_channels = gr.Radio(["RGB", "BGR"], value="RGB", label="Channel order")
                    form_scaling = gr.Dropdown(list(SCALINGS), value=next(iter(SCALINGS)), label="Input scaling")
                    form_resize = gr.Dropdown(list(RESIZES), value=next(iter(RESIZES)), label="Resize")
                    form_output = gr.Radio(list(OUTPUT_KINDS), value="auto", label="Output",
                                           info="auto: probabilities if they are non-negative and sum to 1")
                    form_threads = gr.Radio(list(THREAD_CHOICES), value=1, label="CPU threads")
                    upload_run = gr.Button("Run my model", variant="primary", elem_id="upload-run")
            upload_summary = gr.Markdown(elem_id="upload-summary")
            with gr.Row():
                upload_labels = gr.Label(num_top_classes=5, label="Top-5 on your photo", elem_id="upload-labels-out")
                upload_stats = gr.Dataframe(
                    headers=["layer type", "layers", "MACs M", "% of MACs", "params M", "% of params"],
                    label="Graph statistics", interactive=False)
            upload_derived = gr.Dataframe(
                headers=["variant", "status", "size MB", "inference ms", "same top-1 as yours %", "output cosine"],
                label="Derived variants (compared with your model on the 60 calibration images and your photo)",
                interactive=False, wrap=True)
            upload_downloads = gr.File(label="Download the derived files", file_count="multiple", interactive=False)
            upload_run.click(
                run_upload,
                [model_file, labels_file, upload_photo, form_height, form_width, form_channels, form_scaling,
                 form_resize, form_output, form_threads, upload_dir],
                [upload_summary, upload_stats, upload_labels, upload_derived, upload_downloads, upload_dir],
                api_name="run_uploaded_model",
            )

        def on_model(task):
            def update(display):
                choices = variant_choices(catalog, task, display)
                return gr.Dropdown(choices=choices, value=choices[0][1])
            return update

        imagenet_model.change(on_model("classification"), imagenet_model, imagenet_card, api_visibility="private")
        scene_model.change(on_model("scene"), scene_model, scene_card, api_visibility="private")
        object_model.change(on_model("object_detection"), object_model, object_card, api_visibility="private")
        outputs = [shown, photo_notes, imagenet_out, scene_out, environment, host_latency, phone_latency,
                   phone_missing, cards_out, photo_faces, photo_faces_note, objects_shown]
        inputs = [photo_in, imagenet_card, scene_card, threads, runs]
        classify_inputs = inputs + [object_card, object_score, object_iou, face_gallery]

        def on_photo(path, *options):
            # An upload or an example click runs at once; removing the photo clears what it showed.
            return classify(path, *options) if path else [None] * len(outputs)

        run.click(classify, classify_inputs, outputs, api_name="classify")
        compare_button.click(compare, inputs, [comparison], api_name="compare_precisions")
        photo_in.change(on_photo, classify_inputs, outputs, api_visibility="private")
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    demo.mvl_store = hub.store  # for serve(): the health route reads it
    return demo


def serve(demo: gr.Blocks, host: str = "127.0.0.1", port: int | None = None, block: bool = True, **launch_kwargs):
    """Launch with the upload limit and the health route; blocks unless told not to."""
    from fastapi.responses import JSONResponse

    server, url, _ = demo.launch(server_name=host, server_port=port, prevent_thread_lock=True,
                                 max_file_size=MAX_FILE_BYTES, **launch_kwargs)
    server.add_api_route("/healthz", lambda: JSONResponse(health(demo.mvl_store)), methods=["GET"])
    if block:
        demo.block_thread()
    return url


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    main_store = ModelStore.from_env()
    report_model_files(main_store)
    serve(build_app(main_store), host=os.environ.get("MVL_HOST", "127.0.0.1"),
          port=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
