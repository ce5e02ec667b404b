import csv
import tomllib

import pytest

from models.catalog import (
    CatalogError,
    UnknownCardError,
    class_names,
    default_catalog,
    load_catalog,
)
from tests.helpers import DATA_LATENCY, EVAL, SHARED

CATALOG = default_catalog()


def test_every_classification_scene_and_face_file_has_a_card_with_the_manifest_checksum():
    manifest = tomllib.loads((SHARED / "models" / "MANIFEST.toml").read_text())
    folders = ("classification/", "scene/", "face_detection/", "face_recognition/")
    wanted = {path: entry for path, entry in manifest.items() if path.startswith(folders)}
    cards = {card.file: card for card in CATALOG if not card.is_derived}
    assert set(wanted) <= set(cards)
    for path, entry in wanted.items():
        assert cards[path].sha256 == entry["sha256"]
        assert cards[path].bytes == entry["bytes"]
        assert cards[path].runtime == entry["runtime"]


def test_every_fp32_onnx_classifier_and_embedder_has_its_three_derived_variants():
    for card in CATALOG:
        if card.runtime == "onnx" and card.precision == "fp32" and not card.is_derived and card.task != "face_detection":
            kinds = {c.recipe.kind for c in CATALOG if c.derived_from == card.name}
            assert kinds == {"fp16", "int8_static", "int8_dynamic"}, card.name


def test_derived_cards_inherit_the_parent_contract():
    card = CATALOG["efficientnet_lite0.int8_static_onnx"]
    parent = CATALOG[card.derived_from]
    assert card.is_derived and card.sha256 is None
    assert (card.input, card.output, card.labels, card.task) == (parent.input, parent.output, parent.labels, parent.task)
    assert card.recipe.as_dict() == {"kind": "int8_static", "calibration": "skimage_samples", "bias_correct": True}
    tuned = CATALOG["squeezenet1.1_places365.int8_static_onnx"].recipe
    assert tuned.as_dict()["fine_tune"] == "coco_imagenet" and "fine-tuned to fp32's outputs" in tuned.describe()
    # its first convolution and fire module, pooled logits and probabilities stay float
    assert tuned.keep_float[0] == "/Sub_output_0" and tuned.keep_float[-1] == "/ReduceMean_output_0"
    assert "/Conv_3_output_0" in tuned.keep_float and "/Conv_4_output_0" not in tuned.keep_float


def test_class_names_drop_background_and_read_places_paths():
    v1 = CATALOG["mobilenet_v1_0.25_128.uint8_qat_tflite"]
    lite = CATALOG["efficientnet_lite0.fp32_onnx"]
    assert class_names(v1) == class_names(lite)
    assert len(class_names(v1)) == 1000 and class_names(v1)[0].startswith("tench")
    places = class_names(CATALOG["squeezenet1.1_places365.fp32_onnx"])
    assert len(places) == 365 and places[0] == "airfield" and "kennel (outdoor)" in places


def test_detectors_name_the_coco_classes_as_coco_does():
    # the label file once had the spaces taken out ("diningtable", "cellphone"): the names shown are COCO's own
    with (EVAL / "coco" / "labels.csv").open(newline="") as fh:
        labeled = {int(row["class_id80"]): row["class_name"] for row in csv.DictReader(fh)}
    for card in CATALOG.for_task("object_detection"):
        names = class_names(card)
        assert len(names) == 80 and all(names[k] == name for k, name in labeled.items()), card.name


def test_published_latencies_are_the_csv_rows_with_their_source():
    with DATA_LATENCY.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    card = CATALOG["mobilenet_v1_0.25_128.uint8_qat_tflite"]
    assert [(p.device, p.latency_ms, p.source) for p in card.phone_latency] == [
        (r["device"], r["latency_ms"], r["source"]) for r in rows
        if r["model"] == "mobilenet_v1_0.25_128" and r["precision"] == "uint8"
    ]
    assert all(p.source and p.match for c in CATALOG for p in c.phone_latency)
    assert CATALOG["mobilenet_v1_0.5_160.uint8_qat_tflite"].phone_latency == ()


def test_project_latency_file_is_the_shared_reference():
    assert DATA_LATENCY.read_text() == (SHARED / "reference" / "phone_latency.csv").read_text()


def test_unknown_card_names_the_known_ones():
    with pytest.raises(UnknownCardError, match="mobilenet_v1_0.25_128.uint8_qat_tflite"):
        CATALOG["mobilenet_v1_0.25_128.fp32"]


