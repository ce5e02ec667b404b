"""The evaluation CLI: its numbers are the foundation tests' numbers, and the cache covers the catalog."""

import csv
import os

import pytest

from models.catalog import default_catalog
from pipelines.lab.evaluate import main
from pipelines.lab.records import DEFAULT_CSV, read_evaluations
from pipelines.lab.report import update_readme
from tests.conftest import EVAL
from tests.pipelines.lab.test_accuracy import MEASURED

CATALOG = default_catalog()


def test_the_cached_results_cover_every_card_with_the_tested_accuracy():
    cached = read_evaluations(DEFAULT_CSV)
    assert set(cached) == {c.name for c in CATALOG if c.task in ("classification", "scene")}
    for name, (top1, top5) in MEASURED.items():
        assert (round(cached[name].top1_pct, 1), round(cached[name].top5_pct, 1)) == (top1, top5), name
        derived = CATALOG[name].is_derived
        assert (cached[name].agreement_pct is not None) == derived and (cached[name].cosine is not None) == derived


def test_the_cli_reproduces_the_cached_numbers(tmp_path, store, monkeypatch):
    monkeypatch.setenv("MVL_MODEL_DIRS", os.pathsep.join(str(d) for d in store.model_dirs))
    monkeypatch.setenv("MVL_CACHE_DIR", str(store.cache_dir))
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- model-table:begin -->\nold\n<!-- model-table:end -->\nafter\n")
    out = tmp_path / "evaluation.csv"
    cards = ["mobilenet_v1_0.25_128.uint8_qat_tflite", "squeezenet1.1_places365.int8_static_onnx"]
    assert main(["--cards", *cards, "--eval-dir", str(EVAL), "--csv", str(out), "--readme", str(readme),
                 "--markdown", str(tmp_path / "table.md"), "--runs", "3"]) == 0
    fresh, cached = read_evaluations(out), read_evaluations(DEFAULT_CSV)
    assert set(fresh) == set(cards)  # the parent was evaluated for the agreement, not written
    for name in cards:
        for field in ("top1_pct", "top5_pct", "params", "macs", "agreement_pct", "photos", "size_mb"):
            assert getattr(fresh[name], field) == getattr(cached[name], field), (name, field)
        assert fresh[name].latency_runs == 3 and fresh[name].latency_1t_ms > 0
    text = readme.read_text()
    assert "old" not in text and "after" in text and "| squeezenet1.1_places365.int8_static_onnx |" in text
    with out.open() as fh:
        assert len(list(csv.DictReader(fh))) == 2


def test_a_readme_without_the_markers_is_refused(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("no table here\n")
    with pytest.raises(ValueError, match="model-table"):
        update_readme(readme, "| t |")
