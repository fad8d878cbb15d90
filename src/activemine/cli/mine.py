"""``activemine mine``: train on L, score U, write the batch."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import typer

from activemine.cli._app import QuietOpt, app, console, exits_on_bad_input
from activemine.cli._diversity_options import (
    CandidateFactorOpt, ClustersOpt, DedupColOpt, DiversityOpt, EmbeddingColsOpt, EmbeddingPrefixOpt, NearDuplicatesOpt,
)  # fmt: skip
from activemine.cli._strategy_options import (
    BalanceOpt, ClassesOpt, CommitteeSizeOpt, DirtyPolicyOpt, DisagreementOpt, EasyShareOpt, MaxDirtyOpt, ModelOpt,
    SeedOpt, StrategyOpt, StrategyOptions, WeakFractionOpt, WeakTreesOpt,
)  # fmt: skip
from activemine.errors import InputError
from activemine.strategies import HW_WEAK_TREES

ENGINE_NAMES = ("local", "ray")


def print_summary(batch, *, strategy: str, seconds: float, out: Path | None) -> None:
    """Per-class and per-stratum counts of a batch, and the time it took (class names and paths are data, escaped)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{escape(strategy)}: {len(batch)} samples selected in {seconds:.2f} s")
    strata = sorted(set(batch.stratum.tolist()), key=["hard", "random", "easy"].index)
    table.add_column("predicted class")
    for s in strata:
        table.add_column(s, justify="right")
    table.add_column("total", justify="right")
    by_class = Counter(zip(batch.predicted_labels().tolist(), batch.stratum.tolist()))
    for cls in batch.classes:
        counts = [by_class.get((cls, s), 0) for s in strata]
        table.add_row(escape(str(cls)), *map(str, counts), str(sum(counts)))
    totals = Counter(batch.stratum.tolist())
    table.add_row("[bold]all", *[str(totals[s]) for s in strata], str(len(batch)))
    console.print(table)
    if out is not None:
        console.print(f"wrote {escape(str(out))}", highlight=False)


@app.command()
@exits_on_bad_input
def mine(
    pool: Annotated[Path, typer.Option(help="Unlabeled pool U (.parquet or .csv).")],
    budget: Annotated[int, typer.Option(help="Number of samples to select.")],
    out: Annotated[Path, typer.Option(help="Where to write the batch (.parquet or .csv).")],
    labeled: Annotated[Optional[Path], typer.Option(help="Labeled set L (.parquet or .csv).")] = None,
    label_col: Annotated[str, typer.Option(help="Label column of L.")] = "y",
    id_col: Annotated[str, typer.Option(help="Id column of L and U.")] = "id",
    strategy: StrategyOpt = "hw",
    model: ModelOpt = "lightgbm",
    seed: SeedOpt = 0,
    balance: BalanceOpt = None,
    easy_share: EasyShareOpt = None,
    weak_fraction: WeakFractionOpt = 0.3,
    weak_trees: WeakTreesOpt = HW_WEAK_TREES,
    committee_size: CommitteeSizeOpt = 3,
    disagreement: DisagreementOpt = "vote",
    dirty_policy: DirtyPolicyOpt = "prune",
    max_dirty: MaxDirtyOpt = 0.02,
    proba_cols: Annotated[
        Optional[str], typer.Option(help="Precomputed probability columns of U, e.g. p0,p1 (QBC: a0,a1;b0,b1).")
    ] = None,
    weak_proba_cols: Annotated[Optional[str], typer.Option(help="HW: the weak model's probability columns of U.")] = None,
    classes: ClassesOpt = None,
    chunk_size: Annotated[int, typer.Option(help="Pool rows scored at a time.")] = 65_536,
    engine: Annotated[str, typer.Option(help="local (stream on this machine) or ray (needs activemine[ray]).")] = "local",
    ray_address: Annotated[Optional[str], typer.Option(help="Ray cluster to join, e.g. ray://head:10001 or auto.")] = None,
    near_duplicates: NearDuplicatesOpt = None,
    dedup_col: DedupColOpt = None,
    diversity: DiversityOpt = None,
    clusters: ClustersOpt = None,
    candidate_factor: CandidateFactorOpt = None,
    embedding_cols: EmbeddingColsOpt = None,
    embedding_prefix: EmbeddingPrefixOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Train on L, score U, select a batch and write it with id, score, predicted_class, stratum, strategy."""
    # library modules are imported here, not at the top, so `activemine --help` stays fast
    from activemine.cli._pool_io import load_streaming_inputs
    from activemine.engines import make_executor, prepare_run
    from activemine.plan import SelectionPlan
    from activemine.progress import progress_reporter
    from activemine.tables import batch_to_table, table_format, write_table

    started = time.perf_counter()
    # every setting is checked before anything is read or fitted
    table_format(out)
    if engine not in ENGINE_NAMES:
        raise InputError(f"--engine must be one of {list(ENGINE_NAMES)}, got {engine!r}")
    if chunk_size < 1:
        raise InputError(f"--chunk-size must be at least 1, got {chunk_size}")
    opts = StrategyOptions(strategy, model, seed, balance, easy_share, weak_fraction, committee_size, disagreement, classes,
                           dirty_policy=dirty_policy, max_dirty=max_dirty, weak_trees=weak_trees)  # fmt: skip
    strat = opts.build()
    from activemine.cli._diversity_options import check_embedding_values, diversity_options, embedding_columns

    div = diversity_options(near_duplicates=near_duplicates, dedup_col=dedup_col, diversity=diversity,
                            clusters=clusters, candidate_factor=candidate_factor)  # fmt: skip
    plan = SelectionPlan.build(strat, budget=budget, diversity=div)
    executor = make_executor(engine, chunk_size=chunk_size, ray_address=ray_address)
    embedding = embedding_columns(pool, cols=embedding_cols, prefix=embedding_prefix) if div is not None else ()
    # then the inputs: L is read, U only opened (schema from metadata); the pool is streamed, never read whole
    labeled_set, source = load_streaming_inputs(labeled_path=labeled, pool_path=pool, label_col=label_col,
                                                id_col=id_col, proba_cols=proba_cols,
                                                weak_proba_cols=weak_proba_cols, embedding=embedding,
                                                dedup_col=dedup_col if div is not None else None)  # fmt: skip
    run = prepare_run(strat, source, plan=plan, labeled=labeled_set)
    if embedding and run.n_proba_columns is None:
        check_embedding_values(source, chunk_size)  # a model is about to be fitted: bad embeddings fail first
    if run.n_proba_columns is None:
        with progress_reporter(f"fitting {strategy} ({model})", unit="", quiet=quiet):
            run.fit()
    else:
        run.fit()  # the pool brings probabilities: nothing to train
    with progress_reporter("scoring pool", total=source.num_rows, unit="rows", quiet=quiet) as bar:
        run.scan(executor, bar.advance)
    with progress_reporter("selecting", unit="", quiet=quiet):
        batch = run.select()
    write_table(batch_to_table(batch, strategy), out)
    print_summary(batch, strategy=strategy, seconds=time.perf_counter() - started, out=out)
    if batch.diversity is not None:
        from rich.markup import escape

        r = batch.diversity
        console.print(escape(r.describe()), highlight=False)
        if r.embedding:
            console.print(f"embedding: {escape(r.embedding)}", highlight=False)
        if r.rescans:
            console.print(f"the candidates ran out {r.rescans} time(s); the pool was scanned again with a wider factor",
                          highlight=False)  # fmt: skip
