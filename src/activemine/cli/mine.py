"""``activemine mine``: train on L, score U, write the batch."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from activemine.cli._app import app, console, exits_on_bad_input
from activemine.cli._pool_io import load_streaming_inputs
from activemine.cli._strategy_options import (
    BalanceOpt, ClassesOpt, CommitteeSizeOpt, DirtyPolicyOpt, DisagreementOpt, EasyShareOpt, MaxDirtyOpt, ModelOpt,
    SeedOpt, StrategyOpt, StrategyOptions, WeakFractionOpt, WeakTreesOpt,
)  # fmt: skip
from activemine.errors import InputError
from activemine.engines import ENGINES, run_engine
from activemine.selection import Batch
from activemine.strategies import HW_WEAK_TREES
from activemine.tables import batch_to_table, table_format, write_table


def rows_progress() -> Progress:
    """A progress bar that counts rows and shows rows per second."""
    return Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=console, transient=True,
    )  # fmt: skip


def print_summary(batch: Batch, *, strategy: str, seconds: float, out: Path | None) -> None:
    """Per-class and per-stratum counts of a batch, and the time it took."""
    table = Table(title=f"{strategy}: {len(batch)} samples selected in {seconds:.2f} s")
    strata = sorted(set(batch.stratum.tolist()), key=["hard", "random", "easy"].index)
    table.add_column("predicted class")
    for s in strata:
        table.add_column(s, justify="right")
    table.add_column("total", justify="right")
    by_class = Counter(zip(batch.predicted_labels().tolist(), batch.stratum.tolist()))
    for cls in batch.classes:
        counts = [by_class.get((cls, s), 0) for s in strata]
        table.add_row(str(cls), *map(str, counts), str(sum(counts)))
    totals = Counter(batch.stratum.tolist())
    table.add_row("[bold]all", *[str(totals[s]) for s in strata], str(len(batch)))
    console.print(table)
    if out is not None:
        console.print(f"wrote {out}")


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
) -> None:
    """Train on L, score U, select a batch and write it with id, score, predicted_class, stratum, strategy."""
    table_format(out)  # a bad suffix fails before any work
    if chunk_size < 1:
        raise InputError(f"--chunk-size must be at least 1, got {chunk_size}")
    opts = StrategyOptions(strategy, model, seed, balance, easy_share, weak_fraction, committee_size, disagreement, classes,
                           dirty_policy=dirty_policy, max_dirty=max_dirty, weak_trees=weak_trees)  # fmt: skip
    started = time.perf_counter()
    if engine not in ENGINES:
        raise InputError(f"--engine must be one of {list(ENGINES)}, got {engine!r}")
    # the pool is streamed, never read whole, so big Parquet pools fit in memory
    labeled_set, source = load_streaming_inputs(labeled_path=labeled, pool_path=pool, label_col=label_col,
                                                id_col=id_col, proba_cols=proba_cols,
                                                weak_proba_cols=weak_proba_cols)  # fmt: skip
    strat = opts.build()
    with rows_progress() as progress:
        task = progress.add_task("scoring pool", total=source.num_rows, rate="")

        def advance(n: int) -> None:
            done = progress.tasks[0].completed + n
            rate = done / max(time.perf_counter() - started, 1e-9)
            progress.update(task, advance=n, rate=f"{rate:,.0f} rows/s")

        batch = run_engine(engine, strat, source, budget=budget, labeled=labeled_set, chunk_size=chunk_size,
                           progress=advance, ray_address=ray_address)  # fmt: skip
    write_table(batch_to_table(batch, strategy), out)
    print_summary(batch, strategy=strategy, seconds=time.perf_counter() - started, out=out)