BASE = '''
[[card]]
name = "m.fp32_onnx"
task = "classification"
arch = "m"
display = "M"
precision = "fp32"
variant = "fp32"
runtime = "onnx"
file = "m.onnx"
sha256 = "{sha}"
bytes = 10
labels = "coral_imagenet_labels.txt"
license = "MIT"
input = {{ height = 8, width = 8, layout = "NCHW", channels = "RGB", mean = [0, 0, 0], std = [1, 1, 1], resize = "stretch", crop_fraction = 1.0 }}
output = {{ kind = "logits", classes = 1000 }}
sources = [{{ what = "test" }}]
'''


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.replace('runtime = "onnx"', 'runtime = "coreml"'), "runtime"),
        (lambda t: t.replace('license = "MIT"\n', ""), "license"),
        (lambda t: t.replace("classes = 1000", "classes = 10"), "labels"),
        (lambda t: t.replace('layout = "NCHW"', 'layout = "CHW"'), "input.layout"),
        (lambda t: t + '[[card]]\nname = "m.fp16"\nderived_from = "nope"\n', "derived_from"),
        (lambda t: t + '[[card]]\nname = "m.fp16"\nderived_from = "m.fp32_onnx"\nprecision = "fp16"\nvariant = "x"\n'
         'recipe = { kind = "int8_static" }\n', "calibration"),
        (lambda t: t + '[[card]]\nname = "m.fp16"\nderived_from = "m.fp32_onnx"\nprecision = "fp16"\nvariant = "x"\n'
         'recipe = { kind = "fp16", equalize = true }\n', "equalize"),
        (lambda t: t + '[[card]]\nname = "m.int8"\nderived_from = "m.fp32_onnx"\nprecision = "int8"\nvariant = "x"\n'
         'recipe = { kind = "int8_static", calibration = "skimage_samples", equalize = "yes" }\n', "equalize"),
        (lambda t: t + '[[card]]\nname = "m.int8"\nderived_from = "m.fp32_onnx"\nprecision = "int8"\nvariant = "x"\n'
         'recipe = { kind = "int8_dynamic", bias_correct = true }\n', "bias_correct"),
        (lambda t: t + '[[card]]\nname = "m.int8"\nderived_from = "m.fp32_onnx"\nprecision = "int8"\nvariant = "x"\n'
         'recipe = { kind = "int8_dynamic", fine_tune = "coco_imagenet" }\n', "fine_tune"),
        (lambda t: t + t, "twice"),
    ],
)
def test_malformed_catalog_is_refused_naming_the_field(tmp_path, edit, message):
    path = tmp_path / "catalog.toml"
    path.write_text(edit(BASE.format(sha="a" * 64)))
    with pytest.raises(CatalogError, match=message):
        load_catalog(path, DATA_LATENCY)


def test_a_valid_small_catalog_loads(tmp_path):
    path = tmp_path / "catalog.toml"
    path.write_text(BASE.format(sha="a" * 64))
    (card,) = load_catalog(path, DATA_LATENCY).cards
    assert card.name == "m.fp32_onnx" and card.input.resize == "stretch"


DETECTOR = BASE.replace('task = "classification"', 'task = "object_detection"').replace(
    'labels = "coral_imagenet_labels.txt"', 'labels = "coco80_labels.txt"').replace(
    'classes = 1000', 'classes = 80')


@pytest.mark.parametrize(
    "decoder, message",
    [
        ('{ kind = "nanodet", strides = [8, 16, 32], reg_maks = 7 }', r"'m.fp32_onnx'.*unknown field\(s\) reg_maks"),
        ('{ kind = "nanodet", strides = [8, 16, 32] }', r"'m.fp32_onnx'.*decoder.reg_max is missing"),
        ('{ kind = "nanodet", strides = "8", reg_max = 7 }', r"'m.fp32_onnx'.*decoder.strides must be a non-empty list"),
        ('{ kind = "yolo", strides = [8] }', r"'m.fp32_onnx'.*decoder.kind = 'yolo'"),
        ('{ kind = "blazeface", grids = [[16, 2]], scale = 128.0, score_threshold = 0.5, nms_iou = 0.3 }',
         r"'m.fp32_onnx'.*decodes face_detection, not object_detection"),
    ],
)
def test_a_decoder_typo_fails_at_load_naming_the_card_and_the_field(tmp_path, decoder, message):
    path = tmp_path / "catalog.toml"
    path.write_text(DETECTOR.format(sha="a" * 64) + f"decoder = {decoder}\n")
    with pytest.raises(CatalogError, match=message):
        load_catalog(path, DATA_LATENCY)


def test_a_detector_without_a_decoder_is_refused(tmp_path):
    path = tmp_path / "catalog.toml"
    path.write_text(DETECTOR.format(sha="a" * 64))
    with pytest.raises(CatalogError, match="needs a decoder table"):
        load_catalog(path, DATA_LATENCY)


def test_decoders_are_typed_and_defaults_are_cards_of_their_task():
    from models.decoders import NanoDetDecoder

    assert CATALOG["nanodet_m.fp32_onnx"].decoder == NanoDetDecoder(strides=(8, 16, 32), reg_max=7)
    for task in ("classification", "scene", "object_detection", "face_embedding"):
        assert CATALOG[CATALOG.default(task)].task == task
    assert CATALOG.default("face_detection") in CATALOG.displays("face_detection")
    assert CATALOG.default("object_detection", "album") == "yolox_nano.int8_static_onnx"


@pytest.mark.parametrize("defaults, message", [
    ('[defaults]\nclassification = "nope.onnx"\n', "defaults.classification = 'nope.onnx' is not a classification card"),
    ('[defaults]\ncolouring = "m.fp32_onnx"\n', "'colouring' is not a task"),
])
def test_defaults_name_cards_of_the_catalog(tmp_path, defaults, message):
    path = tmp_path / "catalog.toml"
    path.write_text(defaults + BASE.format(sha="a" * 64))
    with pytest.raises(CatalogError, match=message):
        load_catalog(path, DATA_LATENCY)
