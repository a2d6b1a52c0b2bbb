"""The leakage audit at scale: worker-pool hashes equal serial ones and imagehash's own, the
image-hash cache gives identical tables, notices changed files, refuses damaged or foreign
files (never unpickling them), and the chunked searches equal brute-force pairwise Hamming
computations at block-boundary sizes."""

from __future__ import annotations

import io
import logging
import os
import pickle
from pathlib import Path

import imagehash
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from asl_eval.audit import neighbours
from asl_eval.audit.hash_cache import HashCache, default_cache_dir
from asl_eval.audit.hashes import (
    HashTable,
    _relative_paths,
    hash_files,
    hash_folder,
    pack_hash,
    relative_path,
)
from asl_eval.audit.leakage import _resolver, audit_leakage
from asl_eval.audit.neighbours import linked_pairs, nearest_neighbours, pairs_within
from asl_eval.inputs import TRUNCATED, ZERO_BYTE
from asl_eval.progress import ProgressEvent

N_IMAGES = 24


def _write_images(folder: Path, n: int = N_IMAGES, seed: int = 0) -> list[Path]:
    """``n`` small images (JPEG and PNG) of varied content in two class folders."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        label = "AB"[i % 2]
        path = folder / label / f"{label}{i}.{'png' if i % 5 == 0 else 'jpg'}"
        path.parent.mkdir(parents=True, exist_ok=True)
        base = rng.integers(0, 256, (6, 6, 3)).astype(np.uint8)
        image = Image.fromarray(base).resize((48, 48), Image.Resampling.BICUBIC)
        image.save(path)
        paths.append(path)
    return paths


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    """Images plus a corrupt file and an empty one (excluded with their reasons)."""
    paths = _write_images(tmp_path / "set")
    corrupt = tmp_path / "set" / "A" / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    empty = tmp_path / "set" / "B" / "empty.jpg"
    empty.write_bytes(b"")
    return [*paths[:5], corrupt, *paths[5:], empty]


def _imagehash(path: Path) -> tuple[int, int]:
    image = Image.open(path).convert("RGB")
    return pack_hash(imagehash.phash(image)), pack_hash(imagehash.dhash(image))


def _same(a: HashTable, b: HashTable) -> None:
    assert a.paths == b.paths and a.relpaths == b.relpaths and a.labels == b.labels
    assert a.sha256 == b.sha256
    assert a.phash.tolist() == b.phash.tolist() and a.dhash.tolist() == b.dhash.tolist()
    assert a.entries == b.entries


def _reasons(table: HashTable) -> dict[str, str]:
    return {Path(e.path).name: e.reason for e in table.entries}


# --- the worker pool ------------------------------------------------------------------------


def test_worker_pool_hashes_equal_serial_hashes_and_imagehash(images: list[Path]) -> None:
    serial = hash_files(images, workers=1, cache=False)
    pooled = hash_files(images, workers=2, cache=False)
    _same(serial, pooled)
    assert len(serial) == N_IMAGES
    assert _reasons(serial) == {"broken.jpg": TRUNCATED, "empty.jpg": ZERO_BYTE}
    expected = [_imagehash(Path(p)) for p in serial.paths]
    assert list(zip(serial.phash.tolist(), serial.dhash.tolist(), strict=True)) == expected


def test_progress_counts_every_file_once_and_never_goes_back(images: list[Path]) -> None:
    events: list[ProgressEvent] = []
    hash_files(images, name="s", workers=2, cache=False, progress=events.append)
    done = [e.done for e in events]
    assert done == sorted(done) and done[-1] == len(images)
    assert {(e.step, e.name, e.total) for e in events} == {("hash", "s", len(images))}


def test_workers_must_be_positive(images: list[Path]) -> None:
    with pytest.raises(ValueError, match="workers must be at least 1"):
        hash_files(images, workers=0)


# --- the image-hash cache -------------------------------------------------------------------


def test_cache_returns_identical_tables_and_is_read(images: list[Path], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = hash_files(images, cache_dir=cache)
    assert len(HashCache(cache)) == N_IMAGES  # excluded files are not cached
    _same(first, hash_files(images, cache_dir=cache))
    _same(first, hash_files(images, cache_dir=cache, workers=2))
    _same(first, hash_files(images, cache=False))
    # the store is what a second run reads: a planted entry comes back
    HashCache(cache).add([first.sha256[0]], [12345], [678])
    planted = hash_files(images, cache_dir=cache)
    assert (int(planted.phash[0]), int(planted.dhash[0])) == (12345, 678)
    assert planted.phash[1:].tolist() == first.phash[1:].tolist()


def test_cache_off_writes_nothing(images: list[Path], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    hash_files(images, cache=False, cache_dir=cache)
    assert not cache.exists()


def test_default_cache_folder_follows_the_environment(
    images: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from asl_eval.inference.cache import default_cache_dir as predictions_cache_dir

    monkeypatch.setenv("ASL_EVAL_CACHE_DIR", str(tmp_path / "env-cache"))
    assert default_cache_dir() == predictions_cache_dir() == tmp_path / "env-cache"
    hash_folder(images[0].parents[1], name="set")
    assert len(HashCache()) == N_IMAGES
    assert HashCache().path.is_relative_to(tmp_path / "env-cache")


def test_a_changed_file_is_hashed_again(images: list[Path], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = hash_files(images, cache_dir=cache)
    HashCache(cache).add(list(first.sha256), [1] * len(first), [2] * len(first))  # stale values
    changed = Path(first.paths[3])
    Image.open(changed).convert("RGB").transpose(Image.Transpose.ROTATE_90).save(changed)
    again = hash_files(images, cache_dir=cache)
    assert again.sha256[3] != first.sha256[3]
    assert (int(again.phash[3]), int(again.dhash[3])) == _imagehash(changed)
    assert set(again.phash.tolist()[:3] + again.phash.tolist()[4:]) == {1}  # unchanged: cached


def _damage(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _rewrite(path: Path, **changes: np.ndarray) -> None:
    """Rewrite the store's arrays with some of them replaced (the checksum kept as it was)."""
    with np.load(path, allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    arrays.update(changes)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())


