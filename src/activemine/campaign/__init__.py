"""Labeling campaigns: a durable store of rounds and labels, exchange with annotation tools, a labeling page.

    store.py     CampaignStore: SQLite (WAL, one transaction per change, snapshots for reads) beside the Parquet data
    pool.py      CampaignPool: the pool's Parquet files, streamed to the engines, searched by id in one pass
    samples.py   init_campaign (never reads the pool whole), the labeled training set, views (image PNG, text, table)
    rounds.py    mine_round: a strategy streamed over the pool by an engine, recorded as a new round
    checks.py    the suspect check of returned labels (disagreement with the round's model)
    exchange.py  export_round / import_labels (CSV, JSONL, Label Studio) and write_dataset
    web.py       the labeling page (FastAPI; imported only by ``campaign serve``, extra ``web``)
"""

from activemine.campaign.exchange import EXPORT_FORMATS, ImportReport, export_round, import_labels, write_dataset
from activemine.campaign.rounds import mine_round
from activemine.campaign.samples import init_campaign
from activemine.campaign.status import campaign_status
from activemine.campaign.store import CampaignStore

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
