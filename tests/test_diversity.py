import contextlib
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activemine.diversity.geometry import auto_radius, fit_centroids, nearest_centroid, sample_rows
from activemine.diversity.options import DiversityOptions, InsufficientCandidates, check_embeddings
from activemine.diversity.select import select_diverse
from activemine.errors import InputError
from activemine.experiments.diversity import duplicate_stats, plant_duplicates
from activemine.selection.batch import allocate_quotas, id_keys, select_batch, split_hard_easy


def reference_suppression(
    ids, scores, predicted, emb, *, budget, n_classes, weights, easy_share, seed, radius, hashes=None, with_counts=False
):
    """The definition, all pairs, one row at a time: hard walk by (score desc, id asc), then easy by key.

    Returns ``{row: stratum}``, or None when a group ran out of distinct rows; with ``with_counts``
    ``(rows, suppressed, filled)`` where the fill rule (best suppressed rows of a group that ran
    out: hard by score, then easy by key) is applied too.
    """
    n = ids.size
    counts = np.bincount(predicted, minlength=n_classes)
    if weights is None:
        group, quotas = np.zeros(n, int), [budget]
    else:
        group, quotas = predicted, allocate_quotas(counts, budget, weights)
    split = [split_hard_easy(int(q), easy_share) for q in quotas]
    taken = []

    def clash(i):
        for j in taken:
            if radius is not None and np.linalg.norm(emb[i].astype(float) - emb[j].astype(float)) <= radius:
                return True
            if hashes is not None and hashes[i] == hashes[j]:
                return True
        return False

    keys = id_keys(ids, seed=seed)
    out = {}
    suppressed = 0
    short = []
    orders = {
        "hard": sorted(range(n), key=lambda i: (-scores[i], ids[i])),
        "easy": sorted(range(n), key=lambda i: (keys[i], ids[i])),
    }
    for stratum, quota in (("hard", [h for h, _ in split]), ("easy", [e for _, e in split])):
        room = list(quota)
        for i in orders[stratum]:
            if i in out or room[group[i]] == 0:
                continue
            if clash(i):
                suppressed += 1
                continue
            taken.append(i)
            out[i] = stratum
            room[group[i]] -= 1
        short.append(room)
    if not with_counts:
        return None if any(any(r) for r in short) else out
    filled = 0
    for g in range(len(quotas)):
        for stratum, room in (("hard", short[0]), ("easy", short[1])):
            rest = [i for i in orders[stratum] if group[i] == g and i not in out][: room[g]]
            out.update({i: stratum for i in rest})
            filled += len(rest)
    return out, suppressed, filled


@st.composite
def pools(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(2, 120))
    d = draw(st.sampled_from([1, 2, 3, 4, 12]))  # 12 > 8: pairs are found in a projection, then checked exactly
    k = draw(st.integers(2, 3))
    top = 6 if d <= 4 else 2
    emb = rng.integers(0, top, size=(n, d)).astype(np.float32)  # a coarse grid: many rows at distance 0 or 1
    scores = rng.integers(0, 5, size=n) / 4.0  # ties are frequent
    ids = rng.choice(10 * n, size=n, replace=False)
    predicted = rng.integers(0, k, size=n)
    balance = draw(st.sampled_from([None, "equal"]))
    weights = None if balance is None else np.ones(k)
    budget = draw(st.integers(1, n))
    return dict(
        ids=ids,
        scores=scores,
        predicted=predicted,
        emb=emb,
        n_classes=k,
        weights=weights,
        budget=budget,
        easy_share=draw(st.sampled_from([0.0, 0.3])),
        seed=seed % 1000,
        radius=draw(st.sampled_from([0.0, 1.0, 1.5])),
        hashes=rng.integers(0, 3 * n, size=n),
    )


