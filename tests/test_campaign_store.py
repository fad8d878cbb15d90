import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from _campaign_helpers import digits_files, snapshot, synthetic_campaign
from activemine.campaign import CampaignStore, campaign_status, init_campaign
from activemine.errors import CampaignError, InputError, MissingColumnError, SingleClassError


def test_init_records_samples_classes_and_image_view(tmp_path):
    L, U, truth = digits_files(tmp_path)
    store = init_campaign(tmp_path / "c", pool=U, labeled=L, label_col="y", id_col="id")
    assert store.read("PRAGMA journal_mode")[0][0] == "wal"
    assert store.classes == list(range(10))
    assert store.meta["view"] == {"kind": "image", "shape": [8, 8], "columns": [f"px{i}" for i in range(64)]}
    status = campaign_status(store)
    assert (status["pool"], status["initial"], status["labeled"], status["queued"], status["flagged"]) == (
        len(truth),
        150,
        0,
        0,
        0,
    )
    assert all(f.is_file() for f in store.pool_files()) and store.data_path("labeled").is_file()


def test_init_from_csv_with_string_ids_and_text_view(tmp_path):
    # a text pool: features are embeddings, the text itself is only in U for people to read
    (tmp_path / "L.csv").write_text("id,e0,e1,y\na,0.1,1,pos\nb,0.2,2,neg\n")
    (tmp_path / "U.csv").write_text("id,e0,e1,text\nc,0.3,3,fine\nd,0.4,4,awful\n")
    store = init_campaign(tmp_path / "c", pool=tmp_path / "U.csv", labeled=tmp_path / "L.csv")
    assert store.meta["view"] == {"kind": "text", "column": "text"}
    assert store.meta["features"] == ["e0", "e1"]
    assert store.typed_ids(["c"]) == ["c"]
    assert store.classes == ["neg", "pos"]


@pytest.mark.parametrize(
    "change, error",
    [
        (lambda L, U: (L.drop(["y"]), U), MissingColumnError),
        (lambda L, U: (L, U.drop(["px3"])), MissingColumnError),
        (lambda L, U: (L.set_column(L.column_names.index("y"), "y", pa.array([1] * L.num_rows)), U), SingleClassError),
        (
            lambda L, U: (
                L,
                U.set_column(0, "id", pa.array(L.column("id").to_pylist()[:1] + U.column("id").to_pylist()[1:])),
            ),
            InputError,
        ),
    ],
    ids=["no-label", "pool-lacks-feature", "one-class", "id-in-both"],
)
def test_init_rejects_bad_tables_and_leaves_no_campaign(tmp_path, change, error):
    L, U, _ = digits_files(tmp_path)
    Lt, Ut = change(pq.read_table(L), pq.read_table(U))
    pq.write_table(Lt, L)
    pq.write_table(Ut, U)
    with pytest.raises(error):
        init_campaign(tmp_path / "c", pool=U, labeled=L)
    assert not (tmp_path / "c" / "campaign.db").exists()
    assert not (tmp_path / "c" / "data").exists()


def test_init_refuses_an_existing_campaign_and_open_refuses_a_plain_folder(tmp_path):
    store = synthetic_campaign(tmp_path, 10)
    with pytest.raises(CampaignError, match="already"):
        init_campaign(store.folder, pool=tmp_path / "U.parquet", labeled=tmp_path / "L.parquet")
    with pytest.raises(CampaignError, match="not a campaign folder"):
        CampaignStore(tmp_path / "elsewhere")


def test_transaction_rolls_back_everything_on_error(tmp_path):
    store = synthetic_campaign(tmp_path, 10)
    before = snapshot(store)
    with pytest.raises(RuntimeError), store.transaction() as conn:
        conn.execute("INSERT INTO labels (sid, label, annotator, created_at, source) VALUES ('45', '1', 'a', 't', 'x')")
        raise RuntimeError("crash in the middle")
    assert snapshot(store) == before


def test_conflicting_labels_flag_the_id_and_keep_it_out_of_current_labels(tmp_path):
    store = synthetic_campaign(tmp_path, 10)
    with store.transaction() as conn:
        for who, label in (("a", "1"), ("b", "2"), ("c", "1")):
            conn.execute(
                "INSERT INTO labels (sid, label, annotator, created_at, source) VALUES ('45', ?, ?, 't', 'x')",
                (label, who),
            )
        conn.execute("INSERT INTO labels (sid, label, annotator, created_at, source) VALUES ('46', '0', 'a', 't', 'x')")
    assert store.flagged() == {"45": ["conflict"]}
    current = store.current_labels()
    assert "45" not in current and current["46"] == "0"
    assert np.isin(["45", "46"], list(store.labeled_sids())).all()
