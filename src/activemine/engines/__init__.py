"""Engines run check -> fit -> score -> select over a pool that need not fit in memory.

One skeleton (:mod:`activemine.engines.base`) with two executors:

* :mod:`activemine.engines.local` (the default) streams the pool chunk by chunk
  on this machine, keeping only selection candidates.
* :mod:`activemine.engines.ray` (extra ``activemine[ray]``, imported lazily)
  scores blocks on a Ray cluster and merges their candidates on the driver.

Both give exactly the batch that :meth:`activemine.selection.plan.SelectionPlan.select`
gives on the whole pool in memory. :mod:`activemine.engines.mining` (:func:`mine`)
is the one-call path for a pool in memory, run by the local executor.
"""

from __future__ import annotations

from activemine.engines.base import DEFAULT_CHUNK_SIZE, MiningRun, prepare_run
from activemine.engines.candidates import CandidateReducer
from activemine.engines.local import LocalExecutor, mine_stream
from activemine.engines.mining import mine, score_pool
from activemine.errors import InputError
from activemine.selection.batch import Batch
from activemine.selection.plan import SelectionPlan

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "ENGINES",
    "CandidateReducer",
    "LocalExecutor",
    "MiningRun",
    "SelectionPlan",
    "make_executor",
    "mine",
    "mine_stream",
    "prepare_run",
    "run_engine",
    "score_pool",
]

ENGINES = ("local", "ray")


def make_executor(
    engine: str = "local",
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    ray_address: str | None = None,
    check_duplicates: bool = True,
    **ray_options,
):
    """The executor of ``engine``: ``"local"`` or ``"ray"`` (``ray_options``: ``concurrency``, ``num_gpus``)."""
    if engine == "local":
        if ray_address is not None:
            raise InputError("--ray-address needs --engine ray")
        if ray_options:
            raise InputError(f"options {sorted(ray_options)} need --engine ray")
        return LocalExecutor(chunk_size=chunk_size, check_duplicates=check_duplicates)
    if engine == "ray":
        from activemine.engines.ray import RayExecutor

        return RayExecutor(address=ray_address, chunk_size=chunk_size, **ray_options)
    raise InputError(f"unknown engine {engine!r}; expected one of {list(ENGINES)}")


def run_engine(
    engine: str,
    strategy,
    source,
    *,
    budget: int | None = None,
    plan: SelectionPlan | None = None,
    labeled=None,
    exclude=None,
    columns=None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress=None,
    ray_address: str | None = None,
    check_duplicates: bool = True,
    attach=None,
    **ray_options,
) -> Batch:
    """Mine with ``engine`` (``"local"`` or ``"ray"``): every setting checked, then fit, scan, select.

    Arguments as :func:`activemine.engines.local.mine_stream`; ``plan`` replaces
    ``budget`` and ``exclude``; ``attach``: see :attr:`~activemine.engines.base.ChunkScorer.attach`.
    """
    executor = make_executor(
        engine, chunk_size=chunk_size, ray_address=ray_address, check_duplicates=check_duplicates, **ray_options
    )
    run = prepare_run(strategy, source, plan=plan, budget=budget, exclude=exclude, labeled=labeled, columns=columns)
    run.scorer.attach = attach
    return run.run(executor, progress)