@given(pools(), st.booleans())
@settings(max_examples=150, deadline=None)
def test_suppression_is_the_greedy_walk_of_its_definition(case, with_hashes):
    hashes = case["hashes"] if with_hashes else None
    opts = DiversityOptions(near_duplicates=case["radius"], dedup=with_hashes)
    batch, report = select_diverse(
        case["ids"],
        case["scores"],
        case["predicted"],
        case["emb"],
        budget=case["budget"],
        n_classes=case["n_classes"],
        weights=case["weights"],
        easy_share=case["easy_share"],
        seed=case["seed"],
        options=opts,
        hashes=hashes,
    )
    assert len(batch) == case["budget"]
    assert len(set(batch.ids.tolist())) == case["budget"]
    expected = reference_suppression(
        case["ids"],
        case["scores"],
        case["predicted"],
        case["emb"],
        budget=case["budget"],
        n_classes=case["n_classes"],
        weights=case["weights"],
        easy_share=case["easy_share"],
        seed=case["seed"],
        radius=case["radius"],
        hashes=hashes,
    )
    if expected is None:
        assert report.filled_with_duplicates > 0
        return
    assert report.filled_with_duplicates == 0
    got = dict(zip(batch.ids.tolist(), batch.stratum.tolist()))
    assert got == {int(case["ids"][i]): s for i, s in expected.items()}
    # no two selected rows are within the radius, none share a hash
    pos = {int(v): i for i, v in enumerate(case["ids"])}
    E = case["emb"][[pos[int(v)] for v in batch.ids]].astype(float)
    dist = np.sqrt(((E[:, None] - E[None]) ** 2).sum(-1)) + np.eye(len(E)) * 1e9
    assert dist.min() > case["radius"]
    if with_hashes:
        h = hashes[[pos[int(v)] for v in batch.ids]]
        assert np.unique(h).size == h.size


@given(st.integers(0, 10_000), st.sampled_from([None, "equal"]), st.sampled_from([0.0, 0.2]))
@settings(max_examples=40, deadline=None)
def test_degrades_to_plain_top_k_when_no_two_rows_are_close(seed, balance, easy):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 200))
    emb = np.arange(n, dtype=np.float32)[:, None] * 10.0  # every pair at distance >= 10
    ids = rng.permutation(n) * 3
    scores = rng.random(n)
    predicted = rng.integers(0, 2, n)
    w = None if balance is None else np.ones(2)
    budget = int(rng.integers(1, n))
    plain = select_batch(ids, scores, predicted, budget=budget, n_classes=2, weights=w, easy_share=easy, seed=seed)
    got, report = select_diverse(
        ids,
        scores,
        predicted,
        emb,
        budget=budget,
        n_classes=2,
        weights=w,
        easy_share=easy,
        seed=seed,
        options=DiversityOptions(near_duplicates=9.0),
    )
    assert got.ids.tolist() == plain.ids.tolist()
    assert got.stratum.tolist() == plain.stratum.tolist()
    assert report.suppressed == 0


def test_copies_are_suppressed_and_the_batch_is_refilled():
    rng = np.random.default_rng(1)
    emb = rng.standard_normal((400, 8)).astype(np.float32) * 5
    copies, src = plant_duplicates(emb[:10], np.arange(10), 20, scale=0.01, random_state=0)
    E = np.vstack([emb, copies])
    scores = np.r_[rng.random(400) * 0.5, 0.9 + 0.01 * rng.random(200)]  # the copies score best
    ids = np.arange(E.shape[0])
    batch, report = select_diverse(
        ids, scores, np.zeros(600, int), E, budget=50, n_classes=2, options=DiversityOptions(near_duplicates="auto")
    )
    group = np.r_[np.where(np.arange(400) < 10, np.arange(400), -1), src]
    stats = duplicate_stats(batch.ids, group)
    assert len(batch) == 50
    assert stats["copies"] == stats["sources"] == 10  # one row per source, 40 other rows refill the batch
    assert report.radius > 0 and report.auto and report.suppressed >= 190


def test_a_class_without_enough_distinct_rows_is_filled_and_counted():
    emb = np.zeros((10, 2), np.float32)  # all identical
    batch, report = select_diverse(
        np.arange(10),
        np.arange(10.0),
        np.zeros(10, int),
        emb,
        budget=4,
        n_classes=1,
        options=DiversityOptions(near_duplicates=0.5),
    )
    assert batch.ids.tolist() == [9, 8, 7, 6]
    assert report.filled_with_duplicates == 3
    assert "ran out of distinct rows" in report.describe()