@pytest.mark.parametrize(
    ("tamper", "why"),
    [
        (_damage, "not a data-only .npz"),
        (lambda p: _rewrite(p, phash=np.zeros(N_IMAGES, np.uint64)), "checksum does not match"),
        (lambda p: _rewrite(p, phash=np.zeros(N_IMAGES, np.int64)), "phash is int64"),
        (lambda p: _rewrite(p, extra=np.zeros(1)), "unexpected arrays"),
        (
            lambda p: _rewrite(p, sha256=np.array(["zz" * 32] * N_IMAGES, dtype="S64")),
            "not 64 lowercase hex digits",
        ),
        (lambda p: p.write_bytes(b"not a zip"), "not a data-only .npz"),
    ],
)
def test_a_damaged_store_is_refused_and_rebuilt(
    images: list[Path], tmp_path: Path, caplog: pytest.LogCaptureFixture, tamper: object, why: str
) -> None:
    cache = tmp_path / "cache"
    first = hash_files(images, cache_dir=cache)
    store = HashCache(cache).path
    assert callable(tamper)
    tamper(store)
    with caplog.at_level(logging.WARNING, logger="asl_eval.audit.hash_cache"):
        again = hash_files(images, cache_dir=cache)
    assert "refusing image-hash cache file" in caplog.text and why in caplog.text
    _same(first, again)
    assert len(HashCache(cache)) == N_IMAGES  # a good store was written over it


