"""Strategy comparison experiments: one-shot and multi-round batch active learning.

One run, for one strategy and one seed:

* **one-shot** (the classic industrial experiment): train on the labeled set
  L, select ``budget`` samples from the pool U at once, label them from the
  ground truth (through the same noisy annotator as L when ``noise > 0``),
  retrain on L + B and evaluate on the test set;
* **multi-round**: ``rounds`` batches of ``budget / rounds`` each, retraining
  in between; each round adds a point to the learning curve. ``qbc`` refits
  a committee of fixed size on all labels each round; ``qbc-grow`` fits it
  once and then adds one member a round trained on the newly labeled batch
  (Active-Decorate, :meth:`activemine.committee.Committee.grow`).

Two references per seed: ``initial`` (L only) and ``full`` (all of L + U
labeled). The metric is TPR at a fixed FPR (:func:`activemine.metrics.tpr_at_fpr`,
higher is better), with AUC beside it; multi-class tasks use the one-vs-rest
macro average. The test labels are never noisy.

Every run records ``decided_by``: how many of its score-ranked batch rows
were decided by the score, by a secondary key packed into it, or by the id
alone (:func:`activemine.ties.decided_by`; summed over rounds in multi-round
mode), so a score that ties on most of the pool shows.

Costs are reported per run as ``model_fits`` (models trained to select the
batch) and ``select_seconds`` (fitting, scoring and selecting). ``lc``, ``sm``
and ``entropy`` read the probabilities of one shared L-only model, which is
the same fit each of them would make alone (and the ``initial`` reference);
each of them is charged that fit and its time. ``random`` needs no model.

The final model of every run is the same model trained on L + B (rows in
index order, so the order a strategy returns its batch in does not matter,
and runs with the same batch share one fit), except that
a strategy with a pruning dirty-data step (HW by default) first drops the rows
its step flags, as it would in production (``final_dropped`` in the run;
``final_dirty`` and ``final_z``: whether that step judged L + B dirty, and its evidence).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from activemine.data import LabeledSet, PoolChunk
from activemine.datasets import DATASETS, Dataset, load_dataset
from activemine.dirty.soft import fit_soft
from activemine.errors import BudgetError, InputError
from activemine.metrics import roc_auc, tpr_at_fpr
from activemine.mining import score_pool
from activemine.models import make_model, network_options, predict_proba_aligned, with_image_shape
from activemine.plan import SelectionPlan
from activemine.simulate import NOISE_KINDS, inject_class_noise, inject_label_noise, parse_noise_matrix
from activemine.strategies import STRATEGIES, make_strategy
from activemine.ties import strategy_decided_by

__all__ = [
    "ROC_GRID",
    "ExperimentConfig",
    "Task",
    "count_steps",
    "load_task",
    "results_markdown",
    "run_experiment",
    "summarize",
    "write_outputs",
]

#: FPR points at which every run's ROC curve is stored (log-spaced, for plots and averaging).
ROC_GRID = np.unique(np.r_[0.0, np.logspace(-4, 0, 81)])
MODES = ("one-shot", "multi-round")
PROBA_MEASURES = ("lc", "sm", "entropy")


@dataclass
class ExperimentConfig:
    """Everything that defines an experiment; stored as ``config`` in ``results.json``.

    ``variants`` maps extra run names to ``(registered strategy, constructor
    kwargs)``, e.g. ``{"hw-dirty-off": ("hw", {"dirty_policy": "off"})}``; every
    name in ``strategies`` is a registered strategy or such a variant.
    """

    dataset: str = "fashion-mnist"
    task: str = "binary:6"
    labeled_size: int = 15_000
    budget: int = 5_000
    strategies: Sequence[str] = ("random", "lc", "sm", "entropy", "qbc", "hw")
    seeds: Sequence[int] = (0,)
    mode: str = "one-shot"
    rounds: int = 5
    noise: float = 0.0
    noise_kind: str = "uniform"
    noise_matrix: str | None = None
    model: str = "lightgbm"
    network: dict = field(default_factory=dict)  # a network model's device, epochs, batch_size (models.network_options)
    fpr: float = 0.01
    label_col: str = "label"
    split_col: str | None = None
    feature_cols: Sequence[str] | None = None
    test_fraction: float = 0.25
    pool_size: int | None = None
    full_seeds: int | None = None
    eval_repeats: int = 1
    variants: dict = field(default_factory=dict)
    n_jobs: int | None = None
    annotators: str | None = None  # simulated annotators (activemine.annotator_simulation) instead of noise
    stopping: dict = field(default_factory=dict)  # activemine.stopping_report.StopSettings fields (multi-round)
    # batches without copies (activemine.diversity): options for every run, or per run by a name suffix
    # such as "hw+near-duplicates"; `duplicates` = (R, C) plants R hard sources copied C times into U
    near_duplicates: str | None = None
    diversity: str | None = None
    clusters: int | None = None
    candidate_factor: float | None = None
    duplicates: tuple | None = None
    duplicate_scale: float = 0.05
    # a dataset that is a folder of images (activemine.images): size HxW and mode, None = the first image's
    image_size: str | None = None
    image_mode: str | None = None
    skip_bad_images: bool = False

    def diversity_for(self, name: str):
        """``(registered strategy or variant, DiversityOptions or None)`` of a run name."""
        from activemine.diversity import DiversityOptions, split_run_name

        every = self.near_duplicates not in (None, "off") or self.diversity == "clusters"
        default = DiversityOptions.from_cli(
            near_duplicates=self.near_duplicates,
            diversity=self.diversity,
            clusters=self.clusters if self.diversity == "clusters" else None,
            candidate_factor=self.candidate_factor if every else None,
        )
        return split_run_name(name, default, clusters=self.clusters, candidate_factor=self.candidate_factor)

    def check(self) -> None:
        """Raise :class:`InputError` naming the first bad setting."""
        if self.mode not in MODES:
            raise InputError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.noise_kind not in NOISE_KINDS:
            raise InputError(f"noise kind must be one of {NOISE_KINDS}, got {self.noise_kind!r}")
        if not 0.0 <= self.noise < 1.0:
            raise InputError(f"noise rate must be in [0, 1), got {self.noise}")
        if self.noise_matrix is not None and self.noise > 0:
            raise InputError("give either a noise rate or a noise matrix, not both")
        if self.noise_matrix is not None:
            parse_noise_matrix(self.noise_matrix, [str(i) for i in range(10_000)])  # syntax; classes checked on load
        if self.n_jobs is not None:
            from activemine.models import check_n_jobs

            check_n_jobs(self.n_jobs)
        if self.image_size is not None or self.image_mode is not None:
            from activemine.images import ImageSpec, parse_image_size

            ImageSpec(parse_image_size(self.image_size), self.image_mode)
        if not 0.0 < self.fpr < 1.0:
            raise InputError(f"fpr must be in (0, 1), got {self.fpr}")
        if self.labeled_size < 2 or self.budget < 1:
            raise InputError(f"labeled size must be >= 2 and budget >= 1, got {self.labeled_size} and {self.budget}")
        if self.mode == "multi-round" and not 1 <= self.rounds <= self.budget:
            raise InputError(f"rounds must be between 1 and the budget {self.budget}, got {self.rounds}")
        if not self.strategies or not self.seeds:
            raise InputError(
                f"give at least one strategy and one seed, got {list(self.strategies)} and {list(self.seeds)}"
            )
        bases = [self.diversity_for(s)[0] for s in self.strategies]
        unknown = [s for s, b in zip(self.strategies, bases) if b not in STRATEGIES and b not in self.variants]
        if unknown:
            raise InputError(f"unknown strategies {unknown}; expected names from {sorted(STRATEGIES)}")
        if int(self.eval_repeats) != self.eval_repeats or self.eval_repeats < 1:
            raise InputError(f"eval_repeats must be a positive integer, got {self.eval_repeats}")
        if self.annotators is not None and self.noise_matrix is not None:
            raise InputError("give either simulated annotators or a noise matrix, not both")
        if self.annotators is not None:
            from activemine.annotator_simulation import check_experiment_spec

            check_experiment_spec(self.annotators, noise=self.noise)
        if len(set(self.seeds)) != len(self.seeds):
            raise InputError(f"seeds must be distinct, got {list(self.seeds)}")
        if self.duplicates is not None:
            from activemine.diversity import parse_duplicates

            self.duplicates = parse_duplicates(",".join(map(str, self.duplicates)))
            if not 0.0 < self.duplicate_scale < 1.0:
                raise InputError(f"duplicate scale must be in (0, 1), got {self.duplicate_scale}")
        from activemine.stopping_report import StopSettings

        StopSettings.from_dict(self.stopping)


@dataclass(frozen=True)
class Task:
    """A dataset recast for the task: labels are class indices ``0..k-1`` into ``class_names``.

    For ``binary:POS`` index 1 is the positive class and index 0 the rest.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int] | None = None  # (C, H, W) when each row is an image

    @property
    def binary(self) -> bool:
        return len(self.class_names) == 2


