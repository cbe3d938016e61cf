"""The report's table as a tracking store's curve runs take it: a run's worth per method."""

from scale_lth.report.table import Row, method_curves


def row(level: int, branch: str, remaining: float, accuracy: float) -> Row:
    return Row(
        level=level,
        branch=branch,
        weights_remaining=remaining,
        accuracy_mean=accuracy,
        accuracy_std=0.01 * level,
        early_stop_iteration=100.0 * level,
        early_stop_accuracy_mean=accuracy,
        replicates=2,
        accuracy_split="test",
    )


def test_each_method_gets_its_points_by_level_and_by_weights_remaining():
    rows = [row(0, "main", 1.0, 0.9), row(1, "main", 0.8, 0.91), row(1, "reinit", 0.8, 0.85)]
    rows.append(row(2, "main", 0.64, 0.92))
    curves = method_curves(rows)
    assert set(curves) == {"main", "reinit"}
    main = {(name, step): value for name, value, step in curves["main"]}
    assert main[("test_accuracy", 2)] == 0.92 and main[("test_accuracy_std", 2)] == 0.02
    assert main[("early_stop_iteration", 1)] == 100.0 and main[("weights_remaining", 2)] == 0.64
    # the same accuracies, the weights remaining in basis points as the step (1.0 -> 10000)
    by_weights = {
        s: v for n, v, s in curves["main"] if n == "test_accuracy_by_weights_remaining_bp"
    }
    assert by_weights == {10_000: 0.9, 8_000: 0.91, 6_400: 0.92}
    assert len(curves["reinit"]) == 5  # one level: five points
