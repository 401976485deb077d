"""Which array library runs the maths: NumPy on the CPU (default) or CuPy on a GPU.

The choice is made once per process: ``MINISG_DEVICE=cpu|gpu`` in the environment, or
``minisg.set_device("gpu")`` in code. A tensor's own array decides where its ops run
(``get_array_module``), so CPU and GPU tensors can live side by side.
"""
import os

import numpy as np

GPU_INSTALL_HINT = (
    "install the GPU extra with `pip install minisg[gpu]` (it pulls CuPy; pick the cupy-cudaXXx "
    "wheel that matches your CUDA driver) on a machine with an NVIDIA GPU"
)

_DEVICES = ("cpu", "gpu")
_device = None  # decided lazily so that importing minisg never touches CUDA


class DeviceError(RuntimeError):
    """A GPU was asked for where there is none, or an unknown device name was given."""


def _check_device_name(device):
    if device not in _DEVICES:
        raise DeviceError(f"device must be one of {_DEVICES}, got {device!r}")


def cupy_or_error():
    """Return the cupy module, or raise one clear DeviceError that says how to get it."""
    try:
        import cupy
    except ImportError as exc:
        raise DeviceError(f"device 'gpu' needs CuPy, which is not installed: {GPU_INSTALL_HINT}") from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # cupy raises its own CUDARuntimeError types
        raise DeviceError(f"device 'gpu': CuPy is installed but no CUDA GPU is usable ({exc}); {GPU_INSTALL_HINT}") from exc
    if count < 1:
        raise DeviceError(f"device 'gpu': CuPy found no CUDA GPU; {GPU_INSTALL_HINT}")
    return cupy


def gpu_available():
    """True when CuPy imports and sees at least one GPU."""
    try:
        cupy_or_error()
    except DeviceError:
        return False
    return True


def set_device(device):
    """Choose the default device for new tensors: 'cpu' (NumPy) or 'gpu' (CuPy)."""
    global _device
    _check_device_name(device)
    if device == "gpu":
        cupy_or_error()
    _device = device


def get_device():
    """The default device: set_device's choice, else MINISG_DEVICE, else 'cpu'."""
    global _device
    if _device is None:
        set_device(os.environ.get("MINISG_DEVICE", "cpu").strip().lower() or "cpu")
    return _device


def xp_for(device):
    """The array module of a device name."""
    _check_device_name(device)
    return cupy_or_error() if device == "gpu" else np


def default_xp():
    return xp_for(get_device())


def get_array_module(array):
    """numpy or cupy, whichever owns `array` (NumPy for anything that is not a CuPy array)."""
    module = type(array).__module__
    if module.startswith("cupy"):
        import cupy
        return cupy
    return np


def device_of(array):
    return "gpu" if get_array_module(array) is not np else "cpu"


def to_device(array, device):
    """Copy an array to 'cpu' (NumPy) or 'gpu' (CuPy); no copy when it is already there."""
    _check_device_name(device)
    if device == device_of(array):
        return array
    if device == "cpu":
        return array.get()
    return cupy_or_error().asarray(array)


def to_numpy(array):
    return to_device(array, "cpu")
