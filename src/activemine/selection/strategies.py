"""Strategies: the scoring side of active learning, behind one call signature.

Every strategy is used the same way::

    strategy = make_strategy("hw", model="lightgbm", random_state=0)
    strategy.fit(labeled)                      # trains what it needs (nothing for precomputed probabilities)
    scores, predicted = strategy.score(chunk)  # per pool chunk; pure, so chunking cannot change it

``scores`` are acquisition scores (higher = more worth labeling) and
``predicted`` the class index each row is counted under for quotas. Strategies
do not select: a :class:`activemine.selection.plan.SelectionPlan` does, and a strategy's
``balance`` and ``easy_share`` (its own defaults unless given) are only what
the plan builder reads when the user gives none.
:func:`activemine.engines.mining.mine` and the engines run fit, score and select.

Registered strategies (:data:`STRATEGIES`): ``random``, ``lc``, ``sm``,
``entropy``, ``qbc``, ``qbc-grow`` (QBC whose committee grows across rounds)
and ``hw``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from activemine.data.chunks import LabeledSet, PoolChunk
from activemine.dirty.oof import check_oof_method
from activemine.dirty.policy import DIRTY_POLICIES, DIRTY_RULES, DirtyDataFilter
from activemine.dirty.soft import fit_soft
from activemine.errors import InputError, ProbabilityError, SingleClassError, UnknownLabelError
from activemine.models import check_n_jobs, make_model, predict_proba_aligned, stratified_fraction, with_image_shape
from activemine.selection import scores as S
from activemine.selection.batch import id_keys, uniform_from_keys
from activemine.selection.committee import Committee
from activemine.selection.plan import check_balance, check_easy_share

__all__ = [
    "STRATEGIES",
    "DirtyDataStep",
    "HW_WEAK_TREES",
    "HWStrategy",
    "QBCStrategy",
    "RandomStrategy",
    "Strategy",
    "UncertaintyStrategy",
    "make_strategy",
]

_DEFAULT = object()
QBC_DISAGREEMENTS = ("vote", "kl", "bald")
QBC_COMMITTEES = ("bootstrap", "seeded", "dropout")
#: HW's default weak model: ``"all"``, the strong model itself (its least confidence). The first 20 trees of a
#: LightGBM strong model (``weak_trees=20``), the earlier default, cost 0.5 to 1.5 points of TPR at 1% FPR on
#: clean data in the reduced label-efficiency benchmark (README, "Strategy comparison").
HW_WEAK_TREES = "all"


class DirtyDataStep(Protocol):
    """Extension point of HW: decides which labeled rows to train on.

    ``__call__(X, y, *, random_state)`` returns a boolean mask ``(n,)`` of rows
    to keep; the dirty-data module provides implementations.
    """

    def __call__(self, X: np.ndarray, y: np.ndarray, *, random_state: int) -> np.ndarray: ...


class Strategy:
    """Base class: class bookkeeping and model fitting; subclasses score.

    Parameters (keyword-only)
    -------------------------
    model : model name or scikit-learn classifier used when the pool has features.
    balance : the class quotas a selection plan takes by default: None (one
        group), ``"equal"``, ``"labeled"``, ``"pool"`` or explicit weights;
        default depends on the strategy. Checked here, derived by the plan.
    easy_share : the plan's default share of every quota drawn uniformly from
        the easier rows; checked here.
    classes : class labels, needed only when there is no labeled set.
    random_state : seed of every random choice of the strategy.
    n_jobs : threads for every model the strategy fits and scores with (None = the CPUs available).
    """

    name = "base"
    default_balance = None
    default_easy_share = 0.0
    hard_label = "hard"

    def __init__(
        self,
        *,
        model="lightgbm",
        balance=_DEFAULT,
        easy_share: float | None = None,
        classes: Sequence | None = None,
        random_state: int = 0,
        n_jobs: int | None = None,
    ):
        self.model = model
        self.n_jobs = None if n_jobs is None else check_n_jobs(n_jobs)
        # selection settings are checked at once (so bad ones fail before any fit) but only the plan uses them
        self.balance = check_balance(self.default_balance if balance is _DEFAULT else balance)
        self.easy_share = check_easy_share(self.default_easy_share if easy_share is None else easy_share)
        self.classes = classes
        self.random_state = random_state

    # -- fitting -----------------------------------------------------------------
    def resolve_classes(self, labeled: LabeledSet | None = None, *, n_proba_columns: int | None = None) -> np.ndarray:
        """The classes ``(k,)`` that :meth:`fit` will use, found without fitting anything.

        ``classes`` if given, else the labels of ``labeled`` when a model is to
        be trained, else ``0..k-1`` for ``n_proba_columns`` probability columns.
        """
        if self.classes is not None:
            classes = np.asarray(self.classes)
        elif labeled is not None and n_proba_columns is None:
            classes = np.unique(labeled.y)
        elif n_proba_columns is not None:
            classes = np.arange(n_proba_columns)
        else:
            raise InputError(f"strategy {self.name!r} needs a labeled set, or classes and precomputed probabilities")
        if n_proba_columns is not None and n_proba_columns != classes.size:
            raise ProbabilityError(
                f"the pool has {n_proba_columns} probability columns but there are {classes.size} classes {classes.tolist()}"
            )
        if labeled is not None:
            unknown = np.setdiff1d(np.unique(labeled.y), classes)
            if unknown.size:
                raise UnknownLabelError(
                    f"labeled set has labels {unknown[:10].tolist()} that are not among the classes {classes.tolist()}"
                )
        if n_proba_columns is None:
            self._require_features(labeled)
        return classes

    def fit(self, labeled: LabeledSet | None = None, *, n_proba_columns: int | None = None) -> Strategy:
        """Learn the classes and train the strategy's models on ``labeled``.

        ``n_proba_columns`` is the number of probability columns the pool
        brings when no model is to be trained; it fixes the classes to
        ``0..k-1`` unless ``classes`` was given.
        """
        self.n_fits_ = 0
        self.classes_ = self.resolve_classes(labeled, n_proba_columns=n_proba_columns)
        self.labeled_counts_ = None if labeled is None else np.array([(labeled.y == c).sum() for c in self.classes_])
        if n_proba_columns is None:
            self.model = with_image_shape(self.model, getattr(labeled, "image_shape", None))
            self._fit_models(labeled)
        return self

    def _require_features(self, labeled: LabeledSet | None) -> None:
        if labeled is None or labeled.X is None:
            raise InputError(
                f"strategy {self.name!r} must train a model: give labeled features, or precomputed probabilities"
            )
        present = np.unique(labeled.y)
        if present.size < 2:
            raise SingleClassError(
                f"the labeled set holds only class {present.tolist()}; at least two are needed to train"
            )

    def _fit_models(self, labeled: LabeledSet) -> None:
        """Train the strategy's models; called by :meth:`fit` when there are features."""

    def _train(self, X, y, *, seed_offset: int = 0, model=None, params: dict | None = None):
        est = make_model(
            self.model if model is None else model, random_state=self.random_state + seed_offset, n_jobs=self.n_jobs
        )
        if params:  # settings only some models take (a network's snapshot epochs)
            known = est.get_params()
            est.set_params(**{k: v for k, v in params.items() if k in known})
        est.fit(X, y)
        self.n_fits_ += 1
        return est

    # -- scoring -----------------------------------------------------------------
    def score(self, chunk: PoolChunk) -> tuple[np.ndarray, np.ndarray]:
        """Acquisition scores ``(n,)`` and predicted class indices ``(n,)`` for one chunk."""
        raise NotImplementedError

    def class_proba(self, chunk: PoolChunk) -> np.ndarray:
        """The strategy's best class probabilities for a chunk, ``(n, k)`` in the order of ``classes_``.

        This is the model that predicts the class (the strong model for HW, the
        consensus for QBC); pre-annotations and label checks use it.
        """
        if chunk.proba is not None:
            return S.check_proba(chunk.proba, name="pool proba")
        return self._proba(chunk, self._class_model())

    def _class_model(self):
        return getattr(self, "model_", None)

    def embedder(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """The fitted class model's ``embed`` (a network's penultimate layer, ``(n, d) -> (n, e)``), or None
        when the model has none; batch diversity and near-duplicate suppression use it when the pool
        brings no embedding columns."""
        return getattr(self._class_model(), "embed", None)

    def _proba(self, chunk: PoolChunk, model, column: str = "proba") -> np.ndarray:
        given = getattr(chunk, column)
        if given is not None:
            return S.check_proba(given, name=f"pool {column}")
        if model is None or chunk.X is None:
            raise InputError(f"strategy {self.name!r} needs pool features or the {column} columns")
        return predict_proba_aligned(model, chunk.X, self.classes_)


class RandomStrategy(Strategy):
    """Uniform random sample, by the seeded hash of the id (the baseline).

    Its model (or the pool's probabilities) only reports the predicted class
    and serves quotas when ``balance`` is set; it never changes the ranking.
    """

    name = "random"
    hard_label = "random"

    def _fit_models(self, labeled):
        self.model_ = self._train(labeled.X, labeled.y)

    def score(self, chunk):
        u = uniform_from_keys(id_keys(chunk.ids, seed=self.random_state))
        return u, self._proba(chunk, getattr(self, "model_", None)).argmax(axis=1)


class UncertaintyStrategy(Strategy):
    """Uncertainty sampling with one model: ``lc``, ``sm`` or ``entropy``."""

    MEASURES: dict[str, Callable] = {
        "lc": S.least_confidence,
        "sm": S.smallest_margin,
        "entropy": S.entropy,
    }

    def __init__(self, measure: str = "lc", **kwargs):
        if measure not in self.MEASURES:
            raise InputError(f"unknown uncertainty measure {measure!r}; expected one of {list(self.MEASURES)}")
        super().__init__(**kwargs)
        self.measure = measure
        self.name = measure

    def _fit_models(self, labeled):
        self.model_ = self._train(labeled.X, labeled.y)

    def score(self, chunk):
        proba = self._proba(chunk, getattr(self, "model_", None))
        return self.MEASURES[self.measure](proba, validate=False), S.argmax_rows(proba)


class QBCStrategy(Strategy):
    """Query by committee: disagreement of a committee by ``vote`` entropy or ``kl`` to the consensus.

    * ``disagreement="vote"`` scores :func:`activemine.selection.scores.ranked_vote_entropy`:
      rows are ordered by their votes, then by ``secondary``, the consensus's
      least confidence (``"lc"``, default) or entropy (``"entropy"``); the id
      settles only exact ties of both. With 2-3 members vote entropy takes 2-3
      values, so without a secondary key (``secondary=None``, plain vote
      entropy) most of a batch is decided by the id.
    * ``disagreement="kl"`` scores the mean KL divergence of the members to the
      consensus, a continuous score that needs no secondary key; ``"bald"``
      scores BALD (:func:`activemine.selection.scores.bald`), the same quantity computed
      as the mutual information of class and member.
    * ``committee`` says what the members are: ``"bootstrap"`` (default)
      models trained on seeded stratified bootstraps of L; ``"seeded"``
      models trained on all of L that differ only in their seed (the DAS
      design for networks); ``"dropout"`` one network trained once and
      ``committee_size`` dropout passes of it (a fixed mask per pass, see
      :meth:`activemine.deep.TorchClassifier.predict_proba_passes`; a model
      without them is an error).
    * ``grow=True`` (registered as ``qbc-grow``): in a multi-round experiment
      the committee is fitted once and then grows by one member per round,
      trained on the newly labeled batch plus a resample of the old labels
      (Active-Decorate); with ``grow=False`` a fixed-size committee is refitted
      on all labels each round. One-shot selection is the same either way.

    With precomputed probabilities the pool brings ``member_proba`` ``(m, n, k)``.
    """

    name = "qbc"

    def __init__(
        self,
        *,
        disagreement: str = "vote",
        committee_size: int = 3,
        feature_fraction: float = 1.0,
        secondary: str | None = "lc",
        grow: bool = False,
        committee: str = "bootstrap",
        **kwargs,
    ):
        if disagreement not in QBC_DISAGREEMENTS:
            raise InputError(f"unknown disagreement {disagreement!r}; expected one of {list(QBC_DISAGREEMENTS)}")
        if committee not in QBC_COMMITTEES:
            raise InputError(f"unknown committee {committee!r}; expected one of {list(QBC_COMMITTEES)}")
        if secondary is not None and secondary not in S.SECONDARY_KEYS:
            raise InputError(f"unknown secondary key {secondary!r}; expected one of {S.SECONDARY_KEYS} or None")
        if disagreement == "vote" and secondary is not None and not 1 <= committee_size <= S.MAX_RANKED_MEMBERS:
            raise InputError(
                f"committee_size must be 1 to {S.MAX_RANKED_MEMBERS} for ranked vote entropy, got {committee_size}; "
                "use disagreement='kl'"
            )
        super().__init__(**kwargs)
        self.disagreement = disagreement
        self.committee_size = committee_size
        self.feature_fraction = feature_fraction
        self.secondary = secondary
        self.grow_committee = bool(grow)
        self.committee = committee
        if self.grow_committee:
            self.name = "qbc-grow"
        if self.grow_committee and committee == "dropout":
            raise InputError("a growing committee needs trained members; committee='dropout' has one model")
        if committee == "dropout" and not _may_be_network(self.model):
            name = self.model if isinstance(self.model, str) else type(self.model).__name__
            raise InputError(
                f"committee='dropout' needs a network (cnn or a torch factory); {name!r} has no dropout passes"
            )

    def embedder(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """The consensus model's ``embed`` (dropout passes), else the first committee member's (networks
        seeds apart or on bootstraps): the penultimate layer that batch diversity uses when the pool brings no
        embedding columns."""
        embed = super().embedder()
        members = getattr(getattr(self, "committee_", None), "members_", None)
        if embed is None and members and self.feature_fraction >= 1.0:  # a member on all the features
            embed = getattr(members[0][0], "embed", None)
        return embed

    def _fit_models(self, labeled):
        if self.committee == "dropout":
            model = self._train(labeled.X, labeled.y)
            if not hasattr(model, "predict_proba_passes"):
                raise InputError(
                    f"committee='dropout' needs a network (cnn or a torch factory); {type(model).__name__} has no "
                    "dropout passes"
                )
            self.model_ = model  # its embedding serves batch diversity
            self.committee_ = _DropoutCommittee(model, self.committee_size, self.random_state)
            return
        self.committee_ = Committee(
            self.model,
            n_members=self.committee_size,
            feature_fraction=self.feature_fraction,
            bootstrap=self.committee == "bootstrap",
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        ).fit(labeled.X, labeled.y)
        self.n_fits_ += self.committee_.n_fits_

    def grow(self, X_new, y_new, labeled: LabeledSet) -> QBCStrategy:
        """Add one committee member trained on a newly labeled batch (Active-Decorate)."""
        before = self.committee_.n_fits_
        self.committee_.grow(X_new, y_new, labeled.X, labeled.y)
        self.n_fits_ += self.committee_.n_fits_ - before
        return self

    def class_proba(self, chunk):
        if chunk.member_proba is not None:
            return S.check_proba(chunk.member_proba, name="pool member_proba", ndim=3).mean(axis=0)
        if chunk.proba is None and hasattr(self, "committee_") and chunk.X is not None:
            return self.committee_.predict_proba(chunk.X)
        return super().class_proba(chunk)

    def score(self, chunk):
        if chunk.member_proba is not None:
            stack = S.check_proba(chunk.member_proba, name="pool member_proba", ndim=3)
        elif hasattr(self, "committee_") and chunk.X is not None:
            stack = self.committee_.predict_proba_stack(chunk.X)
        else:
            raise InputError("strategy 'qbc' needs pool features or per-member probability columns")
        # remembered only to split scores into their keys afterwards (primary_key); the scores stay a pure function
        self.scored_members_ = stack.shape[0]
        if self.disagreement == "kl":
            scores = S.kl_to_consensus(stack)
        elif self.disagreement == "bald":
            scores = S.bald(stack)
        elif self.secondary is None:
            scores = S.vote_entropy(stack)
        else:
            scores = S.ranked_vote_entropy(stack, secondary=self.secondary)
        return scores, stack.mean(axis=0).argmax(axis=1)

    def primary_key(self, scores) -> np.ndarray:
        """The first ranking key of this strategy's scores ``(n,)``: the vote entropy when a
        secondary key is packed in (see :func:`activemine.selection.scores.split_ranked_vote_entropy`),
        else the scores themselves."""
        if self.disagreement != "vote" or self.secondary is None:
            return np.asarray(scores)
        m = getattr(self, "scored_members_", None)
        if m is None:
            m = len(self.committee_.members_)
        return S.split_ranked_vote_entropy(scores, n_members=m, n_classes=self.classes_.size)[0]


def _may_be_network(model) -> bool:
    """False for a model that is surely not a network (a built-in name other than ``cnn``, or an estimator
    without dropout passes); a ``package.module:factory`` is known only once built."""
    if isinstance(model, str):
        return model == "cnn" or ":" in model
    return hasattr(model, "predict_proba_passes")


class _DropoutCommittee:
    """One fitted network whose ``n_passes`` dropout passes are the members (the Committee interface QBC uses)."""

    def __init__(self, model, n_passes: int, random_state: int):
        self.model, self.n_passes, self.random_state = model, int(n_passes), int(random_state)
        self.members_ = [model] * self.n_passes
        self.classes_ = np.asarray(model.classes_)
        self.n_fits_ = 1

    def predict_proba_stack(self, X) -> np.ndarray:
        return self.model.predict_proba_passes(X, self.n_passes, random_state=self.random_state)  # (m, n, k)

    def predict_proba(self, X) -> np.ndarray:
        return self.model.predict_proba(X)


class _FirstTrees:
    """The first ``n_trees`` boosting rounds of a fitted LightGBM classifier, as a model of its own."""

    def __init__(self, booster, n_trees: int):
        self.booster = booster
        self.n_trees = n_trees
        self.classes_ = booster.classes_

    def predict_proba(self, X) -> np.ndarray:
        return self.booster.predict_proba(X, num_iteration=self.n_trees)


class HWStrategy(Strategy):
    """HW: least confidence of a weak model, an easy share, dirty-data control and optional class quotas.

    * the **weak model** that scores: with ``weak_trees="all"`` (default) the
      strong model itself, so HW ranks by the strong model's least confidence;
      with an integer and a LightGBM strong model, its first ``weak_trees``
      boosting rounds (a model of all the labels, under-fitted, at no extra
      fit); with ``weak_trees=None``, a ``weak_model`` (a name or estimator),
      or an integer and a non-boosted model, a model trained on a seeded
      stratified ``weak_fraction`` of the labeled set; or the pool's ``weak_proba``;
    * the **easy share** (``easy_share``, default 0): the share of the batch
      drawn at random from the easier rows;
    * the **strong model**, trained on all labels kept, gives the predicted
      class that quotas count by (or the pool's ``proba``; else the weak one);
    * the **dirty-data step** (:meth:`make_dirty_filter`) treats the labels a
      model is trained on: with ``dirty_policy="prune"`` it trains on soft
      labels when they win a held-out check (``soft_labels=True``), else drops
      suspects until the estimated dirty share is at most ``max_dirty`` when
      the drop wins its own (the adaptive ``dirty_rule``; ``"target"`` drops
      without the check), ``"review"``
      only flags them, ``"off"`` skips it (see
      :class:`activemine.dirty.DirtyDataFilter`); a custom ``dirty_step`` (a
      :class:`DirtyDataStep`) replaces it. It cleans the training set of the
      model trained on L + the returned batch (the experiment's final model,
      ``activemine clean``, ``campaign dataset``). With ``clean_selection=True``
      it also runs on the labeled set before the selecting models are
      trained; what it found is then in ``dirty_report_`` and its out-of-fold
      fits count in ``n_fits_``. Off by default: on Fashion-MNIST with 10%
      ambiguity-weighted noise (L 15,000, B 5,000, 3 seeds) a model trained on
      the cleaned L put fewer of the positive class in the batch and lost
      0.8 points of TPR at 1% FPR against selecting with all labels, at nine
      more model fits (benchmarks/label_efficiency.py, ``hw-clean-selection``).
      The step's out-of-fold fits use the cheap LightGBM (``"fast"``); its
      soft-label check trains ``dirty_model``, by default the strong model,
      or that cheap LightGBM when the strong model is a network (a dozen
      network fits would cost more than the selection). With
      ``oof_method="embedding-head"`` (a network only) the step instead
      fits a logistic-regression head out of fold on the network's
      penultimate layer; on L, unless ``clean_selection``, that is the strong
      network's own embedding, so the step trains no network at all.
    * with a **network** (:class:`activemine.deep.TorchClassifier`) an integer
      ``weak_trees`` is an epoch: the weak model is the strong network's
      snapshot after that epoch, at no extra fit.
    * the **difficulty** (``adapt_difficulty=True``): the dirty-data step's
      held-out check runs on L before selection (its fits count in ``n_fits_``).
      When it finds the labels dirty (soft labels or a drop win on held-out
      labels) and its suspects sit nearer the boundary than L's rows do, HW
      ranks by a margin band instead of the boundary: rows whose least
      confidence is near ``band_center`` (the suspects' median uncertainty)
      come first, and rows more uncertain than it are ranked as far below it as
      they are above (``score = c - |lc - c|``), a pure function of the score,
      so chunks and engines cannot change the batch. On clean labels nothing
      changes: HW's batch is lc's. ``difficulty_`` records the decision, why,
      and the fits it paid (``docs/rare-classes.md`` has the measurements).
    """

    name = "hw"
    # no quotas: on Fashion-MNIST shirt-vs-rest equal quotas scored no better (README, "Strategy comparison"); no easy
    # share: 10% cost up to 1.5 points of TPR at 1% FPR on clean data in the reduced benchmark. Both one option away.
    default_balance = None
    default_easy_share = 0.0

    def __init__(
        self,
        *,
        weak_fraction: float = 0.3,
        weak_model=None,
        weak_trees: int | str | None = HW_WEAK_TREES,
        dirty_step: DirtyDataStep | None = None,
        dirty_policy: str = "prune",
        dirty_rule: str = "adaptive",
        max_dirty: float = 0.02,
        clean_selection: bool = False,
        soft_labels: bool = True,
        adapt_difficulty: bool = True,
        dirty_model=None,
        oof_method: str = "refit",
        **kwargs,
    ):
        if not 0.0 < weak_fraction <= 1.0:
            raise InputError(f"weak_fraction must be in (0, 1], got {weak_fraction}")
        if (
            weak_trees is not None
            and weak_trees != "all"
            and (isinstance(weak_trees, (str, bool)) or int(weak_trees) != weak_trees or weak_trees < 1)
        ):
            raise InputError(f"weak_trees must be 'all', a positive integer or None, got {weak_trees!r}")
        if dirty_policy not in DIRTY_POLICIES:
            raise InputError(f"unknown dirty_policy {dirty_policy!r}; expected one of {DIRTY_POLICIES}")
        if dirty_rule not in DIRTY_RULES:
            raise InputError(f"unknown dirty_rule {dirty_rule!r}; expected one of {DIRTY_RULES}")
        if not 0.0 <= max_dirty < 1.0:
            raise InputError(f"max_dirty must be in [0, 1), got {max_dirty}")
        super().__init__(**kwargs)
        check_oof_method(oof_method, None if oof_method == "refit" else self.model)
        self.oof_method = oof_method
        self.weak_fraction = weak_fraction
        self.weak_model = weak_model
        self.weak_trees = weak_trees
        self.dirty_step = dirty_step
        self.dirty_policy = dirty_policy
        self.dirty_rule = dirty_rule
        self.max_dirty = max_dirty
        self.clean_selection = bool(clean_selection)
        self.soft_labels = bool(soft_labels)
        self.adapt_difficulty = bool(adapt_difficulty)
        self.dirty_model = dirty_model

    def _fit_models(self, labeled):
        X, y = labeled.X, labeled.y
        self.kept_ = np.ones(y.size, dtype=bool)
        self.dirty_report_ = None
        self.difficulty_ = None
        step, targets = None, None
        if self.clean_selection or self.adapt_difficulty:
            step = self.dirty_step
            if step is None and self.dirty_policy != "off":
                step = self.make_dirty_filter()
        # with "embedding-head" the step's network is the strong one: trained once on L, its embeddings reused
        reuse = step is not None and not self.clean_selection and getattr(step, "oof_method", None) == "embedding-head"
        given = {}
        if reuse:
            self.strong_model_ = self._train(X, y, params=self._snapshot_params())
            given["embeddings"] = self.strong_model_.embed(X)
        if step is not None:
            kept = np.asarray(step(X, y, random_state=self.random_state, **given), dtype=bool)
            fits = int(getattr(step, "n_fits_", 0)) + int(getattr(step, "network_fits_", 0))
            self.n_fits_ += fits
            self.dirty_report_ = getattr(step, "report_", None)
            if self.adapt_difficulty:
                self.difficulty_ = difficulty_decision(self.dirty_report_, fits=fits)
        if step is not None and self.clean_selection:
            self.kept_ = kept
            targets = getattr(self.dirty_report_, "soft_targets", None)
            columns = np.unique(y)  # the step's classes: the columns of its soft targets
            X, y = X[self.kept_], y[self.kept_]
        if targets is not None:  # soft targets predicted held-out labels better: the labels are dirty
            self.strong_model_ = fit_soft(
                self.model, X, targets[self.kept_], columns, random_state=self.random_state, n_jobs=self.n_jobs
            )
            self.n_fits_ += 1
        elif not reuse:
            self.strong_model_ = self._train(X, y, params=self._snapshot_params())
        if self._weak_is_strong():
            self.weak_model_ = self.strong_model_
            return
        if self.weak_trees is not None and self.weak_model is None and hasattr(self.strong_model_, "booster_"):
            # a boosted model's first trees are a weak model of all the labels, at no extra fit
            self.weak_model_ = _FirstTrees(self.strong_model_, int(self.weak_trees))
            return
        if self.weak_trees is not None and self.weak_model is None and hasattr(self.strong_model_, "snapshot"):
            # a network's early-epoch snapshot is the same: all the labels, under-trained, no extra fit
            self.weak_model_ = self.strong_model_.snapshot(int(self.weak_trees))
            return
        rows = stratified_fraction(y, self.weak_fraction, rng=np.random.default_rng([self.random_state, 1]))
        self.weak_model_ = self._train(X[rows], y[rows], seed_offset=1, model=self.weak_model)

    def _snapshot_params(self) -> dict | None:
        """A network keeps the weights of epoch ``weak_trees`` when that is its weak model."""
        if self.weak_trees is None or self.weak_trees == "all" or self.weak_model is not None:
            return None
        return {"snapshot_epochs": (int(self.weak_trees),)}

    def _weak_is_strong(self) -> bool:
        return self.weak_trees == "all" and self.weak_model is None

    def make_dirty_filter(self) -> DirtyDataFilter:
        """HW's own dirty-data step, with its settings (also used to clean L + B before a final model)."""
        return DirtyDataFilter(
            policy=self.dirty_policy,
            rule=self.dirty_rule,
            max_dirty=self.max_dirty,
            soften=self.soft_labels,
            soft_model=self.dirty_model if self.dirty_model is not None else self._default_soft_model(),
            n_jobs=self.n_jobs,
            oof_method=self.oof_method,
            **({"model": self.model} if self.oof_method == "embedding-head" else {}),
        )

    def _default_soft_model(self):
        """The model the soft-label check trains: the strong model, or for a network the cheap
        out-of-fold LightGBM (``"fast"``), since the check costs a dozen fits."""
        est = make_model(self.model, random_state=self.random_state, n_jobs=1)
        return "fast" if hasattr(est, "embed") else self.model

    def _class_model(self):
        return getattr(self, "strong_model_", None)

    def class_proba(self, chunk):
        if chunk.proba is None and not hasattr(self, "strong_model_"):
            return self._proba(chunk, getattr(self, "weak_model_", None), "weak_proba")
        return super().class_proba(chunk)

    def score(self, chunk):
        strong = None
        if chunk.proba is not None or hasattr(self, "strong_model_"):
            strong = self._proba(chunk, getattr(self, "strong_model_", None))
        if strong is not None and chunk.weak_proba is None and self._weak_is_strong():
            weak = strong  # one prediction: the weak model is the strong one
        else:
            weak = self._proba(chunk, getattr(self, "weak_model_", None), "weak_proba")
        predicted = S.argmax_rows(weak if strong is None else strong)
        scores = S.least_confidence(weak, validate=False)
        decision = getattr(self, "difficulty_", None)
        if decision is not None and decision["decision"] == "band":
            center = decision["band_center"]
            scores = center - np.abs(scores - center)  # (n,): the band around center first, the boundary last
        return scores, predicted


#: The estimated dirty share of L (:attr:`activemine.dirty.DirtyDataReport.dirty_share_before`) from which HW
#: leaves the boundary. Clean but overlapping classes estimate about 2% (tests/test_strategies.py).
BAND_MIN_DIRTY_SHARE = 0.05


def difficulty_decision(report, *, fits: int) -> dict:
    """HW's choice of difficulty from the dirty-data step's report on L: ``{"decision", "why", "band_center",
    "fits", ...}``, ``decision`` ``"band"`` (select around ``band_center``, away from the boundary) or ``"boundary"``.

    The labels count as dirty near the boundary when the step found them dirty (soft labels or a drop won on
    held-out labels), its estimate of the dirty share of L is at least :data:`BAND_MIN_DIRTY_SHARE`, and its
    suspects' median uncertainty (``min(q, 1 - q)``, ``q`` the out-of-fold probability of the given label) is
    above that of all of L; the band's center is then the suspects' median uncertainty. The share floor keeps
    classes that merely overlap (clean labels, where soft labels win for calibration and about 2% of rows are
    suspects) at the boundary.
    """
    out = {"decision": "boundary", "band_center": None, "fits": int(fits)}
    if report is None:
        out["why"] = "the held-out check did not run (too few labels of a class, or the dirty-data step is off)"
        return out
    soft = report.soft_targets is not None
    dirty = soft or bool(report.dirty)
    quality = np.asarray(report.label_quality, dtype=np.float64)  # (n,) p(given label), out of fold
    uncertainty = np.minimum(quality, 1.0 - quality)  # (n,) 0 = certain, 0.5 = on the boundary
    suspect = np.asarray(report.suspect, dtype=bool)
    evidence = f"soft z {report.soft_z:.2f}, drop z {report.z:.2f}"
    out.update(suspects=int(suspect.sum()), labeled_uncertainty=float(np.median(uncertainty)) if quality.size else 0.0)
    share = float(report.dirty_share_before)
    out["dirty_share"] = share
    if not dirty or not suspect.any():
        out["why"] = f"labels clean on held-out labels ({evidence}): select at the boundary, as lc"
        return out
    if share < BAND_MIN_DIRTY_SHARE:
        out["why"] = (
            f"held-out check prefers cleaned labels ({evidence}) but the estimated dirty share {share:.1%} is under "
            f"{BAND_MIN_DIRTY_SHARE:.0%}: select at the boundary, as lc"
        )
        return out
    center = float(np.median(uncertainty[suspect]))
    out["suspect_uncertainty"] = center
    if center <= out["labeled_uncertainty"]:
        out["why"] = (
            f"labels dirty ({evidence}) but the suspects are no nearer the boundary than L "
            f"(median uncertainty {center:.3f} against {out['labeled_uncertainty']:.3f}): select at the boundary"
        )
        return out
    out.update(
        decision="band",
        band_center=center,
        why=(
            f"labels dirty near the boundary ({evidence}; {int(suspect.sum())} suspects, median uncertainty "
            f"{center:.3f} against {out['labeled_uncertainty']:.3f} for L): select around {center:.3f}"
        ),
    )
    return out


STRATEGIES: dict[str, Callable[..., Strategy]] = {
    "random": RandomStrategy,
    "lc": lambda **kw: UncertaintyStrategy("lc", **kw),
    "sm": lambda **kw: UncertaintyStrategy("sm", **kw),
    "entropy": lambda **kw: UncertaintyStrategy("entropy", **kw),
    "qbc": QBCStrategy,
    "qbc-grow": lambda **kw: QBCStrategy(grow=True, **kw),
    "hw": HWStrategy,
}


def make_strategy(name: str, **kwargs) -> Strategy:
    """Build a registered strategy by name; keyword arguments go to its constructor."""
    if name not in STRATEGIES:
        raise InputError(f"unknown strategy {name!r}; expected one of {sorted(STRATEGIES)}")
    return STRATEGIES[name](**kwargs)
