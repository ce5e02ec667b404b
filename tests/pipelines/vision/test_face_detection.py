"""Face detectors on the annotated group photos, and the cases a person's photos bring."""

import csv
from functools import cache

import numpy as np
import pytest
from PIL import Image

from pipelines.common.ops import box_iou, nms
from pipelines.vision.face_detection import DetectorOptions, load_detector
from tests.helpers import EVAL

GROUPS = EVAL / "faces_groups"
SMALL_FACES = DetectorOptions(min_face=20)
# annotated faces found (IoU >= 0.4) on the 6 group photos and detections matching no face (annotated or marked
# ignore), measured with min face 20: a detector that loses a face or invents one fails
MEASURED = {
    "MTCNN (ONNX Runtime)": (31, 0),
    "MTCNN (LiteRT)": (31, 0),
    "BlazeFace short-range": (6, 4),  # the selfie-range model; these faces are ~9 px at its 128 px input
    "BlazeFace full-range (sparse)": (31, 0),
    "RetinaFace-1MB mobilenet0.25": (31, 1),
    "RetinaFace-1MB slim": (30, 0),
}


@cache
def annotated() -> dict[str, list[tuple[float, ...]]]:
    with (GROUPS / "labels.csv").open(newline="") as fh:
        photos = {r["filename"] for r in csv.DictReader(fh)}
    boxes: dict[str, list] = {name: [] for name in sorted(photos)}
    with (GROUPS / "boxes.csv").open(newline="") as fh:
        for r in csv.DictReader(fh):
            if r["filename"] in photos and r["ignore"] == "0":
                boxes[r["filename"]].append(tuple(float(r[k]) for k in ("x1", "y1", "x2", "y2")))
    return boxes


def group_photo(name: str) -> Image.Image:
    with Image.open(GROUPS / "images" / name) as image:
        return image.convert("RGB")


def test_every_detector_is_measured(hub):
    assert set(MEASURED) == set(hub.store.catalog.displays("face_detection"))


@pytest.mark.parametrize("display", list(MEASURED))
def test_faces_found_and_invented_on_the_annotated_photos(hub, display):
    from pipelines.lab.datasets import face_group_photos
    from pipelines.lab.metrics import face_recall

    detector = load_detector(hub, display)
    result = face_recall(lambda image: detector(image, SMALL_FACES).faces, face_group_photos(GROUPS))
    print(f"{display}: {result}")
    assert result.faces == 31 and (result.found, result.false_positives) == MEASURED[display]


def test_mtcnn_onnx_and_tflite_find_the_same_faces(hub):
    onnx_mtcnn, tflite_mtcnn = load_detector(hub, "MTCNN (ONNX Runtime)"), load_detector(hub, "MTCNN (LiteRT)")
    compared = 0
    for name in annotated():
        a, b = onnx_mtcnn(group_photo(name), SMALL_FACES).faces, tflite_mtcnn(group_photo(name), SMALL_FACES).faces
        assert len(a) == len(b), name
        for face in a:
            assert max(box_iou(face.box, other.box) for other in b) >= 0.95
            compared += 1
    assert compared >= 25


def test_landmarks_sit_where_a_face_has_them(hub, sample_photos):
    (face,) = load_detector(hub, "MTCNN (ONNX Runtime)")(sample_photos["astronaut"]).faces
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    assert left_eye[0] < nose[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    x1, y1, x2, y2 = face.box
    assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in face.landmarks)


def test_blazeface_marks_the_mouth_corners_absent(hub, sample_photos):
    (face,) = load_detector(hub, "BlazeFace full-range (sparse)")(sample_photos["astronaut"], SMALL_FACES).faces
    assert face.landmarks_present == (True, True, True, False, False)
    assert np.isnan(face.landmarks[3:]).all() and not np.isnan(face.landmarks[:3]).any()


@pytest.mark.parametrize("display", list(MEASURED))
def test_a_photo_without_faces_gives_none(hub, sample_photos, display):
    result = load_detector(hub, display)(sample_photos["rocket"], SMALL_FACES)
    assert result.faces == () and result.skipped == 0


def test_retinaface_slim_has_a_known_false_positive_on_the_coffee_cup(hub, sample_photos):
    # Recorded, not hidden: the model's own mistake (MANIFEST notes its sibling's on the cat).
    faces = load_detector(hub, "RetinaFace-1MB slim")(sample_photos["coffee"], SMALL_FACES).faces
    assert len(faces) == 1 and 0.6 <= faces[0].score < 0.75
    assert load_detector(hub, "MTCNN (ONNX Runtime)")(sample_photos["coffee"], SMALL_FACES).faces == ()


def test_a_crowd_keeps_the_largest_faces_and_counts_the_rest(hub):
    name = max(annotated(), key=lambda n: len(annotated()[n]))
    detector = load_detector(hub, "MTCNN (ONNX Runtime)")
    everyone = detector(group_photo(name), SMALL_FACES).faces
    few = detector(group_photo(name), DetectorOptions(min_face=20, max_faces=3))
    assert len(few.faces) == 3 and few.skipped == len(everyone) - 3
    assert [f.box for f in few.faces] == [f.box for f in everyone[:3]]
    areas = [(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in everyone]
    assert areas == sorted(areas, reverse=True)


@pytest.mark.parametrize("display", ["MTCNN (ONNX Runtime)", "RetinaFace-1MB slim"])
def test_faces_under_the_minimum_size_are_not_found(hub, display):
    # the minimum set to twice the photo's largest annotated face: none of them may come back
    detector = load_detector(hub, display)
    for name, boxes in annotated().items():
        minimum = int(2 * max(max(b[2] - b[0], b[3] - b[1]) for b in boxes))
        faces = detector(group_photo(name), DetectorOptions(min_face=minimum)).faces
        assert all(f.size >= minimum for f in faces)
        assert not any(box_iou(b, f.box) >= 0.4 for b in boxes for f in faces), name


def test_a_large_photo_is_downscaled_first_and_answered_in_its_own_pixels(hub, sample_photos):
    detector = load_detector(hub, "MTCNN (ONNX Runtime)")
    (small,) = detector(sample_photos["astronaut"], DetectorOptions(min_face=40)).faces
    big = sample_photos["astronaut"].resize((2048, 2048))
    result = detector(big, DetectorOptions(min_face=40))
    assert result.downscale == pytest.approx(600 / 2048)
    (face,) = result.faces
    assert box_iou(face.box, tuple(v * 4 for v in small.box)) > 0.85


def test_a_face_cut_by_the_border_is_still_found(hub, sample_photos):
    (whole,) = load_detector(hub, "MTCNN (ONNX Runtime)")(sample_photos["astronaut"], DetectorOptions(min_face=40)).faces
    cut_at = int(whole.box[0] + (whole.box[2] - whole.box[0]) * 0.25)  # a quarter of the face outside
    cropped = sample_photos["astronaut"].crop((cut_at, 0, 512, 512))
    faces = load_detector(hub, "MTCNN (ONNX Runtime)")(cropped, DetectorOptions(min_face=40)).faces
    assert len(faces) == 1 and faces[0].box[0] < 5


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], float)
    assert nms(boxes, np.array([0.9, 0.8, 0.7]), 0.5).tolist() == [0, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_an_unknown_detector_is_named(hub):
    with pytest.raises(ValueError, match="no face detector named 'YOLO-face'"):
        load_detector(hub, "YOLO-face")
