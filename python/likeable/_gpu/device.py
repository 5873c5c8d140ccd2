"""Whether the GPU path can run here, where a call runs, and the one dispatch helper every
estimator uses to choose between its CPU and GPU implementations."""
from __future__ import annotations

import ctypes
from typing import Any, Callable, TypeVar

T = TypeVar("T")

# DLPack device types (``__dlpack_device__()[0]``) for CUDA and CUDA managed memory.
DLPACK_CUDA_DEVICES = (2, 13)

NO_DEVICE = "no NVIDIA GPU/CUDA device on this machine"


# --- availability ---------------------------------------------------------------------------
def kernels():
    """likeable's CUDA module, or None in a build without it."""
    try:
        from .. import _cuda
    except ImportError:
        return None
    return _cuda


def _driver_device_count() -> tuple[int, str]:
    """Devices the CUDA driver sees, for builds without the CUDA module (which would ask the runtime)."""
    try:
        driver = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0, "no CUDA driver"
    count = ctypes.c_int(0)
    if driver.cuInit(0) != 0 or driver.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0, "the CUDA driver reports no usable device"
    return count.value, "" if count.value else "no CUDA device"


def device_count() -> tuple[int, str]:
    """(CUDA devices visible, why none when 0)."""
    module = kernels()
    return tuple(module.device_count()) if module is not None else _driver_device_count()


def unavailable_reason() -> str | None:
    """Why the GPU path cannot run here (None when it can).

    No device comes first (the usual case on a laptop or CI machine), then a build without the
    CUDA module, then a missing CuPy.
    """
    count, why = device_count()
    if count == 0:
        return f"{NO_DEVICE} ({why})" if why else NO_DEVICE
    if kernels() is None:
        return ("likeable was built without its CUDA module (no CUDA toolkit was found at build "
                "time; rebuild with one, e.g. CMAKE_ARGS=-DLIKEABLE_ENABLE_CUDA=ON)")
    try:
        import cupy  # noqa: F401
    except ImportError:
        return "CuPy is not installed (pip install 'likeable[gpu]')"
    return None


def available() -> bool:
    """True when a CUDA device is visible, the CUDA module is built and CuPy imports."""
    return unavailable_reason() is None


def require() -> None:
    reason = unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"the GPU path is unavailable: {reason}")


def cupy():
    """The CuPy module, once the GPU path is known to be usable."""
    require()
    import cupy as cp

    return cp


def current_stream():
    """CuPy's current stream: every launch of ours and every cuBLAS call runs on it."""
    import cupy as cp

    return cp.cuda.get_current_stream()


def device_info(device: int | None = None) -> dict:
    """Name, compute capability, multiprocessors, L2 and memory of a device (default: current)."""
    cp = cupy()
    return kernels().device_properties(cp.cuda.Device().id if device is None else int(device))


# --- where a call runs ----------------------------------------------------------------------
def has_cuda_array_interface(obj: Any) -> bool:
    # Not hasattr: PyTorch raises TypeError (bfloat16) or RuntimeError (requires_grad) from it.
    try:
        return getattr(obj, "__cuda_array_interface__", None) is not None
    except Exception:  # noqa: BLE001
        return False


def is_device_array(obj: Any) -> bool:
    """Whether ``obj`` lives in GPU memory (CUDA array interface, CUDA DLPack, device codes)."""
    from .arrays import DeviceSparseCodes

    if isinstance(obj, DeviceSparseCodes) or has_cuda_array_interface(obj):
        return True
    dl_device = getattr(obj, "__dlpack_device__", None)
    if dl_device is not None:
        try:
            return int(dl_device()[0]) in DLPACK_CUDA_DEVICES
        except Exception:  # noqa: BLE001 - a producer that cannot answer is not on the GPU
            return False
    return type(obj).__module__.startswith("cupyx.scipy.sparse")


def parse_device(device: Any) -> int | None | bool:
    """``device=`` as False (the CPU), True (the current GPU), an int (that GPU) or None (follow the data)."""
    if device is None:
        return None
    name = str(device).lower()
    if name == "cpu":
        return False
    if name == "cuda":
        return True
    if name.startswith("cuda:"):
        try:
            index = int(name[5:])
        except ValueError:
            raise ValueError(f"bad device {device!r}: expected 'cuda:N' with N a device number") from None
        if index < 0:
            raise ValueError(f"bad device {device!r}: device numbers start at 0")
        return index
    raise ValueError(f"device must be None, 'cpu', 'cuda' or 'cuda:N', got {device!r}")


def wants_gpu(device: Any, *inputs: Any) -> bool:
    """Resolve ``device=`` (None: wherever the inputs are; "cpu"; "cuda" or "cuda:N")."""
    choice = parse_device(device)
    on_gpu = any(is_device_array(x) for x in inputs)
    if choice is None:
        return on_gpu
    if choice is False:
        if on_gpu:
            raise ValueError("device='cpu' was asked for but the input is in GPU memory: "
                             "copy it to the host first (e.g. .get()), or pass device=None")
        return False
    return True


def device_context(device: Any):
    """A CuPy device context for 'cuda:N' (the current device otherwise)."""
    cp = cupy()
    choice = parse_device(device)
    if isinstance(choice, bool) or choice is None:
        return cp.cuda.Device()
    return cp.cuda.Device(choice)


def to_host(result: Any) -> Any:
    """A GPU result (CuPy array, DeviceSparseCodes, or a tuple of them) copied to the host."""
    if isinstance(result, tuple):
        return tuple(to_host(part) for part in result)
    return result.get()


def dispatch(device: Any, data: Any, *, gpu: Callable[[], T], cpu: Callable[[], T]) -> T:
    """Run one estimator call where ``device`` and ``data`` say: the only place that decides.

    ``device=None`` follows ``data`` (GPU data runs on the GPU); ``"cpu"`` refuses GPU data;
    ``"cuda"``/``"cuda:N"`` runs ``gpu()`` on that device (host data is staged there through
    pinned memory) and copies the result back to the host unless ``data`` was on the GPU already.
    """
    if not wants_gpu(device, data):
        return cpu()
    with device_context(device):
        result = gpu()
    return result if is_device_array(data) else to_host(result)
