"""Experiment settings: read, parsed and checked in one place, before any data is loaded or model fitted.

:class:`ExperimentConfig` is what a user writes (the command line, a script or a
config file fill it in); :meth:`ExperimentConfig.check` checks every field and
returns the :class:`ExperimentSettings` the runner works from: each run name
resolved to its strategy, constructor arguments and diversity options
(:class:`RunSpec`), the simulated annotators, the stopping settings and the
planted duplicates parsed. Nothing downstream parses a setting again; the noise
matrix, whose class names are known only once the dataset is loaded, is parsed
against them by :meth:`ExperimentSettings.noise_rates`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from activemine.errors import InputError
from activemine.experiments.noise import NOISE_KINDS, NOISE_MODELS, parse_noise_matrix
from activemine.selection.strategies import STRATEGIES

if TYPE_CHECKING:
    from activemine.annotators.simulation import AnnotatorSpec
    from activemine.budget.report import StopSettings
    from activemine.diversity.options import DiversityOptions

__all__ = [
    "MODES",
    "PROBA_MEASURES",
    "SUFFIXES",
    "ExperimentConfig",
    "ExperimentSettings",
    "RunSpec",
    "parse_duplicates",
    "split_run_name",
]

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
    # "class": noise is the share of wrong labels within each observed class; "rows": a share of all rows
    noise_model: str = "class"
    allow_majority_wrong: bool = False  # run a noise setting that makes most of a class's labels wrong
    model: str = "lightgbm"
    network: dict = field(default_factory=dict)  # a network model's device, epochs, batch_size (models.network_options)
    fpr: float = 0.01
    label_col: str | None = None  # None: "label" (or the old default "y", with a warning)
    split_col: str | None = None
    feature_cols: Sequence[str] | None = None
    feature_prefix: str | None = None
    test_fraction: float = 0.25
    pool_size: int | None = None
    full_seeds: int | None = None
    eval_repeats: int = 1
    variants: dict = field(default_factory=dict)
    n_jobs: int | None = None
    annotators: str | None = None  # simulated annotators (activemine.annotators.simulation) instead of noise
    stopping: dict = field(default_factory=dict)  # activemine.budget.report.StopSettings fields (multi-round)
    # batches without copies (activemine.diversity.select): options for every run, or per run by a name suffix
    # such as "hw+near-duplicates"; `duplicates` = (R, C) plants R hard sources copied C times into U
    near_duplicates: str | None = None
    diversity: str | None = None
    clusters: int | None = None
    candidate_factor: float | None = None
    duplicates: tuple | None = None
    duplicate_scale: float = 0.05
    # a dataset that is a folder of images (activemine.data.images): size HxW and mode, None = the first image's
    image_size: str | None = None
    image_mode: str | None = None
    skip_bad_images: bool = False
    # a file's own embeddings (bring your own outputs): columns, or every column with this prefix
    embedding_cols: Sequence[str] | None = None
    embedding_prefix: str | None = None
    # as in `mine`: the QBC runs' committee, and how HW's dirty-data step gets out-of-fold probabilities
    committee: str = "bootstrap"
    committee_size: int = 3
    disagreement: str = "vote"
    oof_method: str = "refit"

    def strategy_options(self, strategy: str) -> dict:
        """The constructor arguments these settings give a registered ``strategy`` (a variant's own override them)."""
        if strategy in ("qbc", "qbc-grow"):
            return dict(committee=self.committee, committee_size=self.committee_size, disagreement=self.disagreement)
        if strategy == "hw":
            return dict(oof_method=self.oof_method)
        return {}

    def diversity_for(self, name: str):
        """``(registered strategy or variant, DiversityOptions or None)`` of a run name."""
        from activemine.diversity.options import DiversityOptions

        every = self.near_duplicates not in (None, "off") or self.diversity == "clusters"
        default = DiversityOptions.from_cli(
            near_duplicates=self.near_duplicates,
            diversity=self.diversity,
            clusters=self.clusters if self.diversity == "clusters" else None,
            candidate_factor=self.candidate_factor if every else None,
        )
        return split_run_name(name, default, clusters=self.clusters, candidate_factor=self.candidate_factor)

    def check(self) -> ExperimentSettings:
        """The settings parsed; raises :class:`InputError` naming the first bad setting."""
        if self.mode not in MODES:
            raise InputError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.noise_kind not in NOISE_KINDS:
            raise InputError(f"noise kind must be one of {NOISE_KINDS}, got {self.noise_kind!r}")
        if not 0.0 <= self.noise < 1.0:
            raise InputError(f"noise rate must be in [0, 1), got {self.noise}")
        if self.noise_model not in NOISE_MODELS:
            raise InputError(f"noise model must be one of {NOISE_MODELS}, got {self.noise_model!r}")
        if self.noise_model == "class" and self.noise > 0.5 and not self.allow_majority_wrong:
            raise InputError(
                f"noise rate {self.noise} would make most labels of every class wrong; "
                "give a rate of at most 0.5 or allow it by name (--allow-majority-wrong)"
            )
        if self.noise_matrix is not None and self.noise > 0:
            raise InputError("give either a noise rate or a noise matrix, not both")
        if self.noise_matrix is not None:
            parse_noise_matrix(self.noise_matrix, [str(i) for i in range(10_000)])  # syntax; classes checked on load
        if self.n_jobs is not None:
            from activemine.models import check_n_jobs

            check_n_jobs(self.n_jobs)
        if self.image_size is not None or self.image_mode is not None:
            from activemine.data.images import ImageSpec, parse_image_size

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
        resolved = [(s, *self.diversity_for(s)) for s in self.strategies]
        unknown = [s for s, b, _ in resolved if b not in STRATEGIES and b not in self.variants]
        if unknown:
            raise InputError(f"unknown strategies {unknown}; expected names from {sorted(STRATEGIES)}")
        if int(self.eval_repeats) != self.eval_repeats or self.eval_repeats < 1:
            raise InputError(f"eval_repeats must be a positive integer, got {self.eval_repeats}")
        if self.annotators is not None and self.noise_matrix is not None:
            raise InputError("give either simulated annotators or a noise matrix, not both")
        annotators = None
        if self.annotators is not None:
            from activemine.annotators.simulation import check_experiment_spec

            annotators = check_experiment_spec(self.annotators, noise=self.noise)
        if len(set(self.seeds)) != len(self.seeds):
            raise InputError(f"seeds must be distinct, got {list(self.seeds)}")
        duplicates = None
        if self.duplicates is not None:
            duplicates = parse_duplicates(",".join(map(str, self.duplicates)))
            if not 0.0 < self.duplicate_scale < 1.0:
                raise InputError(f"duplicate scale must be in (0, 1), got {self.duplicate_scale}")
        from activemine.budget.report import StopSettings

        runs = []
        for name, base, options in resolved:
            strategy, kwargs = self.variants.get(base, (base, {}))
            runs.append(RunSpec(name, base, strategy, {**self.strategy_options(strategy), **kwargs}, options))
        self._check_strategy_options(runs)
        return ExperimentSettings(
            self,
            runs=tuple(runs),
            annotators=annotators,
            stop=StopSettings.from_dict(self.stopping),
            duplicates=duplicates,
        )

    def _check_strategy_options(self, runs) -> None:
        """Committee and dirty-data options checked as ``mine`` checks them: by the strategies' own
        constructors (which build no model), before any data is read."""
        from activemine.dirty.oof import check_oof_method
        from activemine.selection.strategies import make_strategy

        check_oof_method(self.oof_method)
        if self.oof_method != "refit" and not any(run.strategy == "hw" for run in runs):
            raise InputError(
                f"oof method {self.oof_method!r} chooses how HW's dirty-data step gets out-of-fold probabilities; "
                f"none of the strategies {list(self.strategies)} is hw"
            )
        for run in runs:
            if run.strategy in ("qbc", "qbc-grow", "hw"):
                make_strategy(run.strategy, model=self.model, **run.kwargs)

    def to_dict(self) -> dict:
        """The fields as plain JSON values (tuples as lists), as ``results.json`` stores them."""
        cfg = asdict(self)
        cfg["strategies"], cfg["seeds"] = list(self.strategies), list(self.seeds)
        cfg["variants"] = {k: [b, dict(kw)] for k, (b, kw) in self.variants.items()}
        cfg["duplicates"] = list(self.duplicates) if self.duplicates else None
        return cfg


@dataclass(frozen=True)
class RunSpec:
    """One run name resolved: ``"hw-weak20+near-duplicates"`` -> variant ``hw-weak20``, strategy ``hw``,
    the variant's constructor arguments and the run's diversity options (None: plain selection)."""

    name: str
    variant: str
    strategy: str
    kwargs: Mapping
    diversity: DiversityOptions | None

    @property
    def reads_pool_proba(self) -> bool:
        """Whether the run selects from the L-only model's pool probabilities (lc, sm, entropy; random: none)."""
        return self.strategy in PROBA_MEASURES or self.strategy == "random"


@dataclass(frozen=True)
class ExperimentSettings:
    """An experiment's settings, checked and parsed (:meth:`ExperimentConfig.check` builds it).

    ``config`` is the user's configuration as given (stored in ``results.json``);
    ``runs`` one :class:`RunSpec` per name in ``config.strategies``, in order;
    ``annotators`` the simulated team (None: ``config.noise`` decides); ``stop``
    the stopping settings of multi-round runs; ``duplicates`` ``(R, C)`` or None.
    """

    config: ExperimentConfig
    runs: tuple[RunSpec, ...]
    annotators: AnnotatorSpec | None
    stop: StopSettings
    duplicates: tuple[int, int] | None

    def run(self, name: str) -> RunSpec:
        """The :class:`RunSpec` of a run name of ``config.strategies``."""
        for spec in self.runs:
            if spec.name == name:
                return spec
        raise InputError(f"unknown run {name!r}; the runs are {[s.name for s in self.runs]}")

    @property
    def noisy(self) -> bool:
        """Whether a simulated annotator flips labels at a rate or per class (not a simulated team)."""
        return self.config.noise > 0 or self.config.noise_matrix is not None

    def noise_rates(self, class_names: Sequence[str]) -> dict | None:
        """The noise matrix ``{true class index: rate}`` against the dataset's class names, or None."""
        if self.config.noise_matrix is None:
            return None
        return parse_noise_matrix(self.config.noise_matrix, class_names)


#: Suffixes of experiment run names that turn a diversity option on for that run.
SUFFIXES = ("+near-duplicates", "+clusters")


def split_run_name(
    name: str,
    default: DiversityOptions | None = None,
    *,
    clusters: int | None = None,
    candidate_factor: float | None = None,
) -> tuple[str, DiversityOptions | None]:
    """``"hw+near-duplicates"`` -> ``("hw", options)``; a suffix may carry its setting
    (``"lc+near-duplicates:0.5"``, ``"lc+clusters:200"``; else ``clusters``, 1000 clusters, and
    the radius of ``default`` or ``auto``); a plain name gets ``default``."""
    from activemine.diversity.options import DiversityOptions

    for suffix in SUFFIXES:
        at = name.find(suffix)
        if at <= 0:
            continue
        base, arg = name[:at], name[at + len(suffix) :]
        if arg and not arg.startswith(":"):
            continue
        arg = arg[1:] or None
        factor = candidate_factor
        if suffix == "+clusters":
            try:
                k = int(arg) if arg else (clusters or 1000)
            except ValueError:
                raise InputError(f"{name!r}: the clusters after ':' must be an integer") from None
            return base, DiversityOptions(clusters=k, candidate_factor=factor)
        nd = arg or (default.near_duplicates if default is not None and default.near_duplicates is not None else "auto")
        return base, DiversityOptions(near_duplicates=nd, candidate_factor=factor)
    return name, default


def parse_duplicates(text: str | None) -> tuple[int, int] | None:
    """``"300,30"`` -> ``(300, 30)``: R source rows, each copied C times."""
    if text is None:
        return None
    try:
        r, c = (int(v) for v in str(text).split(","))
    except ValueError:
        raise InputError(f"--duplicates takes R,C (sources, copies of each), got {text!r}") from None
    if r < 1 or c < 1:
        raise InputError(f"--duplicates needs R >= 1 sources and C >= 1 copies, got {r},{c}")
    return r, c