def test_candidates_that_run_out_raise_so_the_engine_widens():
    emb = np.zeros((6, 1), np.float32)
    # a streaming engine kept the 6 best rows of a group it saw more of: all suppressed but one
    with pytest.raises(InsufficientCandidates):
        select_diverse(
            np.arange(6),
            np.arange(6.0),
            np.zeros(6, int),
            emb,
            budget=3,
            n_classes=1,
            options=DiversityOptions(near_duplicates=0.1),
            available_counts=[100],
            hard_bounds=[(-0.0, 0)],
            easy_bounds=[None],
        )


def test_exact_duplicates_by_hash_without_embeddings():
    hashes = np.array(["a", "a", "b", "b", "c"])
    batch, _ = select_diverse(
        np.arange(5),
        np.array([5, 4, 3, 2, 1.0]),
        np.zeros(5, int),
        budget=3,
        n_classes=1,
        options=DiversityOptions(dedup=True),
        hashes=hashes,
    )
    assert batch.ids.tolist() == [0, 2, 4]


def test_auto_radius_is_a_quarter_of_the_median_neighbour_distance():
    pts = np.arange(100, dtype=float)[:, None] * 2.0  # every nearest neighbour at distance 2
    assert auto_radius(pts) == pytest.approx(0.5)
    assert auto_radius(np.vstack([pts, pts[:10]])) == pytest.approx(0.5)  # exact copies leave the median alone


def test_sample_is_a_pure_function_of_ids():
    ids = np.arange(1000) * 7
    rows = sample_rows(ids, seed=3, size=50)
    perm = np.random.default_rng(0).permutation(1000)
    rows_perm = sample_rows(ids[perm], seed=3, size=50)
    assert ids[rows].tolist() == ids[perm][rows_perm].tolist()
    assert ids[rows].tolist() != ids[sample_rows(ids, seed=4, size=50)].tolist()


def test_cluster_margin_round_robins_smallest_cluster_first():
    # three tight clusters of sizes 2, 3 and 10, far apart; budget 6 -> 2 from each
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0], [100, 0], [0, 100]], np.float32)
    label = np.repeat([0, 1, 2], [2, 3, 10])
    emb = centers[label] + rng.standard_normal((15, 2)).astype(np.float32)
    scores = rng.random(15)
    opts = DiversityOptions(clusters=3, candidate_factor=3)  # 18 >= 15: every row is a candidate
    batch, report = select_diverse(
        np.arange(15), scores, np.zeros(15, int), emb, budget=6, n_classes=1, options=opts, sample=emb
    )
    assert sorted(np.bincount(label[batch.ids], minlength=3).tolist()) == [2, 2, 2]
    batch, _ = select_diverse(
        np.arange(15), scores, np.zeros(15, int), emb, budget=7, n_classes=1, options=opts, sample=emb
    )
    # round 3 visits the smallest cluster with a row left first: cluster 1 (size 3)
    assert np.bincount(label[batch.ids], minlength=3).tolist() == [2, 3, 2]
    assert report.clusters == 3


def test_cluster_margin_takes_only_the_top_factor_times_quota():
    emb = np.arange(100, dtype=np.float32)[:, None]
    scores = np.arange(100.0)
    batch, _ = select_diverse(
        np.arange(100),
        scores,
        np.zeros(100, int),
        emb,
        budget=10,
        n_classes=1,
        options=DiversityOptions(clusters=5, candidate_factor=2),
        sample=emb,
    )
    assert set(batch.ids.tolist()) <= set(range(80, 100))


