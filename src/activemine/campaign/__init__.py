"""Labeling campaigns: a durable store of rounds and labels, exchange with annotation tools, a labeling page.

store.py     CampaignStore: SQLite (WAL, one transaction per change, snapshots for reads) beside the Parquet data
pool.py      CampaignPool: the pool's Parquet files, streamed to the engines, searched by id in one pass
samples.py   init_campaign (never reads the pool whole), the labeled training set, views (image PNG, text, table)
rounds.py    mine_round: a strategy streamed over the pool by an engine, recorded as a new round
checks.py    the suspect check of returned labels (disagreement with the round's model)
exchange.py  export_round / import_labels (CSV, JSONL, Label Studio) and write_dataset
web.py       the labeling page (FastAPI; imported only by ``campaign serve``, extra ``web``)
"""

from __future__ import annotations

import importlib

# what each public name is imported from; loaded on first use, so `import activemine.campaign.checks`
# (an option default of the CLI) does not import pyarrow, the engines or the strategies
_EXPORTS = {
    "EXPORT_FORMATS": "exchange",
    "ImportReport": "exchange",
    "export_round": "exchange",
    "import_labels": "exchange",
    "write_dataset": "exchange",
    "mine_round": "rounds",
    "init_campaign": "samples",
    "campaign_status": "status",
    "CampaignStore": "store",
}

__all__ = [
    "EXPORT_FORMATS",
    "CampaignStore",
    "ImportReport",
    "campaign_status",
    "export_round",
    "import_labels",
    "init_campaign",
    "mine_round",
    "write_dataset",
]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"activemine.campaign.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'activemine.campaign' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
