"""Big numeric array literals are lifted out of the SQL text before parsing."""

from __future__ import annotations

import numpy as np

from tarndb.sql.literals import lift_arrays


def _literal_2d(m: np.ndarray) -> str:
    inner = ", ".join("ARRAY[" + ", ".join(str(v) for v in row) + "]" for row in m.tolist())
    return f"ARRAY[{inner}]::float4[][]"


def test_lifts_2d_literal_with_cast_kept() -> None:
    m = np.random.default_rng(0).random((128, 320), dtype=np.float32)
    lifted = lift_arrays(f"INSERT INTO t (a, e) VALUES ($1, {_literal_2d(m)})")
    assert lifted.sql == "INSERT INTO t (a, e) VALUES ($1, $2::float4[][])"
    assert lifted.first_param == 2
    np.testing.assert_array_equal(lifted.arrays[0], m)


def test_python_list_repr_form() -> None:
    q = [[0.5, -1.25, 3e-05] * 4, [1.0, 2.0, 3.0] * 4]
    lifted = lift_arrays(f"SELECT e <#> ARRAY{q}::float4[][] AS s FROM t")
    assert lifted.sql == "SELECT e <#> $1::float4[][] AS s FROM t"
    assert lifted.arrays[0].shape == (2, 12)


def test_leaves_strings_comments_small_and_int_arrays() -> None:
    sql = ("SELECT 'ARRAY[1.5,2,3,4,5,6,7,8,9]', ARRAY[1,2,3], $x$ ARRAY[1.0,2,3,4,5,6,7,8] $x$ "
           "-- ARRAY[1.0,2,3,4,5,6,7,8]\n, ARRAY[1.0, 2.0]")
    assert lift_arrays(sql).sql == sql


def test_ragged_and_non_numeric_are_left_to_the_parser() -> None:
    ragged = "SELECT ARRAY[[1.0,2.0,3.0,4.0],[1.0,2.0,3.0,4.0],[1.0]]::float4[][]"
    assert lift_arrays(ragged).sql == ragged
    names = "SELECT ARRAY[1.0,2.0,3.0,4.0,5.0,6.0,7.0,x]"
    assert lift_arrays(names).sql == names


def test_float8_cast_keeps_double_precision() -> None:
    lifted = lift_arrays("SELECT ARRAY[" + ",".join(["0.1"] * 10) + "]::float8[]")
    assert lifted.arrays[0].dtype == np.float64


def test_error_positions_map_back() -> None:
    vec = "ARRAY[" + ",".join(["0.5"] * 50) + "]::float4[]"
    sql = f"SELECT {vec}, bad"
    lifted = lift_arrays(sql)
    pos_in_new = lifted.sql.index("bad") + 1
    assert lifted.original_position(pos_in_new) == sql.index("bad") + 1


def test_json_and_arrow_number_parsers_agree() -> None:
    """The orjson fast path gives the same float4 / float8 values as Arrow's cast, and the
    forms JSON lacks (``+1``, ``.5``, ``1.``) and overflow still parse through Arrow."""
    rng = np.random.default_rng(3)
    v = rng.standard_normal(384)
    for dtype, cast in ((np.float32, "float4"), (np.float64, "float8")):
        sql = "SELECT ARRAY[" + ", ".join(repr(float(x)) for x in v) + f"]::{cast}[]"
        (got,) = lift_arrays(sql).arrays
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, v.astype(dtype))
    odd = "SELECT ARRAY[+1, .5, 1., 1e39, -2e-3, 6, 7, 8, 9]::float4[]"
    (got,) = lift_arrays(odd).arrays
    np.testing.assert_array_equal(
        got, np.array([1, 0.5, 1, np.inf, -2e-3, 6, 7, 8, 9], dtype=np.float32))
