"""Bronze ingest: idempotent batches, retried transient reads, clear errors that lose nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.fs as pafs
import pytest

from raycore.data.layers import RetryPolicy, ingest, load_dataset_spec, load_manifest, read, status
from raycore.data.layers.snapshots import as_lake
from raycore.errors import DataError

STORES = "store_id,region_id,store_format,opened_at\n1,1,mall,2015-03-01\n2,2,street,2016-01-01\n"


class FlakyHandler(pafs.FileSystemHandler):
    """A real pyarrow filesystem (local disk) whose first ``failures`` reads raise OSError."""

    def __init__(self, failures: int) -> None:
        self.fs = pafs.LocalFileSystem()
        self.failures = failures
        self.opens = 0

    def _maybe_fail(self, path: str) -> None:
        self.opens += 1
        if self.opens <= self.failures:
            raise OSError(f"transient network hiccup reading {path}")

    def open_input_stream(self, path: str) -> Any:
        self._maybe_fail(path)
        return self.fs.open_input_stream(path)

    def open_input_file(self, path: str) -> Any:
        self._maybe_fail(path)
        return self.fs.open_input_file(path)

    def get_type_name(self) -> str:
        return "flaky"

    def equals(self, other: Any) -> bool:
        return self is other

    def normalize_path(self, path: str) -> str:
        return path

    def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
        return [self.fs.get_file_info(p) for p in paths]

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        return self.fs.get_file_info(selector)

    def create_dir(self, path: str, recursive: bool) -> None:
        self.fs.create_dir(path, recursive=recursive)

    def delete_dir(self, path: str) -> None:
        self.fs.delete_dir(path)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self.fs.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        raise NotImplementedError

    def delete_file(self, path: str) -> None:
        self.fs.delete_file(path)

    def move(self, src: str, dest: str) -> None:
        self.fs.move(src, dest)

    def copy_file(self, src: str, dest: str) -> None:
        self.fs.copy_file(src, dest)

    def open_output_stream(self, path: str, metadata: Any) -> Any:
        return self.fs.open_output_stream(path)

    def open_append_stream(self, path: str, metadata: Any) -> Any:
        return self.fs.open_append_stream(path)


@pytest.fixture()
def stores_csv(tmp_path: Path) -> Path:
    path = tmp_path / "stores.csv"
    path.write_text(STORES)
    return path


def test_ingest_keeps_raw_values_with_metadata(tmp_path: Path, stores_csv: Path) -> None:
    result = ingest(load_dataset_spec("stores"), lake=tmp_path / "lake", source=stores_csv, engine="pandas")
    assert (result.rows, result.skipped, result.version) == (2, False, 1)
    bronze = read("stores", lake=tmp_path / "lake", layer="bronze")
    assert list(bronze.columns) == [
        "store_id", "region_id", "store_format", "opened_at", "_source", "_batch_id", "_ingested_at", "_row_number"
    ]
    assert bronze["store_id"].tolist() == [1, 2]  # a whole column of numbers is read as numbers
    assert bronze["store_format"].tolist() == ["mall", "street"]  # declared text stays text
    assert bronze["_row_number"].tolist() == [0, 1]
    assert set(bronze["_batch_id"]) == {result.batch_id}
    assert (tmp_path / "lake" / "bronze" / "stores" / f"_batch_id={result.batch_id}").is_dir()


def test_a_column_with_one_unreadable_value_stays_text_in_bronze(tmp_path: Path) -> None:
    path = tmp_path / "stores.csv"
    path.write_text("store_id,region_id,store_format,opened_at\n1,1,mall,2015-03-01\nx2,01,007,2016-01-01\n")
    ingest(load_dataset_spec("stores"), lake=tmp_path / "lake", source=path, engine="pandas")
    bronze = read("stores", lake=tmp_path / "lake", layer="bronze")
    assert bronze["store_id"].tolist() == ["1", "x2"]  # nothing raw is lost
    assert bronze["store_format"].tolist() == ["mall", "007"]  # declared text stays verbatim


def test_reingesting_the_same_batch_is_a_noop(tmp_path: Path, stores_csv: Path) -> None:
    spec, lake = load_dataset_spec("stores"), tmp_path / "lake"
    first = ingest(spec, lake=lake, source=stores_csv, engine="pandas")
    copy = tmp_path / "copy.csv"
    copy.write_text(STORES)  # same content under another name: same batch
    again = ingest(spec, lake=lake, source=copy, engine="pandas")
    assert again.skipped and again.batch_id == first.batch_id
    assert len(read("stores", lake=lake, layer="bronze")) == 2
    assert len(load_manifest(as_lake(lake), "bronze", "stores").versions) == 1
    assert status(lake).get("bronze", "stores").rows == 2  # type: ignore[union-attr]


def test_a_transient_read_failure_is_retried_with_backoff(tmp_path: Path, stores_csv: Path) -> None:
    handler = FlakyHandler(failures=2)
    waits: list[float] = []
    retry = RetryPolicy(attempts=4, base_delay_s=0.1, sleep=waits.append)
    result = ingest(
        load_dataset_spec("stores"),
        lake=tmp_path / "lake",
        source=str(stores_csv),
        filesystem=pafs.PyFileSystem(handler),
        retry=retry,
        engine="pandas",
    )
    assert result.rows == 2
    assert waits == [0.1, 0.2]  # two failures, exponential backoff


def test_reads_that_keep_failing_give_up_with_a_data_error(tmp_path: Path, stores_csv: Path) -> None:
    retry = RetryPolicy(attempts=3, base_delay_s=0.0, sleep=lambda _: None)
    with pytest.raises(DataError, match=r"after 3 attempts: transient network hiccup"):
        ingest(
            load_dataset_spec("stores"),
            lake=tmp_path / "lake",
            source=str(stores_csv),
            filesystem=pafs.PyFileSystem(FlakyHandler(failures=99)),
            retry=retry,
            engine="pandas",
        )


def test_a_corrupt_parquet_file_fails_clearly_and_earlier_data_stays(tmp_path: Path) -> None:
    spec, lake = load_dataset_spec("stores"), tmp_path / "lake"
    good = tmp_path / "good.parquet"
    pd.read_csv(pd.io.common.StringIO(STORES)).to_parquet(good)
    ingest(spec, lake=lake, source=good, engine="pandas")
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])  # truncated: footer lost
    with pytest.raises(DataError) as err:
        ingest(spec, lake=lake, source=corrupt, engine="pandas")
    assert "corrupt.parquet" in str(err.value) and "corrupt or not valid parquet" in str(err.value)
    assert len(read("stores", lake=lake, layer="bronze")) == 2
    assert len(list((lake / "bronze" / "stores").iterdir())) == 1  # the failed batch left no folder


def test_a_missing_required_column_fails_the_batch_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "stores.csv"
    path.write_text("store_id,region_id,opened_at\n1,1,2015-03-01\n")
    lake = tmp_path / "lake"
    with pytest.raises(DataError) as err:
        ingest(load_dataset_spec("stores"), lake=lake, source=path, engine="pandas")
    message = str(err.value)
    assert "['store_format']" in message
    assert "found columns: ['store_id', 'region_id', 'opened_at']" in message
    assert "required: false" in message  # the hint says how to fix it
    assert not (lake / "bronze").exists() or not any((lake / "bronze").rglob("*.parquet"))
    assert load_manifest(as_lake(lake), "bronze", "stores").latest is None


def test_a_folder_source_is_one_batch_of_all_its_files(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "a.csv").write_text(STORES)
    (folder / "b.csv").write_text("store_id,region_id,store_format,opened_at\n3,1,outlet,2017-01-01\n")
    (folder / "_SUCCESS").write_text("")  # markers are ignored
    result = ingest(load_dataset_spec("stores"), lake=tmp_path / "lake", source=folder, engine="pandas")
    assert result.rows == 3 and len(result.files) == 2
    bronze = read("stores", lake=tmp_path / "lake", layer="bronze")
    assert bronze.groupby("_source", observed=True)["_row_number"].max().tolist() == [1, 0]


def test_retry_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="attempts must be >= 1, got 0"):
        RetryPolicy(attempts=0)


def test_a_data_world_table_source_is_read_from_the_lake(tmp_path: Path) -> None:
    result = ingest(load_dataset_spec("regions"), lake=tmp_path / "lake", engine="pandas")
    assert result.rows == 6 and result.files[0].endswith("world/7-small/tables/regions.parquet")
