import numpy as np
import pytest

ray = pytest.importorskip("ray")

from activemine import LabeledSet, PoolChunk, make_strategy  # noqa: E402
from activemine.engines import mine_stream, run_engine  # noqa: E402
from activemine.sources import PoolColumns  # noqa: E402
from _pool_helpers import write_weak_proba_parts  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def local_ray():
    # starting Ray is slow on small machines: once for the module
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_and_local_engines_select_the_same_rows(local_ray, tmp_path):
    rng = np.random.default_rng(0)
    n = 6000
    p = rng.dirichlet(np.ones(3), n)
    ids = rng.permutation(10 * n)[:n]
    write_weak_proba_parts(tmp_path, ids, p, parts=2, row_group_size=1000)
    cols = PoolColumns(weak_proba=("w0", "w1", "w2"))
    for balance in ("equal", "pool", None):
        kw = dict(columns=cols, budget=900, exclude=ids[:40], chunk_size=700)
        local = mine_stream(make_strategy("hw", balance=balance), tmp_path, **kw)
        remote = run_engine("ray", make_strategy("hw", balance=balance), tmp_path, **kw)
        assert remote.ids.tolist() == local.ids.tolist()
        assert remote.stratum.tolist() == local.stratum.tolist()


def test_ray_engine_trains_and_scores_features_on_actors(local_ray):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(1500, 4))
    y = (X[:, 0] + 0.3 * rng.normal(size=1500) > 0).astype(int)
    labeled = LabeledSet(X[:300], y[:300], ids=np.arange(300))
    pool = PoolChunk(np.arange(1500), X=X)
    local = mine_stream(make_strategy("hw", model="logreg"), pool, budget=100, labeled=labeled)
    remote = run_engine("ray", make_strategy("hw", model="logreg"), pool, budget=100, labeled=labeled, chunk_size=400)
    assert remote.ids.tolist() == local.ids.tolist()
    assert not set(remote.ids.tolist()) & set(range(300))


def test_ray_engine_ranks_an_agreeing_committee_like_the_local_engine(local_ray, tmp_path):
    # QBC with 3 members that agree on ~97% of rows: the batch is decided by the consensus, not by the id
    from activemine.scores import least_confidence, vote_entropy
    from _pool_helpers import write_member_proba_parts

    rng = np.random.default_rng(3)
    n, budget = 3000, 400
    base = rng.dirichlet(np.ones(2), n)
    stack = np.repeat(base[None], 3, axis=0)
    swap = rng.random(n) < 0.03
    stack[:, swap] = rng.dirichlet(np.ones(2), (3, int(swap.sum())))
    ids = rng.permutation(10 * n)[:n]
    groups = write_member_proba_parts(tmp_path, ids, stack, parts=2, row_group_size=500)
    cols = PoolColumns(proba=groups)
    order = np.lexsort((ids, -np.round(least_confidence(stack.mean(axis=0)), 12), -np.round(vote_entropy(stack), 9)))
    local = mine_stream(make_strategy("qbc"), tmp_path, columns=cols, budget=budget, chunk_size=700)
    remote = run_engine("ray", make_strategy("qbc"), tmp_path, columns=cols, budget=budget, chunk_size=700)
    assert local.ids.tolist() == ids[order[:budget]].tolist()
    assert remote.ids.tolist() == local.ids.tolist()
