"""The leakage audit's hash parts: hashes and distances equal imagehash's own, planted copies
are found and unrelated images are not, thresholds follow their documented rule, frame groups
equal a hand computation, the grouped split keeps groups whole, and the group-aware accuracy
interval equals an independent statsmodels computation."""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageEnhance
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from asl_eval.audit import (
    HashTable,
    ThresholdRule,
    UnionFind,
    audit_leakage,
    calibrate_thresholds,
    clustered_accuracy,
    frame_groups,
    frame_number,
    grouped_split,
    hash_files,
    hash_folder,
    nearest_neighbours,
)
from asl_eval.audit.groups import frame_pairs
from asl_eval.audit.intervals import cluster_robust_variance
from asl_eval.audit.neighbours import exact_matches, hamming_matrix, pairs_within, popcount
from asl_eval.audit.thresholds import calibrated_threshold
from asl_eval.demo_data import make_demo_dataset
from asl_eval.errors import InputError, MetricError
from asl_eval.predictions import Predictions

CLASSES = ("A", "B", "C")


@dataclass(frozen=True)
class Planted:
    train: Path
    valid: Path
    copies: tuple[Path, ...]
    unrelated: tuple[Path, ...]
    exact: Path


def _save_jpeg(image: Image.Image, path: Path, quality: int = 90) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="JPEG", quality=quality)


