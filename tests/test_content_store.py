"""The content store under the image-hash and features caches: appends read back as the union
(the newest row wins), compaction keeps every entry, a damaged, tampered, foreign, older-format
or pickled file is refused and never loaded, and a write killed half-way leaves a readable
store. Every expected number below is written out by hand."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import time
from pathlib import Path

import numpy as np
import pytest

from asl_eval.content_store import FORMAT, MAX_CHUNKS, Column, ContentStore

A, B, C, D = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)
COLUMNS = {"count": Column(np.int64), "point": Column(np.float32, (2,))}


class _Refusals(list[tuple[str, str]]):
    """The (file name, reason) of every refusal."""

    def __call__(self, path: Path, why: str) -> None:
        self.append((path.name, why))


def _store(folder: Path, refusals: _Refusals | None = None, key: str = "k") -> ContentStore:
    return ContentStore(
        folder / "k.npz", key, COLUMNS, on_refuse=refusals if refusals is not None else _Refusals()
    )


def _read(
    folder: Path, digests: list[str], refusals: _Refusals | None = None, key: str = "k"
) -> dict[str, tuple[int, list[float]]]:
    """What a fresh store finds: digest's first letter -> (count, point)."""
    found = _store(folder, refusals, key).lookup(digests)
    return {
        digests[i][0]: (count, point)
        for i, count, point in zip(
            found.positions.tolist(),
            found.values["count"].tolist(),
            found.values["point"].tolist(),
            strict=True,
        )
    }


def _chunks(folder: Path) -> list[str]:
    manifest = json.loads((folder / "k.chunks" / "manifest.json").read_text())
    return manifest["chunks"]


def _rewrite(path: Path, **changes: np.ndarray) -> None:
    """Rewrite a file's arrays with some replaced (its checksum kept as it was)."""
    with np.load(path, allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    arrays.update(changes)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())


