"""Engines run fit -> score -> select over a pool that need not fit in memory.

* :mod:`activemine.engines.local` (the default) streams the pool chunk by chunk
  on this machine, keeping only selection candidates.
* :mod:`activemine.engines.ray` (extra ``activemine[ray]``, imported lazily)
  scores blocks on a Ray cluster and merges their candidates on the driver.

Both give exactly the batch that :func:`activemine.selection.select_batch`
would give on the whole pool in memory.
"""

from activemine.engines.candidates import CandidateReducer, SelectionPlan
from activemine.engines.local import ENGINES, mine_stream, run_engine

__all__ = ["ENGINES", "CandidateReducer", "SelectionPlan", "mine_stream", "run_engine"]
