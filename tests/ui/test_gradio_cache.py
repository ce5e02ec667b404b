"""Two sessions given the same result image at once never read a half-written file."""

import threading
from pathlib import Path

from gradio import processing_utils
from PIL import Image

from ui.gradio_cache import atomic_cache_writes, save_pil_to_cache


def test_the_same_image_written_and_read_at_once_is_always_whole(tmp_path):
    image = Image.effect_noise((400, 400), 60).convert("RGB")
    size = len(processing_utils.encode_pil_to_bytes(image, "webp"))
    short, stop = [], threading.Event()
    path = Path(save_pil_to_cache(image, str(tmp_path)))

    def write():
        for _ in range(40):
            save_pil_to_cache(image, str(tmp_path))

    def read():
        while not stop.is_set():
            if len(path.read_bytes()) != size:
                short.append(1)

    readers = [threading.Thread(target=read) for _ in range(2)]
    writers = [threading.Thread(target=write) for _ in range(3)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert short == [] and [p.name for p in path.parent.iterdir()] == [path.name]  # no staging file left


def test_the_app_installs_it():
    atomic_cache_writes()
    assert processing_utils.save_pil_to_cache is save_pil_to_cache
