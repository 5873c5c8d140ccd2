"""What the GPU path decides and checks without a GPU: where a call runs (one dispatch helper),
device= parsing, the typed device arrays the CUDA binding accepts (fake __cuda_array_interface__
objects, never launched), and the bias-folding rule the CPU and GPU encoders share."""
from __future__ import annotations

import numpy as np
import pytest

import likeable as lk
from likeable import _core, gpu
from likeable._gpu import device as dev
from likeable._gpu.encode import encode_bias


class FakeDeviceArray:
    """Looks like GPU memory to the dispatch and the binding (its pointer is never read)."""

    def __init__(self, shape, typestr="<f4", strides=None, read_only=False, ptr=0x10000):
        self.shape = tuple(shape)
        self.__cuda_array_interface__ = {"shape": self.shape, "typestr": typestr, "data": (ptr, read_only),
                                         "strides": strides, "version": 3}


class FakeDLPackDevice:
    def __init__(self, device_type):
        self.device_type = device_type

    def __dlpack_device__(self):
        return (self.device_type, 0)


# --- where a call runs --------------------------------------------------------------------------
def test_device_argument_parsing():
    assert dev.parse_device(None) is None
    assert dev.parse_device("cpu") is False and dev.parse_device("CUDA") is True
    assert dev.parse_device("cuda:3") == 3 and dev.parse_device("cuda:0") == 0
    for bad in ("tpu", "cuda:x", "cuda:-1", "gpu"):
        with pytest.raises(ValueError, match="device|cuda:N|start at 0"):
            dev.parse_device(bad)


def test_which_inputs_are_on_the_gpu():
    host = np.zeros((2, 3), np.float32)
    assert not dev.is_device_array(host) and not dev.is_device_array([[1.0]])
    assert dev.is_device_array(FakeDeviceArray((2, 3)))
    assert dev.is_device_array(FakeDLPackDevice(2)) and dev.is_device_array(FakeDLPackDevice(13))
    assert not dev.is_device_array(FakeDLPackDevice(1))  # DLPack CPU
    assert not dev.wants_gpu(None, host) and dev.wants_gpu(None, FakeDeviceArray((1, 1)))
    assert dev.wants_gpu("cuda", host) and dev.wants_gpu("cuda:1", host)
    with pytest.raises(ValueError, match="GPU memory"):
        dev.wants_gpu("cpu", FakeDeviceArray((1, 1)))


class Result:
    def __init__(self, value):
        self.value = value

    def get(self):
        return ("host", self.value)


def test_dispatch_is_the_one_place_that_decides(monkeypatch):
    calls = []

    class Context:
        def __enter__(self):
            calls.append("enter")

        def __exit__(self, *exc):
            calls.append("exit")

    monkeypatch.setattr(dev, "device_context", lambda device: Context())
    host, on_device = np.zeros((2, 2)), FakeDeviceArray((2, 2))
    gpu_call = lambda: Result("gpu")  # noqa: E731
    assert dev.dispatch(None, host, gpu=gpu_call, cpu=lambda: "cpu") == "cpu" and not calls
    assert dev.dispatch("cpu", host, gpu=gpu_call, cpu=lambda: "cpu") == "cpu"
    # host data asked onto the GPU comes back to the host; GPU data stays there
    assert dev.dispatch("cuda", host, gpu=gpu_call, cpu=lambda: "cpu") == ("host", "gpu")
    assert dev.dispatch(None, on_device, gpu=gpu_call, cpu=lambda: "cpu").value == "gpu"
    pair = dev.dispatch("cuda:0", host, gpu=lambda: (Result(1), Result(2)), cpu=lambda: None)
    assert pair == (("host", 1), ("host", 2))
    assert calls == ["enter", "exit"] * 3


def test_every_estimator_goes_through_dispatch(rng, monkeypatch):
    """encode, decode, search, score and predictions reach the GPU only through dispatch."""
    import importlib

    seen = []

    def spy(device, data, *, gpu, cpu):
        seen.append(device)
        return cpu()

    modules = ["likeable.encoder", "likeable.index", "likeable.preferences", "likeable.user_preferences"]
    for name in modules:
        monkeypatch.setattr(importlib.import_module(name), "dispatch", spy)
    codes = lk.SparseCodes.from_dense((rng.random((30, 6)) > 0.6) * rng.standard_normal((30, 6)))
    y = rng.integers(0, 2, 30)
    enc = lk.SparseEncoder.from_weights(rng.standard_normal((4, 6)), np.zeros(6), rng.standard_normal((6, 4)),
                                        np.zeros(4), k=2)
    enc.decode(enc.encode(rng.standard_normal((3, 4)), device="cpu"))
    lk.SparseIndex(codes, approximate=False).search(codes, k=2)
    pm = lk.PreferenceModel().fit(codes, y)
    pm.predict_proba(codes)
    up = lk.UserPreferences().fit(codes, y, y)
    up.score([0, 1], codes)
    up.decision_function(codes, y)
    assert seen == ["cpu", None, None, None, None, None]


