"""A writer killed mid-save leaves the previous file intact (saves go temp file -> fsync -> rename)."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import likeable as lk

WRITER = textwrap.dedent("""
    import sys, numpy as np, likeable as lk
    kind, path = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(1)
    if kind == "encoder":
        d, m = 256, 4096   # ~8 MB per save, so the kill lands mid-write
        obj = lk.SparseEncoder.from_weights(rng.standard_normal((d, m)), np.zeros(m), rng.standard_normal((m, d)),
                                            np.zeros(d), k=8)
    else:
        import scipy.sparse as sp
        obj = lk.SparseIndex(lk.SparseCodes.from_scipy(sp.random(40000, 2000, density=0.01, format="csr",
                                                                 random_state=1)), approximate=False)
    print("ready", flush=True)
    while True:
        obj.save(path)
""")


@pytest.mark.parametrize("kind", ["encoder", "index"])
def test_killed_writer_leaves_previous_file_intact(tmp_path, kind, rng):
    path = tmp_path / f"model.{kind}"
    if kind == "encoder":
        original = lk.SparseEncoder.from_weights(np.eye(4, 6), np.zeros(6), np.eye(6, 4), np.zeros(4), k=2)
    else:
        original = lk.SparseIndex(lk.SparseCodes.from_dense(np.eye(5, 7)))
    original.save(path)
    reader = lk.SparseEncoder.load if kind == "encoder" else lk.SparseIndex.load
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for delay in (0.05, 0.4):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, kind, str(path)], stdout=subprocess.PIPE, env=env)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(delay + float(rng.uniform(0, 0.05)))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
        loaded = reader(path)  # the old file or a complete new one, never a torn one
        assert type(loaded) is type(original)
