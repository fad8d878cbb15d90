"""Exceptions raised by activemine.

Every error that bad input can cause derives from :class:`InputError`, which is
also a :class:`ValueError`, so callers can catch either. The CLI maps
:class:`ActivemineError` to exit code 2.

    ActivemineError
     └── InputError (ValueError)
          ├── ProbabilityError      NaN/inf, negative, rows not summing to one, bad shape
          ├── DuplicateIdError      an id appears twice
          ├── MissingColumnError    a required column is not in a table
          ├── SchemaMismatchError   files of one pool disagree on a column's type
          ├── UnknownLabelError     a label that is not one of the known classes
          ├── SingleClassError      a labeled set with fewer than two classes
          ├── CampaignError         a campaign folder that is missing, already exists or is inconsistent
          │    ├── LeaseError           a sample held or already labeled by another annotator
          │    └── StoreBusyError       another process kept the store's write lock too long; retry
          ├── RejectedImportError   an import file with bad lines; nothing of it was applied
          ├── ImageError            an image file that is missing, unreadable or truncated
          └── BudgetError           a budget that cannot be met
               ├── EmptyPoolError       nothing left to select from
               └── PoolExhaustedError   budget larger than the available pool
"""

from __future__ import annotations

__all__ = [
    "ActivemineDeprecationWarning",
    "ActivemineError",
    "BudgetError",
    "CampaignError",
    "DuplicateIdError",
    "EmptyPoolError",
    "ImageError",
    "InputError",
    "LeaseError",
    "MissingColumnError",
    "PoolExhaustedError",
    "ProbabilityError",
    "RejectedImportError",
    "SchemaMismatchError",
    "SingleClassError",
    "StoreBusyError",
    "UnknownLabelError",
]


class ActivemineError(Exception):
    """Base class of every error raised on purpose by activemine."""


class InputError(ActivemineError, ValueError):
    """The input is invalid; the message names the bad value and what was expected."""


class ProbabilityError(InputError):
    """Probabilities are not finite, negative, of the wrong shape, or rows do not sum to one."""


class DuplicateIdError(InputError):
    """An id occurs more than once where ids must be unique."""


class MissingColumnError(InputError):
    """A required column is missing from a table."""


class SchemaMismatchError(InputError):
    """Files that make up one pool disagree on the type of a column."""


class UnknownLabelError(InputError):
    """A label is not one of the known classes."""


class SingleClassError(InputError):
    """A labeled set holds fewer than two classes, so no classifier can be trained."""


class CampaignError(InputError):
    """A campaign folder is missing, already exists, or its store does not match its data."""


class ImageError(InputError):
    """An image file is missing, unreadable or truncated; the message names the file."""


class LeaseError(CampaignError):
    """A sample is leased to, or was already labeled by, another annotator on the labeling page."""


class StoreBusyError(CampaignError):
    """Another process held the campaign store's write lock longer than this one would wait; nothing was
    changed, and the same command can simply be run again."""


class RejectedImportError(InputError):
    """An import file has bad lines (each named in the message); nothing of it was applied."""


class BudgetError(InputError):
    """The budget cannot be met."""


class EmptyPoolError(BudgetError):
    """The pool holds no sample that may be selected."""


class PoolExhaustedError(BudgetError):
    """The budget is larger than the number of samples that may be selected."""


class ActivemineDeprecationWarning(FutureWarning):
    """A setting still works the old way but will not for long; the message says what to do instead."""
