"""Annotators of a campaign: agreement, quality, consensus labels for training, and relabel rounds.

Everything is computed from the store's active labels of the samples that
annotators returned (labels of L alone, annotator ``initial``, tell nothing
about agreement and are left out unless a relabel round gave them company).
The model's view of a sample is the class probabilities stored with its
batch row: the model that mined the round had not seen the sample's labels,
so they are out of sample, as the consensus and quality estimates need.

* :func:`annotator_summary`: the report of :func:`activemine.annotators.agreement.annotator_report`
  for ``campaign annotators`` (and :func:`write_agreement_heatmap`, the pairwise
  kappa matrix as a PNG in ``DIR/reports/``);
* :func:`training_labels`: sid -> label for the dataset, a consensus
  (``--consensus``, default :data:`activemine.annotators.agreement.DEFAULT_CONSENSUS`)
  where several annotators labeled a sample; ``none`` keeps only agreed labels
  (conflicting samples are left out);
* :func:`open_relabel_round`: a round of second opinions on returned labels,
  ranked by :func:`activemine.annotators.relabel.rank_for_relabel`.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from activemine.annotators.agreement import (
    CONSENSUS_METHODS,
    DEFAULT_CONSENSUS,
    annotator_report,
    consensus,
    label_matrix,
)
from activemine.campaign.batchdata import batch_proba, insert_batch_ids, newest_rows, write_round
from activemine.campaign.overlap import ensure_wanted_table, waiting_sids
from activemine.campaign.store import CampaignStore, now
from activemine.errors import BudgetError, CampaignError, InputError

__all__ = [
    "DATASET_CONSENSUS",
    "REPORT_DIR",
    "annotator_summary",
    "open_relabel_round",
    "public_summary",
    "training_labels",
    "write_agreement_heatmap",
]

REPORT_DIR = "reports"
#: ``campaign dataset --consensus`` choices: the library's methods and ``none`` (conflicts left out).
DATASET_CONSENSUS = (*CONSENSUS_METHODS, "none")


def _records(store: CampaignStore) -> list[tuple[str, str, str]]:
    """Active ``(sid, annotator, label)`` of every sample with at least one label not from L."""
    return store.read(
        "SELECT l.sid, l.annotator, l.label FROM labels l WHERE l.retracted_at IS NULL AND l.sid IN "
        "(SELECT sid FROM labels WHERE retracted_at IS NULL AND source != 'initial') ORDER BY l.label_id"
    )


def _matrix(store: CampaignStore):
    """Label matrix ``(n, a)``, sids, annotators and the stored model probabilities ``(n, k)`` (NaN rows: none)."""
    records = _records(store)
    L, sids, people = label_matrix(records, classes=store.class_names)
    k = len(store.class_names)
    proba = np.full((len(sids), k), np.nan)
    stored = batch_proba(store, sids)
    for i, sid in enumerate(sids):
        if sid in stored:
            p = np.asarray(stored[sid], dtype=np.float64)
            proba[i] = p / p.sum()  # stored rounded to 6 digits
    return L, sids, people, proba


def _consensus(L: np.ndarray, proba: np.ndarray, k: int, method: str):
    """The consensus of ``method``; ``model-weighted`` uses the model where it has probabilities, the vote elsewhere."""
    if method != "model-weighted":
        return consensus(L, k, method=method)
    known = np.isfinite(proba).all(axis=1)
    filled = np.where(known[:, None], proba, 1.0 / k)  # an even prior where the model never saw the sample
    return consensus(L, k, method=method, proba=filled)


def annotator_summary(store: CampaignStore, *, method: str = DEFAULT_CONSENSUS) -> dict:
    """Per annotator: labels, agreement with the others, the consensus and the model, rank and flag; pairs and alpha.

    See :func:`activemine.annotators.agreement.annotator_report` for the fields and the
    flag rule. An empty campaign gives empty lists and ``alpha`` None.
    """
    if method not in CONSENSUS_METHODS:
        raise InputError(f"unknown consensus method {method!r}; expected one of {CONSENSUS_METHODS}")
    L, sids, people, proba = _matrix(store)
    if not people:
        return {"annotators": [], "pairs": [], "alpha": None, "consensus": method, "samples": 0}
    k = len(store.class_names)
    result = _consensus(L, proba, k, method)
    report = annotator_report(L, k, result=result, proba=proba, names=people)
    report.update(consensus=method, samples=len(sids), classes=store.class_names)
    return report


def public_summary(report: dict) -> dict:
    """The ``--json`` document: exactly ``annotators`` (name, labels, agreement_with_consensus,
    agreement_with_model, flagged), ``pairs`` (a, b, shared, kappa) and ``alpha``."""
    keys = ("name", "labels", "agreement_with_consensus", "agreement_with_model", "flagged")
    return {
        "annotators": [{k: a[k] for k in keys} for a in report["annotators"]],
        "pairs": [{k: p[k] for k in ("a", "b", "shared", "kappa")} for p in report["pairs"]],
        "alpha": report["alpha"],
    }


def write_agreement_heatmap(report: dict, path) -> Path:
    """The pairwise Cohen's kappa of every pair of annotators as a heat map PNG (atomic write)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [str(a["name"]) for a in report["annotators"]]
    index = {n: i for i, n in enumerate(names)}
    K = np.full((len(names), len(names)), np.nan)
    np.fill_diagonal(K, 1.0)
    for p in report["pairs"]:
        i, j = index[str(p["a"])], index[str(p["b"])]
        K[i, j] = K[j, i] = np.nan if p["kappa"] is None else p["kappa"]
    size = 2.5 + 0.5 * len(names)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(np.ma.masked_invalid(K), vmin=-0.2, vmax=1.0, cmap="viridis")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    shared = {(str(p["a"]), str(p["b"])): p["shared"] for p in report["pairs"]}
    for i in range(len(names)):
        for j in range(len(names)):
            if i != j and np.isfinite(K[i, j]):
                m = shared.get((names[i], names[j]), shared.get((names[j], names[i])))
                ink = "k" if K[i, j] > 0.6 else "w"  # readable on the bright and the dark end of viridis
                ax.text(j, i, f"{K[i, j]:.2f}\nn={m}", ha="center", va="center", fontsize=7, color=ink)
    alpha = report.get("alpha")
    ax.set_title("Cohen's kappa on shared samples" + (f" (alpha {alpha:.2f})" if alpha is not None else ""))
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=120)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    return path


