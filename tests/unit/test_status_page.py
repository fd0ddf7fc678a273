"""The portfolio dashboard renders every catalog model from real state, and never invents numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raycore.catalog import load_catalog
from raycore.reporting import ModelStatus, collect_status, render_status_page
from raycore.retraining.state import ModelRetrainState, RetrainStateStore
from raycore.settings import FoundrySettings


def test_an_empty_home_renders_every_model_as_untrained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = FoundrySettings.load(home=str(tmp_path))
    catalog = load_catalog()
    rows = collect_status(settings=settings, catalog=catalog)
    assert len(rows) == 30 and all(r.champion is None and r.metric is None for r in rows)
    assert not (tmp_path / "mlflow.db").exists()  # looking creates nothing
    page = render_status_page(rows)
    assert page.count("class='card'") == 30 and page.count("untrained") == 30
    assert "<script" not in page and "http" not in page.split("<body>")[1]  # self-contained


def test_state_files_show_up_on_the_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = FoundrySettings.load(home=str(tmp_path))
    spec = load_catalog().get("mdl-005")
    (tmp_path / "monitoring" / spec.name).mkdir(parents=True)
    (tmp_path / "monitoring" / spec.name / "latest.json").write_text(
        json.dumps({"severity": "HIGH", "drifted_features": ["tenure_days", "late_deliveries"]})
    )
    RetrainStateStore(home=tmp_path).put(
        ModelRetrainState(
            model=spec.name,
            stage="live",
            last_started_at="2026-11-20T10:00:00+00:00",
            last_result={"stage": "deployed"},
        )
    )
    row = next(r for r in collect_status(settings=settings, catalog=[spec]))
    assert row.drift == "HIGH" and row.drifted_features == ["tenure_days", "late_deliveries"]
    assert row.retrain == "2026-11-20 10:00: deployed (now live)"
    row.champion, row.metric, row.passes = "3", 0.91, True
    row.history = [("1", 0.80), ("2", 0.88), ("3", 0.91)]
    page = render_status_page([row])
    assert "sev-HIGH" in page and "tenure_days" in page and "v3" in page and "passes" in page
    assert page.count("<circle") == 3  # one dot per version on the history plot
    failing = ModelStatus(spec=spec, champion="1", metric=0.5, passes=False, history=[("1", 0.5)])
    assert "class='fail'" in render_status_page([failing])


def test_the_page_renders_in_a_headless_chromium(tmp_path: Path) -> None:
    from raycore.reporting.screenshot import find_chromium, screenshot

    if find_chromium() is None:
        pytest.skip("no headless Chromium here (apt-get install chromium-headless-shell)")
    import numpy as np
    from PIL import Image

    spec = load_catalog().get("mdl-005")
    row = ModelStatus(
        spec=spec,
        champion="2",
        metric=0.88,
        passes=True,
        history=[("1", 0.86), ("2", 0.88)],
        drift="HIGH",
        drifted_features=["late_13"],
    )
    page = tmp_path / "status.html"
    page.write_text(render_status_page([row]))
    png = screenshot(page, tmp_path / "status.png", width=900, height=700)
    pixels = np.asarray(Image.open(png).convert("RGB"))
    assert pixels.shape == (700, 900, 3)
    # not a blank page: dark text and the red HIGH drift marker are drawn
    assert (pixels.sum(axis=2) < 150).mean() > 0.005
    assert ((pixels[..., 0] > 170) & (pixels[..., 1] < 90) & (pixels[..., 2] < 90)).any()
