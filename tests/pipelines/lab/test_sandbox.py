"""An upload's worker under the memory limit: a mobile classifier gets everything the tab shows within 1 GB,
and the server hears of each step as the worker starts it.

The limit on wall time is generous here on purpose: what is measured is memory (the server-side tests in
tests/ui/test_sandbox.py hold the time limit, the bombs and the server's health)."""

from pipelines.lab.custom_model import Form
from pipelines.lab.sandbox import SandboxLimits, run_upload
from tests.helpers import EVAL, MODEL_DIRS

PHOTO = sorted((EVAL / "coco" / "images").glob("*.jpg"))[0]


def test_a_mobile_classifier_gets_its_variants_and_layer_report_within_1_gb(tmp_path):
    """EfficientNet-Lite0 (fp32, 18.6 MB): the per-layer report runs its photos one at a time (keeping every
    tensor of five runs took its worker to 1.4 GB; a ResNet-50 past 2.8 GB)."""
    model = MODEL_DIRS[0] / "classification" / "efficientnet_lite0_fp32.onnx"
    steps = []
    report = run_upload(model, None, PHOTO, Form(resize="whole photo stretched"), tmp_path, 1,
                        SandboxLimits(memory_mb=1024, seconds=300), progress=lambda *step: steps.append(step))
    assert round(report.stats.macs / 1e6, 1) == 385.2
    assert report.top and [d.kind for d in report.derived] == ["fp16", "int8_dynamic", "int8_static"]
    assert all(d.path and d.path.is_file() and not d.error for d in report.derived)
    assert len(report.layers) == 15 and report.layers_output_db is not None
    assert "measured on 5 photos" in report.layers_note
    # each step heard as the worker started it, in order (the worker's file is gone with it)
    assert [done for done, _, _ in steps] == list(range(6)) and {total for _, total, _ in steps} == {6}
    assert "int8 static" in steps[4][2] and "layer by layer" in steps[5][2]
    assert not list(tmp_path.glob("progress.json*"))
