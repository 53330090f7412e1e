"""Paired per-round ratios and their bootstrap interval (fastnn.tools.bench.paired)."""

from __future__ import annotations

import numpy as np
import pytest

from fastnn.tools.bench import paired


def test_per_round_divides_samples_of_the_same_round():
    samples = {"a": [2.0, 3.0, 5.0], "b": [1.0, 2.0, 4.0]}
    assert paired.per_round(samples, "a", "b") == [2.0, 1.5, 1.25]


def test_per_round_refuses_unpaired_samples():
    with pytest.raises(ValueError, match="'a' has 3 samples and 'b' 2"):
        paired.per_round({"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0]}, "a", "b")


def test_interval_of_identical_ratios_is_that_ratio():
    assert paired.median_interval([1.25] * 9) == (1.25, 1.25, 1.25)


@pytest.mark.parametrize("n", [40, 400])
def test_interval_covers_the_true_median_and_narrows_with_more_rounds(n):
    """Ratios drawn from a lognormal whose median is 1.1 (the paired ratio of a
    runner 10% slower, with 10% noise per round)."""
    draws = np.random.default_rng(3).lognormal(np.log(1.1), 0.1, size=(20, n))
    widths, covered = [], 0
    for ratios in draws:
        med, low, high = paired.median_interval(ratios)
        assert low <= med <= high
        assert med == pytest.approx(float(np.median(ratios)))
        covered += low <= 1.1 <= high
        widths.append(high - low)
    assert covered >= 16  # a 95% interval: about 19 of 20
    # the median's standard error is about 1.25 * 0.11 / sqrt(n): 95% width ~4 of them
    assert np.median(widths) == pytest.approx(4 * 1.25 * 0.11 / np.sqrt(n), rel=0.5)


def test_interval_needs_two_ratios():
    with pytest.raises(ValueError, match="at least 2 ratios, got 1"):
        paired.median_interval([1.0])


def test_fmt_interval():
    assert paired.fmt_interval([1.0, 1.0, 1.0]) == "1.000 (1.000-1.000)"