def test_no_device_is_said_plainly():
    count, _ = dev.device_count()
    if count:
        pytest.skip("this machine has a CUDA device")
    reason = gpu.unavailable_reason()
    assert reason.startswith("no NVIDIA GPU/CUDA device on this machine")
    assert "likeable[gpu]" not in reason
    assert not gpu.available()
    with pytest.raises(RuntimeError, match="no NVIDIA GPU"):
        gpu.require()


def test_missing_cupy_is_told_apart_from_a_missing_device(monkeypatch):
    import builtins

    monkeypatch.setattr(dev, "device_count", lambda: (1, ""))
    real_import = builtins.__import__

    def no_cupy(name, *args, **kwargs):
        if name == "cupy":
            raise ImportError("no cupy")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cupy)
    reason = dev.unavailable_reason()
    if dev.kernels() is None:
        assert "without its CUDA module" in reason
    else:
        assert reason == "CuPy is not installed (pip install 'likeable[gpu]')"


# --- typed device arrays at the binding -----------------------------------------------------------
@pytest.fixture
def cuda_module():
    module = dev.kernels()
    if module is None:
        pytest.skip("likeable was built without its CUDA module")
    return module


class FakeStream:
    ptr = 0


def test_binding_reads_the_cuda_array_interface(cuda_module):
    assert cuda_module.array_shape(FakeDeviceArray((4, 5)), "float32", 2) == [4, 5]
    assert cuda_module.array_shape(FakeDeviceArray((0, 5), ptr=0), "float32", 2) == [0, 5]
    # C-contiguous strides are accepted, others refused; size-1 dimensions have free strides
    assert cuda_module.array_shape(FakeDeviceArray((4, 5), strides=(20, 4)), "float32", 2) == [4, 5]
    assert cuda_module.array_shape(FakeDeviceArray((1, 5), strides=(999, 4)), "float32", 2) == [1, 5]
    with pytest.raises(ValueError, match="C-contiguous"):
        cuda_module.array_shape(FakeDeviceArray((4, 5), strides=(4, 16)), "float32", 2)
    with pytest.raises(TypeError, match="dtype float32"):
        cuda_module.array_shape(FakeDeviceArray((4, 5), typestr="<f8"), "float32", 2)
    with pytest.raises(ValueError, match="2-D"):
        cuda_module.array_shape(FakeDeviceArray((4,)), "float32", 2)
    with pytest.raises(ValueError, match="null data pointer"):
        cuda_module.array_shape(FakeDeviceArray((2, 2), ptr=0), "float32", 2)
    with pytest.raises(TypeError, match="__cuda_array_interface__"):
        cuda_module.array_shape(np.zeros((2, 2), np.float32), "float32", 2)


def test_kernels_check_every_argument_before_launching(cuda_module):
    n, k = 3, 4
    scores = FakeDeviceArray((n, 10))
    ids, values, counts = FakeDeviceArray((n, k), "<i4"), FakeDeviceArray((n, k)), FakeDeviceArray((n,), "<i4")
    with pytest.raises(ValueError, match="read-only"):
        cuda_module.select_topk(scores, k, FakeDeviceArray((n, k), "<i4", read_only=True), values, counts,
                                FakeStream())
    with pytest.raises(ValueError, match="ids has size 5"):
        cuda_module.select_topk(scores, k, FakeDeviceArray((n, 5), "<i4"), values, counts, FakeStream())
    with pytest.raises(TypeError, match="int32"):
        cuda_module.select_topk(scores, k, FakeDeviceArray((n, k), "<i8"), values, counts, FakeStream())
    with pytest.raises(TypeError, match="stream"):
        cuda_module.select_topk(scores, k, ids, values, counts, 0)  # a raw int is not a stream

    class Codes:
        shape = (n, 7)
        indptr = FakeDeviceArray((n + 1,), "<i8")
        indices = FakeDeviceArray((11,), "<i4")
        values = FakeDeviceArray((11,))

    with pytest.raises(ValueError, match="W_dec has size 6 in dimension 0, expected 7"):
        cuda_module.decode(Codes, FakeDeviceArray((6, 2)), FakeDeviceArray((2,)), FakeDeviceArray((n, 2)),
                           FakeStream())
    Codes.values = FakeDeviceArray((10,))
    with pytest.raises(ValueError, match="values has size 10"):
        cuda_module.densify(Codes, FakeDeviceArray((n, 7)), FakeStream())
    tile = dict(pre=FakeDeviceArray((2, 8)), bias=FakeDeviceArray((8,)), first_row=2, k=3, is_signed=False,
                ids=FakeDeviceArray((3, 3), "<i4"), values=FakeDeviceArray((3, 3)), counts=FakeDeviceArray((3,), "<i4"),
                bad_row=FakeDeviceArray((1,), "<u8"), stream=FakeStream())
    with pytest.raises(ValueError, match="outside the 3 output rows"):
        cuda_module.encode_select_tile(**tile)
    with pytest.raises(ValueError, match="bias has size 9"):
        cuda_module.encode_select_tile(**{**tile, "first_row": 0, "bias": FakeDeviceArray((9,))})