def _variants(image: Image.Image) -> dict[str, Image.Image]:
    """Slight changes a re-upload or a neighbouring frame makes."""
    width, height = image.size
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=40)
    return {
        "brighter": ImageEnhance.Brightness(image).enhance(1.1),
        "cropped": image.crop((2, 2, width - 2, height - 2)).resize((width, height)),
        "shifted": Image.fromarray(np.roll(np.asarray(image), 1, axis=1)),
        "recompressed": Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"),
        "rescaled": image.resize((width // 2, height // 2)).resize((width, height)),
    }


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    """Training images of varied styles (the demo's out-of-domain renderer), a validation
    folder with modified copies of some of them, different images of the same classes and one
    byte-identical copy."""
    root = tmp_path_factory.mktemp("audit")
    train = make_demo_dataset(
        root / "a", n_train_per_class=1, n_ood_per_class=16, size=96, classes=CLASSES
    ).ood_test
    # the same letters drawn the other way (plain background, no rotation, another font)
    other = make_demo_dataset(
        root / "b", n_train_per_class=4, n_ood_per_class=1, size=96, classes=CLASSES, seed=1
    ).train
    valid = root / "valid"
    copies = []
    for label in CLASSES:
        source = sorted((train / label).glob("*.jpg"))[3]
        for kind, image in _variants(Image.open(source).convert("RGB")).items():
            path = valid / label / f"{kind}_{source.name}"
            _save_jpeg(image, path)
            copies.append(path)
    unrelated = []
    for path in sorted(other.rglob("*.jpg")):
        target = valid / path.parent.name / f"other_{path.name}"
        shutil.copy(path, target)
        unrelated.append(target)
    exact = valid / "A" / "exact_copy.jpg"
    shutil.copy(sorted((train / "A").glob("*.jpg"))[5], exact)
    return Planted(train, valid, tuple(copies), tuple(unrelated), exact)


def _imagehash_pair(path: Path) -> tuple[imagehash.ImageHash, imagehash.ImageHash]:
    image = Image.open(path).convert("RGB")
    return imagehash.phash(image), imagehash.dhash(image)


# --- hashes and distances -------------------------------------------------------------------


def test_distances_equal_imagehash_brute_force(planted: Planted) -> None:
    train = hash_folder(planted.train)
    query = hash_files(sorted(planted.valid.rglob("*.jpg")), name="valid")
    reference = [_imagehash_pair(Path(p)) for p in train.paths]
    found = nearest_neighbours(query.phash, query.dhash, train.phash, train.dhash)
    for row, path in enumerate(query.paths):
        p_hash, d_hash = _imagehash_pair(Path(path))
        # the documented order: smallest pHash distance, then dHash, then the lower index
        keys = [(p_hash - p, d_hash - d, j) for j, (p, d) in enumerate(reference)]
        best_p, best_d, best_j = min(keys)
        assert found.index[row] == best_j
        assert (found.phash_distance[row], found.dhash_distance[row]) == (best_p, best_d)
    matrix = hamming_matrix(query.phash, train.phash)
    assert matrix[0, 0] == _imagehash_pair(Path(query.paths[0]))[0] - reference[0][0]


def test_popcount_and_pairs_within_match_python() -> None:
    rng = np.random.default_rng(0)
    values = rng.integers(0, 2**63, size=200, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    assert popcount(values).tolist() == [bin(int(v)).count("1") for v in values]
    close = values[:50] ^ (np.uint64(1) << rng.integers(0, 64, 50).astype(np.uint64))
    hashes = np.concatenate([values, close])
    labels = ["x" if i % 2 else "y" for i in range(len(hashes))]
    left, right = pairs_within(hashes, 3, blocks=labels)
    expected = [
        (i, j)
        for i in range(len(hashes))
        for j in range(i + 1, len(hashes))
        if labels[i] == labels[j] and bin(int(hashes[i] ^ hashes[j])).count("1") <= 3
    ]
    assert list(zip(left.tolist(), right.tolist(), strict=True)) == expected
    assert len(expected) >= 25  # the planted close pairs with equal labels are among them


def test_exact_duplicates_by_content_hash(planted: Planted) -> None:
    train = hash_folder(planted.train)
    query = hash_files([planted.exact, planted.copies[0]], name="q")
    matches = exact_matches(query.sha256, train.sha256)
    assert matches[1] == -1
    assert train.sha256[matches[0]] == query.sha256[0]
    assert Path(train.paths[matches[0]]).read_bytes() == planted.exact.read_bytes()


def test_unreadable_and_unlabelled_files_are_recorded_not_dropped(tmp_path: Path) -> None:
    (tmp_path / "A").mkdir()
    Image.new("RGB", (40, 40), (200, 10, 10)).save(tmp_path / "A" / "A1.png")
    (tmp_path / "A" / "A2.jpg").write_bytes(b"")
    Image.new("RGB", (40, 40), (0, 0, 0)).save(tmp_path / "loose.png")
    table = hash_folder(tmp_path)
    assert table.relpaths == ("A/A1.png",)
    reasons = {Path(e.path).name: (e.status, e.reason) for e in table.entries}
    assert reasons["A2.jpg"] == ("excluded", "zero-byte file")
    assert reasons["loose.png"][0] == "unlabeled"
    broken = tmp_path / "broken"
    (broken / "A").mkdir(parents=True)
    (broken / "A" / "A1.jpg").write_bytes(b"")
    with pytest.raises(InputError, match="no usable image to hash"):
        hash_folder(broken)


# --- near-duplicates ------------------------------------------------------------------------


def test_planted_copies_are_flagged_and_unrelated_images_are_not(planted: Planted) -> None:
    files = sorted(planted.valid.rglob("*.jpg"))
    result = audit_leakage(planted.train, files, thumbnails=False)
    flagged = dict(zip(result.items["path"], result.items["near_duplicate"], strict=True))
    assert all(flagged[str(p)] for p in planted.copies)
    assert not any(flagged[str(p)] for p in planted.unrelated)
    assert flagged[str(planted.exact)]
    exact = result.items.set_index("path").loc[str(planted.exact)]
    assert bool(exact["exact_duplicate"]) and exact["phash_distance"] == 0
    summary = result.summary_record()
    assert summary["near_duplicates"] == len(planted.copies) + 1
    assert summary["near_duplicate_share"] == pytest.approx((len(planted.copies) + 1) / len(files))


def test_leakage_share_equals_a_brute_force_computation(planted: Planted) -> None:
    files = sorted(planted.valid.rglob("*.jpg"))
    train = hash_folder(planted.train)
    calibration = calibrate_thresholds(train)
    result = audit_leakage(train, files, thumbnails=False)
    reference = [
        (_imagehash_pair(Path(p)), label)
        for p, label in zip(train.paths, train.labels, strict=True)
    ]
    by_class = calibration.table
    near = []
    for path in files:
        p_hash, d_hash = _imagehash_pair(path)
        p, d, j = min((p_hash - rp, d_hash - rd, j) for j, ((rp, rd), _) in enumerate(reference))
        label = reference[j][1]
        near.append(
            (
                p <= by_class.loc[label, "phash_threshold"]
                and d <= by_class.loc[label, "dhash_threshold"]
            )
            or path.read_bytes() in {Path(q).read_bytes() for q in train.paths}
        )
    assert result.items["near_duplicate"].tolist() == near
    assert result.summary_record()["near_duplicate_share"] == pytest.approx(np.mean(near))


def test_global_threshold_override(planted: Planted) -> None:
    files = sorted(planted.valid.rglob("*.jpg"))
    loose = audit_leakage(planted.train, files, thresholds=ThresholdRule(phash=64, dhash=64))
    assert loose.items["near_duplicate"].all()
    strict = audit_leakage(planted.train, files, thresholds=ThresholdRule(phash=-1, dhash=-1))
    assert strict.items["near_duplicate"].tolist() == strict.items["exact_duplicate"].tolist()
    assert set(strict.info["thresholds"]["source"]) == {"override"}


def test_query_images_inside_the_training_folder_are_left_out_of_the_reference(
    planted: Planted,
) -> None:
    inside = sorted(planted.train.rglob("*.jpg"))[:4]
    result = audit_leakage(planted.train, inside, thumbnails=False)
    assert result.summary_record()["n_train"] == len(list(planted.train.rglob("*.jpg"))) - 4
    assert not result.items["exact_duplicate"].any()


# --- thresholds -----------------------------------------------------------------------------


def test_calibrated_threshold_follows_its_rule() -> None:
    rng = np.random.default_rng(1)
    distances = rng.integers(0, 40, size=500)
    counts = np.bincount(distances, minlength=65)
    for quantile in (0.0, 0.01, 0.05, 0.2):
        t = calibrated_threshold(counts, quantile, 0, 64)
        assert np.mean(distances <= t) <= quantile or t == 0
        assert np.mean(distances <= t + 1) > quantile
    assert calibrated_threshold(counts, 0.5, 4, 10) == 10
    assert calibrated_threshold(np.zeros(65, np.int64), 0.01, 4, 10) == 4


def test_calibration_on_a_uniform_class_does_not_flag_it(tmp_path: Path) -> None:
    """Class U: near-blank images whose hashes are all alike; class V: varied images."""
    rng = np.random.default_rng(0)
    paths, labels = [], []
    for i in range(30):
        base = np.full((64, 64, 3), 180, dtype=np.uint8)
        base[28 + i % 5 : 36, 20 + i % 7 : 44] = 60 + i
        path = tmp_path / f"U{i}.png"
        Image.fromarray(base).save(path)
        paths.append(path)
        labels.append("U")
    for i in range(30):
        path = tmp_path / f"V{i}.png"
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
        paths.append(path)
        labels.append("V")
    table = hash_files(paths, labels=labels)
    # floors of -1: let the quantile alone decide, even below distance 0
    calibration = calibrate_thresholds(table, ThresholdRule(min_phash=-1, min_dhash=-1))
    u = calibration.table.loc["U"]
    same = hamming_matrix(table.phash[:30], table.phash[:30])[np.triu_indices(30, 1)]
    assert np.mean(same == 0) > 0.01  # more than the quantile of U's pairs hash identically
    assert u["phash_threshold"] == -1
    assert np.mean(same <= u["phash_threshold"]) <= 0.01
    loose = calibrate_thresholds(table, ThresholdRule(min_phash=-1, min_dhash=-1, quantile=0.5))
    assert np.mean(same <= loose.table.loc["U", "phash_threshold"]) <= 0.5
    assert calibration.table.loc["V", "phash_threshold"] == 10  # capped
    with pytest.raises(MetricError, match="quantile"):
        ThresholdRule(quantile=1.5)
    with pytest.raises(MetricError, match="at most its cap"):
        ThresholdRule(min_phash=12)


# --- frame groups and splits ----------------------------------------------------------------


def test_frame_numbers_and_blocks() -> None:
    assert frame_number("x/A1234.jpg") == ("A", 1234)
    assert frame_number("x/space_007.png") == ("space_", 7)
    assert frame_number("A_test.jpg") is None
    paths = [f"train/A/A{n}.jpg" for n in range(1, 3001)]
    groups = frame_groups(paths, max_frame_gap=10, max_distance=None)
    sizes = np.bincount(groups)
    assert len(sizes) == 273 and set(sizes[:-1].tolist()) == {11}
    for g in range(len(sizes)):  # contiguous blocks
        members = np.flatnonzero(groups == g)
        assert members.max() - members.min() + 1 == len(members)


def test_union_find_groups_equal_a_hand_computation() -> None:
    paths = ["s/A1.jpg", "s/A3.jpg", "s/A30.jpg", "s/B2.jpg", "t/A2.jpg", "s/A31.jpg", "s/x.jpg"]
    phash = np.array([0b0, 0b1, 0b11110000, 0b0, 0xAAA, 0b0111, 0b11110001], dtype=np.uint64)
    groups = frame_groups(paths, phash=phash, max_frame_gap=5, max_distance=1)
    # by numbers: A1-A3 (same folder, prefix), A30-A31; by hash: A1-A3 (1 bit), A1-B2 (0),
    # A3-B2 (1), A30-x (1); A2 in folder t links to nothing (hash 6+ bits from all)
    assert groups.tolist() == [0, 0, 1, 0, 2, 1, 1]
    left, right = frame_pairs(paths, max_frame_gap=5)
    assert sorted(zip(left.tolist(), right.tolist(), strict=True)) == [(0, 1), (2, 5)]


def test_union_find_equals_connected_components() -> None:
    rng = np.random.default_rng(3)
    n = 300
    left, right = rng.integers(0, n, 250), rng.integers(0, n, 250)
    sets = UnionFind(n)
    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        sets.union(a, b)
    graph = coo_matrix((np.ones(250), (left, right)), shape=(n, n))
    _, expected = connected_components(graph, directed=False)
    ours = sets.labels()
    pairs = {(a, b) for a, b in zip(ours.tolist(), expected.tolist(), strict=True)}
    assert len(pairs) == len(set(ours.tolist())) == len(set(expected.tolist()))


def test_chained_groups_warn() -> None:
    paths = [f"A/A{n}.jpg" for n in range(20)]
    with pytest.warns(UserWarning, match="chain most of the class"):
        frame_groups(paths, labels=["A"] * 20, max_frame_gap=100, max_distance=None)


def test_grouped_split_keeps_groups_whole_and_near_valid_pct() -> None:
    rng = np.random.default_rng(0)
    labels, groups = [], []
    for c, label in enumerate("ABCDE"):
        for g in range(40):
            size = int(rng.integers(1, 8))
            labels += [label] * size
            groups += [c * 100 + g] * size
    files = list(range(len(labels)))
    train, valid = grouped_split(files, labels, groups, valid_pct=0.2, seed=42)
    assert sorted(np.concatenate([train, valid]).tolist()) == files
    group_array = np.array(groups)
    assert not set(group_array[train].tolist()) & set(group_array[valid].tolist())
    label_array = np.array(labels)
    for label in "ABCDE":
        share = np.mean(np.isin(np.flatnonzero(label_array == label), valid))
        assert 0.15 <= share <= 0.25
    again = grouped_split(files, labels, groups, valid_pct=0.2, seed=42)
    assert again[1].tolist() == valid.tolist()
    with pytest.raises(MetricError, match="one label and one group per file"):
        grouped_split(files[:-1], labels, groups, valid_pct=0.2, seed=0)
    with pytest.raises(MetricError, match="valid_pct"):
        grouped_split(files, labels, groups, valid_pct=1.0, seed=0)


# --- accuracy with and without near-duplicates ----------------------------------------------


def _statsmodels_interval(correct: np.ndarray, groups: np.ndarray) -> tuple[float, float, float]:
    """Independent computation: statsmodels' cluster-robust OLS variance of the mean, and its
    Wilson interval on the effective sample size."""
    import statsmodels.api as sm
    from statsmodels.stats.proportion import proportion_confint

    y = correct.astype(float)
    fit = sm.OLS(y, np.ones(len(y))).fit(cov_type="cluster", cov_kwds={"groups": groups})
    variance = float(fit.bse[0] ** 2)
    p = y.mean()
    design_effect = min(max(variance / (p * (1 - p) / len(y)), 1.0), len(y))
    n_eff = len(y) / design_effect
    low, high = proportion_confint(p * n_eff, n_eff, alpha=0.05, method="wilson")
    return variance, float(low), float(high)


def test_clustered_interval_equals_statsmodels() -> None:
    rng = np.random.default_rng(5)
    groups = np.repeat(np.arange(60), rng.integers(1, 12, 60))
    group_skill = rng.uniform(0.5, 1.0, 60)
    correct = rng.uniform(size=len(groups)) < group_skill[groups]
    variance, low, high = _statsmodels_interval(correct, groups)
    assert cluster_robust_variance(correct, groups) == pytest.approx(variance, rel=1e-10)
    result = clustered_accuracy(correct, groups)
    assert (result.low, result.high) == pytest.approx((low, high), rel=1e-9)
    assert result.design_effect > 1.5  # grouped outcomes: fewer effective images
    singletons = clustered_accuracy(correct, np.arange(len(correct)))
    from statsmodels.stats.proportion import proportion_confint

    expected = proportion_confint(correct.sum(), len(correct), method="wilson")
    assert (singletons.low, singletons.high) == pytest.approx(expected, abs=0.01)
    all_right = clustered_accuracy(np.ones(30, bool), np.repeat(np.arange(3), 10))
    assert all_right.n_effective == pytest.approx(3.0)
    with pytest.raises(MetricError, match="group ids"):
        clustered_accuracy(correct, groups[:-1])


def test_leak_adjusted_accuracy_with_predictions(planted: Planted) -> None:
    files = sorted(planted.valid.rglob("*.jpg"))
    labels = [p.parent.name for p in files]
    rng = np.random.default_rng(2)
    # planted copies always right, unrelated images right half the time
    right = [p in planted.copies or p == planted.exact or rng.uniform() < 0.5 for p in files]
    proba = np.array(
        [
            np.eye(3)[CLASSES.index(label) if ok else (CLASSES.index(label) + 1) % 3]
            for label, ok in zip(labels, right, strict=True)
        ]
    )
    predictions = Predictions.from_labels(
        labels, proba, CLASSES, paths=[str(p) for p in files], name="valid"
    )
    result = audit_leakage(planted.train, predictions, thumbnails=False)
    items = result.items
    near = items["near_duplicate"].to_numpy(bool)
    correct = np.array(right)
    summary = result.summary_record()
    assert summary["accuracy"] == pytest.approx(correct.mean())
    assert summary["near_duplicate_accuracy"] == pytest.approx(correct[near].mean())
    assert summary["leak_adjusted_accuracy"] == pytest.approx(correct[~near].mean())
    groups = items["group"].to_numpy()
    _, low, high = _statsmodels_interval(correct[~near], groups[~near])
    assert (summary["leak_adjusted_accuracy_low"], summary["leak_adjusted_accuracy_high"]) == (
        pytest.approx((low, high), rel=1e-9)
    )
    classes = result.info["classes"]
    assert isinstance(classes, pd.DataFrame)
    a = classes.set_index("class").loc["A"]
    in_a = np.array(labels) == "A"
    assert a["leak_adjusted_accuracy"] == pytest.approx(correct[in_a & ~near].mean())
    # the matched near-duplicates share a group with nothing else here: each counted once
    assert summary["n_groups"] == len(set(groups.tolist()))


def test_against_sets_and_names(planted: Planted, tmp_path: Path) -> None:
    copy = tmp_path / "test"
    shutil.copytree(planted.valid, copy)
    result = audit_leakage(planted.train, sorted(planted.valid.rglob("*.jpg")), against=[copy])
    sets = result.info["sets"]
    assert isinstance(sets, pd.DataFrame)
    assert sets["set"].tolist() == ["valid", "test"]
    assert sets["near_duplicates"].tolist() == [len(planted.copies) + 1] * 2
    pairs = result.info["pairs"]
    assert isinstance(pairs, pd.DataFrame) and len(pairs) == 16
    assert all(png.startswith(b"\x89PNG") for png in pairs["image_png"])
    twin = hash_files([planted.exact], name="t")
    with pytest.raises(InputError, match="share the name"):
        audit_leakage(planted.train, twin, against=[twin])


def test_hash_table_checks_lengths() -> None:
    with pytest.raises(MetricError, match="one value per image"):
        HashTable("x", ("a",), (), ("",), ("",), np.zeros(1, np.uint64), np.zeros(1, np.uint64))
