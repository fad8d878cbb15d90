import pytest

from _campaign_helpers import digits_campaign
from activemine.campaign.leases import LabelingQueue
from activemine.errors import InputError, LeaseError, UnknownLabelError


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.fixture()
def queue(tmp_path):
    store, truth = digits_campaign(tmp_path, budget=5)
    clock = Clock()
    return LabelingQueue(store, lease_seconds=60, clock=clock), clock, truth


def _ranked(store):
    return [s for (s,) in store.read("SELECT sid FROM batches WHERE round = 1 ORDER BY rank")]


def test_two_annotators_never_hold_the_same_sample_and_a_reload_keeps_the_lease(queue):
    q, _, _ = queue
    a, b = q.next("ann"), q.next("bob")
    assert a != b and [a, b] == _ranked(q.store)[:2]
    assert q.next("ann") == a  # asking again (a page reload) returns the held sample


def test_an_expired_lease_frees_the_sample_and_the_late_submit_is_refused_if_taken(queue):
    q, clock, truth = queue
    a = q.next("ann")
    clock.t += 61
    assert q.next("bob") == a
    with pytest.raises(LeaseError, match="bob"):
        q.submit("ann", a, "1")
    q.submit("bob", a, str(truth[int(a)]))
    with pytest.raises(LeaseError, match="already has a label"):
        q.submit("ann", a, "1")
    q.submit("bob", a, str(truth[int(a)]))  # a retry of the same label is a no-op
    assert q.store.read("SELECT COUNT(*) FROM labels WHERE sid = ?", (a,)) == [(1,)]


def test_skip_undo_and_the_end_of_the_round(queue):
    q, _, _ = queue
    ranked = _ranked(q.store)
    first = q.next("ann")
    q.skip("ann", first)
    assert q.next("ann") == ranked[1]
    assert q.next("bob") == first  # a skip only hides the sample from the one who skipped it
    q.submit("ann", ranked[1], "3")
    assert q.remaining() == 4
    assert q.undo("ann") == ranked[1]
    assert q.remaining() == 5 and q.next("ann") == ranked[1]
    assert q.store.read("SELECT COUNT(*) FROM labels WHERE sid = ? AND retracted_at IS NOT NULL", (ranked[1],)) == [
        (1,)
    ]
    for _ in range(5):
        sid = q.next("ann")
        if sid is None:
            break
        q.submit("ann", sid, "0")
    assert q.next("ann") is None  # the rest is labeled, and ann skipped `first` (which bob holds anyway)
    assert q.undo("nobody") is None


def test_bad_requests_are_typed_errors(queue):
    q, _, _ = queue
    sid = q.next("ann")
    with pytest.raises(UnknownLabelError):
        q.submit("ann", sid, "cat")
    with pytest.raises(InputError, match="unknown id"):
        q.submit("ann", "999999", "1")
    with pytest.raises(InputError, match="id 'nope' is not an integer; this campaign's ids are integers"):
        q.submit("ann", "nope", "1")
    with pytest.raises(InputError, match="annotator"):
        q.next("  ")


def test_queues_share_one_rank_order_per_round_and_serve_it_in_rank_order(queue):
    # ids are stored keyed by (round, sid), not in rank order: the queue's rank order is built once per round
    # and reused by a second queue (a second server process) without inserting it again
    q, _, _ = queue
    ranked = _ranked(q.store)
    assert ranked != sorted(ranked)  # otherwise this test could not tell rank order from id order
    served = [q.next(f"ann{i}") for i in range(3)]
    other = LabelingQueue(q.store, lease_seconds=60, clock=q.clock)
    served += [other.next(f"bob{i}") for i in range(2)]
    assert served == ranked
    assert q.store.read("SELECT COUNT(*) FROM queue_order WHERE round = 1") == [(len(ranked),)]
    assert other.next("carol") is None