SPLIT_VALUES = ("train", "test")


def _read_user_dataset(
    path: Path,
    label_col: str,
    test_fraction: float,
    *,
    split_col: str | None = None,
    feature_cols: Sequence[str] | None = None,
) -> Dataset:
    """A user's file as a :class:`Dataset`.

    The split is the file's own ``split_col`` (values ``train``/``test``) when
    given, else a seeded stratified split with ``test_fraction`` of each class
    in the test set (seed 0, the same for every run). Features are
    ``feature_cols``, or every column but ``id``, the label and the split,
    which must then all be numeric.
    """
    import pyarrow as pa

    from activemine.tables import numeric_matrix, read_table, require_columns

    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test fraction must be in (0, 1), got {test_fraction}")
    table = read_table(path)
    where = str(path)
    reserved = [label_col] + ([split_col] if split_col else [])
    require_columns(table.column_names, reserved, where=where)
    if feature_cols is not None:
        features = list(feature_cols)
        require_columns(table.column_names, features, where=where)
        clash = sorted(set(features) & set(reserved))
        if clash:
            raise InputError(f"feature columns {clash} of {where} are also the label or split column")
    else:
        features = [c for c in table.column_names if c not in reserved and c != "id"]
        numeric = lambda t: pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)  # noqa: E731
        bad = [f"{c!r} ({table.schema.field(c).type})" for c in features if not numeric(table.schema.field(c).type)]
        if bad:
            raise InputError(
                f"{where} has non-numeric columns {', '.join(bad)}; name the features with --feature-cols, "
                f"or the file's train/test column with --split-col"
            )
    if not features:
        raise InputError(f"{where} has no feature columns besides {reserved}")
    X = numeric_matrix(table, features, where=where, dtype=np.float32)
    raw = np.asarray(table.column(label_col).to_pylist(), dtype=object)
    if any(v is None for v in raw):
        raise InputError(f"column {label_col!r} of {path} has missing labels")
    names, y = np.unique(raw.astype(str), return_inverse=True)
    if split_col:
        split = np.asarray(table.column(split_col).to_pylist(), dtype=object)
        bad = sorted({repr(v) for v in split if v not in SPLIT_VALUES})
        if bad:
            raise InputError(f"column {split_col!r} of {where} must hold only {list(SPLIT_VALUES)}, got {bad[:10]}")
        tr, te = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
        if not tr.size or not te.size:
            raise InputError(
                f"column {split_col!r} of {where} needs both train and test rows, got {tr.size} and {te.size}"
            )
    else:
        tr, te = _seeded_split(y, names.size, test_fraction)
    return Dataset(path.name, X[tr], y[tr], X[te], y[te], tuple(names.tolist()))


