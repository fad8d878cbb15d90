"""A campaign's stop set: can the campaign stop labeling, and how many labels are still needed?

At the first ``campaign mine`` a seeded sample of pool rows becomes the
campaign's *stop set* (``stop_set_size``, default 2,000 or the whole pool when
smaller); its ids go into the table ``stop_set`` and its features into
``DIR/data/stopset.parquet`` (features never go into SQLite). Every mined round
then stores, in the same transaction as the round, the predicted class of the
round's model on every stop-set row and the mean uncertainty of the round's
batch (:func:`activemine.budget.stopping.normalized_uncertainty`, higher = more
uncertain) in ``stop_rounds``.

``campaign forecast --validation FILE`` measures the learning curve on a
labeled validation file: a model of the campaign's kind trained on L plus the
current labels of the batches of rounds ``1..r``, for every ``r``, in
acquisition order. The points go into ``stop_metrics`` (replacing earlier ones)
and feed the plateau criterion and the forecast of
:mod:`activemine.budget.forecast`. :func:`stopping_status` reads it all back for
``campaign status``.

A campaign that fits a model (a feature pool) decides with ``kappa-refit``
(:class:`~activemine.budget.stopping.RefitKappaStop`): each round also fits one more
model of the round's kind (``model`` of its parameters) on the same labels
with another seed (:data:`REFIT_SEED_OFFSET`) and stores its stop-set
predictions and the seconds it took in ``stop_refits``; ``campaign status``
shows that cost. Experiments showed why: plain kappa compares two fits that
differ in their seed as well as their labels, so a seed-sensitive model such
as LightGBM never reaches 0.99 (Fashion-MNIST: kappa-refit stopped with 37%
fewer labels at +0.12 points, plain kappa never fired; ``benchmarks/stopping.py``).
A probability pool brings its own probabilities: nothing is refitted, and
plain ``kappa`` decides there (:func:`campaign_criteria`).

The tables are created idempotently (``CREATE TABLE IF NOT EXISTS``) by the
first command that needs them, so older campaign folders keep working.
Rounds mined before any new label came back train on the same labels as the
round before; they add no point (their kappa of 1.0 would be no evidence).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from activemine.budget.stopping import (
    CRITERIA,
    KappaStop,
    MaxStop,
    PlateauStop,
    RefitKappaStop,
    RoundRecord,
    UncertaintyStop,
    choose_stop_set,
    consecutive_kappas,
    normalized_uncertainty,
)
from activemine.campaign.store import CampaignStore, now
from activemine.errors import InputError

__all__ = [
    "CAMPAIGN_CRITERIA",
    "REFIT_SEED_OFFSET",
    "campaign_criteria",
    "fit_refit",
    "DEFAULT_STOP_SET_SIZE",
    "StopRound",
    "StopSetPlan",
    "measure_learning_curve",
    "plan_stop_set",
    "predict_stop_round",
    "save_stop_round",
    "set_target",
    "stop_records",
    "stopping_status",
]

DEFAULT_STOP_SET_SIZE = 2_000
#: The criteria ``campaign status`` decides with, in :data:`activemine.budget.stopping.CRITERIA` order: one kappa
#: criterion, ``kappa-refit`` where the campaign fits a model, ``kappa`` where the pool brings probabilities.
CAMPAIGN_CRITERIA = {
    True: tuple(c for c in CRITERIA if c != "kappa"),
    False: tuple(c for c in CRITERIA if c != "kappa-refit"),
}
#: Seed offset of the refit: the round's model uses the round's seed, the refit that seed plus this.
REFIT_SEED_OFFSET = 1


def campaign_criteria(fits_model: bool) -> tuple[str, ...]:
    """The criteria of a campaign that fits a model (``True``) or whose pool brings probabilities."""
    return CAMPAIGN_CRITERIA[bool(fits_model)]


STOP_SET_FILE = "stopset.parquet"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stop_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stop_set (position INTEGER PRIMARY KEY, sid TEXT NOT NULL UNIQUE, row INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS stop_rounds (
    round INTEGER PRIMARY KEY,
    labels INTEGER NOT NULL,
    predicted BLOB NOT NULL,          -- int16 class indices, one per stop-set position
    batch_uncertainty REAL
);
CREATE TABLE IF NOT EXISTS stop_refits (
    round INTEGER PRIMARY KEY,
    predicted BLOB NOT NULL,          -- int16: the refit's class indices, one per stop-set position
    seconds REAL NOT NULL             -- what the refit cost (fit and prediction)
);
CREATE TABLE IF NOT EXISTS stop_metrics (
    round INTEGER PRIMARY KEY,        -- 0: L alone
    labels INTEGER NOT NULL,
    metric REAL NOT NULL,
    measured_at TEXT NOT NULL
);
"""


