"""Settings are read explicitly; errors carry hints and survive pickling."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from raycore import errors
from raycore.errors import (
    ConfigurationError,
    GateFailedError,
    InputValidationError,
    RaycoreError,
    SpecError,
)
from raycore.settings import FoundrySettings


def test_embedded_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("FOUNDRY_HOME", "RAY_ADDRESS", "MLFLOW_TRACKING_URI", "FOUNDRY_LAKE_URI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    s = FoundrySettings.load()
    assert s.home == tmp_path / ".foundry"
    assert s.tracking_uri == f"sqlite:///{tmp_path / '.foundry' / 'mlflow.db'}"
    assert s.lake == str(tmp_path / ".foundry" / "lake")
    assert s.ray_address is None
    assert s.endpoint == "http://127.0.0.1:8000"


def test_scale_out_by_environment_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.setenv("FOUNDRY_LAKE_URI", "s3://bucket/lake")
    s = FoundrySettings.load()
    assert s.ray_address == "ray://head:10001"
    assert s.tracking_uri == "http://mlflow:5000"
    assert s.lake == "s3://bucket/lake"


def test_bad_setting_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOUNDRY_SERVE_PORT", "99999")
    with pytest.raises(ConfigurationError, match="serve_port"):
        FoundrySettings.load()


def test_settings_are_not_read_at_import() -> None:
    code = (
        "import os; os.environ['FOUNDRY_SERVE_PORT'] = 'not-a-port'; "
        "import raycore.settings, raycore.specs, raycore.catalog; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_specs_import_no_heavy_libraries() -> None:
    code = (
        "import sys, raycore.specs, raycore.catalog, raycore.settings, raycore.errors\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'ray', 'torch', 'mlflow'})\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize(
    "exc",
    [
        RaycoreError("boom", hint="fix it"),
        SpecError("bad", path="a.yaml", field="gate.op", hint="use <="),
        GateFailedError("missed", metric="mape", value=0.2, threshold=0.15, run_id="r1", hint="tune"),
        InputValidationError("bad row", errors=[{"loc": ["x"], "msg": "m", "type": "t"}], hint="h"),
        ConfigurationError("no gpu"),
    ],
)
def test_errors_survive_pickling(exc: RaycoreError) -> None:
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc)
    assert str(back) == str(exc)
    assert back.__dict__ == exc.__dict__


def test_every_error_derives_from_the_root() -> None:
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), RaycoreError)


def test_spec_error_message_names_file_and_field() -> None:
    text = str(SpecError("Field required", path="/x/mdl-001.yaml", field="label", hint="add it"))
    assert text.startswith("/x/mdl-001.yaml: field 'label': Field required")
    assert "hint: add it" in text