def _seeded_split(y: np.ndarray, n_classes: int, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Train and test rows: a user's data has no official split, so a seeded stratified one, the same every run."""
    rng = np.random.default_rng(0)
    test = []
    for c in range(n_classes):
        rows = rng.permutation(np.flatnonzero(y == c))
        test.append(rows[: int(round(test_fraction * rows.size))])
    is_test = np.zeros(y.size, dtype=bool)
    is_test[np.concatenate(test)] = True
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def _read_image_dataset(
    path: Path, test_fraction: float, *, image_size=None, image_mode=None, skip_bad: bool = False, n_jobs=None
) -> Dataset:
    """A folder of images as a :class:`Dataset`: ``train/`` and ``test/`` subfolders, each with one
    subfolder per class, or one subfolder per class split as :func:`_seeded_split` does."""
    from activemine.images import ImageSpec, parse_image_size, read_labeled_folder
    from activemine.models import check_n_jobs

    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test fraction must be in (0, 1), got {test_fraction}")
    spec = ImageSpec(parse_image_size(image_size), image_mode, None, check_n_jobs(n_jobs))
    if {p.name for p in path.iterdir() if p.is_dir()} == set(SPLIT_VALUES):
        train, spec, _ = read_labeled_folder(path / "train", spec, skip_bad=skip_bad)
        test, _, _ = read_labeled_folder(path / "test", replace(spec, root=None), skip_bad=skip_bad)
        names = np.unique(train.y)
        unknown = sorted(set(np.unique(test.y).tolist()) - set(names.tolist()))
        if unknown:
            raise InputError(f"class folders {unknown} of {str(path / 'test')!r} are not in {str(path / 'train')!r}")
        y_tr, y_te = np.searchsorted(names, train.y), np.searchsorted(names, test.y)
        return Dataset(path.name, train.X, y_tr, test.X, y_te, tuple(names.tolist()), spec.shape)
    labeled, spec, _ = read_labeled_folder(path, spec, skip_bad=skip_bad)
    names, y = np.unique(labeled.y, return_inverse=True)
    tr, te = _seeded_split(y, names.size, test_fraction)
    X = labeled.X
    return Dataset(path.name, X[tr], y[tr], X[te], y[te], tuple(names.tolist()), spec.shape)


def load_task(
    dataset: str,
    task: str,
    *,
    label_col: str = "label",
    test_fraction: float = 0.25,
    split_col: str | None = None,
    feature_cols: Sequence[str] | None = None,
    images: dict | None = None,
) -> Task:
    """Load a built-in dataset, a Parquet/CSV file or a folder of images and recast it for ``task``.

    ``task`` is ``"multiclass"`` or ``"binary:POS"``, POS a class name or
    (built-in datasets) a class index such as ``6``. ``split_col`` and
    ``feature_cols`` apply to files (see :func:`_read_user_dataset`);
    ``images`` (``image_size``, ``image_mode``, ``skip_bad``, ``n_jobs``) to
    image folders (see :func:`_read_image_dataset`).
    """
    if dataset in DATASETS:
        if split_col or feature_cols:
            raise InputError(f"--split-col and --feature-cols apply to a user's file, not the built-in {dataset!r}")
        ds = load_dataset(dataset)
    elif Path(dataset).suffix.lower() in (".parquet", ".pq", ".csv"):
        ds = _read_user_dataset(Path(dataset), label_col, test_fraction, split_col=split_col, feature_cols=feature_cols)
    elif Path(dataset).is_dir():
        ds = _read_image_dataset(Path(dataset), test_fraction, **(images or {}))
    else:
        raise InputError(
            f"unknown dataset {dataset!r}; expected one of {sorted(DATASETS)}, a .parquet/.csv file or a folder of "
            "images (one subfolder per class)"
        )
    names = list(ds.class_names)
    shape = ds.image_shape
    if task == "multiclass":
        return Task(ds.X_train, ds.y_train, ds.X_test, ds.y_test, tuple(names), shape)
    if not task.startswith("binary:") or not task[7:]:
        raise InputError(f"task must be 'multiclass' or 'binary:POS', got {task!r}")
    pos = task[7:]
    if pos in names:
        index = names.index(pos)
    elif pos.isdigit() and int(pos) < len(names) and dataset in DATASETS:
        index = int(pos)
    else:
        raise InputError(f"positive class {pos!r} is not a class of {dataset}; classes are {names}")
    binary = lambda y: (y == index).astype(np.int64)  # noqa: E731
    return Task(
        ds.X_train, binary(ds.y_train), ds.X_test, binary(ds.y_test), (f"not {names[index]}", names[index]), shape
    )


# -- evaluation ------------------------------------------------------------------


def _evaluate_rows(
    task: Task,
    y_obs: np.ndarray,
    rows: np.ndarray,
    *,
    config: ExperimentConfig,
    seed: int,
    cache: dict,
    targets: np.ndarray | None = None,
) -> dict:
    """:func:`_evaluate` of a model trained on the training rows ``rows``, taken in index order.

    The final model depends on the set of labeled rows only, not on the order
    a strategy returned them in; runs of one seed that train on the same set
    (``lc``, ``sm`` and ``entropy`` pick the same batch on binary tasks) share
    one fit through ``cache``. ``targets`` ``(len(rows), k)``, row-aligned with
    ``rows``: soft targets to train on instead of the labels (HW's dirty-data step).
    """
    rows, key, targets = _rows_key(rows, targets)
    if key not in cache:
        cache[key] = _evaluate(
            task,
            task.X_train[rows],
            y_obs[rows],
            model=config.model,
            seed=seed,
            fpr=config.fpr,
            repeats=config.eval_repeats,
            n_jobs=config.n_jobs,
            targets=targets,
        )
    return dict(cache[key])


def _refit_rows(
    task: Task,
    y_obs: np.ndarray,
    rows: np.ndarray,
    evaluation: dict,
    *,
    config: ExperimentConfig,
    seed: int,
    cache: dict,
    targets: np.ndarray | None = None,
):
    """A second model trained on the same rows (and soft ``targets``) as ``evaluation``'s with another seed,
    for the ``kappa-refit`` criterion.

    With ``eval_repeats >= 2`` it is the evaluation's second model (no new
    fit); otherwise one more fit, the model a second repeat would be
    (:func:`_fit_repeat`), cached with the evaluation's fits.
    """
    if len(evaluation["_models"]) >= 2:
        return evaluation["_models"][1]
    rows, key, targets = _rows_key(rows, targets)
    key = "refit:" + key
    if key not in cache:
        cache[key] = _fit_repeat(
            config.model,
            task.X_train[rows],
            y_obs[rows],
            seed=seed,
            repeat=1,
            n_jobs=config.n_jobs,
            targets=targets,
            n_classes=len(task.class_names),
        )
    return cache[key]


def _rows_key(rows: np.ndarray, targets: np.ndarray | None = None) -> tuple[np.ndarray, str, np.ndarray | None]:
    """Training rows in index order, the key of that set (and of its soft ``targets``, row-aligned with
    ``rows``, when given) under which runs share fits, and the targets in the rows' new order."""
    order = np.argsort(rows, kind="stable")
    rows = rows[order]
    if targets is None:
        return rows, hashlib.sha1(rows.tobytes()).hexdigest(), None
    targets = targets[order]
    return rows, "soft:" + hashlib.sha1(rows.tobytes() + np.ascontiguousarray(targets).tobytes()).hexdigest(), targets


def _fit_repeat(model, X, y, *, seed: int, repeat: int, n_jobs: int | None, targets=None, n_classes: int = 0):
    """Evaluation model number ``repeat`` (0 first) of a run with seed ``seed``, fitted on ``(X, y)``
    (on soft ``targets`` ``(n, n_classes)`` instead of ``y`` when given)."""
    if targets is not None:
        return fit_soft(model, X, targets, np.arange(n_classes), random_state=seed + 100_003 * repeat, n_jobs=n_jobs)
    return make_model(model, random_state=seed + 100_003 * repeat, n_jobs=n_jobs).fit(X, y)


def _evaluate(
    task: Task,
    X,
    y,
    *,
    model: str,
    seed: int,
    fpr: float,
    repeats: int = 1,
    n_jobs: int | None = None,
    targets: np.ndarray | None = None,
) -> dict:
    """Train ``repeats`` models on ``(X, y)`` (seeds ``seed``, ``seed + 100003``, ...) and test them.

    The figures are means over the models: one LightGBM fit's TPR at 1% FPR
    moves by points with its bagging seed alone, and that noise would swamp
    the differences between strategies. ``_model`` and ``fit_seconds`` are
    the first model's.
    """
    tprs, aucs, grids, seconds, models = [], [], [], [], []
    for r in range(repeats):
        start = time.perf_counter()
        est = _fit_repeat(
            model, X, y, seed=seed, repeat=r, n_jobs=n_jobs, targets=targets, n_classes=len(task.class_names)
        )
        seconds.append(time.perf_counter() - start)
        proba = predict_proba_aligned(est, task.X_test, np.arange(len(task.class_names)))
        scores = proba[:, 1] if task.binary else proba
        tprs.append(tpr_at_fpr(task.y_test, scores, fpr))
        aucs.append(roc_auc(task.y_test, scores))
        grids.append([tpr_at_fpr(task.y_test, scores, f) for f in ROC_GRID])
        models.append(est)
    return {
        "tpr_at_fpr": float(np.mean(tprs)),
        "auc": float(np.mean(aucs)),
        "labels": int(len(y)),
        "roc_tpr": np.mean(grids, axis=0).tolist(),
        "fit_seconds": seconds[0],
        "_model": models[0],
        "_models": models,
    }


def _public(record: dict) -> dict:
    return {k: v for k, v in record.items() if not k.startswith("_")}


def _class_counts(task: Task, y_true_batch: np.ndarray) -> dict:
    counts = np.bincount(y_true_batch, minlength=len(task.class_names))
    return {name: int(c) for name, c in zip(task.class_names, counts)}


# -- noise ---------------------------------------------------------------------


def _clean_proba(task: Task, *, model: str, n_jobs: int | None = None) -> np.ndarray:
    """Out-of-fold probabilities ``(n, k)`` of a model trained on clean labels (2 folds, fixed seed)."""
    n = task.y_train.size
    fold = np.random.default_rng(12345).permutation(n) % 2
    out = np.zeros((n, len(task.class_names)))
    for f in (0, 1):
        est = make_model(model, random_state=f, n_jobs=n_jobs).fit(task.X_train[fold != f], task.y_train[fold != f])
        out[fold == f] = predict_proba_aligned(est, task.X_train[fold == f], np.arange(len(task.class_names)))
    return out


def _noisy(config: ExperimentConfig) -> bool:
    return config.noise > 0 or config.noise_matrix is not None


def _noisy_labels(task: Task, config: ExperimentConfig, seed: int, proba) -> np.ndarray:
    """The labels the simulated annotator gives, ``(n_train,)``: a rate over all rows or a rate per true class."""
    classes = np.arange(len(task.class_names))
    if config.noise_matrix is not None:
        rates = parse_noise_matrix(config.noise_matrix, task.class_names)
        noisy, _ = inject_class_noise(
            task.y_train, rates, kind=config.noise_kind, proba=proba, classes=classes, random_state=seed
        )
        return np.asarray(noisy)
    if config.noise == 0:
        return task.y_train
    noisy, _ = inject_label_noise(
        task.y_train, config.noise, kind=config.noise_kind, proba=proba, classes=classes, random_state=seed
    )
    return np.asarray(noisy)


def _flips_per_class(task: Task, y_obs: np.ndarray, rows: np.ndarray) -> dict:
    """Realized flips among ``rows``, per true class name: ``{name: {"rows", "flipped"}}``."""
    y_true, y = task.y_train[rows], y_obs[rows]
    return {
        name: {"rows": int((y_true == c).sum()), "flipped": int(((y_true == c) & (y != c)).sum())}
        for c, name in enumerate(task.class_names)
    }


# -- runs ----------------------------------------------------------------------


def _build(name: str, config: ExperimentConfig, seed: int, classes: np.ndarray):
    base, kwargs = config.variants.get(config.diversity_for(name)[0], (config.diversity_for(name)[0], {}))
    return make_strategy(base, model=config.model, random_state=seed, classes=classes, n_jobs=config.n_jobs, **kwargs)


def _select(
    strategy,
    X,
    ids,
    labeled: LabeledSet,
    budget: int,
    exclude=None,
    proba=None,
    diversity=None,
    embedding=None,
    fitted: dict | None = None,
):
    """Fit (unless ``proba`` of a shared model is given), score and select; returns (batch, fits, decided_by).

    ``diversity`` options keep copies out of the batch, with ``embedding`` ``(n, e)`` of the
    pool rows. ``fitted``: a dict in which a strategy fitted on features leaves its state and
    scores, so runs that differ from it only in the selection (``hw`` and ``hw+near-duplicates``)
    share its fit; each is charged the fits all the same.
    """
    plan = SelectionPlan.build(strategy, budget=budget, exclude=exclude, diversity=diversity)  # checked before any fit
    if fitted is not None and "state" in fitted:
        strategy.__dict__.update(fitted["state"])
        scores, predicted = fitted["scores"]
    else:
        if proba is not None:
            strategy.fit(LabeledSet(None, labeled.y, labeled.ids), n_proba_columns=proba.shape[1])
            pool = PoolChunk(ids, proba=proba)
        else:
            strategy.fit(labeled)
            pool = PoolChunk(ids, X=X)
        scores, predicted = score_pool(strategy, pool)
        if fitted is not None:
            fitted.update(scores=(scores, predicted), state=dict(strategy.__dict__))
    batch = plan.bind(classes=strategy.classes_, labeled=labeled).select(ids, scores, predicted, embedding=embedding)
    return batch, strategy.n_fits_, strategy_decided_by(strategy, batch, ids, scores, predicted, exclude=exclude)


class _Seed:
    """The split of one seed: L and U indices into the training set, and the labels the annotator gives."""

    def __init__(self, task: Task, config: ExperimentConfig, seed: int, clean_proba):
        n = task.y_train.size
        pool = n - config.labeled_size if config.pool_size is None else config.pool_size
        if config.labeled_size + pool > n or config.budget > pool:
            raise BudgetError(
                f"labeled size {config.labeled_size}, pool {pool} and budget {config.budget} do not fit the "
                f"{n} training samples (need labeled + pool <= {n} and budget <= pool)"
            )
        order = np.random.default_rng([seed, 7]).permutation(n)
        self.L = np.sort(order[: config.labeled_size])
        self.U = np.sort(order[config.labeled_size : config.labeled_size + pool])
        # training rows in neither: a stop set drawn here is untouched by selection (stopping_report)
        self.held_out = np.sort(order[config.labeled_size + pool :])
        self.y_obs = _noisy_labels(task, config, seed, clean_proba)
        self.annotators = {}
        if config.annotators is not None:  # a simulated team labels instead (consensus where several label)
            from activemine.annotator_simulation import experiment_labels

            self.y_obs, self.annotators = experiment_labels(task, config.annotators, seed)
        if np.unique(self.y_obs[self.L]).size < 2:
            raise BudgetError(f"the labeled set of seed {seed} holds a single class; increase the labeled size")


def _one_shot(name, task, config, seed, split: _Seed, shared) -> dict:
    classes = np.arange(len(task.class_names))
    strategy = _build(name, config, seed, classes)
    labeled = LabeledSet(task.X_train[split.L], split.y_obs[split.L], split.L)
    start = time.perf_counter()
    variant, options = config.diversity_for(name)
    base = config.variants.get(variant, (variant, {}))[0]
    embedding = _embedding(options, task, split, shared, seed)
    if base in PROBA_MEASURES or base == "random":
        batch, fits, decided = _select(
            strategy,
            None,
            split.U,
            labeled,
            config.budget,
            proba=shared["pool_proba"],
            diversity=options,
            embedding=embedding,
        )
        fits, extra = (0, 0.0) if base == "random" else (1, shared["seconds"])
    else:
        fitted = shared.setdefault("fitted", {}).setdefault(variant, {})
        reused = "state" in fitted
        batch, fits, decided = _select(
            strategy,
            task.X_train[split.U],
            split.U,
            labeled,
            config.budget,
            diversity=options,
            embedding=embedding,
            fitted=fitted,
        )
        # a run that reused the fit of an earlier run of the same strategy is charged that run's time too
        extra = fitted["seconds"] if reused else 0.0
        if not reused:
            fitted["seconds"] = time.perf_counter() - start
    seconds = time.perf_counter() - start + extra
    rows = np.concatenate([split.L, batch.ids])
    start = time.perf_counter()
    keep, final_report = _kept_for_training(strategy, task.X_train[rows], split.y_obs[rows], seed)
    clean_seconds = time.perf_counter() - start
    targets = _soft_targets(final_report, keep, split.y_obs[rows], len(task.class_names))
    result = _evaluate_rows(
        task, split.y_obs, rows[keep], config=config, seed=seed, cache=shared["fits"], targets=targets
    )
    result.update(
        labels=int(rows.size),
        **_duplicate_figures(split, batch.ids, batch.diversity),
        batch_class_counts=_class_counts(task, task.y_train[batch.ids]),
        batch_noisy_labels=int((split.y_obs[batch.ids] != task.y_train[batch.ids]).sum()),
        select_seconds=seconds,
        model_fits=int(fits),
        decided_by=decided,
    )
    if hasattr(strategy, "kept_"):
        result["labeled_dropped"] = int((~np.asarray(strategy.kept_)).sum())
    if getattr(strategy, "dirty_report_", None) is not None:
        report = strategy.dirty_report_
        result["dirty"] = {
            "dirty": report.dirty,
            "gain": report.gain,
            "z": report.z,
            "suspects": report.n_suspect,
            "dropped": report.n_dropped,
        }
    if final_report is not None:  # whether the final L + B cleaning judged the labels dirty, and its evidence
        result["final_dirty"] = bool(final_report.dirty)
        result["final_z"] = float(final_report.z)
        result["final_softened"] = targets is not None
        result["final_soft_z"] = float(final_report.soft_z)
    result["final_dropped"] = int((~keep).sum())
    result["final_dropped_noisy"] = int((split.y_obs[rows[~keep]] != task.y_train[rows[~keep]]).sum())
    result["final_clean_seconds"] = clean_seconds
    return result


def _soft_targets(report, keep: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray | None:
    """Soft targets ``(keep.sum(), n_classes)`` of the kept rows of ``y`` (class indices) when the dirty-data
    step chose them, else None. The step's columns are the classes present in ``y``."""
    targets = getattr(report, "soft_targets", None)
    if targets is None:
        return None
    out = np.zeros((int(keep.sum()), n_classes))
    out[:, np.unique(y)] = targets[keep]
    return out


def _kept_for_training(strategy, X, y, seed: int):
    """``(keep, report)``: rows of L + B ``(n,)`` bool that the strategy's own dirty-data control keeps
    for the final model, and its step's report (None without one, or when the step was skipped).

    A strategy with a pruning dirty-data step (HW by default) is a pipeline
    that also cleans the labels it trains its final model on; measuring it
    without that step would not measure dirty-data control. Every other
    strategy keeps all rows.
    """
    step = getattr(strategy, "dirty_step", None)
    if step is None and getattr(strategy, "dirty_policy", "off") == "prune":
        step = strategy.make_dirty_filter()
    if step is None:
        return np.ones(len(y), dtype=bool), None
    keep = np.asarray(step(X, y, random_state=seed), dtype=bool)
    return keep, getattr(step, "report_", None)


def _multi_round(name, task, config, seed, split: _Seed, shared) -> dict:
    classes = np.arange(len(task.class_names))
    strategy = _build(name, config, seed, classes)
    variant, options = config.diversity_for(name)
    base = config.variants.get(variant, (variant, {}))[0]
    embedding = _embedding(options, task, split, shared, seed)
    reports = []
    sizes = np.full(config.rounds, config.budget // config.rounds)
    sizes[: config.budget % config.rounds] += 1
    rows, curve, fits, seconds = split.L, [], 0, 0.0
    evaluation = shared["initial"]
    picked: list[np.ndarray] = []
    decided: dict[str, int] = {}
    from activemine.stopping_report import RunRecorder, StopSettings

    settings = StopSettings.from_dict(config.stopping)
    stop_rows, source = RunRecorder.stop_rows(split.U, settings, seed=seed, held_out_rows=split.held_out)
    stop = RunRecorder(task.X_train[stop_rows], classes, settings, rounds=config.rounds, source=source)
    stop.add(0, evaluation["_model"], labels=rows.size, metric=evaluation["tpr_at_fpr"])
    for r, size in enumerate(sizes):
        labeled = LabeledSet(task.X_train[rows], split.y_obs[rows], rows)
        plan = SelectionPlan.build(
            strategy, budget=int(size), exclude=rows, diversity=options
        )  # checked before the round's fits
        start = time.perf_counter()
        if base in PROBA_MEASURES or base == "random":
            # the evaluation model of the previous round is the model these strategies would fit
            proba = predict_proba_aligned(evaluation["_model"], task.X_train[split.U], classes)
            batch, _, ties = _select(
                strategy,
                None,
                split.U,
                labeled,
                int(size),
                exclude=rows,
                proba=proba,
                diversity=options,
                embedding=embedding,
            )
            if base != "random":
                fits += 1
                seconds += evaluation["fit_seconds"]
        else:
            if getattr(strategy, "grow_committee", False) and r > 0:
                before = strategy.n_fits_
                strategy.grow(task.X_train[picked[-1]], split.y_obs[picked[-1]], labeled)
                fits += strategy.n_fits_ - before
            else:
                strategy.fit(labeled)
                fits += strategy.n_fits_
            scores, predicted = score_pool(strategy, PoolChunk(split.U, X=task.X_train[split.U]))
            batch = plan.bind(classes=strategy.classes_, labeled=labeled).select(
                split.U, scores, predicted, embedding=embedding
            )
            ties = strategy_decided_by(strategy, batch, split.U, scores, predicted, exclude=rows)
        seconds += time.perf_counter() - start
        reports.append(batch.diversity)
        decided = {key: decided.get(key, 0) + n for key, n in ties.items()}
        picked.append(batch.ids)
        batch_proba = predict_proba_aligned(evaluation["_model"], task.X_train[batch.ids], classes)
        rows = np.concatenate([rows, batch.ids])
        keep, report = _kept_for_training(strategy, task.X_train[rows], split.y_obs[rows], seed)
        targets = _soft_targets(report, keep, split.y_obs[rows], len(task.class_names))
        evaluation = _evaluate_rows(
            task, split.y_obs, rows[keep], config=config, seed=seed, cache=shared["fits"], targets=targets
        )
        evaluation["labels"] = int(rows.size)
        refit = _refit_rows(
            task, split.y_obs, rows[keep], evaluation, config=config, seed=seed, cache=shared["fits"], targets=targets
        )
        stop.add(
            r + 1,
            evaluation["_model"],
            labels=rows.size,
            metric=evaluation["tpr_at_fpr"],
            batch_proba=batch_proba,
            refit=refit,
        )
        curve.append({k: evaluation[k] for k in ("labels", "tpr_at_fpr", "auc")})
    chosen = np.concatenate(picked)
    result = dict(evaluation)
    result.update(
        **_duplicate_figures(split, chosen, reports[-1]),
        batch_class_counts=_class_counts(task, task.y_train[chosen]),
        batch_noisy_labels=int((split.y_obs[chosen] != task.y_train[chosen]).sum()),
        select_seconds=seconds,
        model_fits=int(fits),
        decided_by=decided,
        curve=curve,
        stopping=stop.report(seed=seed),
    )
    return result


def _embedding(options, task, split, shared, seed):
    from activemine.diversity_experiment import pool_embedding

    return pool_embedding(options, task, split, shared, seed)


def _duplicate_figures(split, chosen, report) -> dict:
    from activemine.diversity_experiment import duplicate_figures

    return duplicate_figures(split, chosen, report)


def _plant(task, config, seed, split, model):
    from activemine.diversity_experiment import plant_into_task

    return plant_into_task(task, config, seed, split, model)


Progress = Callable[[str], None]


def run_experiment(config: ExperimentConfig, *, progress: Progress | None = None) -> dict:
    """Run every strategy for every seed; returns the ``results.json`` document.

    ``progress(description)`` is called once after each finished step
    (:func:`count_steps` tells how many there are).
    """
    config.check()
    given = config
    # the model built once, checked before any data is read (a factory that does not import, no GPU, ...)
    config = replace(config, model=network_options(config.model, **config.network))
    step = progress or (lambda _description: None)
    task = load_task(
        config.dataset,
        config.task,
        label_col=config.label_col,
        test_fraction=config.test_fraction,
        split_col=config.split_col,
        feature_cols=config.feature_cols,
        images=dict(
            image_size=config.image_size,
            image_mode=config.image_mode,
            skip_bad=config.skip_bad_images,
            n_jobs=config.n_jobs,
        ),
    )
    config = replace(config, model=with_image_shape(config.model, task.image_shape))
    if config.noise_matrix is not None:
        parse_noise_matrix(config.noise_matrix, task.class_names)  # class names known now; before any fit
    if config.duplicates or config.near_duplicates or config.diversity or any("+" in s for s in config.strategies):
        # more clusters than pool rows fails here, before any model is fitted
        pool_rows = (task.y_train.size - config.labeled_size if config.pool_size is None else config.pool_size) + (
            config.duplicates[0] * config.duplicates[1] if config.duplicates else 0
        )
        for name in config.strategies:
            options = config.diversity_for(name)[1]
            if options is not None:
                options.check_pool_rows(pool_rows)
    clean_proba = None
    if _noisy(config) and config.noise_kind.startswith("ambiguous"):
        clean_proba = _clean_proba(task, model=config.model, n_jobs=config.n_jobs)
        step("clean model for ambiguous noise")
    runs, initial, full, flips = [], [], [], []
    full_seeds = list(config.seeds)[: config.full_seeds if config.full_seeds is not None else len(config.seeds)]
    for seed in config.seeds:
        split = _Seed(task, config, seed, clean_proba)
        if _noisy(config):
            flips.append(
                {
                    "seed": seed,
                    "train": _flips_per_class(task, split.y_obs, np.arange(task.y_train.size)),
                    "labeled": _flips_per_class(task, split.y_obs, split.L),
                    "pool": _flips_per_class(task, split.y_obs, split.U),
                }
            )
        fits: dict = {}
        first = _evaluate_rows(task, split.y_obs, split.L, config=config, seed=seed, cache=fits)
        seed_task = _plant(task, config, seed, split, first["_model"]) if config.duplicates else task
        start = time.perf_counter()
        pool_proba = predict_proba_aligned(
            first["_model"], seed_task.X_train[split.U], np.arange(len(task.class_names))
        )
        shared = {
            "initial": first,
            "pool_proba": pool_proba,
            "fits": fits,
            "seconds": first["fit_seconds"] + time.perf_counter() - start,
        }
        initial.append(
            {"seed": seed, **_public(first), **({"annotators": split.annotators} if split.annotators else {})}
        )
        step(f"seed {seed}: initial TPR {100 * first['tpr_at_fpr']:.2f}%")
        for name in config.strategies:
            run = (_one_shot if config.mode == "one-shot" else _multi_round)(
                name, seed_task, config, seed, split, shared
            )
            runs.append({"strategy": name, "seed": seed, **_public(run)})
            step(f"seed {seed}: {name} TPR {100 * run['tpr_at_fpr']:.2f}% in {run['select_seconds']:.0f} s")
        if seed in full_seeds:
            f = _evaluate_rows(
                seed_task, split.y_obs, np.concatenate([split.L, split.U]), config=config, seed=seed, cache=fits
            )
            full.append({"seed": seed, **_public(f)})
            step(f"seed {seed}: full")
    config = given
    cfg = asdict(config)
    cfg["strategies"], cfg["seeds"] = list(config.strategies), list(config.seeds)
    cfg["variants"] = {k: [b, dict(kw)] for k, (b, kw) in config.variants.items()}
    cfg["duplicates"] = list(config.duplicates) if config.duplicates else None
    return {
        "config": cfg,
        "classes": list(task.class_names),
        "sizes": {"train": int(task.y_train.size), "test": int(task.y_test.size)},
        "roc_grid": ROC_GRID.tolist(),
        "runs": runs,
        "reference": {"initial": initial, "full": full},
        "noise_flips": flips,
        "summary": summarize(runs, {"initial": initial, "full": full}),
    }


def count_steps(config: ExperimentConfig) -> int:
    """How many times :func:`run_experiment` calls ``progress``."""
    n_full = len(config.seeds) if config.full_seeds is None else min(config.full_seeds, len(config.seeds))
    noise = int(_noisy(config) and config.noise_kind.startswith("ambiguous"))
    return noise + len(config.seeds) * (1 + len(config.strategies)) + n_full


def _mean_std(values) -> dict:
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if a.size > 1 else 0.0, "n": int(a.size)}


def summarize(runs: list[dict], reference: dict) -> dict:
    """Mean and standard deviation over seeds of every figure, per strategy and reference."""
    out = {}
    groups = {name: [r for r in runs if r["strategy"] == name] for name in dict.fromkeys(r["strategy"] for r in runs)}
    groups.update({f"reference:{k}": v for k, v in reference.items() if v})
    for name, rs in groups.items():
        keys = ["tpr_at_fpr", "auc", "labels"] + [k for k in ("select_seconds", "model_fits") if k in rs[0]]
        out[name] = {k: _mean_std([r[k] for r in rs]) for k in keys}
        if "decided_by" in rs[0]:
            # share of the ranked batch rows that only the id put ahead of the rows left out
            shares = [r["decided_by"]["id"] / max(1, sum(r["decided_by"].values())) for r in rs]
            out[name]["id_decided_share"] = _mean_std(shares)
    return out


def results_markdown(results: dict) -> str:
    """The summary as a Markdown table: mean +/- std over seeds per strategy."""
    cfg = results["config"]
    pct = f"{100 * cfg['fpr']:g}%"
    lines = [
        f"# {cfg['dataset']} {cfg['task']}, {cfg['mode']}: L = {cfg['labeled_size']}, B = {cfg['budget']}, "
        f"model {cfg['model']}, noise {cfg['noise']:g} ({cfg['noise_kind']})",
        "",
        f"Mean +/- std over seeds {cfg['seeds']}. TPR at FPR = {pct} and AUC on the test set "
        f"({results['sizes']['test']} samples), each run's the mean of {cfg.get('eval_repeats', 1)} model(s) "
        "trained with different seeds; selection cost in model fits and seconds.",
        "",
        f"| run | labels | TPR@FPR={pct} (%) | AUC | model fits | select s | decided by id (%) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in results["summary"].items():
        cost = ("", "")
        by_id = f"{100 * s['id_decided_share']['mean']:.1f}" if "id_decided_share" in s else ""
        if "model_fits" in s:
            cost = (
                f"{s['model_fits']['mean']:.1f}",
                f"{s['select_seconds']['mean']:.1f} +/- {s['select_seconds']['std']:.1f}",
            )
        lines.append(
            f"| {name} | {s['labels']['mean']:,.0f} | {100 * s['tpr_at_fpr']['mean']:.2f} +/- {100 * s['tpr_at_fpr']['std']:.2f} "
            f"| {s['auc']['mean']:.4f} +/- {s['auc']['std']:.4f} | {cost[0]} | {cost[1]} | {by_id} |"
        )
    from activemine.stopping_report import stopping_markdown

    return "\n".join(lines) + "\n" + stopping_markdown(results)


def write_outputs(results: dict, out: Path) -> list[Path]:
    """Write ``results.json``, ``results.md``, ``roc.png`` (and ``curves.png`` in multi-round mode) atomically."""
    import json

    from activemine.plots import plot_curves, plot_roc

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = [
        _atomic_write(out / "results.json", json.dumps(results, indent=1)),
        _atomic_write(out / "results.md", results_markdown(results)),
    ]
    written.append(_atomic_png(out / "roc.png", lambda p: plot_roc(results, p)))
    if results["config"]["mode"] == "multi-round":
        written.append(_atomic_png(out / "curves.png", lambda p: plot_curves(results, p)))
    return written


def _atomic_write(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _atomic_png(path: Path, draw: Callable[[Path], None]) -> Path:
    tmp = path.with_name(f".{path.stem}.tmp.png")
    try:
        draw(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