def _has_tables(store: CampaignStore, conn=None) -> bool:
    return bool(store.read("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'stop_rounds'", conn=conn))


def _create_tables(conn) -> None:
    """Create the stop tables on ``conn`` inside its open transaction (SQLite DDL is transactional)."""
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)


def _stop_meta(store: CampaignStore) -> dict:
    if not _has_tables(store):
        return {}
    return {k: json.loads(v) for k, v in store.read("SELECT key, value FROM stop_meta")}


def _pool_rows(store: CampaignStore) -> int:
    from activemine.campaign.pool import CampaignPool

    return CampaignPool(store).num_rows


def _stop_file(store: CampaignStore) -> Path:
    return store.folder / "data" / STOP_SET_FILE


@dataclass(frozen=True)
class StopSetPlan:
    """The stop set a round will use: the existing one, or a new one (``positions`` into the pool) to create."""

    size: int
    seed: int
    positions: np.ndarray | None

    @property
    def new(self) -> bool:
        return self.positions is not None


def plan_stop_set(store: CampaignStore, *, size: int | None = None, random_state: int = 0) -> StopSetPlan:
    """Check ``size`` and choose the stop set's rows if there is none yet; writes nothing. Call before any fit.

    ``size`` (default :data:`DEFAULT_STOP_SET_SIZE`, capped at the pool) must
    not exceed the pool; once the stop set exists, a different ``size`` is an
    error rather than silently ignored.
    """
    n_pool = _pool_rows(store)
    if size is not None and (int(size) != size or size < 1):
        raise InputError(f"stop set size must be a positive integer, got {size}")
    if size is not None and size > n_pool:
        raise InputError(f"stop set size {size} is larger than the pool ({n_pool} samples); choose at most {n_pool}")
    meta = _stop_meta(store)
    if "size" in meta and _stop_file(store).is_file():
        if size is not None and size != meta["size"]:
            raise InputError(f"the campaign's stop set already holds {meta['size']} samples; it cannot become {size}")
        return StopSetPlan(int(meta["size"]), int(meta["seed"]), None)
    size = min(DEFAULT_STOP_SET_SIZE, n_pool) if size is None else int(size)
    return StopSetPlan(size, random_state, choose_stop_set(n_pool, size, random_state=random_state))


