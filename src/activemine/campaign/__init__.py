"""Labeling campaigns: a durable store of rounds and labels, exchange with annotation tools, a labeling page.

    store.py     CampaignStore: SQLite (WAL, one transaction per change) beside the Parquet data
    samples.py   init_campaign, feature rows, views (image PNG, text, table)
    rounds.py    mine_round: a strategy run on the campaign's state, recorded as a new round
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
