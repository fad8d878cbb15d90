"""Batches without copies on Ray: the same batch as the local engine, with both options."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ray = pytest.importorskip("ray")

from activemine import PoolChunk, make_strategy  # noqa: E402
from activemine.data.sources import PoolColumns  # noqa: E402
from activemine.diversity.options import DiversityOptions  # noqa: E402
from activemine.engines import mine_stream, run_engine  # noqa: E402
from activemine.selection.plan import SelectionPlan  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _pool(n=5000, seed=0):
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n, 8)).astype(np.float32)
    copies = n // 10
    emb[-copies:] = emb[: copies // 20].repeat(20, axis=0) + 0.001 * rng.standard_normal((copies, 8)).astype(np.float32)
    p = rng.dirichlet([1, 1, 1], n)
    p[-copies:] = p[: copies // 20].repeat(20, axis=0)  # copies score like their source
    ids = rng.permutation(10 * n)[:n]
    hashes = (ids % 997).astype(np.int64)
    return ids, p, emb, hashes


@pytest.mark.parametrize(
    "options",
    [
        DiversityOptions(near_duplicates="auto", candidate_factor=1.2),
        DiversityOptions(near_duplicates=0.5, dedup=True),
        DiversityOptions(clusters=16, sample_size=500),
    ],
    ids=["auto", "radius+hash", "clusters"],
)
def test_ray_equals_local_with_diversity(local_ray, tmp_path, options):
    ids, p, emb, hashes = _pool()
    table = pa.table(
        {
            "id": ids,
            "w0": p[:, 0],
            "w1": p[:, 1],
            "w2": p[:, 2],
            "h": hashes,
            "emb": pa.FixedSizeListArray.from_arrays(pa.array(emb.ravel()), 8),
        }
    )
    pq.write_table(table, tmp_path / "U.parquet", row_group_size=700)
    cols = PoolColumns(weak_proba=("w0", "w1", "w2"), embedding=("emb",), dedup="h" if options.dedup else None)
    for balance in ("equal", None):

        def plan():
            return SelectionPlan.build(
                make_strategy("hw", balance=balance), budget=400, exclude=ids[:40], diversity=options
            )

        local = mine_stream(
            make_strategy("hw", balance=balance), tmp_path / "U.parquet", plan=plan(), columns=cols, chunk_size=500
        )
        remote = run_engine(
            "ray", make_strategy("hw", balance=balance), tmp_path / "U.parquet", plan=plan(), columns=cols
        )
        memory = mine_stream(
            make_strategy("hw", balance=balance),
            PoolChunk(ids, weak_proba=p, embedding=emb, hashes=hashes),
            plan=plan(),
            chunk_size=10_000,
        )
        assert remote.ids.tolist() == local.ids.tolist() == memory.ids.tolist()
        assert remote.stratum.tolist() == local.stratum.tolist()
        assert remote.diversity.radius == local.diversity.radius
