"""Task sampling rules, their seeding, sharding across ranks and exact state round-trip."""

from __future__ import annotations

from collections import Counter

import pytest

from fusionbrain.errors import UserError
from fusionbrain.train.sampler import TaskSampler, task_weights

SIZES = {"A": 900, "B": 100}


def test_weights_by_rule():
    assert task_weights(SIZES, "proportional") == pytest.approx({"A": 0.9, "B": 0.1})
    assert task_weights(SIZES, "uniform") == pytest.approx({"A": 0.5, "B": 0.5})
    w = task_weights(SIZES, "temperature", 2.0)  # sqrt: 30 vs 10
    assert w == pytest.approx({"A": 0.75, "B": 0.25})
    with pytest.raises(UserError):
        task_weights(SIZES, "bogus")


def test_draws_follow_rule_and_seed():
    s = TaskSampler(SIZES, rule="proportional", seed=3)
    counts = Counter(s.task_for_step(i) for i in range(4000))
    assert 0.86 < counts["A"] / 4000 < 0.94
    same = TaskSampler(SIZES, rule="proportional", seed=3)
    other = TaskSampler(SIZES, rule="proportional", seed=4)
    seq = [s.task_for_step(i) for i in range(200)]
    assert seq == [same.task_for_step(i) for i in range(200)]
    assert seq != [other.task_for_step(i) for i in range(200)]
    rr = TaskSampler(SIZES, rule="round_robin")
    assert [rr.task_for_step(i) for i in range(4)] == ["A", "B", "A", "B"]


def test_epochs_cover_every_sample_and_ranks_are_disjoint():
    s = TaskSampler({"A": 10}, seed=1)
    seen = []
    for _ in range(5):
        seen += s.next_indices("A", 2)
    assert sorted(seen) == list(range(10))  # one epoch = a permutation
    r0, r1 = TaskSampler({"A": 10}, seed=1), TaskSampler({"A": 10}, seed=1)
    a = r0.next_indices("A", 3, rank=0, world=2)
    b = r1.next_indices("A", 3, rank=1, world=2)
    assert len(a) == len(b) == 3 and not set(a) & set(b)
    assert r0.state_dict() == r1.state_dict()  # ranks stay in step


def test_state_round_trip_continues_exactly():
    s = TaskSampler({"A": 7, "B": 5}, rule="uniform", seed=2)
    for _ in range(6):
        s.next_indices("A", 3)
    state = s.state_dict()
    t = TaskSampler({"A": 7, "B": 5}, rule="uniform", seed=2)
    t.load_state_dict(state)
    assert [s.next_indices("A", 3) for _ in range(5)] == [t.next_indices("A", 3) for _ in range(5)]
    with pytest.raises(UserError):
        TaskSampler({"A": 8, "B": 5}, rule="uniform", seed=2).load_state_dict(state)


def test_weighted_rule_uses_given_weights():
    w = task_weights(SIZES, "weighted", weights={"A": 1, "B": 3})
    assert w == pytest.approx({"A": 0.25, "B": 0.75})
    with pytest.raises(UserError, match="B"):
        task_weights(SIZES, "weighted", weights={"A": 1})
