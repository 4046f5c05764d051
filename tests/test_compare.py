"""cnnbook.compare.verdict against hand-computed oracles (the mean and standard error of paired differences worked
out on paper for each case below, written in the comments)."""

import pytest

from cnnbook.compare import PATTERN, verdict


def test_a_clear_win_is_stated_with_its_spread():
    # d = [2, 3, 3]: mean 8/3 = 2.667; sd = sqrt((0.444 + 0.111 + 0.111) / 2) = 0.577; se = 0.577 / sqrt(3) = 0.333
    # t(0.975, 2 df) = 4.303 (tables); 2.667 > 4.303 * 0.333 = 1.434, so a difference
    v = verdict([80, 82, 84], [78, 79, 81], "dropout", "no dropout")
    assert str(v) == "dropout beats no dropout by 2.7 ± 0.3 points over 3 seeds"
    assert v.winner == "dropout" and v.beyond_spread and v.n == 3
    assert v.difference == pytest.approx(8 / 3) and v.spread == pytest.approx(1 / 3)


def test_the_winner_comes_first_whichever_argument_it_is():
    v = verdict([78, 79, 81], [80, 82, 84], "A", "B")
    assert str(v) == "B beats A by 2.7 ± 0.3 points over 3 seeds" and v.difference == pytest.approx(-8 / 3)


def test_a_gap_inside_the_spread_is_no_difference():
    # d = [2, -4, 1]: mean -1/3; deviations 2.333, -3.667, 1.333: sd = sqrt(20.667 / 2) = 3.215; se = 1.856;
    # |-0.333| < 4.303 * 1.856, so no difference
    v = verdict([80, 75, 82], [78, 79, 81], "A", "B")
    assert str(v) == ("no difference between A and B beyond the spread over 3 seeds "
                      "(mean gap in favour of A: -0.3 ± 1.9 points)")
    assert v.winner is None and not v.beyond_spread
    assert v.spread == pytest.approx((62 / 3 / 2) ** 0.5 / 3 ** 0.5)


def test_lower_is_better_for_a_loss():
    # d = b - a = [0.10, 0.09, 0.14]: mean 0.11; deviations -0.01, -0.02, 0.03: sd = sqrt(0.0014 / 2) = 0.02646;
    # se = 0.01528 and 0.11 > 4.303 * 0.01528 = 0.0657
    v = verdict([0.30, 0.32, 0.31], [0.40, 0.41, 0.45], "batch norm", "plain", unit="loss", higher_is_better=False,
                decimals=2)
    assert str(v) == "batch norm beats plain by 0.11 ± 0.02 loss over 3 seeds"
    assert v.spread == pytest.approx(0.0007 ** 0.5 / 3 ** 0.5)


def test_the_threshold_is_students_t_for_the_number_of_seeds():
    # Oracle: t tables (two-sided 5 %): 12.706 for 1 df, 4.303 for 2, 2.776 for 4.
    from cnnbook.compare import threshold

    assert [round(threshold(n), 3) for n in (2, 3, 5)] == [12.706, 4.303, 2.776]
    # d = [1, 2, 3]: mean 2, sd 1, se 0.577: 2 / 0.577 = 3.46 standard errors, under 4.303: no difference with 3
    # seeds (two standard errors, a normal approximation, would have called it a win)
    assert verdict([1, 2, 3], [0, 0, 0], "A", "B").winner is None
    # d = [2, 2.5, 3]: mean 2.5, sd 0.5, se 0.289: 8.7 standard errors
    assert verdict([2, 2.5, 3], [0, 0, 0], "A", "B").winner == "A"
    # the same gaps over 5 seeds, d = [1, 2, 3, 1, 3]: mean 2, sd 1, se 0.447: 4.47 > 2.776
    assert verdict([1, 2, 3, 1, 3], [0] * 5, "A", "B").winner == "A"


def test_no_spread_and_percent_units_and_other_repeats():
    assert str(verdict([1, 1], [0, 0], "A", "B", unit="%", over="repeats")) == "A beats B by 1.0 ± 0.0% over 2 repeats"
    assert verdict([5, 6], [5, 6], "A", "B").winner is None


def test_every_sentence_matches_the_pattern_the_prose_test_reads():
    for a, b in [([80, 82, 84], [78, 79, 81]), ([80, 75, 82], [78, 79, 81])]:
        assert PATTERN.match(str(verdict(a, b, "A", "B")))
    assert not PATTERN.match("dropout improves accuracy")


@pytest.mark.parametrize("a, b, message", [([1, 2], [1], "one score of each"), ([1], [2], "at least 2"),
                                           ([1, float("nan")], [1, 2], "finite")])
def test_bad_input_is_refused(a, b, message):
    with pytest.raises(ValueError, match=message):
        verdict(a, b, "A", "B")


def test_glue_records_the_sentence_and_returns_it():
    v = verdict([80, 82, 84], [78, 79, 81], "A", "B")
    assert v.glue("a_verdict") == str(v)


def test_a_gap_that_rounds_to_zero_prints_without_a_minus_sign():
    """Oracle: arithmetic: a mean gap of -0.2 shown with no decimals is 0, not "-0" (chapter 4 printed "-0 ± 1")."""
    from cnnbook.compare import verdict

    sentence = str(verdict([10.0, 11.0, 9.6], [10.4, 11.0, 9.8], "A", "B", unit="steps", decimals=0))
    assert "-0 " not in sentence and ": 0 ± 0 steps" in sentence, sentence
    assert "-1" in str(verdict([9.0, 8.0, 9.5], [10.0, 10.0, 10.0], "A", "B", unit="steps", decimals=0))
