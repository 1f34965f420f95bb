"""Batch inference (same handler, chunked, Batch Transform's output) and data capture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mlops_kit.cli import main
from mlops_kit.models import load_model
from mlops_kit.serving.batch import BatchError, transform
from mlops_kit.serving.capture import Capture, read_capture
from tests.conftest import Trained
from tests.test_serving import COLUMNS, GOOD, csv_body


def scores(path: Path) -> np.ndarray:
    return np.array([float(x) for x in path.read_text().split()])


@pytest.mark.parametrize("chunk_rows", [7, 10_000])
def test_csv_with_and_without_header_and_parquet_agree(trained: Trained, tmp_path: Path,
                                                       chunk_rows: int) -> None:
    rows = trained.rows.head(50)
    model = load_model(trained.model_dir)
    expected = model.predict_source(rows)
    (tmp_path / "plain.csv").write_text(csv_body(rows))
    rows.to_csv(tmp_path / "named.csv", index=False)  # header, extra columns, any order
    rows.to_parquet(tmp_path / "rows.parquet")
    for name in ("plain.csv", "named.csv", "rows.parquet"):
        result = transform(model, tmp_path / name, tmp_path / "out", chunk_rows=chunk_rows)
        assert result.output == tmp_path / "out"
        assert result.rows == 50
        np.testing.assert_allclose(scores(tmp_path / "out"), expected, atol=1e-6)


@pytest.mark.parametrize("chunk_rows", [7, 10_000])
def test_a_header_line_names_every_chunk_and_unread_columns_may_repeat(
        trained: Trained, tmp_path: Path, chunk_rows: int) -> None:
    import json

    rows = trained.rows.head(50)
    model = load_model(trained.model_dir)
    expected = model.predict_source(rows)
    shuffled = rows[list(reversed(rows.columns))]  # another order than the model's
    lines = [json.dumps(list(shuffled.columns))]
    lines += map(json.dumps, json.loads(shuffled.to_json(orient="values", date_format="iso")))
    (tmp_path / "named.jsonl").write_text("\n".join(lines) + "\n")
    text = rows.assign(n1="a", n2="b").to_csv(index=False)  # two unread columns "note"
    (tmp_path / "twice.csv").write_text(text.replace(",n1,n2\n", ",note,note\n", 1))
    for name in ("named.jsonl", "twice.csv"):
        result = transform(model, tmp_path / name, tmp_path / "out", chunk_rows=chunk_rows)
        assert result.rows == 50
        np.testing.assert_allclose(scores(tmp_path / "out"), expected, atol=1e-6)


def test_output_folder_and_json_lines(trained: Trained, tmp_path: Path) -> None:
    model = load_model(trained.model_dir)
    (tmp_path / "in.csv").write_text(GOOD + "\n" + GOOD + "\n")
    (tmp_path / "out").mkdir()
    result = transform(model, tmp_path / "in.csv", tmp_path / "out", accept="application/json")
    assert result.output == tmp_path / "out" / "in.csv.out"
    lines = result.output.read_text().splitlines()
    assert len(lines) == 2 and '"predicted_label"' in lines[0]


def test_bad_row_names_the_file_row_and_writes_nothing(trained: Trained, tmp_path: Path) -> None:
    model = load_model(trained.model_dir)
    good = [GOOD] * 9
    (tmp_path / "in.csv").write_text("\n".join([*good, GOOD.replace("70.5", "x")]) + "\n")
    with pytest.raises(BatchError, match=r"row 10, column monthly_charges: 'x'"):
        transform(model, tmp_path / "in.csv", tmp_path / "out.csv", chunk_rows=4)
    assert list(tmp_path.iterdir()) == [tmp_path / "in.csv"]


def test_bad_inputs(trained: Trained, tmp_path: Path) -> None:
    model = load_model(trained.model_dir)
    with pytest.raises(BatchError, match="input file not found"):
        transform(model, tmp_path / "none.csv", tmp_path / "o")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(BatchError, match="no rows"):
        transform(model, tmp_path / "empty.csv", tmp_path / "o")
    trained.rows.drop(columns=["age"]).to_parquet(tmp_path / "p.parquet")
    with pytest.raises(BatchError, match=r"columns \['age'\] are missing"):
        transform(model, tmp_path / "p.parquet", tmp_path / "o")
    (tmp_path / "named.csv").write_text(",".join(COLUMNS) + "\n" + GOOD + ",extra\n")
    with pytest.raises(BatchError, match=r"malformed CSV: .*Expected 9 columns, got 10"):
        transform(model, tmp_path / "named.csv", tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_cli_batch(trained: Trained, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text(GOOD + "\n")
    args = ["batch", "--config", str(trained.config), "--model-dir", str(trained.model_dir),
            "--input", str(tmp_path / "in.csv")]
    res = CliRunner().invoke(main, [*args, "--output", str(tmp_path / "o.csv")])
    assert res.exit_code == 0, res.output
    assert len(scores(tmp_path / "o.csv")) == 1
    (tmp_path / "in.csv").write_text("1,2\n")
    res = CliRunner().invoke(main, [*args, "--output", str(tmp_path / "o2.csv")])
    assert res.exit_code == 2 and "row 1 has 2 values" in res.output


def test_cli_batch_without_an_approved_version(trained: Trained, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text(GOOD + "\n")
    res = CliRunner().invoke(main, ["batch", "--config", str(trained.config), "--input",
                                    str(tmp_path / "in.csv"), "--output", str(tmp_path / "o")])
    assert res.exit_code == 1 and "no approved version" in res.output


def test_capture_sampling_and_redaction(tmp_path: Path) -> None:
    kept = Capture(tmp_path / "a", model="m", version="3", sampling_percent=100, inputs=False)
    none = Capture(tmp_path / "b", model="m", version="3", sampling_percent=0)
    for cap in (kept, none):
        for _ in range(10):
            cap.record(b"1,2", "text/csv", b"0.5\n", "text/csv", latency_ms=1.0)
        cap.flush()
    records = read_capture(tmp_path / "a")
    assert len(records) == 10 and read_capture(tmp_path / "b") == []
    assert records[0]["captureData"]["endpointInput"] == {
        "observedContentType": "text/csv", "mode": "INPUT", "data": "", "encoding": "REDACTED"}
    assert records[0]["eventMetadata"]["modelVersion"] == "3"
    half = Capture(tmp_path / "c", model="m", version="1", sampling_percent=50)
    for _ in range(2000):
        half.record(b"{}", "application/json", b"{}", "application/json", latency_ms=1.0)
    half.flush()
    assert 850 < len(read_capture(tmp_path / "c")) < 1150