class _Trap:
    """Creates ``marker`` when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def test_the_store_is_never_unpickled(
    images: list[Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache"
    first = hash_files(images, cache_dir=cache)
    store = HashCache(cache).path
    marker = tmp_path / "unpickled"
    # a pickle in place of the store, and an .npz whose arrays hold a pickled object
    for payload in (pickle.dumps(_Trap(marker)), None):
        if payload is None:
            trap = np.empty(1, dtype=object)
            trap[0] = _Trap(marker)
            buffer = io.BytesIO()
            np.savez(buffer, sha256=trap, phash=trap, dhash=trap, checksum=trap)
            payload = buffer.getvalue()
        store.write_bytes(payload)
        with caplog.at_level(logging.WARNING, logger="asl_eval.audit.hash_cache"):
            again = hash_files(images, cache_dir=cache)
        assert not marker.exists()
        assert "refusing image-hash cache file" in caplog.text
        _same(first, again)
        caplog.clear()


# --- the chunked searches -------------------------------------------------------------------


def _clustered_hashes(rng: np.random.Generator, n: int, n_centres: int = 5) -> np.ndarray:
    """Hashes around a few centres (a few bits flipped), so that many pairs are close."""
    centres = rng.integers(0, 2**64, n_centres, dtype=np.uint64)
    flips = np.zeros(n, dtype=np.uint64)
    for _ in range(3):
        flips |= np.uint64(1) << rng.integers(0, 64, n).astype(np.uint64)
    return centres[rng.integers(0, n_centres, n)] ^ (flips * (rng.random(n) < 0.8))


def _distance(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


@pytest.mark.parametrize(
    ("n_query", "n_reference", "max_cells"),
    [(1, 1, 1), (7, 5, 5), (13, 8, 16), (40, 33, 64), (40, 33, 1 << 22)],
)
def test_chunked_nearest_equals_brute_force(
    monkeypatch: pytest.MonkeyPatch, n_query: int, n_reference: int, max_cells: int
) -> None:
    monkeypatch.setattr(neighbours, "MAX_CELLS", max_cells)
    rng = np.random.default_rng(n_query * 100 + max_cells)
    qp, rp = _clustered_hashes(rng, n_query), _clustered_hashes(rng, n_reference)
    qd, rd = _clustered_hashes(rng, n_query, 2), _clustered_hashes(rng, n_reference, 2)
    found = nearest_neighbours(qp, qd, rp, rd)
    for i in range(n_query):
        keys = [
            (_distance(int(qp[i]), int(rp[j])), _distance(int(qd[i]), int(rd[j])), j)
            for j in range(n_reference)
        ]
        p, d, j = min(keys)
        assert (found.index[i], found.phash_distance[i], found.dhash_distance[i]) == (j, p, d)


def _brute_pairs(hashes: np.ndarray, limit: int, blocks: list[str]) -> set[tuple[int, int]]:
    n = len(hashes)
    return {
        (i, j)
        for i in range(n)
        for j in range(i + 1, n)
        if blocks[i] == blocks[j] and _distance(int(hashes[i]), int(hashes[j])) <= limit
    }


def _components(n: int, pairs: set[tuple[int, int]] | tuple[np.ndarray, np.ndarray]) -> list[int]:
    left, right = (
        (np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]))
        if isinstance(pairs, set)
        else pairs
    )
    graph = coo_matrix((np.ones(len(left)), (left, right)), shape=(n, n))
    labels = connected_components(graph, directed=False)[1]
    first: dict[int, int] = {}
    return [first.setdefault(int(c), len(first)) for c in labels]


@pytest.mark.parametrize(
    ("n", "max_cells"), [(1, 1), (2, 1), (9, 4), (31, 31), (60, 37), (60, 1 << 22)]
)
def test_chunked_pairs_and_links_equal_brute_force(
    monkeypatch: pytest.MonkeyPatch, n: int, max_cells: int
) -> None:
    monkeypatch.setattr(neighbours, "MAX_CELLS", max_cells)
    rng = np.random.default_rng(n + max_cells)
    hashes = _clustered_hashes(rng, n, 4)
    blocks = [str(b) for b in rng.integers(0, 3, n)]
    for limit in (0, 3, 6):
        expected = _brute_pairs(hashes, limit, blocks)
        i, j = pairs_within(hashes, limit, blocks=blocks)
        assert set(zip(i.tolist(), j.tolist(), strict=True)) == expected
        assert len(i) == len(expected)
        left, right = linked_pairs(hashes, limit, blocks=blocks)
        assert len(left) < max(n, 1)  # a forest: fewer links than images
        assert all(blocks[a] == blocks[b] for a, b in zip(left, right, strict=True))
        assert _components(n, (left, right)) == _components(n, expected)


def test_links_fold_many_pairs_into_few_links(monkeypatch: pytest.MonkeyPatch) -> None:
    """A class of near-identical images: every pair is close, the links stay one per image."""
    monkeypatch.setattr(neighbours, "MAX_CELLS", 50)
    hashes = np.full(200, 0b1011, dtype=np.uint64) ^ (np.arange(200, dtype=np.uint64) % 2)
    i, _ = pairs_within(hashes, 1)
    left, right = linked_pairs(hashes, 1)
    assert len(i) == 200 * 199 // 2
    assert left.tolist() == [0] * 199 and right.tolist() == list(range(1, 200))


# --- setting query images aside --------------------------------------------------------------


def test_resolver_equals_path_resolve(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "a.jpg").write_bytes(b"x")
    (tmp_path / "linked").symlink_to(real, target_is_directory=True)
    (real / "b.jpg").symlink_to(real / "a.jpg")
    resolve = _resolver()
    for path in (
        real / "a.jpg",
        tmp_path / "linked" / "a.jpg",
        real / "b.jpg",
        tmp_path / "linked" / ".." / "real" / "a.jpg",
        real / "missing.jpg",
        Path(os.path.relpath(real / "a.jpg")),
    ):
        assert resolve(str(path)) == str(path.resolve())


def test_relative_paths_equal_relative_path(tmp_path: Path) -> None:
    root = tmp_path / "root"
    paths = [
        str(root / "A" / "A1.jpg"),
        str(root / "A" / "A2.jpg"),
        str(root / "B" / "sub" / "x.png"),
        str(root / "top.jpg"),
        str(tmp_path / "elsewhere" / "y.jpg"),
        "bare.jpg",
        f"{root}//A//A3.jpg",
    ]
    for base in (root, None, tmp_path):
        assert _relative_paths(paths, base) == tuple(relative_path(p, base) for p in paths)


def test_audit_is_the_same_with_or_without_workers_and_cache(tmp_path: Path) -> None:
    train = _write_images(tmp_path / "train", n=30, seed=1)
    valid = _write_images(tmp_path / "valid", n=10, seed=2)
    # a re-encoded copy of a training image among the validation images
    Image.open(train[4]).convert("RGB").save(tmp_path / "valid" / "A" / "copy.jpg", quality=60)
    files = [*valid, tmp_path / "valid" / "A" / "copy.jpg"]
    plain = audit_leakage(tmp_path / "train", files, workers=1, cache=False, thumbnails=False)
    cache = tmp_path / "cache"
    for _ in range(2):  # cold, then from the cache
        result = audit_leakage(
            tmp_path / "train", files, workers=2, cache_dir=cache, thumbnails=False
        )
        pd.testing.assert_frame_equal(result.items, plain.items)
        pd.testing.assert_frame_equal(result.summary, plain.summary)
    assert plain.items["near_duplicate"].iloc[-1]
    assert len(HashCache(cache)) == 41
