"""activemine: industrial batch active learning.

Scores (higher = more worth labeling) -> selection (quotas, hard/easy strata)
-> strategies (a scorer plus a selector) -> mining over a pool.
"""

from activemine.committee import Committee
from activemine.data import LabeledSet, PoolChunk
from activemine.errors import (
    ActivemineError,
    BudgetError,
    DuplicateIdError,
    EmptyPoolError,
    InputError,
    MissingColumnError,
    PoolExhaustedError,
    ProbabilityError,
    SingleClassError,
    UnknownLabelError,
)
from activemine.mining import mine
from activemine.scores import entropy, kl_to_consensus, least_confidence, smallest_margin, vote_entropy
from activemine.selection import Batch, allocate_quotas, id_keys, select_batch
from activemine.strategies import (
    STRATEGIES,
    HWStrategy,
    QBCStrategy,
    RandomStrategy,
    Strategy,
    UncertaintyStrategy,
    make_strategy,
)

__version__ = "0.1.0"

__all__ = [
    "ActivemineError",
    "Batch",
    "BudgetError",
    "Committee",
    "DuplicateIdError",
    "EmptyPoolError",
    "HWStrategy",
    "InputError",
    "LabeledSet",
    "MissingColumnError",
    "PoolChunk",
    "PoolExhaustedError",
    "ProbabilityError",
    "QBCStrategy",
    "RandomStrategy",
    "STRATEGIES",
    "SingleClassError",
    "Strategy",
    "UncertaintyStrategy",
    "UnknownLabelError",
    "allocate_quotas",
    "entropy",
    "id_keys",
    "kl_to_consensus",
    "least_confidence",
    "make_strategy",
    "mine",
    "select_batch",
    "smallest_margin",
    "vote_entropy",
]
