"""The selection plan: every selection setting, validated before any model is fitted.

A :class:`SelectionPlan` is built from the user's arguments (and the
strategy's defaults, e.g. a strategy's own easy share) and checked at once, so a bad
budget, easy share or balance fails in well under a second whatever the pool
size. It is the one owner of class weights and quotas: strategies only
produce ``(scores, predicted)``; the in-memory path, the streaming and Ray
engines and campaigns all select through :meth:`SelectionPlan.select` (and
the engines reduce candidates with :meth:`SelectionPlan.quota_bounds`).

Life of a plan::

    plan = SelectionPlan.build(strategy, budget=1000, exclude=queued_ids)   # the user's settings, checked
    plan = plan.bind(classes=strategy.resolve_classes(labeled), labeled=labeled, total_rows=n)  # still no fit
    batch = plan.select(ids, scores, predicted)                              # after scoring

Higher acquisition score = more worth labeling, as everywhere in activemine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from activemine.errors import InputError, PoolExhaustedError, UnknownLabelError
from activemine.selection.batch import Batch, check_ids, select_batch

__all__ = ["BALANCE_MODES", "SelectionPlan", "as_exclusions", "check_balance", "check_easy_share", "class_weights"]

#: Named class-quota rules; ``None`` (or ``"none"``) means one group without quotas.
BALANCE_MODES = ("equal", "labeled", "pool")

_UNSET = object()


def check_easy_share(easy_share) -> float:
    """``easy_share`` as a float in ``[0, 1]``, or an :class:`InputError`."""
    try:
        value = float(easy_share)
    except (TypeError, ValueError):
        raise InputError(f"easy_share must be a number in [0, 1], got {easy_share!r}") from None
    if not 0.0 <= value <= 1.0:
        raise InputError(f"easy_share must be in [0, 1], got {easy_share}")
    return value


def check_balance(balance):
    """Normalize a balance setting: None, a mode of :data:`BALANCE_MODES`, a tuple of
    non-negative weights, or a dict class -> weight; anything else is an :class:`InputError`."""
    if balance is None or (isinstance(balance, str) and balance == "none"):
        return None
    if isinstance(balance, str):
        if balance not in BALANCE_MODES:
            raise InputError(f"unknown balance {balance!r}; expected one of {BALANCE_MODES + ('none',)} or weights")
        return balance
    if isinstance(balance, Mapping):
        values = np.array([_weight(v) for v in balance.values()], dtype=np.float64)
        _check_weight_values(values)
        return dict(balance)
    try:
        values = np.array([_weight(v) for v in balance], dtype=np.float64)
    except TypeError:
        raise InputError(f"balance must be a mode name, weights or a mapping, got {balance!r}") from None
    _check_weight_values(values)
    return tuple(values.tolist())


def _weight(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        raise InputError(f"balance weights must be numbers, got {v!r}") from None


def _check_weight_values(w: np.ndarray) -> None:
    if w.size == 0 or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise InputError(f"balance weights must be finite, non-negative and not all zero, got {w.tolist()}")


def class_weights(balance, *, classes: Sequence, labeled_counts=None, pool_counts=None) -> np.ndarray | None:
    """Class weights for quotas, ``(k,)``, or None for no quotas.

    ``balance`` is ``"equal"``, ``"labeled"`` (the labeled set's class ratio),
    ``"pool"`` (the predicted class ratio of the selectable pool), a sequence
    of k non-negative weights, a mapping class -> weight (missing classes get
    0), or None / ``"none"`` for a single group.
    """
    balance = check_balance(balance)
    k = len(classes)
    if balance is None:
        return None
    if balance == "equal":
        return np.ones(k)
    if balance == "labeled":
        if labeled_counts is None:
            raise InputError("balance='labeled' needs the labeled set's class counts; give a labeled set")
        w = np.asarray(labeled_counts, dtype=np.float64)
    elif balance == "pool":
        if pool_counts is None:
            raise InputError("balance='pool' needs the pool's predicted class counts")
        w = np.asarray(pool_counts, dtype=np.float64)
    elif isinstance(balance, dict):
        known = list(classes)
        unknown = [c for c in balance if c not in known]
        if unknown:
            raise InputError(f"balance weights name unknown classes {unknown}; known classes are {known}")
        w = np.array([float(balance.get(c, 0.0)) for c in known])
    else:
        w = np.asarray(balance, dtype=np.float64)
    if w.shape != (k,):
        raise InputError(f"balance weights must have one value per class ({k} classes {list(classes)}), got {w.size}")
    if balance in ("labeled", "pool"):
        if w.sum() <= 0:
            raise InputError(f"balance={balance!r} has no samples to take class ratios from")
    else:
        _check_weight_values(w)
    return w


def as_exclusions(exclude) -> np.ndarray:
    """Excluded ids as a sorted, unique ``(m,)`` int64 or str array (empty int64 when none).

    Accepts any array-like or iterable of ids (a set is converted once); the
    result is what every engine looks ids up in, by binary search.
    """
    if exclude is None:
        return np.empty(0, dtype=np.int64)
    if isinstance(exclude, (set, frozenset)):
        exclude = list(exclude)
    arr = np.asarray(exclude)
    if arr.ndim != 1:
        arr = arr.ravel()
    if arr.size == 0:
        return np.empty(0, dtype=np.int64)
    if arr.dtype.kind not in "iuUO":
        raise InputError(f"excluded ids must be integers or strings, got dtype {arr.dtype}")
    if arr.dtype.kind != "U" and arr.dtype != np.int64:
        arr = _normalize_ids(arr)
    if arr.size < 2 or (arr[1:] > arr[:-1]).all():  # already sorted and unique: no sort of a million strings
        return arr
    return np.unique(arr)


def _normalize_ids(arr: np.ndarray) -> np.ndarray:
    # duplicates are harmless in an exclusion list: only the type is checked here
    if arr.dtype.kind == "O":
        if all(isinstance(v, str) for v in arr):
            return arr.astype(str)
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in arr):
            return arr.astype(np.int64)
        raise InputError(f"excluded ids must be all integers or all strings, got values such as {arr[:3].tolist()}")
    if arr.dtype.kind == "u" and arr.max() > np.iinfo(np.int64).max:
        raise InputError(f"excluded ids must fit in int64, got {int(arr.max())}")
    return arr.astype(np.int64)


@dataclass(frozen=True, eq=False)
class SelectionPlan:
    """Everything a selection needs besides the scored rows; frozen and validated on creation.

    Parameters
    ----------
    budget : rows to select, a positive integer.
    balance : class quotas: None (one group), ``"equal"``, ``"labeled"``, ``"pool"``,
        weights ``(k,)`` or a mapping class -> weight.
    easy_share : share of every quota drawn uniformly (by seeded id hash) from the
        rows that are not hard, in ``[0, 1]``.
    seed : seed of the id hash of the easy draw (and of the random strategy).
    exclude : ids that may not be selected, a sorted unique ``(m,)`` array
        (labeled ids are added by :meth:`bind`).
    classes : the class labels, once known; ``predicted`` indexes into them.
    labeled_counts : ``(k,)`` labeled rows per class (for ``balance="labeled"``).
    total_rows : the pool's row count when known (checks the budget, tightens bounds).
    hard_label : stratum name of the score-ranked rows (``"random"`` for the random strategy).
    diversity : options of a diversity step, passed through untouched (None: none).
    """

    budget: int
    balance: object = None
    easy_share: float = 0.0
    seed: int = 0
    exclude: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    classes: tuple | None = None
    labeled_counts: tuple | None = None
    total_rows: int | None = None
    hard_label: str = "hard"
    diversity: object | None = None

    def __post_init__(self):
        budget = self.budget
        if (
            isinstance(budget, bool)
            or not isinstance(budget, (int, np.integer, float))
            or int(budget) != budget
            or budget < 1
        ):
            raise InputError(f"budget must be a positive integer, got {budget!r}")
        set_ = object.__setattr__
        set_(self, "budget", int(budget))
        set_(self, "easy_share", check_easy_share(self.easy_share))
        set_(self, "balance", check_balance(self.balance))
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise InputError(f"seed must be an integer, got {self.seed!r}")
        set_(self, "seed", int(self.seed))
        set_(self, "exclude", as_exclusions(self.exclude))
        if self.classes is not None:
            classes = tuple(np.asarray(self.classes).tolist())
            if len(classes) < 1 or len(set(classes)) != len(classes):
                raise InputError(f"classes must be distinct and at least one, got {list(classes)}")
            set_(self, "classes", classes)
            if isinstance(self.balance, (tuple, dict)):
                class_weights(self.balance, classes=classes)  # weights of the wrong length fail here
        if self.labeled_counts is not None:
            set_(self, "labeled_counts", tuple(int(c) for c in self.labeled_counts))
        if self.diversity is not None:
            from activemine.diversity.options import DiversityOptions

            if not isinstance(self.diversity, DiversityOptions):
                raise InputError(f"diversity must be a DiversityOptions, got {type(self.diversity).__name__}")
            self.diversity.check_pool_rows(self.total_rows)
        if self.total_rows is not None:
            set_(self, "total_rows", int(self.total_rows))
            if self.budget > self.total_rows:
                raise PoolExhaustedError(f"budget {self.budget} is larger than the {self.total_rows} rows of the pool")

    # -- construction -----------------------------------------------------------------
    @classmethod
    def build(
        cls,
        strategy=None,
        *,
        budget,
        balance=_UNSET,
        easy_share=None,
        seed=None,
        exclude=None,
        classes=None,
        diversity=None,
    ) -> SelectionPlan:
        """The plan of the user's arguments; what is not given comes from ``strategy``
        (its ``balance``, ``easy_share``, ``random_state``, ``classes`` and stratum name,
        which default to the strategy class's own defaults)."""
        if balance is _UNSET:
            balance = getattr(strategy, "balance", None)
        if easy_share is None:
            easy_share = getattr(strategy, "easy_share", 0.0)
        if seed is None:
            seed = getattr(strategy, "random_state", 0)
        if classes is None:
            classes = getattr(strategy, "classes", None)
        return cls(
            budget=budget,
            balance=balance,
            easy_share=easy_share,
            seed=seed,
            exclude=exclude,
            classes=classes,
            hard_label=getattr(strategy, "hard_label", "hard"),
            diversity=diversity,
        )

    def bind(self, *, classes, labeled=None, total_rows: int | None = None) -> SelectionPlan:
        """This plan for one pool: its classes, the labeled set (its ids become
        exclusions, its class counts serve ``balance="labeled"``) and its row count.

        Raises on every setting that these make invalid, before anything is fitted.
        """
        classes = tuple(np.asarray(classes).tolist())
        exclude, counts = self.exclude, self.labeled_counts
        if labeled is not None:
            y = np.asarray(labeled.y)
            present = np.unique(y)
            unknown = [c for c in present.tolist() if c not in classes]
            if unknown:
                raise UnknownLabelError(
                    f"labeled set has labels {unknown[:10]} that are not among the classes {list(classes)}"
                )
            counts = tuple(int((y == c).sum()) for c in classes)
            if labeled.ids is not None and len(labeled.ids):
                exclude = _union(exclude, as_exclusions(labeled.ids))
        if self.balance == "labeled" and counts is None:
            raise InputError("balance='labeled' needs the labeled set's class counts; give a labeled set")
        plan = replace(
            self,
            classes=classes,
            exclude=exclude,
            labeled_counts=counts,
            total_rows=self.total_rows if total_rows is None else total_rows,
        )
        if plan.balance is not None and plan.balance != "pool":
            plan.weights  # noqa: B018  (derive now, so a bad setting fails here)
        return plan

    # -- derived ----------------------------------------------------------------------
    @property
    def n_classes(self) -> int:
        if self.classes is None:
            raise InputError("the plan has no classes yet; bind it to a pool first")
        return len(self.classes)

    @property
    def n_groups(self) -> int:
        return 1 if self.balance is None else self.n_classes

    @cached_property
    def weights(self) -> np.ndarray | str | None:
        """Class weights ``(k,)``, ``"pool"`` (the final predicted class counts) or None (one group)."""
        if self.balance == "pool":
            return "pool"
        return class_weights(self.balance, classes=list(self.classes or ()), labeled_counts=self.labeled_counts)

    def excluded(self, ids: np.ndarray, *, keys: np.ndarray | None = None) -> np.ndarray | None:
        """True where an id ``(n,)`` is excluded, or None when nothing is (:class:`~activemine.data.idindex.IdIndex`;
        ``keys``: :func:`~activemine.data.idindex.id_hash` of ``ids`` when the caller has it already)."""
        values = self.exclude
        if values.size == 0:
            return None
        ids = np.asarray(ids)
        if (values.dtype.kind == "i") != (ids.dtype.kind in "iu"):
            raise InputError(f"excluded ids are of dtype {values.dtype} but pool ids are {ids.dtype}; they must match")
        if values.size < 64:  # a few ids: a binary search is as fast as anything
            pos = np.minimum(np.searchsorted(values, ids), values.size - 1)
            return values[pos] == ids
        if "_index" not in self.__dict__:  # built once; a cache, not state (the plan is frozen)
            from activemine.data.idindex import IdIndex

            self.__dict__["_index"] = IdIndex(values)
        return self.__dict__["_index"].contains(ids, keys=keys)

    def quota_bounds(self, counts: np.ndarray, rows_seen: int) -> np.ndarray:
        """Upper bounds ``(n_groups,)`` of the final quotas, given ``counts`` ``(n_classes,)``
        of selectable rows seen so far among ``rows_seen`` rows read (for streaming engines)."""
        budget = self.budget
        weights = self.weights
        if weights is None:
            return np.array([budget])
        counts = np.asarray(counts, dtype=np.int64)
        if isinstance(weights, str):  # "pool": quota_c = budget * avail_c / avail_total, rounded
            if self.total_rows is None:
                return np.full(self.n_classes, budget)
            rest = max(0, self.total_rows - int(rows_seen))
            denominator = int(counts.sum()) + rest
            if denominator == 0:
                return np.full(self.n_classes, budget)
            ideal = budget * (counts + rest) / denominator
            return np.minimum(budget, np.ceil(ideal).astype(np.int64) + 2)
        w = np.asarray(weights, dtype=np.float64)
        weighted = w > 0
        held = int(counts[weighted].sum())
        if held <= budget:
            # weighted classes may still take everything they have; zero-weight ones only the remainder
            return np.where(weighted, budget, budget - held)
        level = _water_level(counts[weighted], w[weighted], budget)
        bound = np.minimum(budget, np.ceil(level * w).astype(np.int64) + 2)
        return np.where(weighted, bound, 0)

    # -- selection --------------------------------------------------------------------
    def select(
        self, ids, scores, predicted, *, available_counts=None, embedding=None, hashes=None, diverse: dict | None = None
    ) -> Batch:
        """Select ``budget`` rows from scored rows ``(n,)`` each.

        Without ``available_counts`` the rows are the whole pool and excluded
        ids are dropped here; with it (``(k,)`` selectable rows per class of
        the whole pool) the rows are a streaming engine's candidates, already
        free of excluded ids. With ``diversity`` options the rows' ``embedding``
        ``(n, e)`` and/or ``hashes`` ``(n,)`` keep copies out of the batch
        (:func:`activemine.diversity.select.select_diverse`; ``diverse`` holds a
        streaming engine's sample and candidate boundaries).
        """
        ids = check_ids(ids)
        predicted = np.asarray(predicted, dtype=np.int64)
        if available_counts is None:
            drop = self.excluded(ids)
            if drop is not None and drop.any():
                keep = ~drop
                ids, scores, predicted = ids[keep], np.asarray(scores)[keep], predicted[keep]
                embedding = None if embedding is None else np.asarray(embedding)[keep]
                hashes = None if hashes is None else np.asarray(hashes)[keep]
        weights = self.weights
        if isinstance(weights, str):  # "pool"
            counts = available_counts
            if counts is None:
                counts = np.bincount(
                    predicted[(predicted >= 0) & (predicted < self.n_classes)], minlength=self.n_classes
                )
            weights = np.asarray(counts, dtype=np.float64)
        if self.diversity is not None and self.diversity.active:
            from activemine.diversity.select import select_diverse

            batch, report = select_diverse(
                ids,
                scores,
                predicted,
                embedding,
                budget=self.budget,
                n_classes=self.n_classes,
                weights=weights,
                easy_share=self.easy_share,
                seed=self.seed,
                available_counts=available_counts,
                classes=list(self.classes),
                hard_label=self.hard_label,
                options=self.diversity,
                hashes=hashes,
                **(diverse or {}),
            )
            return replace(batch, diversity=report)
        return select_batch(
            ids,
            scores,
            predicted,
            budget=self.budget,
            n_classes=self.n_classes,
            weights=weights,
            easy_share=self.easy_share,
            seed=self.seed,
            available_counts=available_counts,
            classes=list(self.classes),
            hard_label=self.hard_label,
        )


def _union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.size == 0:
        return b
    if b.size == 0:
        return a
    if (a.dtype.kind == "i") != (b.dtype.kind == "i"):
        raise InputError(f"excluded ids are of dtype {a.dtype} but labeled ids are {b.dtype}; they must match")
    return np.union1d(a, b)


def _water_level(counts: np.ndarray, w: np.ndarray, budget: int) -> float:
    """The level L with ``sum min(counts, L w) = budget`` (needs ``counts.sum() > budget``)."""
    order = np.argsort(counts / w, kind="stable")
    filled, weight_left = 0, float(w.sum())
    for j in order:
        level = (budget - filled) / weight_left
        if level * w[j] <= counts[j]:
            return level
        filled += int(counts[j])
        weight_left -= float(w[j])
    return math.inf  # unreachable when counts.sum() > budget
