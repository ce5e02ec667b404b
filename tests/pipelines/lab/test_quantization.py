"""The mixed-precision search finds, by measurement on held-out photos, what the committed YOLOX-nano recipe
keeps in float; the lab's report of a catalog card."""

import pytest

from pipelines.lab.quantization import TOLERANCE, card_report, mixed_precision

YOLOX = "yolox_nano.int8_static_onnx"


@pytest.mark.heavy
def test_the_search_finds_the_stem_of_yolox(hub):
    result = mixed_precision(hub, YOLOX, max_steps=4)
    plain, *steps = result.steps
    assert plain.keep_float == () and plain.fidelity < 30  # the plain recipe: measured 12.6
    kept = [s.tried for s in steps if s.kept]
    committed = hub.store.catalog[YOLOX].recipe.keep_float
    assert kept == list(committed[:2])  # the stem, as committed
    assert result.chosen.fidelity > plain.fidelity + 40  # measured 74.0
    assert result.tolerance == TOLERANCE["object_detection"]
    assert result.chosen.size_mb < 0.5 * 3.71  # still an int8 file: under half the parent's 3.71 MB


def test_the_report_of_a_catalog_card(hub):
    report = card_report(hub, YOLOX, photos=2)
    assert report.inputs == 2 and report.output_db > 9  # measured 10.7 dB (the plain recipe: 6.6)
    with pytest.raises(ValueError, match="not an int8 static ONNX"):
        card_report(hub, "yolox_nano.int8_dynamic_onnx")