def _write_stop_features(store: CampaignStore, rows: np.ndarray) -> list[str]:
    """Copy the pool rows ``rows`` (sorted) into ``data/stopset.parquet``, reading only their row groups; returns their ids.

    The columns are those a round streams: the features, or a probability pool's probability columns.
    """
    import pyarrow.parquet as pq

    from activemine.campaign.pool import CampaignPool

    pool = CampaignPool(store)
    table = pool.rows_at(np.asarray(rows, dtype=np.int64), pool.pool_columns().needed)
    path = _stop_file(store)
    tmp = path.with_name(f".{STOP_SET_FILE}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return [str(s) for s in table.column(store.meta["id_col"]).to_pylist()]


def _stop_chunk(store: CampaignStore):
    """The stop set as a :class:`~activemine.data.chunks.PoolChunk` (features or the pool's probabilities)."""
    import pyarrow.parquet as pq

    from activemine.campaign.pool import CampaignPool
    from activemine.data.sources import chunk_from_table

    columns = CampaignPool(store).pool_columns()
    return chunk_from_table(pq.read_table(_stop_file(store), columns=columns.needed), columns, where="the stop set")


@dataclass(frozen=True)
class StopRound:
    """What a mined round leaves for the stopping criteria (computed before the round's transaction)."""

    plan: StopSetPlan
    sids: tuple[str, ...]
    labels: int
    predicted: np.ndarray
    batch_uncertainty: float | None
    refit_predicted: np.ndarray | None = None
    refit_seconds: float | None = None


def fit_refit(labeled, X_stop: np.ndarray, classes, *, model="lightgbm", seed: int = 0, n_jobs=None):
    """``kappa-refit``'s second model: ``model`` trained on ``labeled`` with seed ``seed + REFIT_SEED_OFFSET``;
    returns its predicted class indices on ``X_stop`` ``(m,)`` (into ``classes``) and the seconds it took."""
    import time

    from activemine.models import make_model, predict_proba_aligned

    started = time.perf_counter()
    labeled = labeled.in_id_order()
    position = {str(c): i for i, c in enumerate(classes)}
    y = np.array([position[str(v)] for v in np.asarray(labeled.y).tolist()], dtype=np.int64)
    est = make_model(model, random_state=int(seed) + REFIT_SEED_OFFSET, n_jobs=n_jobs)
    est.fit(np.asarray(labeled.X), y)  # the labeled set in the order the engines train on (by id)
    proba = predict_proba_aligned(est, np.asarray(X_stop), np.arange(len(classes)))
    return proba.argmax(axis=1).astype(np.int16), time.perf_counter() - started


def predict_stop_round(
    store: CampaignStore, plan: StopSetPlan, strategy, *, labels: int, batch_proba=None, labeled=None
) -> StopRound:
    """The fitted ``strategy``'s predicted class on the stop set ``(m,)``, and the batch's mean uncertainty.

    With ``labeled`` (the set the strategy trained on, features included) also
    the refit of ``kappa-refit`` (:func:`fit_refit`, the strategy's model and
    seed). A new stop set's features are copied to ``data/stopset.parquet``
    first (an orphan file from a round that then fails is simply rewritten).
    """
    sids = tuple(_write_stop_features(store, plan.positions)) if plan.new else ()
    chunk = _stop_chunk(store)
    if chunk.X is None and chunk.proba is None:  # only a weak model's probabilities: they are the prediction
        proba = chunk.weak_proba
    else:
        proba = strategy.class_proba(chunk)
    u = None
    if batch_proba is not None and len(batch_proba):
        u = float(normalized_uncertainty(np.asarray(batch_proba, dtype=np.float64)).mean())
    refit, seconds = None, None
    if labeled is not None and labeled.X is not None and chunk.X is not None:
        model = getattr(strategy, "model", "lightgbm")
        refit, seconds = fit_refit(
            labeled,
            chunk.X,
            store.classes,
            model=model,
            seed=getattr(strategy, "random_state", 0),
            n_jobs=getattr(strategy, "n_jobs", None),
        )
    predicted = np.asarray(proba).argmax(axis=1).astype(np.int16)
    return StopRound(plan, sids, int(labels), predicted, u, refit, seconds)


def save_stop_round(conn, round_no: int, stop: StopRound) -> None:
    """Store ``stop`` for ``round_no`` on ``conn``, inside the round's own transaction (a new stop set with it)."""
    _create_tables(conn)
    if stop.plan.new:
        conn.execute("DELETE FROM stop_set")
        conn.executemany(
            "INSERT INTO stop_set VALUES (?, ?, ?)",
            [(i, s, int(r)) for i, (s, r) in enumerate(zip(stop.sids, stop.plan.positions))],
        )
        conn.executemany(
            "INSERT OR REPLACE INTO stop_meta VALUES (?, ?)",
            [
                ("size", json.dumps(stop.plan.size)),
                ("seed", json.dumps(stop.plan.seed)),
                ("created_at", json.dumps(now())),
            ],
        )
    conn.execute(
        "INSERT OR REPLACE INTO stop_rounds VALUES (?, ?, ?, ?)",
        (int(round_no), stop.labels, stop.predicted.astype("<i2").tobytes(), stop.batch_uncertainty),
    )
    if stop.refit_predicted is not None:
        conn.execute(
            "INSERT OR REPLACE INTO stop_refits VALUES (?, ?, ?)",
            (int(round_no), stop.refit_predicted.astype("<i2").tobytes(), float(stop.refit_seconds or 0.0)),
        )


def stop_records(store: CampaignStore) -> list[RoundRecord]:
    """One :class:`RoundRecord` per round with stop-set predictions, oldest first, metrics joined in.

    A round that trained on as many labels as the one before adds no point and is left out.
    """
    if not _has_tables(store):
        return []
    metrics = {r: (n, m) for r, n, m in store.read("SELECT round, labels, metric FROM stop_metrics")}
    refits = {r: blob for r, blob in _refit_rows(store)}
    out: list[RoundRecord] = []
    for r, labels, blob, u in store.read(
        "SELECT round, labels, predicted, batch_uncertainty FROM stop_rounds ORDER BY round"
    ):
        refit = refits.get(r)
        rec = RoundRecord(
            int(r),
            int(labels),
            np.frombuffer(blob, dtype="<i2").copy(),
            u,
            metrics.get(r, (None, None))[1],
            None if refit is None else np.frombuffer(refit, dtype="<i2").copy(),
        )
        if out and out[-1].labels == rec.labels:
            out[-1] = rec  # the newer round of the same labels: same model, its batch uncertainty is the current one
        else:
            out.append(rec)
    return out


def _refit_rows(store: CampaignStore, columns: str = "round, predicted") -> list[tuple]:
    """Rows of ``stop_refits`` (absent in folders from before the refit: then none)."""
    if not store.read("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'stop_refits'"):
        return []
    return store.read(f"SELECT {columns} FROM stop_refits ORDER BY round")


# -- learning curve on a validation file -------------------------------------------


def _validation(store: CampaignStore, path: Path):
    from activemine.data.tables import numeric_matrix, read_table, require_columns

    meta = store.meta
    table = read_table(path)
    require_columns(table.column_names, [meta["label_col"], *meta["features"]], where=str(path))
    X = numeric_matrix(table, meta["features"], where=str(path), dtype=np.float32)
    raw = table.column(meta["label_col"]).to_pylist()
    known = {str(c): i for i, c in enumerate(store.classes)}
    bad = sorted({str(v) for v in raw if str(v) not in known})
    if bad:
        raise InputError(f"labels {bad[:10]} of {path} are not among the campaign's classes {store.classes}")
    y = np.array([known[str(v)] for v in raw], dtype=np.int64)
    if np.unique(y).size < 2:
        raise InputError(f"{path} holds a single class; a validation metric needs at least two")
    return X, y


def measure_learning_curve(
    store: CampaignStore, validation, *, fpr: float = 0.01, progress: Callable[[int], None] | None = None
) -> list[dict]:
    """TPR at ``fpr`` on ``validation`` of models trained on L plus the batches of rounds 1..r, r = 0..last.

    The model is the newest round's (``model`` and ``seed`` of its
    parameters; LightGBM by default); the metric is the positive class's TPR
    (the campaign's second class) for two classes and the one-vs-rest macro
    average otherwise. Stores the points in ``stop_metrics`` and returns them
    as ``{"round", "labels", "metric"}``. ``progress(1)`` after each model.
    """
    from activemine.campaign.samples import PoolRows, labeled_rows
    from activemine.metrics import tpr_at_fpr
    from activemine.models import make_model, network_options, predict_proba_aligned

    if not 0.0 < fpr < 1.0:
        raise InputError(f"fpr must be in (0, 1), got {fpr}")
    path = Path(validation)
    X_val, y_val = _validation(store, path)  # checked before any model is fitted
    rounds = store.read("SELECT round, params FROM rounds ORDER BY round")
    params = json.loads(rounds[-1][1]) if rounds else {}
    pool, labeled = PoolRows(store, "pool"), PoolRows(store, "labeled")
    l_rows, p_rows, y = labeled_rows(store, pool, labeled)
    y_idx = np.array([store.classes.index(v) for v in y.tolist()], dtype=np.int64)
    n_l = l_rows.size
    first_round = {}
    for r, sid in store.read("SELECT round, sid FROM batches ORDER BY round"):
        first_round.setdefault(sid, r)
    last = int(rounds[-1][0]) if rounds else 0  # a pool label outside every batch counts from the newest round
    p_round = np.array([first_round.get(pool.sids[i], last) for i in p_rows], dtype=np.int64)
    k = len(store.classes)
    points = []
    for r in [0] + [int(r) for r, _ in rounds]:
        take = p_rows[(p_round >= 1) & (p_round <= r)]
        if points and points[-1]["labels"] == n_l + take.size:
            continue  # no new label since the round before
        X = np.concatenate([labeled.X[l_rows], pool.X[take]])
        yy = np.concatenate([y_idx[:n_l], y_idx[n_l:][(p_round >= 1) & (p_round <= r)]])
        if np.unique(yy).size < 2:
            continue
        model = network_options(
            params.get("model", "lightgbm"), **{k: params.get(k) for k in ("device", "epochs", "batch_size")}
        )
        est = make_model(model, random_state=int(params.get("seed", 0)))
        est.fit(X, yy)
        proba = predict_proba_aligned(est, X_val, np.arange(k))
        metric = tpr_at_fpr(y_val, proba[:, 1], fpr) if k == 2 else tpr_at_fpr(y_val, proba, fpr)
        points.append({"round": r, "labels": int(yy.size), "metric": float(metric)})
        if progress is not None:
            progress(1)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with store.transaction() as conn:
        _create_tables(conn)
        conn.execute("DELETE FROM stop_metrics")
        conn.executemany(
            "INSERT INTO stop_metrics VALUES (?, ?, ?, ?)",
            [(p["round"], p["labels"], p["metric"], now()) for p in points],
        )
        conn.executemany(
            "INSERT OR REPLACE INTO stop_meta VALUES (?, ?)",
            [("validation", json.dumps({"path": str(path), "sha256": digest, "fpr": fpr}))],
        )
    return points


def set_target(store: CampaignStore, target: float) -> None:
    """Remember the target metric that ``campaign status`` forecasts the labels for."""
    if not 0.0 < target <= 1.0:
        raise InputError(f"target metric must be in (0, 1], got {target}")
    with store.transaction() as conn:
        _create_tables(conn)
        conn.execute("INSERT OR REPLACE INTO stop_meta VALUES ('target_metric', ?)", (json.dumps(float(target)),))


# -- status ------------------------------------------------------------------------


def _metric_points(store: CampaignStore) -> list[dict]:
    if not _has_tables(store):
        return []
    return [
        {"round": r, "labels": n, "metric": m}
        for r, n, m in store.read("SELECT round, labels, metric FROM stop_metrics ORDER BY round")
    ]


def stopping_status(
    store: CampaignStore,
    *,
    target: float | None = None,
    kappa_window: int = 3,
    kappa_threshold: float = 0.99,
    refit_tolerance: float = 0.01,
    uncertainty_level: float = 0.05,
    max_labels: int | None = None,
) -> dict:
    """Kappa between consecutive rounds, each criterion's decision now, and the forecast (with its interval).

    A campaign that fits a model decides with ``kappa-refit`` (``refit_tolerance``), one whose pool brings
    probabilities with ``kappa`` (``kappa_threshold``); ``refit_cost`` gives the refits' seconds.
    ``target`` defaults to the one ``campaign forecast`` stored. Without a
    measured learning curve the plateau criterion and the forecast say what
    is missing instead of a number.
    """
    from activemine.budget.forecast import forecast_labels, forecast_metric

    meta = _stop_meta(store)
    records = stop_records(store)
    points = _metric_points(store)
    kappas = consecutive_kappas([r.stop_predictions for r in records], n_classes=len(store.classes)) if records else []
    rounds = [
        {
            "round": r.round,
            "labels": r.labels,
            "batch_uncertainty": r.batch_uncertainty,
            "kappa_to_previous": None if i == 0 else float(kappas[i - 1]),
        }
        for i, r in enumerate(records)
    ]
    # the plateau reads the measured curve (its own rounds), the others the mined rounds
    curve = [RoundRecord(p["round"], p["labels"], metric=p["metric"]) for p in points]
    from activemine.campaign.pool import CampaignPool

    fits_model = CampaignPool(store).has_features
    kappa = (
        RefitKappaStop(kappa_window, refit_tolerance, len(store.classes))
        if fits_model
        else KappaStop(kappa_window, kappa_threshold, len(store.classes))
    )
    decisions = [
        kappa.decide(records),
        UncertaintyStop(uncertainty_level).decide(records),
        PlateauStop().decide(curve),
        MaxStop(max_labels=max_labels).decide(records),
    ]
    assert tuple(d.criterion for d in decisions) == campaign_criteria(fits_model)
    costs = [float(sec) for _, sec in _refit_rows(store, "round, seconds")]
    refit_cost = {
        "fits_per_round": 1 if fits_model else 0,
        "rounds": len(costs),
        "last_seconds": costs[-1] if costs else None,
        "total_seconds": float(sum(costs)),
    }
    target = meta.get("target_metric") if target is None else target
    labels_now = records[-1].labels if records else (points[-1]["labels"] if points else None)
    forecast = {"points": points, "target": target, "labels_now": labels_now}
    if not points:
        forecast["reason"] = (
            "no validation metric measured yet: run `activemine campaign forecast DIR "
            "--target-metric M --validation FILE`"
        )
    else:
        n, m = [p["labels"] for p in points], [p["metric"] for p in points]
        reached = [p for p in points if target is not None and p["metric"] >= float(target)]
        if reached:  # no forecast needed: the curve has been there
            forecast["reached"] = dict(reached[0])
        if target is not None:
            f = forecast_labels(n, m, float(target))
            forecast["labels_for_target"] = f.as_dict()
            if not f.declined and labels_now is not None:
                forecast["labels_still_needed"] = max(0.0, f.value - labels_now)
                forecast["labels_still_needed_interval"] = [
                    max(0.0, v - labels_now) if np.isfinite(v) else None for v in f.interval
                ]
        if reached:
            forecast["labels_still_needed"] = 0.0
            forecast["labels_still_needed_interval"] = [0.0, 0.0]
        budget = store.read("SELECT budget FROM rounds ORDER BY round DESC LIMIT 1")
        if budget and labels_now is not None:
            forecast["metric_next_round"] = forecast_metric(n, m, labels_now + int(budget[0][0])).as_dict()
    return {
        "stop_set_size": meta.get("size"),
        "rounds": rounds,
        "refit_cost": refit_cost,
        "decisions": [d.as_dict() for d in decisions],
        "stop": any(d.stop for d in decisions),
        "forecast": forecast,
    }
