"""Rows/s through Ray Data against in-process encode on the same rows (the per-batch overhead).

Run: python -m pytest benchmarks/test_bench_ray.py  (starts a local 2-CPU Ray cluster)
"""
import numpy as np
import pytest

import likeable as lk

ray = pytest.importorskip("ray")
pa = pytest.importorskip("pyarrow")
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::FutureWarning")]

N, D, M, K = 200_000, 384, 4096, 32


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, D)).astype(np.float32)
    enc = lk.SparseEncoder.from_weights(rng.standard_normal((D, M)).astype(np.float32) / np.sqrt(D),
                                        np.zeros(M, np.float32),
                                        rng.standard_normal((M, D)).astype(np.float32) / np.sqrt(D),
                                        np.zeros(D, np.float32), k=K, kind="topk")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    table = pa.table({"embedding": pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), D)})
    ds = ray.data.from_arrow(table).repartition(40).materialize()  # 5,000-row blocks
    yield X, enc, ds
    ray.shutdown()


@pytest.mark.benchmark(group="ray-encode")
def test_in_process_encode(benchmark, setup):
    X, enc, _ = setup
    benchmark.extra_info["peer"] = "in-process encode (2 threads)"
    benchmark.extra_info["rows"] = N
    benchmark.pedantic(enc.encode, args=(X,), kwargs={"threads": 2}, rounds=3)


@pytest.mark.benchmark(group="ray-encode")
@pytest.mark.parametrize("batch_size", [1024, 8192])
def test_ray_encode(benchmark, setup, batch_size):
    from likeable import ray as lkray

    _, enc, ds = setup
    benchmark.extra_info["rows"] = N

    def run():
        return lkray.encode_dataset(ds, enc, embedding_column="embedding", batch_size=batch_size,
                                    actors=2, keep_columns=False).materialize()

    out = benchmark.pedantic(run, rounds=3)
    assert out.count() == N