def test_dlpack_capsules_are_consumed_and_checked(cuda_module):
    """A host (CPU) DLPack tensor is refused by the binding's DLPack reader, and the capsule is
    consumed cleanly (its deleter runs; no leak, no crash)."""
    for _ in range(3):
        with pytest.raises(ValueError, match="not in CUDA memory"):
            cuda_module.DLPackMatrix(np.zeros((2, 3), np.float16).__dlpack__())
    with pytest.raises(TypeError, match="capsule"):
        cuda_module.DLPackMatrix(object())


# --- one bias-folding rule for the CPU and GPU encoders -------------------------------------------
@pytest.mark.parametrize("d, M", [(1, 1), (7, 13), (16, 256), (16, 257), (33, 1000)])
def test_folded_bias_matches_float64(rng, d, M):
    W_encT = rng.standard_normal((M, d)).astype(np.float32)
    b_enc = rng.standard_normal(M).astype(np.float32)
    b_dec = (100 * rng.standard_normal(d)).astype(np.float32)  # large: where float32 folding would lose digits
    got = _core.encoder_folded_bias(W_encT, b_enc, b_dec)
    want = b_enc.astype(np.float64) - W_encT.astype(np.float64) @ b_dec.astype(np.float64)
    assert got.dtype == np.float32 and got.shape == (M,)
    np.testing.assert_allclose(got, want.astype(np.float32), rtol=0, atol=np.spacing(np.abs(want).max()))


def test_one_rule_decides_folding_for_both_paths(rng):
    assert _core.encoder_folds_decoder_bias(256) and not _core.encoder_folds_decoder_bias(257)
    assert _core.encoder_folds_decoder_bias(5000, 16)  # narrow GPU inputs always fold
    for M, dtype, fold in [(64, "float32", True), (4096, "float32", False), (4096, "bfloat16", True),
                           (4096, "float16", True)]:
        enc = lk.SparseEncoder.from_weights(rng.standard_normal((8, M)), rng.standard_normal(M),
                                            rng.standard_normal((M, 8)), rng.standard_normal(8), k=4)
        centre, bias = encode_bias(enc.weights_, dtype)
        assert centre == (not fold)
        want = (_core.encoder_folded_bias(*enc.weights_[:2], enc.weights_.b_dec) if fold else enc.b_enc)
        np.testing.assert_array_equal(bias, want)


@pytest.mark.parametrize("M", [40, 600])
def test_cpu_encode_follows_the_rule(rng, M):
    """With few features the CPU adds the folded bias to x @ W_enc (what the GPU does); with many it
    centres x first. Both agree with the float64 reference; the folded form matches it computed
    the folded way."""
    d, n, k = 12, 50, 5
    enc = lk.SparseEncoder.from_weights(rng.standard_normal((d, M)), rng.standard_normal(M),
                                        rng.standard_normal((M, d)), 3 * rng.standard_normal(d), k=k)
    X = rng.standard_normal((n, d)).astype(np.float32)
    codes = enc.encode(X)
    pre = (X.astype(np.float64) - enc.b_dec) @ enc.W_enc.astype(np.float64) + enc.b_enc
    rows = np.repeat(np.arange(n), np.diff(codes.indptr))
    np.testing.assert_allclose(codes.values, pre[rows, codes.indices], rtol=1e-4, atol=1e-4)
    centre, bias = encode_bias(enc.weights_, "float32")
    assert centre == (M > 256)
    if not centre:
        folded = X.astype(np.float64) @ enc.W_enc.astype(np.float64) + bias.astype(np.float64)
        np.testing.assert_allclose(codes.values, folded[rows, codes.indices], rtol=1e-5, atol=1e-5)
