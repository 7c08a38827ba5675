"""The knee of a curve: the point farthest below the chord, on curves with a known answer."""

import numpy as np

from sonicatlas.estimators.knee import knee


def test_a_rising_curve_bends_where_its_slope_jumps():
    curve = np.r_[np.linspace(0.0, 1.0, 80), np.linspace(1.0, 21.0, 21)[1:]]
    assert knee(curve) == 79


def test_a_falling_cost_curve_has_its_elbow_at_the_known_k():
    ks = np.arange(2, 11)
    costs = np.array([100, 40, 20, 17, 15, 14, 13, 12.5, 12.0])
    # gaps below the chord, by hand: k=3 48.5, k=4 57.0, k=5 49.0 (chord falls 11 per k)
    assert ks[knee(costs, ks)] == 4


def test_scaling_either_axis_leaves_the_knee_where_it_is():
    ks = np.array([2, 3, 4, 6, 9, 12])
    costs = np.array([90.0, 50.0, 30.0, 22.0, 18.0, 16.0])
    assert knee(costs * 1_000, ks) == knee(costs, ks * 0.01) == knee(costs, ks)


def test_positions_count_when_they_are_uneven():
    # evenly spaced, the middle point lies below the chord; at x = 0, 1, 10 it lies above
    y = np.array([0.0, 0.2, 1.0])
    assert knee(y) == 1
    assert knee(y, np.array([0.0, 1.0, 10.0])) == 0


def test_a_straight_or_short_curve_gives_the_first_point():
    assert knee(np.arange(5.0)) == 0
    assert knee(np.array([3.0, 1.0])) == 0
    assert knee(np.array([2.0])) == 0
