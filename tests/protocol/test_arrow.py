"""Embedding columns in every Arrow layout users hold them in, read into one (n, d) matrix."""
import numpy as np
import pytest

from likeable._arrow import embedding_matrix, is_vector_type

pa = pytest.importorskip("pyarrow")


def _fixed(X):
    return pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), X.shape[1])


LAYOUTS = {
    "list<float>": lambda X: pa.array(list(X), type=pa.list_(pa.float32())),
    "large_list<double>": lambda X: pa.array(list(X.astype(np.float64)), type=pa.large_list(pa.float64())),
    "fixed_size_list<float>": _fixed,
    "fixed_size_list<half>": lambda X: _fixed(X.astype(np.float16)),
    "arrow.fixed_shape_tensor": lambda X: pa.FixedShapeTensorArray.from_numpy_ndarray(X),
    "chunked": lambda X: pa.chunked_array([_fixed(X[:3]), _fixed(X[3:])]),
    "sliced": lambda X: pa.array(list(np.vstack([X, X])), type=pa.list_(pa.float32())).slice(len(X), len(X)),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_arrow_layouts(layout, rng):
    X = rng.standard_normal((7, 5)).astype(np.float32)
    column = LAYOUTS[layout](X)
    atol = 1e-3 if "half" in layout else 0
    np.testing.assert_allclose(embedding_matrix(column, "e"), X, atol=atol, rtol=atol)
    assert is_vector_type(column.type)
    assert embedding_matrix(column.slice(0, 0), "e").shape == (0, 0)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Ray's own, on importing its context
@pytest.mark.parametrize("v2", [False, True], ids=["ArrowTensorType", "ArrowTensorTypeV2"])
def test_ray_tensor_columns(v2, rng):
    """Both tensor types Ray has made (V1 before Ray 2.4x's default switched, V2 after)."""
    pytest.importorskip("ray.data")
    from ray.data import DataContext
    from ray.data.extensions import ArrowTensorArray

    context = DataContext.get_current()
    before = context.use_arrow_tensor_v2
    context.use_arrow_tensor_v2 = v2
    try:
        X = rng.standard_normal((6, 4))
        column = ArrowTensorArray.from_numpy(X)
        assert type(column.type).__name__ == ("ArrowTensorTypeV2" if v2 else "ArrowTensorType")
        np.testing.assert_allclose(embedding_matrix(column, "e"), X.astype(np.float32))
        assert is_vector_type(column.type)
        # a (1, d) tensor per row is still one vector; (2, 2) is not
        np.testing.assert_allclose(embedding_matrix(ArrowTensorArray.from_numpy(X[:, None, :]), "e"),
                                   X.astype(np.float32))
        with pytest.raises(ValueError, match=r"shape \(2, 2\).*one embedding vector per row"):
            embedding_matrix(ArrowTensorArray.from_numpy(X.reshape(6, 2, 2)), "e")
        ragged = ArrowTensorArray.from_numpy([np.zeros(3), np.zeros(4)])  # variable-shaped
        with pytest.raises(ValueError, match="different lengths"):
            embedding_matrix(ragged, "e")
        from ray.data.extensions import ArrowVariableShapedTensorArray

        even = ArrowVariableShapedTensorArray.from_numpy(np.array([np.ones(3), 2 * np.ones(3)], dtype=object))
        assert type(even.type).__name__ == "ArrowVariableShapedTensorType"
        np.testing.assert_array_equal(embedding_matrix(even, "e"), [[1, 1, 1], [2, 2, 2]])
    finally:
        context.use_arrow_tensor_v2 = before


def test_refusals_name_the_column():
    with pytest.raises(TypeError, match="column 'vec' must hold vectors"):
        embedding_matrix(pa.array([1.0, 2.0]), "vec")
    with pytest.raises(TypeError, match="must hold numbers"):
        embedding_matrix(pa.array([["a"], ["b"]]), "vec")
    with pytest.raises(ValueError, match="null values inside"):
        embedding_matrix(pa.array([[1.0, None]]), "vec")
    with pytest.raises(ValueError, match=r"row 0 has 2, row 1 has 1"):
        embedding_matrix(pa.array([[1.0, 2.0], [1.0]]), "vec")
    assert not is_vector_type(pa.string()) and not is_vector_type(pa.list_(pa.string()))
