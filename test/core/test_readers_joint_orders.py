"""Joint-order tables of the dataset readers against the orders the datasets' own tools use."""

import numpy as np
import pytest

from ghtt_core.data.joint_orders import (
    ASSEMBLY101_TO_GHTT,
    ASSEMBLYHANDS_TO_GHTT,
    FPHA_TO_GHTT,
    order_to_ghtt,
)
from ghtt_core.skeleton import JOINT_NAMES


@pytest.mark.parametrize("table, authors_table", [
    # method-notes section 10.2 / 10.3 (G-HTT authors' loaders) and the FPHA order used by public FPHA loaders.
    (ASSEMBLY101_TO_GHTT, [5, 20, 6, 7, 0, 8, 9, 10, 1, 11, 12, 13, 2, 14, 15, 16, 3, 17, 18, 19, 4]),
    (ASSEMBLYHANDS_TO_GHTT, [20, 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 19, 18, 17, 16]),
    (FPHA_TO_GHTT, [0, 1, 6, 7, 8, 2, 9, 10, 11, 3, 12, 13, 14, 4, 15, 16, 17, 5, 18, 19, 20]),
])
def test_tables_match_the_reference_orders_and_are_permutations(table, authors_table):
    np.testing.assert_array_equal(table, authors_table)
    assert sorted(table.tolist()) == list(range(21))


def test_order_to_ghtt_inverts_a_named_order():
    shuffled = tuple(np.random.default_rng(1).permutation(JOINT_NAMES))
    table = order_to_ghtt(shuffled)
    assert tuple(np.array(shuffled)[table]) == JOINT_NAMES


def test_order_to_ghtt_rejects_incomplete_orders():
    with pytest.raises(ValueError, match="missing \\['wrist'\\]"):
        order_to_ghtt(JOINT_NAMES[1:] + ("thumb_cmc",))
