"""``activemine experiment``: compare strategies on a dataset with TPR at FPR and ROC curves."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from activemine.cli._app import app, console, exits_on_bad_input
from activemine.cli._config import PanelCommand, command_settings
from activemine.cli._feature_options import FeatureColsOpt, FeaturePrefixOpt, split_names
from activemine.cli._image_options import ImageModeOpt, ImageSizeOpt, SkipBadImagesOpt
from activemine.cli._strategy_options import (
    BatchSizeOpt,
    CommitteeOpt,
    CommitteeSizeOpt,
    DeviceOpt,
    DisagreementOpt,
    EpochsOpt,
    ModelOpt,
    OofMethodOpt,
)
from activemine.errors import InputError
from activemine.progress import progress_reporter


def parse_seeds(value: str) -> list[int]:
    """``"5"`` -> seeds 0..4; ``"0,3,7"`` -> those seeds."""
    try:
        if "," in value:
            return [int(v) for v in value.split(",") if v.strip()]
        count = int(value)
    except ValueError:
        raise InputError(f"--seeds takes a count such as 5 or a list such as 0,3,7, got {value!r}") from None
    if count < 1:
        raise InputError(f"--seeds must be at least 1, got {count}")
    return list(range(count))


@app.command(cls=PanelCommand)
@exits_on_bad_input
def experiment(
    out: Annotated[Path, typer.Option(help="Folder for results.json, results.md, roc.png (and curves.png).")],
    dataset: Annotated[
        str,
        typer.Option(
            help="fashion-mnist, digits, a .parquet/.csv file with a label column, or a folder of images (one subfolder per class, or train/ and test/ each holding them). A file or folder without its own split gets a seeded stratified 75/25 train/test split (the same for every run)."
        ),
    ] = "fashion-mnist",
    task: Annotated[str, typer.Option(help="binary:POS (class POS against the rest) or multiclass.")] = "binary:6",
    labeled_size: Annotated[int, typer.Option(help="Size of the initial labeled set L.")] = 15_000,
    budget: Annotated[int, typer.Option(help="Samples selected from the pool U (all rounds together).")] = 5_000,
    pool_size: Annotated[int | None, typer.Option(help="Size of U (default: every training sample not in L).")] = None,
    strategies: Annotated[str, typer.Option(help="Comma-separated strategies.")] = "random,lc,sm,entropy,qbc,hw",
    seeds: Annotated[str, typer.Option(help="Number of seeds (0..S-1) or a comma-separated list.")] = "1",
    mode: Annotated[str, typer.Option(help="one-shot or multi-round.")] = "one-shot",
    rounds: Annotated[int, typer.Option(help="Multi-round: number of rounds.")] = 5,
    noise: Annotated[
        float,
        typer.Option(
            help="Label noise on L and on returned labels: the share of wrong labels within each observed class (see --noise-model)."
        ),
    ] = 0.0,
    noise_model: Annotated[
        str,
        typer.Option(
            help="class (--noise is the share of wrong labels within each observed class, so a rare class stays 1 - R right) or rows (a share of all rows: on a rare class most of its labels end up wrong)."
        ),
    ] = "class",
    allow_majority_wrong: Annotated[
        bool,
        typer.Option(
            "--allow-majority-wrong",
            help="Run a noise setting that makes most labels of a class wrong (refused otherwise).",
        ),
    ] = False,
    noise_kind: Annotated[
        str,
        typer.Option(
            help="uniform, ambiguous (flips drawn in proportion to ambiguity) or ambiguous-top (the most ambiguous flip)."
        ),
    ] = "uniform",
    noise_matrix: Annotated[
        str | None,
        typer.Option(
            help="Label-noise rate per true class instead of --noise, e.g. 1:0.2,0:0.01 (classes by index or name; flipped samples chosen by --noise-kind)."
        ),
    ] = None,
    model: ModelOpt = "lightgbm",
    device: DeviceOpt = None,
    epochs: EpochsOpt = None,
    batch_size: BatchSizeOpt = None,
    committee: CommitteeOpt = "bootstrap",
    committee_size: CommitteeSizeOpt = 3,
    disagreement: DisagreementOpt = "vote",
    oof_method: OofMethodOpt = "refit",
    fpr: Annotated[float, typer.Option(help="The FPR at which TPR is reported.")] = 0.01,
    label_col: Annotated[
        str | None,
        typer.Option(
            help="Label column of a user's file (default: label; a file with only y is read by y with a warning)."
        ),
    ] = None,
    split_col: Annotated[
        str | None,
        typer.Option(
            help="A file's own split column (values train and test). Without it a seeded stratified 75/25 split is made."
        ),
    ] = None,
    feature_cols: FeatureColsOpt = None,
    feature_prefix: FeaturePrefixOpt = None,
    full_seeds: Annotated[
        int | None, typer.Option(help="Seeds that also train the 'full' reference (default all).")
    ] = None,
    eval_repeats: Annotated[
        int, typer.Option(help="Models trained per evaluation, figures averaged over their seeds.")
    ] = 1,
    duplicates: Annotated[
        str | None,
        typer.Option(
            help="R,C: plant R hard pool rows, each copied C times with small seeded noise (labels copied); runs report copies and distinct sources in the batch."
        ),
    ] = None,
    near_duplicates: Annotated[
        str | None,
        typer.Option(
            help="Every run: skip rows within RADIUS of a better selected row (RADIUS, auto or off); or per run, a name such as hw+near-duplicates."
        ),
    ] = None,
    diversity: Annotated[
        str | None,
        typer.Option(
            help="Every run: clusters (Cluster-Margin round-robin) or none; or per run, a name such as lc+clusters."
        ),
    ] = None,
    clusters: Annotated[int | None, typer.Option(help="Clusters of --diversity clusters (default 1000).")] = None,
    candidate_factor: Annotated[
        float | None,
        typer.Option(help="Candidates per unit of quota (>= 1; default 2 for near-duplicates, 5 for clusters)."),
    ] = None,
    n_jobs: Annotated[
        int | None, typer.Option(help="Threads for every model fit (default: the CPUs available to the process).")
    ] = None,
    annotators: Annotated[
        str | None,
        typer.Option(
            help="Simulated annotators instead of --noise, e.g. n=5,noise=0.05,bad=1,bad-rate=0.3,overlap=0.1,per-item=2."
        ),
    ] = None,
    stop_set_size: Annotated[
        int, typer.Option(help="Multi-round: pool rows whose predictions the kappa stopping criterion compares.")
    ] = 2_000,
    kappa_threshold: Annotated[
        float, typer.Option(help="Multi-round: mean kappa at which stabilizing predictions stops.")
    ] = 0.99,
    uncertainty_level: Annotated[
        float,
        typer.Option(help="Multi-round: mean batch uncertainty (0-1) below which the uncertainty criterion stops."),
    ] = 0.05,
    embedding_cols: Annotated[
        str | None,
        typer.Option(
            help="A file's own embedding columns e0,e1,... (not features): near-duplicates and clusters use them "
            "instead of a PCA of the features."
        ),
    ] = None,
    embedding_prefix: Annotated[
        str | None, typer.Option(help="As --embedding-cols: every column whose name starts with this.")
    ] = None,
    image_size: ImageSizeOpt = None,
    image_mode: ImageModeOpt = None,
    skip_bad_images: SkipBadImagesOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar or progress lines.")] = False,
) -> None:
    """Train on L, select from U with each strategy, retrain and evaluate on the test set; write results and figures."""
    from activemine.experiments.runner import ExperimentConfig, count_steps, run_experiment, write_outputs
    from activemine.experiments.settings import parse_duplicates

    names = [s.strip() for s in strategies.split(",") if s.strip()]
    config = ExperimentConfig(
        dataset=dataset,
        task=task,
        labeled_size=labeled_size,
        budget=budget,
        pool_size=pool_size,
        strategies=names,
        seeds=parse_seeds(seeds),
        mode=mode,
        rounds=rounds,
        noise=noise,
        noise_kind=noise_kind,
        noise_model=noise_model,
        allow_majority_wrong=allow_majority_wrong,
        model=model,
        network={
            k: v for k, v in (("device", device), ("epochs", epochs), ("batch_size", batch_size)) if v is not None
        },
        committee=committee,
        committee_size=committee_size,
        disagreement=disagreement,
        oof_method=oof_method,
        fpr=fpr,
        label_col=label_col,
        full_seeds=full_seeds,
        eval_repeats=eval_repeats,
        near_duplicates=near_duplicates,
        diversity=diversity,
        clusters=clusters,
        candidate_factor=candidate_factor,
        duplicates=parse_duplicates(duplicates),
        noise_matrix=noise_matrix,
        split_col=split_col,
        n_jobs=n_jobs,
        feature_cols=split_names(feature_cols),
        feature_prefix=feature_prefix,
        annotators=annotators,
        embedding_cols=None if embedding_cols is None else [c.strip() for c in embedding_cols.split(",") if c.strip()],
        embedding_prefix=embedding_prefix,
        image_size=image_size,
        image_mode=image_mode,
        skip_bad_images=skip_bad_images,
        stopping={
            "stop_set_size": stop_set_size,
            "kappa_threshold": kappa_threshold,
            "uncertainty_level": uncertainty_level,
        },
    )
    settings = config.check()  # every setting parsed and checked once, before anything is loaded
    from activemine.data.outputs import check_output

    data_file = {dataset: "the data set given by --dataset"} if Path(dataset).suffix else {}
    for name in ("results.json", "results.md", "roc.png", "curves.png"):
        check_output(out / name, protected=data_file)
    started = time.perf_counter()
    # a bar on a terminal; timestamped lines on stderr when it is a log (runs take tens of minutes)
    with progress_reporter("experiment", total=count_steps(settings), unit="steps", quiet=quiet) as bar:
        results = run_experiment(settings, progress=lambda what: bar.advance(1, description=f"experiment: {what}"))
    results["settings"] = command_settings()  # the options as given: `--config results.json` reruns them
    written = write_outputs(results, out)
    from activemine.experiments.runner import results_markdown

    console.print(results_markdown(results), markup=False, highlight=False)
    console.print(
        f"done in {time.perf_counter() - started:.0f} s; wrote {', '.join(str(p) for p in written)}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
