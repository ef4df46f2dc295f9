import pytest

from puzzleloop.metrics import bootstrap_interval, paired_difference, pass_at_k, solved_within, summarise


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 2, 1, 2 / 5),  # 1 - C(3,1)/C(5,1)
        (5, 2, 2, 7 / 10),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
        (4, 1, 3, 3 / 4),  # 1 - C(3,3)/C(4,3) = 1 - 1/4
        (4, 2, 3, 1.0),  # fewer failures than k: every k-subset holds a success
        (10, 0, 5, 0.0),
        (100, 1, 10, 1 / 10),  # 1 - C(99,10)/C(100,10) = 10/100
        (3, 3, 1, 1.0),
    ],
)
def test_pass_at_k_matches_hand_computed_values(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


@pytest.mark.parametrize(("n", "c", "k"), [(5, 6, 1), (5, -1, 1), (5, 2, 0), (5, 2, 6)])
def test_pass_at_k_rejects_impossible_counts(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_solved_within_counts_only_the_first_k_tries():
    assert not solved_within([False, False, True], 2)
    assert solved_within([False, False, True], 3)


def test_mean_and_summary_over_puzzles():
    outcomes = [[True, False, False, False], [False] * 4, [False, False, False, True]]
    summary = summarise(outcomes, (1, 2, 10))
    assert summary["pass@1"] == pytest.approx((0.25 + 0 + 0.25) / 3)
    assert summary["n"] == 4 and "pass@10" not in summary and summary["pass@4"] == pytest.approx(2 / 3)
    assert summary["pass@2"] == pytest.approx((0.5 + 0 + 0.5) / 3)
    assert summary["solved_within@2"] == pytest.approx(1 / 3)  # the last puzzle was solved only on try 4
    low, high = summary["pass@1_ci95"]
    assert 0 <= low <= summary["pass@1"] <= high <= 0.25


def test_bootstrap_interval_is_degenerate_for_constant_values_and_seeded():
    assert bootstrap_interval([0.5] * 20) == (0.5, 0.5)
    values = [0.0] * 90 + [1.0] * 10
    assert bootstrap_interval(values, seed=3) == bootstrap_interval(values, seed=3)
    low, high = bootstrap_interval(values)
    assert 0.03 < low < 0.1 < high < 0.17


def test_paired_difference_averages_seeds_within_a_puzzle_then_resamples_puzzles():
    first = {"a": [(4, 0), (4, 0)], "b": [(4, 4), (4, 4)], "c": [(4, 0), (4, 2)]}
    second = {"a": [(4, 4), (4, 0)], "b": [(4, 4), (4, 4)], "c": [(4, 2), (4, 2)], "d": [(4, 4)]}
    result = paired_difference(first, second, k=1)
    assert result["puzzles"] == 3  # only puzzles both arms measured
    assert result["difference"] == pytest.approx(((0.5 - 0) + 0 + (0.5 - 0.25)) / 3)
    low, high = result["difference_ci95"]
    assert low <= result["difference"] <= high and low >= 0  # no puzzle got worse
    with pytest.raises(ValueError, match="no puzzle"):
        paired_difference({"a": [(4, 1)]}, {"b": [(4, 1)]}, k=1)