def training_labels(store: CampaignStore, *, method: str = DEFAULT_CONSENSUS) -> dict[str, str]:
    """sid -> label used for training: the one active label, or the consensus of several.

    Samples flagged ``suspect`` stay out (they wait for a re-review). With
    ``method="none"`` samples with conflicting labels stay out as well.
    """
    if method not in DATASET_CONSENSUS:
        raise InputError(f"unknown consensus {method!r}; expected one of {DATASET_CONSENSUS}")
    current = store.current_labels()
    if method == "none":
        return current
    flagged = store.flagged()
    conflicted = {s for s, why in flagged.items() if why == ["conflict"]}
    if not conflicted:
        return current
    L, sids, _, proba = _matrix(store)
    result = _consensus(L, proba, len(store.class_names), method)
    names = store.class_names
    out = dict(current)
    for i, sid in enumerate(sids):
        if sid in conflicted and result.labels[i] >= 0:
            out[sid] = names[result.labels[i]]
    return out


def open_relabel_round(store: CampaignStore, budget: int, *, params: dict | None = None) -> tuple[int, list[str]]:
    """A new round of second opinions on ``budget`` returned labels, most likely wrong (and most worth fixing) first.

    Candidates are pool samples with an active label from a round (their
    batch row holds the model's out-of-sample probabilities). The ranking is
    :func:`activemine.annotators.relabel.rank_for_relabel` against the current training
    labels (:func:`training_labels`); each chosen sample wants one label more
    than it has, from an annotator who has not labeled it. ``budget`` must be
    between 1 and the number of candidates; otherwise nothing is written.
    Returns ``(round, ids)``; the advice (relabel or mine) is in the round's params.
    """
    from activemine.annotators.relabel import rank_for_relabel, relabel_advice

    if int(budget) != budget or budget < 1:
        raise BudgetError(f"relabel budget must be a positive integer, got {budget}")
    L, sids, _, proba = _matrix(store)
    with store.snapshot() as conn:
        waiting = waiting_sids(conn)
    # a candidate has the model's view of it and an annotator who has not labeled it yet
    known = np.isfinite(proba).all(axis=1) & (L < 0).any(axis=1)
    # a label already waiting for another opinion (an open overlap or relabel round) is asked once
    is_waiting = np.fromiter((s in waiting for s in sids), dtype=bool, count=len(sids))
    held = int((known & is_waiting).sum())
    known &= ~is_waiting
    k = len(store.class_names)
    if budget > int(known.sum()):
        raise BudgetError(
            f"relabel budget {budget} is above the {int(known.sum())} returned labels that can get a second opinion"
            + (f" ({held} more are already waiting for one in an open round)" if held else "")
        )
    L, sids, proba = L[known], [s for s, ok in zip(sids, known) if ok], proba[known]
    current = training_labels(store)
    index = {c: i for i, c in enumerate(store.class_names)}
    train = np.array([index.get(current.get(s), -1) for s in sids], dtype=np.int64)
    # a sample whose labels are all held back (suspect) is judged against its own majority
    train = np.where(train >= 0, train, consensus(L, k, method="majority").labels)
    ranking = rank_for_relabel(L, proba, budget=int(budget), k=k, train_labels=train)
    advice = relabel_advice(ranking)
    has = L >= 0
    chosen = ranking.order
    record = dict(params or {}, strategy="relabel", advice=advice)
    with store.transaction() as conn:
        ensure_wanted_table(store, conn)
        picked = [sids[i] for i in chosen.tolist()]
        clash = sorted(waiting_sids(conn).intersection(picked))
        if clash:
            raise CampaignError(
                f"{len(clash)} of the chosen samples (e.g. {clash[:5]}) were queued for another opinion by another "
                "process meanwhile; nothing was recorded, run `campaign relabel` again"
            )
        (last,) = conn.execute("SELECT COALESCE(MAX(round), 0) FROM rounds").fetchone()
        round_no = last + 1
        conn.execute(
            "INSERT INTO rounds VALUES (?, ?, ?, ?, ?)",
            (round_no, now(), "relabel", int(budget), json.dumps(record, default=str)),
        )
        # the pool row of a relabeled sample is its earlier batch row's (-1 for samples of L)
        earlier = newest_rows(conn, picked, "row")
        write_round(
            conn,
            round_no,
            score=ranking.priority[chosen].astype(np.float64),
            stratum=["relabel"] * len(picked),
            predicted=[store.class_names[int(j)] for j in proba[chosen].argmax(axis=1)],
            proba=np.nan_to_num(proba[chosen], nan=1.0 / k),
            row=[int(earlier.get(s, -1)) for s in picked],
        )
        insert_batch_ids(conn, round_no, picked)
        conn.executemany(
            "INSERT INTO wanted VALUES (?, ?, ?)", [(round_no, sids[i], int(has[i].sum()) + 1) for i in chosen.tolist()]
        )
    return round_no, [sids[i] for i in chosen.tolist()]