def test_appends_read_back_as_the_union_newest_first(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.add([A, B], {"count": [1, 2], "point": [[0.5, 1.5], [2.0, 3.0]]})
    assert (tmp_path / "k.npz").is_file() and not (tmp_path / "k.chunks").exists()  # the base
    store.add([B, C], {"count": [20, 3], "point": [[-1.0, 0.25], [4.0, 5.0]]})
    assert len(_chunks(tmp_path)) == 1  # the second add wrote a chunk, not the whole store
    assert len(store) == 3 and B in store and D not in store
    assert _read(tmp_path, [D, C, B, A]) == {
        "a": (1, [0.5, 1.5]),
        "b": (20, [-1.0, 0.25]),  # the newer row
        "c": (3, [4.0, 5.0]),
    }
    with np.load(tmp_path / "k.npz", allow_pickle=False) as base:  # the base was not rewritten
        assert base["sha256"].tolist() == [A.encode(), B.encode()]
        assert base["count"].tolist() == [1, 2]


def test_a_chunk_is_named_by_its_checksum_over_format_key_and_arrays(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.add([A], {"count": [1], "point": [[0.0, 0.0]]})
    store.add([C, B], {"count": [7, 5], "point": [[1.0, 2.0], [3.0, 4.0]]})
    expected = hashlib.sha256(b"asl-eval content store 2\nk\n")
    expected.update(b"sha256||S64|(2,)\n" + B.encode() + C.encode())  # sorted
    expected.update(b"count|<i8|(2,)\n" + (5).to_bytes(8, "little") + (7).to_bytes(8, "little"))
    expected.update(b"point|<f4|(2, 2)\n" + np.array([3, 4, 1, 2], "<f4").tobytes())
    assert _chunks(tmp_path) == [f"{expected.hexdigest()}.npz"]
    with np.load(tmp_path / "k.chunks" / _chunks(tmp_path)[0], allow_pickle=False) as chunk:
        assert sorted(chunk.files) == ["checksum", "count", "format", "point", "sha256"]
        assert chunk["format"].item() == FORMAT.encode()
        assert chunk["checksum"].tobytes().hex() == expected.hexdigest()


def test_the_same_digest_twice_in_one_add_keeps_the_first(tmp_path: Path) -> None:
    _store(tmp_path).add([A, A], {"count": [1, 2], "point": [[1.0, 1.0], [2.0, 2.0]]})
    assert _read(tmp_path, [A]) == {"a": (1, [1.0, 1.0])}


def test_compaction_keeps_every_entry(tmp_path: Path) -> None:
    store = _store(tmp_path)
    digests = [f"{i:064x}" for i in range(MAX_CHUNKS + 2)]  # 0...0, 0...1, ..., 0...11
    store.add([digests[0]], {"count": [0], "point": [[0.0, 0.0]]})  # the base
    for i in range(1, MAX_CHUNKS + 1):  # one chunk each, i's row and i-1's again, doubled
        store.add(
            [digests[i], digests[i - 1]],
            {"count": [i, 2 * (i - 1)], "point": [[i, -i], [0.5, 0.5]]},
        )
    assert len(_chunks(tmp_path)) == MAX_CHUNKS == 16
    store.add([digests[17]], {"count": [17], "point": [[17.0, -17.0]]})  # the 17th: compacts
    assert not (tmp_path / "k.chunks").exists()
    refusals = _Refusals()
    found = _store(tmp_path, refusals).lookup(digests)
    assert refusals == []
    assert found.positions.tolist() == list(range(18))
    # 0..15 were doubled by the next chunk; 16 and 17 were added last
    assert found.values["count"].tolist() == [2 * i for i in range(16)] + [16, 17]
    assert found.values["point"][:, 0].tolist() == [0.5] * 16 + [16.0, 17.0]
    with np.load(tmp_path / "k.npz", allow_pickle=False) as base:
        assert len(base["sha256"]) == 18
    store.add([A], {"count": [1], "point": [[1.0, 1.0]]})  # then chunks again
    assert len(_chunks(tmp_path)) == 1 and len(_store(tmp_path)) == 19


def test_a_tampered_chunk_is_refused_and_replaced_by_the_next_add(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.add([A, B], {"count": [1, 2], "point": [[0.0, 0.0], [0.0, 0.0]]})
    store.add([B, C], {"count": [20, 3], "point": [[0.0, 0.0], [0.0, 0.0]]})
    chunk = tmp_path / "k.chunks" / _chunks(tmp_path)[0]
    _rewrite(chunk, count=np.array([20, 30], np.int64))  # C's count 3 -> 30, checksum kept
    refusals = _Refusals()
    # the chunk's rows are misses; the base's B (2) shows again, not the chunk's 20
    assert _read(tmp_path, [A, B, C], refusals=refusals) == {
        "a": (1, [0.0, 0.0]),
        "b": (2, [0.0, 0.0]),
    }
    assert refusals == [(chunk.name, "its checksum does not match its contents")]
    reopened = _store(tmp_path, refusals)
    reopened.add([C], {"count": [3], "point": [[0.0, 0.0]]})  # computed again: compacts
    assert not chunk.exists()
    refusals.clear()
    assert _read(tmp_path, [A, B, C], refusals=refusals) == {
        "a": (1, [0.0, 0.0]),
        "b": (2, [0.0, 0.0]),
        "c": (3, [0.0, 0.0]),
    }
    assert refusals == []


@pytest.mark.parametrize(
    ("spoil", "why"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[:-9]), "not a data-only .npz"),
        (
            lambda p: _rewrite(p, count=np.array([5.0])),
            "count is float64 (1,), expected int64 (1,)",
        ),
        (
            lambda p: _rewrite(p, point=np.array([[np.nan, 1]], np.float32)),
            "its point hold values that are not finite",
        ),
        (lambda p: _rewrite(p, format=np.array(b"asl-eval content store 3")), "its format is"),
        (lambda p: _rewrite(p, extra=np.zeros(1)), "unexpected arrays"),
        (
            lambda p: p.rename(p.with_name(f"{'0' * 64}.npz")),
            "it is listed in the manifest but missing",
        ),
    ],
    ids=["truncated", "dtype", "not-finite", "format", "extra", "missing"],
)
def test_a_spoiled_chunk_is_refused_with_why(tmp_path: Path, spoil: object, why: str) -> None:
    store = _store(tmp_path)
    store.add([A], {"count": [1], "point": [[1.0, 1.0]]})
    store.add([C], {"count": [3], "point": [[3.0, 3.0]]})
    assert callable(spoil)
    spoil(tmp_path / "k.chunks" / _chunks(tmp_path)[0])
    refusals = _Refusals()
    assert _read(tmp_path, [A, C], refusals=refusals) == {"a": (1, [1.0, 1.0])}
    assert len(refusals) == 1 and why in refusals[0][1]


def test_a_valid_chunk_under_another_name_is_refused(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.add([A], {"count": [1], "point": [[1.0, 1.0]]})
    store.add([B], {"count": [2], "point": [[2.0, 2.0]]})
    store.add([C], {"count": [3], "point": [[3.0, 3.0]]})
    first, second = (tmp_path / "k.chunks" / name for name in _chunks(tmp_path))
    first.write_bytes(second.read_bytes())  # C's chunk under B's chunk's name
    refusals = _Refusals()
    assert _read(tmp_path, [A, B, C], refusals=refusals) == {
        "a": (1, [1.0, 1.0]),
        "c": (3, [3.0, 3.0]),
    }
    assert refusals == [(first.name, "its checksum is not the one its name promises")]


def test_another_keys_files_are_refused(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.add([A], {"count": [1], "point": [[1.0, 1.0]]})
    store.add([B], {"count": [2], "point": [[2.0, 2.0]]})
    refusals = _Refusals()
    assert _read(tmp_path, [A, B], refusals=refusals, key="other") == {}
    assert refusals == [
        ("k.npz", "its checksum does not match its contents"),
        ("manifest.json", "it belongs to another store (another key)"),
    ]


def test_a_damaged_manifest_is_refused_and_the_base_still_read(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.add([A], {"count": [1], "point": [[1.0, 1.0]]})
    store.add([B], {"count": [2], "point": [[2.0, 2.0]]})
    manifest = tmp_path / "k.chunks" / "manifest.json"
    for damaged, why in [
        (b'{"format": "asl-eval cont', "not a JSON manifest (JSONDecodeError)"),
        (json.dumps({"format": FORMAT, "key": "k", "chunks": ["../k.npz"]}).encode(), "distinct"),
        (json.dumps([1, 2]).encode(), "it is not a manifest of chunks"),
    ]:
        manifest.write_bytes(damaged)
        refusals = _Refusals()
        assert _read(tmp_path, [A, B], refusals=refusals) == {"a": (1, [1.0, 1.0])}
        assert len(refusals) == 1 and why in refusals[0][1]


def test_an_interrupted_write_leaves_a_readable_store(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.add([A], {"count": [1], "point": [[1.0, 1.0]]})
    store.add([B], {"count": [2], "point": [[2.0, 2.0]]})
    manifest = tmp_path / "k.chunks" / "manifest.json"
    listed = manifest.read_bytes()
    store.add([C], {"count": [3], "point": [[3.0, 3.0]]})
    manifest.write_bytes(listed)  # killed after C's chunk was written, before the manifest
    unlisted = next(
        p for p in (tmp_path / "k.chunks").glob("*.npz") if p.name not in _chunks(tmp_path)
    )
    stale = tmp_path / "k.chunks" / ".manifest.json.x1.tmp"  # killed while writing a manifest
    stale.write_bytes(b'{"format": "asl-')
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    fresh = tmp_path / "k.chunks" / ".abc.npz.x2.tmp"  # another run's write in progress
    fresh.write_bytes(b"PK\x03\x04")
    (tmp_path / ".k.npz.x3.tmp").write_bytes(b"PK")  # killed while compacting
    refusals = _Refusals()
    assert _read(tmp_path, [A, B, C], refusals=refusals) == {
        "a": (1, [1.0, 1.0]),
        "b": (2, [2.0, 2.0]),
    }
    assert refusals == []  # nothing wrong with what the store lists
    again = _store(tmp_path)
    for i in range(MAX_CHUNKS):  # up to the compaction
        again.add([D], {"count": [i], "point": [[4.0, 4.0]]})
    assert not unlisted.exists() and not stale.exists() and fresh.exists()
    assert sorted(p.name for p in (tmp_path / "k.chunks").iterdir()) == [fresh.name]
    assert _read(tmp_path, [A, B, C, D]) == {
        "a": (1, [1.0, 1.0]),
        "b": (2, [2.0, 2.0]),
        "d": (MAX_CHUNKS - 1, [4.0, 4.0]),
    }


def test_a_compaction_killed_before_its_manifest_was_removed_reads_the_same(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    store.add([A], {"count": [1], "point": [[1.0, 1.0]]})
    store.add([B, A], {"count": [2, 10], "point": [[2.0, 2.0], [10.0, 10.0]]})
    folder = tmp_path / "k.chunks"
    kept = {p.name: p.read_bytes() for p in folder.iterdir()}
    for i in range(MAX_CHUNKS):  # 15 more chunks, then a compaction
        store.add([C], {"count": [i], "point": [[3.0, 3.0]]})
    assert not folder.exists()
    folder.mkdir()  # the old manifest and chunk, as if the compaction had stopped after the base
    for name, data in kept.items():
        (folder / name).write_bytes(data)
    refusals = _Refusals()
    assert _read(tmp_path, [A, B, C], refusals=refusals) == {
        "a": (10, [10.0, 10.0]),
        "b": (2, [2.0, 2.0]),
        "c": (MAX_CHUNKS - 1, [3.0, 3.0]),
    }
    assert refusals == []


def test_an_older_format_file_is_refused_and_replaced(tmp_path: Path) -> None:
    """The single-file layout asl-eval wrote before chunks: no ``format`` array."""
    old = {
        "sha256": np.array([A], "S64"),
        "count": np.array([1], np.int64),
        "point": np.array([[1.0, 1.0]], np.float32),
        "checksum": np.zeros(32, np.uint8),
    }
    buffer = io.BytesIO()
    np.savez(buffer, **old)
    (tmp_path / "k.npz").write_bytes(buffer.getvalue())
    refusals = _Refusals()
    store = _store(tmp_path, refusals)
    assert len(store) == 0
    assert refusals == [
        (
            "k.npz",
            "it holds no format entry (an older asl-eval's file?): "
            "['checksum', 'count', 'point', 'sha256']",
        )
    ]
    store.add([B], {"count": [2], "point": [[2.0, 2.0]]})
    refusals.clear()
    assert _read(tmp_path, [A, B], refusals=refusals) == {"b": (2, [2.0, 2.0])}
    assert refusals == []


class _Planted:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def test_a_pickled_chunk_is_never_unpickled(tmp_path: Path) -> None:
    store = _store(tmp_path / "cache")
    store.add([A], {"count": [1], "point": [[1.0, 1.0]]})
    store.add([B], {"count": [2], "point": [[2.0, 2.0]]})
    marker = tmp_path / "unpickled"
    chunk = tmp_path / "cache" / "k.chunks" / _chunks(tmp_path / "cache")[0]
    for payload in ("pickle", "object arrays"):
        if payload == "pickle":
            chunk.write_bytes(pickle.dumps(_Planted(marker)))
        else:
            trap = np.empty(1, dtype=object)
            trap[0] = _Planted(marker)
            names = ["checksum", "count", "format", "point", "sha256"]
            buffer = io.BytesIO()
            np.savez(buffer, **dict.fromkeys(names, trap))
            chunk.write_bytes(buffer.getvalue())
        refusals = _Refusals()
        assert _read(tmp_path / "cache", [A, B], refusals=refusals) == {"a": (1, [1.0, 1.0])}
        assert not marker.exists()
        assert len(refusals) == 1 and "not a data-only .npz" in refusals[0][1]


def test_what_an_add_refuses(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with pytest.raises(ValueError, match=r"1 of 2 digests are not 64 lowercase hex digits: 'AB"):
        store.add([A, "AB" * 32], {"count": [1, 2], "point": [[0, 0], [0, 0]]})
    with pytest.raises(ValueError, match=r"point has shape \(1, 3\), expected \(1, 2\)"):
        store.add([A], {"count": [1], "point": [[0, 0, 0]]})
    with pytest.raises(ValueError, match="point holds values that are not finite"):
        store.add([A], {"count": [1], "point": [[0, np.inf]]})
    with pytest.raises(ValueError, match=r"expected values for \['count', 'point'\]"):
        store.add([A], {"count": [1]})
    with pytest.raises(ValueError, match="none named format, sha256 or checksum"):
        ContentStore(tmp_path / "x.npz", "k", {"sha256": Column(np.int64)}, on_refuse=print)
    assert not tmp_path.joinpath("k.npz").exists()  # nothing was written
    store.add([], {"count": [], "point": np.zeros((0, 2))})  # nothing to add: no file
    assert not tmp_path.joinpath("k.npz").exists()


def test_both_caches_append_through_the_store(tmp_path: Path) -> None:
    from asl_eval.audit.hash_cache import HashCache
    from asl_eval.inference.feature_cache import FeatureCache

    HashCache(tmp_path).add([A, B], [1, 2], [10, 20])
    HashCache(tmp_path).add([B, C], [2**64 - 1, 3], [0, 30])
    hashes = HashCache(tmp_path)
    assert len(list(hashes.path.with_suffix(".chunks").glob("*.npz"))) == 1
    assert hashes.lookup([D, C, B, A]) == {C: (3, 30), B: (2**64 - 1, 0), A: (1, 10)}

    FeatureCache("k", 2, tmp_path).add([A, B], np.array([[1.0, 2.0], [np.nan, 0.0]]))
    FeatureCache("k", 2, tmp_path).add([C], np.array([[0.25, -4.0]]))
    features = FeatureCache("k", 2, tmp_path)
    assert len(list(features.path.with_suffix(".chunks").glob("*.npz"))) == 1
    assert len(features) == 2 and A in features and B not in features  # B's row was not finite
    found = features.lookup([A, B, C])
    assert {d[0]: row.tolist() for d, row in found.items()} == {
        "a": [1.0, 2.0],
        "c": [0.25, -4.0],
    }
    assert found[A].dtype == np.float32
