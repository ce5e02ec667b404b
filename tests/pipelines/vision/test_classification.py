from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from models.catalog import default_catalog
from pipelines.common.ops import softmax
from pipelines.vision.classification import Classifier, SceneRecognizer

CATALOG = default_catalog()


@pytest.mark.parametrize("card", CATALOG.for_task("classification"), ids=lambda c: c.name)
def test_every_imagenet_card_sees_the_espresso(hub, sample_photos, card):
    result = Classifier(hub.load(card, threads=1))(sample_photos["coffee"])
    assert result.top[0].label == "espresso"
    scores = [p.score for p in result.top]
    assert len(scores) == 5 and scores == sorted(scores, reverse=True)
    assert result.probabilities.shape == (1000,)
    assert 0.85 < result.probabilities.sum() < 1.02  # uint8 softmax outputs are coarse
    t = result.timings
    assert t.preprocess_ms > 0 and t.inference_ms > 0 and t.postprocess_ms > 0


@pytest.mark.parametrize("card", CATALOG.for_task("scene"), ids=lambda c: c.name)
def test_scenes_and_indoor_outdoor(hub, sample_photos, card):
    scenes = SceneRecognizer(hub.load(card, threads=1))
    coffee = scenes(sample_photos["coffee"])
    assert "coffee shop" in [p.label for p in coffee.top]
    assert coffee.environment == "indoor" and coffee.indoor_share > 0.5
    assert scenes(sample_photos["rocket"]).environment == "outdoor"
    assert coffee.probabilities.shape == (365,)


def test_softmax_only_where_the_model_gives_logits(hub, sample_photos):
    lite = Classifier(hub.load("efficientnet_lite0.fp32_onnx", threads=1))
    tensor = lite.preprocess(sample_photos["coffee"])
    raw = lite.infer(tensor)
    np.testing.assert_allclose(lite.probabilities(raw), softmax(raw.reshape(-1).astype(float)))
    mobilenet = Classifier(hub.load("mobilenet_v2_1.0_224.uint8_qat_tflite", threads=1))
    raw = mobilenet.infer(mobilenet.preprocess(sample_photos["coffee"]))
    np.testing.assert_array_equal(mobilenet.probabilities(raw), raw.reshape(-1)[1:].astype(float))


def test_concurrent_requests_get_their_own_results(hub, sample_photos):
    classifier = Classifier(hub.load("mobilenet_v1_0.5_160.uint8_qat_tflite", threads=1))
    images = list(sample_photos.values())
    alone = [classifier(image).top for image in images]
    with ThreadPoolExecutor(max_workers=6) as pool:
        together = list(pool.map(lambda image: classifier(image).top, images * 4))
    assert together == alone * 4


def test_a_scene_card_is_required_for_indoor_outdoor(hub):
    with pytest.raises(ValueError, match="indoor/outdoor"):
        SceneRecognizer(hub.load("efficientnet_lite0.fp32_onnx", threads=1))
