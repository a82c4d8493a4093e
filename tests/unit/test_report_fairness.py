"""Subgroup metrics: grouping of attribute values, gaps and the plain statements."""

from __future__ import annotations

import numpy as np

from harness.report.fairness import by_attribute, statement


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.5).astype(int)
    return labels, labels.copy()


def test_majority_first_and_gap_to_itself_is_zero() -> None:
    labels, preds = _data(300)
    values = np.array(["a"] * 200 + ["b"] * 100, dtype=object)
    preds[200:260] = 1 - preds[200:260]  # group b: 60 of 100 wrong
    groups = by_attribute("sg_x", values, labels, preds, None)
    assert [g.group for g in groups] == ["a", "b"]
    assert groups[0].majority and groups[0].acc_gap.diff == 0
    b = groups[1]
    assert b.cm.accuracy.value == 0.4
    assert b.acc_gap.diff == -0.6 and b.acc_gap.high < 0
    assert "accuracy" in b.underserved_by
    text = statement(groups)
    assert len(text) == 1 and text[0].startswith("sg_x = b is under-served")


def test_small_groups_are_called_too_small_not_fine() -> None:
    labels, preds = _data(210)
    values = np.array(["big"] * 200 + ["tiny"] * 10, dtype=object)
    text = statement(by_attribute("sg_y", values, labels, preds, None))
    assert text == ["sg_y = tiny has only 10 images: too few to tell whether it is served as "
                    "well as the majority group."]


def test_equal_groups_give_the_all_clear() -> None:
    labels, preds = _data(400, seed=2)
    preds[::10] = 1 - preds[::10]
    values = np.array(["p", "q"] * 200, dtype=object)
    text = statement(by_attribute("sg_z", values, labels, preds, None))
    assert text[0].startswith("No group of sg_z is served measurably worse")


def test_many_valued_numbers_become_quartiles_and_missing_is_a_group() -> None:
    labels, preds = _data(400, seed=3)
    values = np.random.default_rng(1).random(400)
    values[:7] = np.nan
    groups = by_attribute("sg_size", values, labels, preds, np.full(400, 1000.0))
    names = {g.group for g in groups}
    assert "(missing)" in names and len(names) == 5
    assert sum(g.n for g in groups) == 400
    assert all(g.latency_p50_us == 1000.0 for g in groups)


def test_few_valued_numbers_and_booleans_keep_their_values() -> None:
    labels, preds = _data(100)
    ints = np.array([0.0, 1.0, 2.0, 1.0] * 25)
    assert {g.group for g in by_attribute("sg_n", ints, labels, preds, None)} == {"0", "1", "2"}
    bools = np.array([True, False] * 50)
    assert {g.group for g in by_attribute("sg_b", bools, labels, preds, None)} == {"True", "False"}
