"""The split tests read from an exported ensemble: the tests a row meets, root to leaf, over every tree."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from scoring.model.splits import read_split_tests
from scoring.model.training import export_onnx


def _rows(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    x[rng.random(x.shape) < 0.3] = np.nan
    return x


def _fitted(max_depth: int | None, trees: int) -> HistGradientBoostingClassifier:
    x = _rows(0, 4000)
    y = (np.nan_to_num(x[:, 0]) * np.nan_to_num(x[:, 1]) + np.isnan(x[:, 2]) > 0.5).astype(int)
    with threadpool_limits(limits=1):
        return HistGradientBoostingClassifier(
            max_iter=trees, max_depth=max_depth, early_stopping=False, random_state=0
        ).fit(x, y)


def test_every_row_meets_one_test_in_each_stump() -> None:
    splits = read_split_tests(export_onnx(_fitted(max_depth=1, trees=12), 6))
    assert splits is not None
    assert np.all(splits.visits(_rows(1, 500)) == 12)


def test_a_row_meets_at_most_depth_tests_a_tree_and_deeper_trees_cost_more() -> None:
    rows = _rows(2, 2000)
    shallow = read_split_tests(export_onnx(_fitted(max_depth=3, trees=10), 6))
    deep = read_split_tests(export_onnx(_fitted(max_depth=None, trees=10), 6))
    assert shallow is not None and deep is not None
    assert shallow.visits(rows).max() <= 3 * 10
    assert deep.visits(rows).mean() > shallow.visits(rows).mean()


def test_visits_follow_the_branch_each_node_sends_a_row_down() -> None:
    splits = read_split_tests(export_onnx(_fitted(max_depth=None, trees=8), 6))
    assert splits is not None
    for row in _rows(3, 50):
        # The nodes on a row's paths are those all of whose ancestors sent it towards them.
        taken = splits.branches(row)
        off_path = np.zeros(len(taken), dtype=bool)
        off_path[splits.path_node[taken[splits.path_ancestor] != splits.path_branch]] = True
        assert splits.visits(row[None, :])[0] == np.count_nonzero(~off_path)