def test_kmeans_is_seeded_and_assigns_by_nearest_centroid():
    X = np.random.default_rng(0).standard_normal((500, 4))
    a, b = fit_centroids(X, 8, random_state=1), fit_centroids(X, 8, random_state=1)
    assert np.array_equal(a, b)
    d = ((X[:, None] - a[None]) ** 2).sum(-1)
    assert np.array_equal(nearest_centroid(X, a, block=37), d.argmin(1))
    with pytest.raises(InputError, match="cannot fit 600 clusters on 500"):
        fit_centroids(X, 600)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(near_duplicates=-1.0), "radius must be a finite number >= 0"),
        (dict(near_duplicates="near"), "must be a radius, 'auto' or 'off'"),
        (dict(clusters=0), "clusters must be a positive integer"),
        (dict(near_duplicates=1.0, candidate_factor=0.5), "candidate factor must be a number >= 1"),
        (dict(near_duplicates=1.0, clusters=4), "choose one of"),
    ],
)
def test_bad_options_are_rejected(kwargs, match):
    with pytest.raises(InputError, match=match):
        DiversityOptions(**kwargs)


def test_more_clusters_than_rows_and_bad_embeddings_are_rejected():
    with pytest.raises(InputError, match="--clusters 50 is more than the 10 rows"):
        DiversityOptions(clusters=50).check_pool_rows(10)
    E = np.ones((4, 3))
    E[2, 1] = np.nan
    with pytest.raises(InputError, match="NaN or infinite values in 1 rows, e.g. row 2"):
        check_embeddings(E)
    with pytest.raises(InputError, match="width 3, expected 4"):
        check_embeddings(np.ones((4, 3)), width=4)
    with pytest.raises(InputError, match="need embeddings"):
        select_diverse(
            np.arange(4),
            np.ones(4),
            np.zeros(4, int),
            budget=2,
            n_classes=1,
            options=DiversityOptions(near_duplicates="auto"),
        )


def test_cli_options_parse():
    assert DiversityOptions.from_cli() is None
    assert DiversityOptions.from_cli(near_duplicates="off") is None
    o = DiversityOptions.from_cli(near_duplicates="auto", dedup_col="sha")
    assert o.near_duplicates == "auto" and o.dedup and o.factor == 2.0
    o = DiversityOptions.from_cli(diversity="clusters", clusters=20)
    assert o.clusters == 20 and o.factor == 5.0
    with pytest.raises(InputError, match="--clusters needs --diversity clusters"):
        DiversityOptions.from_cli(clusters=5)
    with pytest.raises(InputError, match="--candidate-factor needs"):
        DiversityOptions.from_cli(candidate_factor=3)


def test_planted_copies_are_near_their_source():
    X = np.random.default_rng(0).random((50, 20)).astype(np.float32)
    copies, src = plant_duplicates(X, [3, 7], 4, scale=0.05, random_state=2)
    assert copies.shape == (8, 20) and src.tolist() == [3] * 4 + [7] * 4
    near = np.linalg.norm(copies - X[src], axis=1)
    others = np.linalg.norm(X[:, None] - X[None], axis=-1)[np.triu_indices(50, 1)]
    assert near.max() < np.median(others) / 4
    again, _ = plant_duplicates(X, [3, 7], 4, scale=0.05, random_state=2)
    assert np.array_equal(copies, again)


def test_per_row_neighbour_lookup_gives_the_same_batch(monkeypatch):
    import activemine.diversity.select as diversity

    rng = np.random.default_rng(5)
    emb = rng.integers(0, 3, size=(300, 12)).astype(np.float32)
    emb[200:] = emb[:100] + 0.01  # copies
    scores, ids, predicted = rng.random(300), np.arange(300), rng.integers(0, 2, 300)
    kw = dict(budget=80, n_classes=2, weights=np.ones(2), easy_share=0.2, options=DiversityOptions(near_duplicates=1.0))
    pairs, _ = select_diverse(ids, scores, predicted, emb, **kw)
    monkeypatch.setattr(diversity, "_MAX_PAIRS", 0)  # too many pairs: look neighbours up per taken row
    lazy, _ = select_diverse(ids, scores, predicted, emb, **kw)
    assert lazy.ids.tolist() == pairs.ids.tolist()


