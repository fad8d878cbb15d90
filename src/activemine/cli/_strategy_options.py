"""Strategy options shared by ``mine`` and ``campaign mine``.

Nothing of the library is imported at module level (the strategies pull in
numpy and more): ``activemine --help`` reads only these declarations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

from activemine.errors import InputError

StrategyOpt = Annotated[
    str,
    typer.Option(help="A registered strategy: hw, lc, sm, entropy, qbc, random, ... (an unknown name lists them all)."),
]
ModelOpt = Annotated[
    str,
    typer.Option(
        help="lightgbm, hgb, logreg, cnn (a small CNN for image rows; needs activemine[torch]) or "
        "package.module:factory (a scikit-learn classifier or a torch network)."
    ),
]
DeviceOpt = Annotated[str | None, typer.Option(help="Network models: cpu, cuda or auto (default cpu).")]
EpochsOpt = Annotated[int | None, typer.Option(help="Network models: training epochs (default 8).")]
BatchSizeOpt = Annotated[int | None, typer.Option(help="Network models: rows per training step (default 64).")]
CommitteeOpt = Annotated[
    str,
    typer.Option(
        help="QBC members: bootstrap (models on seeded bootstraps of L), seeded (models on all of L, seeds apart) "
        "or dropout (one network, --committee-size dropout passes)."
    ),
]
SeedOpt = Annotated[int, typer.Option(help="Seed of every random choice.")]
BalanceOpt = Annotated[
    str | None,
    typer.Option(help="Class quotas: equal, labeled, pool, none, or weights such as 2,1,1. Default: the strategy's."),
]
EasyShareOpt = Annotated[float | None, typer.Option(help="Share of each quota drawn at random from easier samples.")]
WeakFractionOpt = Annotated[
    float,
    typer.Option(
        help="HW: share of L a separately trained weak model sees (used with --weak-trees 0 or a non-boosted model)."
    ),
]
WeakTreesOpt = Annotated[
    str | None,
    typer.Option(
        help="HW's weak model: all (default: the strong model itself), N (with lightgbm: the strong model's "
        "first N trees, e.g. 20) or 0 (train one on --weak-fraction)."
    ),
]
CommitteeSizeOpt = Annotated[int, typer.Option(help="QBC: committee members.")]
DirtyPolicyOpt = Annotated[
    str,
    typer.Option(
        help="HW: dirty-data step, on L before selecting (its held-out check decides HW's difficulty; with "
        "--clean-selection it also cleans L): prune (drop suspects when held-out labels show it pays), review "
        "(flag only) or off."
    ),
]
OofMethodOpt = Annotated[
    str,
    typer.Option(
        help="HW's dirty-data step: how L gets out-of-fold probabilities: refit (a small LightGBM on the features, "
        "3 folds) or embedding-head (network models: the network trained once on L, a logistic-regression head "
        "fitted out of fold on its penultimate layer)."
    ),
]
CleanSelectionOpt = Annotated[
    bool,
    typer.Option(
        help="HW: train the selecting model on L cleaned by the dirty-data step (off by default: it "
        "cost 0.8 points of TPR at 1% FPR on noisy Fashion-MNIST, at nine more model fits)."
    ),
]
AdaptDifficultyOpt = Annotated[
    bool,
    typer.Option(
        help="HW: run the held-out check on L and select around a margin band, away from the boundary, when it "
        "finds the labels there dirty (lc's batch on clean labels; up to about 40 more small model fits)."
    ),
]
NJobsOpt = Annotated[
    int | None,
    typer.Option(help="Threads for every model fit and prediction (default: the CPUs available to the process)."),
]
MaxDirtyOpt = Annotated[
    float, typer.Option(help="HW: prune until the estimated share of wrong labels is at most this.")
]
DisagreementOpt = Annotated[
    str,
    typer.Option(help="QBC: vote (vote entropy, its ties ordered by the consensus's least confidence), kl or bald."),
]
ClassesOpt = Annotated[
    str | None, typer.Option(help="Class labels of the probability columns, in order (default 0..k-1).")
]


def parse_balance(value: str | None):
    """CLI text -> a ``balance`` argument (a mode name or a list of weights)."""
    if value is None:
        return None
    if "," in value or value.replace(".", "", 1).isdigit():
        try:
            return [float(v) for v in value.split(",")]
        except ValueError:
            raise InputError(f"--balance weights must be numbers separated by commas, got {value!r}") from None
    return value


def parse_weak_trees(value: str | int):
    """``--weak-trees`` text -> HW's ``weak_trees``: ``"all"``, a positive tree count, or None for ``0``."""
    text = str(value).strip()
    if text == "all":
        return "all"
    try:
        trees = int(text)
    except ValueError:
        trees = -1
    if trees < 0:
        raise InputError(f"--weak-trees must be 'all' or an integer 0 or more, got {value!r}")
    return trees or None


def parse_classes(value: str | None):
    """``"0,1,2"`` -> ``[0, 1, 2]``; names that are not all integers stay strings."""
    if value is None:
        return None
    items = [v.strip() for v in value.split(",")]
    try:
        return [int(v) for v in items]
    except ValueError:
        return items


@dataclass
class StrategyOptions:
    strategy: str
    model: str
    seed: int
    balance: str | None
    easy_share: float | None
    weak_fraction: float
    committee_size: int
    disagreement: str
    classes: str | None = None
    dirty_policy: str = "prune"
    max_dirty: float = 0.02
    weak_trees: str | int | None = None
    n_jobs: int | None = None
    clean_selection: bool = False
    adapt_difficulty: bool = True
    device: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    committee: str = "bootstrap"
    oof_method: str = "refit"

    def resolved_model(self):
        """The model ``--model`` names with the network settings applied (checked; a network needs the torch extra)."""
        from activemine.models import network_options

        return network_options(self.model, device=self.device, epochs=self.epochs, batch_size=self.batch_size)

    def build(self, **extra):
        """The strategy these options describe; ``extra`` keyword arguments go to its constructor.

        Selection settings (balance, easy share) are checked here, before any file is read."""
        from activemine.dirty.oof import check_oof_method
        from activemine.selection.strategies import make_strategy

        check_oof_method(self.oof_method)
        if self.oof_method != "refit" and self.strategy != "hw":
            raise InputError(
                f"--oof-method {self.oof_method} chooses how HW's dirty-data step gets out-of-fold probabilities; "
                f"--strategy {self.strategy} has no dirty-data step (use --strategy hw)"
            )
        kwargs = dict(
            model=self.resolved_model(),
            random_state=self.seed,
            easy_share=self.easy_share,
            classes=parse_classes(self.classes),
            n_jobs=self.n_jobs,
            **extra,
        )
        balance = parse_balance(self.balance)
        if balance is not None:
            kwargs["balance"] = balance
        if self.strategy == "hw":
            kwargs.update(
                weak_fraction=self.weak_fraction,
                dirty_policy=self.dirty_policy,
                max_dirty=self.max_dirty,
                clean_selection=self.clean_selection,
                adapt_difficulty=self.adapt_difficulty,
                oof_method=self.oof_method,
            )
            if self.weak_trees is not None:
                kwargs["weak_trees"] = parse_weak_trees(self.weak_trees)
        if self.strategy in ("qbc", "qbc-grow"):
            kwargs.update(committee_size=self.committee_size, disagreement=self.disagreement, committee=self.committee)
        return make_strategy(self.strategy, **kwargs)
