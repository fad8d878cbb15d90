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