@contextlib.contextmanager
def walk_settings(block, rounds, max_pairs=None):
    """The block-vectorized walk with small blocks (group fills inside blocks, rows decided across
    blocks), few rounds (the row-by-row rest of a block) and, optionally, per-block neighbour lookups."""
    import activemine.diversity.select as diversity

    with mock.patch.object(diversity, "_WALK_BLOCK", block), mock.patch.object(diversity, "_ROUNDS", rounds):
        if max_pairs is None:
            yield
        else:
            with mock.patch.object(diversity, "_MAX_PAIRS", max_pairs):
                yield


@given(
    pools(),
    st.booleans(),
    st.sampled_from([1, 2, 3, 7, 1 << 18]),
    st.sampled_from([1, 2, 32]),
    st.sampled_from([None, 0]),
)
@settings(max_examples=200, deadline=None)
def test_block_walk_is_the_sequential_walk(case, with_hashes, block, rounds, max_pairs):
    hashes = case["hashes"] if with_hashes else None
    opts = DiversityOptions(near_duplicates=case["radius"], dedup=with_hashes)
    with walk_settings(block, rounds, max_pairs):
        batch, report = select_diverse(
            case["ids"],
            case["scores"],
            case["predicted"],
            case["emb"],
            budget=case["budget"],
            n_classes=case["n_classes"],
            weights=case["weights"],
            easy_share=case["easy_share"],
            seed=case["seed"],
            options=opts,
            hashes=hashes,
        )
    expected, suppressed, filled = reference_suppression(
        case["ids"],
        case["scores"],
        case["predicted"],
        case["emb"],
        budget=case["budget"],
        n_classes=case["n_classes"],
        weights=case["weights"],
        easy_share=case["easy_share"],
        seed=case["seed"],
        radius=case["radius"],
        hashes=hashes,
        with_counts=True,
    )
    assert dict(zip(batch.ids.tolist(), batch.stratum.tolist())) == {
        int(case["ids"][i]): s for i, s in expected.items()
    }
    assert (report.suppressed, report.filled_with_duplicates) == (suppressed, filled)
    if not filled:  # never two selected rows within the radius
        at = [int(np.flatnonzero(case["ids"] == v)[0]) for v in batch.ids]
        E = case["emb"][at].astype(float)
        dist = np.sqrt(((E[:, None] - E[None]) ** 2).sum(-1)) + np.eye(len(E)) * 1e9
        assert dist.min() > case["radius"]


@pytest.mark.parametrize("rounds", [1, 3, 32])
@pytest.mark.parametrize("block", [1, 5, 1 << 18])
def test_a_chain_of_near_rows_is_walked_as_the_definition_says(block, rounds):
    # rows 0.9 apart on a line, best first: each row's fate hangs on the one before (a chain of 300)
    n = 300
    emb = (np.arange(n, dtype=np.float32) * 0.9)[:, None]
    ids, scores = np.arange(n), np.linspace(1, 0, n)
    with walk_settings(block, rounds):
        batch, report = select_diverse(
            ids, scores, np.zeros(n, int), emb, budget=100, n_classes=1, options=DiversityOptions(near_duplicates=1.0)
        )
    assert batch.ids.tolist() == list(range(0, 200, 2))  # every other row: each taken one blocks the next
    assert report.suppressed == 99


@pytest.mark.parametrize("block", [1, 2, 4, 1 << 18])
def test_a_group_that_fills_inside_a_block_lets_later_rows_of_others_through(block):
    # group 0 (quota 1) fills with row 0; its row 1 is then skipped, so it does not block row 2 of group 1
    emb = np.array([[0.0], [10.0], [10.5], [30.0], [40.0]], np.float32)
    ids, scores, predicted = np.arange(5), np.array([4.0, 3.0, 2.0, 1.0, 0.5]), np.array([0, 0, 1, 1, 1])
    with walk_settings(block, 32):
        batch, report = select_diverse(
            ids,
            scores,
            predicted,
            emb,
            budget=3,
            n_classes=2,
            weights=np.array([1.0, 2.0]),
            options=DiversityOptions(near_duplicates=1.0),
        )
    assert sorted(batch.ids.tolist()) == [0, 2, 3]
    assert report.suppressed == 0
