"""The local runtime adapters: folder storage, the JSON catalog and atomic JSON writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_kit import fileio
from mlops_kit.fileio import write_json_atomic
from mlops_kit.runtime import files
from mlops_kit.runtime.files import JsonCatalog, LocalStorage
from mlops_kit.runtime.ports import TableSpec


def make_tree(root: Path, content: dict[str, str]) -> Path:
    """Write `content` (relative path -> text) under `root` and return it."""
    for rel, text in content.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_uri_is_absolute_under_root(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    uri = storage.uri("runs", "r1", "model")
    assert uri == str((tmp_path / "store" / "runs" / "r1" / "model").resolve())
    assert Path(uri).is_absolute()
    with pytest.raises(ValueError, match="leaves the storage root"):
        storage.uri("..", "elsewhere")


def test_put_get_listing_round_trip(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    src = make_tree(tmp_path / "src", {"a.txt": "alpha", "sub/b.bin": "bravo!", "sub/c/d": ""})
    uri = storage.uri("out")
    storage.put_dir(src, uri)
    assert storage.listing(uri) == {"a.txt": 5, "sub/b.bin": 6, "sub/c/d": 0}
    back = storage.get_dir(uri, tmp_path / "back" / "deep")
    assert back == tmp_path / "back" / "deep"
    assert (back / "sub" / "b.bin").read_text() == "bravo!"
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["out"]  # no stage left


def test_put_dir_replaces_previous_content(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    uri = storage.uri("out")
    storage.put_dir(make_tree(tmp_path / "v1", {"old.txt": "1", "keep.txt": "1"}), uri)
    storage.put_dir(make_tree(tmp_path / "v2", {"keep.txt": "22", "new/x.txt": "333"}), uri)
    assert storage.listing(uri) == {"keep.txt": 2, "new/x.txt": 3}
    assert not (Path(uri) / "old.txt").exists()


def test_put_dir_hard_links_and_falls_back_to_copies(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    storage = LocalStorage(tmp_path / "store")
    src = make_tree(tmp_path / "src", {"m.bin": "weights"})
    storage.put_dir(src, storage.uri("linked"))
    linked = Path(storage.uri("linked", "m.bin"))
    assert linked.stat().st_ino == (src / "m.bin").stat().st_ino

    def no_link(*_: object) -> None:
        raise OSError("cross-device link")

    monkeypatch.setattr(fileio.os, "link", no_link)
    storage.put_dir(src, storage.uri("copied"))
    copied = Path(storage.uri("copied", "m.bin"))
    assert copied.read_text() == "weights"
    assert copied.stat().st_ino != (src / "m.bin").stat().st_ino


def test_put_dir_failure_keeps_old_content(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    storage = LocalStorage(tmp_path / "store")
    uri = storage.uri("out")
    storage.put_dir(make_tree(tmp_path / "v1", {"a.txt": "old"}), uri)
    calls = {"n": 0}
    real = files.link_or_copy

    def flaky(src: Path, dst: Path) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        real(src, dst)

    monkeypatch.setattr(files, "link_or_copy", flaky)
    with pytest.raises(OSError, match="disk full"):
        storage.put_dir(make_tree(tmp_path / "v2", {"a.txt": "new", "b.txt": "new"}), uri)
    assert storage.listing(uri) == {"a.txt": 3}
    assert (Path(uri) / "a.txt").read_text() == "old"
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["out"]


def test_get_dir_copies_so_edits_do_not_reach_storage(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    uri = storage.uri("out")
    storage.put_dir(make_tree(tmp_path / "src", {"f.txt": "v"}), uri)
    back = storage.get_dir(uri, tmp_path / "back")
    (back / "f.txt").write_text("changed")
    assert (Path(uri) / "f.txt").read_text() == "v"


def test_file_uris_missing_folders_and_bad_destinations(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    src = make_tree(tmp_path / "src", {"f.txt": "v"})
    target = tmp_path / "store" / "via uri"
    storage.put_dir(src, target.as_uri())
    assert storage.listing(target.as_uri()) == {"f.txt": 1}
    assert storage.listing(storage.uri("missing")) == {}
    assert list(storage.get_dir(storage.uri("missing"), tmp_path / "empty").iterdir()) == []
    with pytest.raises(ValueError, match="inside the source"):
        storage.put_dir(src, str(src / "nested"))
    with pytest.raises(FileNotFoundError):
        storage.put_dir(tmp_path / "nope", storage.uri("x"))
    with pytest.raises(ValueError, match="not a local path"):
        storage.listing("s3://bucket/key")


def test_write_json_atomic_keeps_old_file_on_failure(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.json"
    write_json_atomic(path, {"v": 1})

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("crash while writing")  # the bytes are out, not yet on disk

    monkeypatch.setattr(fileio.os, "fsync", broken)
    with pytest.raises(RuntimeError):
        write_json_atomic(path, {"v": 2})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def spec(partitions: tuple[dict[str, str], ...] = (), **changes: object) -> TableSpec:
    """A partitioned test table."""
    base: dict[str, object] = {
        "database": "churn", "name": "customers", "location": "/lake/customers",
        "columns": {"customer_id": "string", "tenure": "int"},
        "partition_keys": {"year": "string", "month": "string"},
        "partitions": partitions, "description": "raw customers",
    }
    base.update(changes)
    return TableSpec(**base)  # type: ignore[arg-type]


def test_json_catalog_round_trip_and_merge(tmp_path: Path) -> None:
    catalog = JsonCatalog(tmp_path / "cat" / "catalog.json")
    assert catalog.tables("churn") == []
    p1, p2, p3 = ({"year": "2025", "month": m} for m in ("01", "02", "03"))
    catalog.register(spec((p1, p2, p1)))
    assert catalog.tables("churn") == [spec((p1, p2))]
    assert list(catalog.tables("churn")[0].partition_keys) == ["year", "month"]  # order kept
    catalog.register(spec((p2,)))  # idempotent: nothing new, nothing lost
    assert catalog.tables("churn") == [spec((p1, p2))]
    catalog.register(spec(({"month": "03", "year": "2025"},), columns={"customer_id": "string"}))
    assert catalog.tables("churn") == [spec((p1, p2, p3), columns={"customer_id": "string"})]
    catalog.register(spec(name="features", database="other"))
    assert [t.name for t in catalog.tables("other")] == ["features"]
    assert [t.name for t in catalog.tables("churn")] == ["customers"]


def test_json_catalog_rejects_bad_partitions(tmp_path: Path) -> None:
    catalog = JsonCatalog(tmp_path / "catalog.json")
    with pytest.raises(ValueError, match="partition keys"):
        catalog.register(spec(({"year": "2025"},)))
    catalog.register(spec(({"year": "2025", "month": "01"},)))
    with pytest.raises(ValueError, match="differ from the registered"):
        catalog.register(spec(partition_keys={"day": "string"}, partitions=({"day": "1"},)))
    assert catalog.tables("churn")[0].partitions == ({"year": "2025", "month": "01"},)


def test_json_catalog_is_a_plain_json_file(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    JsonCatalog(path).register(spec(({"year": "2025", "month": "01"},)))
    data = json.loads(path.read_text())
    assert data["tables"]["churn.customers"]["partitions"] == [{"year": "2025", "month": "01"}]
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


SAME_WORDING = {"empty": (b"", "is empty (0 bytes)"),
                "truncated": (b'{"a": [1, 2', "is not valid JSON (line 1 column 12: Expecting"),
                "binary": (b"\xff\xfe\x00", "is not UTF-8 text (byte 0)")}


@pytest.mark.parametrize("content", [c for c, _ in SAME_WORDING.values()], ids=SAME_WORDING)
def test_the_three_state_readers_say_a_problem_one_way(tmp_path: Path, content: bytes) -> None:
    """registry.json, state.json and catalog.json are read by `fileio.read_json_state`: the
    same bad bytes give the same problem, each with its own fix."""
    from mlops_kit.errors import StateFileError
    from mlops_kit.registry.local import LocalRegistry
    from mlops_kit.serving.endpoint import EndpointStore

    index = tmp_path / "reg" / "churn" / "registry.json"
    state, catalog = tmp_path / "ep" / "state.json", tmp_path / "catalog.json"
    for path in (index, state, catalog):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    reads = {index: lambda: LocalRegistry(tmp_path / "reg").versions("churn"),
             state: lambda: EndpointStore(state, "ep").read(),
             catalog: lambda: JsonCatalog(catalog).tables("churn")}
    problems, fixes = set(), set()
    for path, read in reads.items():
        with pytest.raises(StateFileError) as err:
            read()
        assert err.value.path == path and str(err.value).startswith(f"{path}: ")
        problems.add(err.value.problem)
        fixes.add(err.value.fix)
    [problem] = problems
    assert problem.startswith(dict(SAME_WORDING.values())[content]), problem
    assert len(fixes) == 3  # the fix is each file's own
