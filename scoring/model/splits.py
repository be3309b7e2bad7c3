"""The split tests of an exported tree ensemble, to tell which inputs a change of value can move at all.

Setting an input to another value changes a tree ensemble's output only if some split on that input sends the two
values down different branches. Where no split does, every tree takes the same path, the same leaves are summed in
the same order, and the output is the same to the last bit: occlusion needs no model run for that input. Only
the splits on the reference row's own paths count: a changed row follows those paths until the first split that
parts the two, so if none on them does, it ends in the very same leaves.

The same tests, followed from each tree's root, also tell what a row costs to score: onnxruntime's time grows with
the number of split tests a row meets over all the trees, which is what the training budget limits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import onnx
from onnx import helper

# The tree operators of ai.onnx.ml whose split attributes are read here, and the split modes understood.
_TREE_OPERATORS = frozenset({"TreeEnsembleClassifier", "TreeEnsembleRegressor"})
_LEAF = b"LEAF"
_LESS_OR_EQUAL = b"BRANCH_LEQ"


@dataclass(frozen=True, slots=True)
class SplitTests:
    """Every branch node of the ensemble: the input it reads, its threshold, and where a missing value goes."""

    feature: npt.NDArray[np.int64]
    threshold: npt.NDArray[np.float32]
    missing_goes_true: npt.NDArray[np.bool_]
    # Every (branch node, ancestor branch node, branch of the ancestor leading to it) triple, by branch index.
    path_node: npt.NDArray[np.int64]
    path_ancestor: npt.NDArray[np.int64]
    path_branch: npt.NDArray[np.bool_]
    # The branch node each branch leads to (-1: a leaf), and each tree's root branch node, by branch index.
    true_next: npt.NDArray[np.int64]
    false_next: npt.NDArray[np.int64]
    roots: npt.NDArray[np.int64]

    def branches(self, values: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
        """For one row of inputs, the branch (True: the "true" child) each node sends it down, as onnxruntime does:
        `x <= threshold`, and a missing value to the child its node names."""
        x = values[self.feature]
        return (x <= self.threshold) | (np.isnan(x) & self.missing_goes_true)

    def moved(
        self,
        values: npt.NDArray[np.float32],
        reference: npt.NDArray[np.float32],
        reference_branches: npt.NDArray[np.bool_] | None = None,
    ) -> npt.NDArray[np.int64]:
        """The inputs that, set to their value in `reference`, would part from the path `values` takes at some node
        on it (sorted); any other input, set so, leaves every tree's path as it was.

        `reference_branches` is `branches(reference)`, for a caller that compares many rows with one reference.
        """
        taken = self.branches(values)
        off_path = np.zeros(len(taken), dtype=bool)
        off_path[self.path_node[taken[self.path_ancestor] != self.path_branch]] = True
        if reference_branches is None:
            reference_branches = self.branches(reference)
        parted = ~off_path & (taken != reference_branches)
        # The distinct inputs, sorted, as np.unique gives them, in fewer numpy calls.
        hit = np.zeros(len(values), dtype=bool)
        hit[self.feature[parted]] = True
        return np.flatnonzero(hit)

    def visits(self, rows: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
        """For each row of inputs, the split tests it meets on its way through every tree, root to leaf."""
        count = np.zeros(len(rows), dtype=np.int64)
        # Trees one at a time, all rows abreast: `live` are the rows still above a leaf, `at` the node each is at.
        for root in self.roots:
            live = np.arange(len(rows))
            at = np.full(len(rows), root, dtype=np.int64)
            while live.size:
                count[live] += 1
                x = rows[live, self.feature[at]]
                goes_true = (x <= self.threshold[at]) | (np.isnan(x) & self.missing_goes_true[at])
                at = np.where(goes_true, self.true_next[at], self.false_next[at])
                live, at = live[at >= 0], at[at >= 0]
        return count


def read_split_tests(model_bytes: bytes) -> SplitTests | None:
    """The split tests of a model made of one tree-ensemble node over float inputs; None for any other graph (its
    inputs' influence cannot be told from the graph, so every input must be tried)."""
    graph = onnx.load_from_string(model_bytes).graph
    if len(graph.node) != 1 or graph.node[0].op_type not in _TREE_OPERATORS:
        return None
    if graph.input[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        return None
    attributes = {a.name: helper.get_attribute_value(a) for a in graph.node[0].attribute}
    modes = np.array(attributes.get("nodes_modes", []), dtype=object)
    # Double thresholds (opset 3's nodes_values_as_tensor) or other comparisons: not read, every input is tried.
    if "nodes_values" not in attributes or not set(modes) <= {_LEAF, _LESS_OR_EQUAL}:
        return None
    branch = modes == _LESS_OR_EQUAL
    missing = np.array(attributes.get("nodes_missing_value_tracks_true") or [0] * len(modes), dtype=bool)
    # Branch nodes numbered 0.. in node order; walk each tree from its root, carrying the chain of ancestors.
    keys = list(zip(attributes["nodes_treeids"], attributes["nodes_nodeids"], strict=True))
    index = {key: i for i, key in enumerate(keys)}
    number = np.cumsum(branch) - 1
    children = {
        i: (
            (index[(t, attributes["nodes_truenodeids"][i])], True),
            (index[(t, attributes["nodes_falsenodeids"][i])], False),
        )
        for i, (t, _) in enumerate(keys)
        if branch[i]
    }
    has_parent = {child for pair in children.values() for child, _ in pair}
    roots = [i for i in range(len(keys)) if i not in has_parent]
    # `children` runs in node order, which is branch order; a leaf child is -1, having no branch number.
    true_next, false_next = (
        [int(number[pair[side][0]]) if branch[pair[side][0]] else -1 for pair in children.values()] for side in (0, 1)
    )
    nodes: list[int] = []
    above: list[int] = []
    sides: list[bool] = []
    stack: list[tuple[int, list[tuple[int, bool]]]] = [(i, []) for i in roots]
    while stack:
        i, chain = stack.pop()
        if not branch[i]:
            continue
        for a, side in chain:
            nodes.append(int(number[i]))
            above.append(int(number[a]))
            sides.append(side)
        stack += [(child, [*chain, (i, side)]) for child, side in children[i]]
    return SplitTests(
        feature=np.array(attributes["nodes_featureids"], dtype=np.int64)[branch],
        threshold=np.array(attributes["nodes_values"], dtype=np.float32)[branch],
        missing_goes_true=missing[branch],
        path_node=np.array(nodes, dtype=np.int64),
        path_ancestor=np.array(above, dtype=np.int64),
        path_branch=np.array(sides, dtype=bool),
        true_next=np.array(true_next, dtype=np.int64),
        false_next=np.array(false_next, dtype=np.int64),
        roots=np.array([number[i] for i in roots if branch[i]], dtype=np.int64),
    )
