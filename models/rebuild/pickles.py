"""Pickled weights read with an allow-list: only the classes that rebuild arrays may be named, so a file
that asks for anything else (code to run) is refused. The store checks each source's sha256 first."""

from __future__ import annotations

import collections
import pickle
import struct
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np


class UnsafePickleError(ValueError):
    """A pickle named a class outside the allow-list."""


def _numpy_class(name: str):
    from numpy._core import multiarray

    return {"_reconstruct": multiarray._reconstruct, "ndarray": np.ndarray, "dtype": np.dtype,
            "scalar": multiarray.scalar}[name]


class _NumpyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module in ("numpy.core.multiarray", "numpy._core.multiarray", "numpy") and \
                name in ("_reconstruct", "ndarray", "dtype", "scalar"):
            return _numpy_class(name)
        raise UnsafePickleError(f"the pickle asks for {module}.{name}, which a weights file never needs")


def numpy_arrays(fh: BinaryIO) -> object:
    """A (Python 2 or 3) pickle of numpy arrays, lists and dicts."""
    return _NumpyUnpickler(fh, encoding="latin1").load()


@dataclass(frozen=True)
class _Storage:
    dtype: np.dtype
    key: str
    size: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


_TORCH_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
                 "LongStorage": np.int64, "IntStorage": np.int32, "ByteStorage": np.uint8}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class _TorchUnpickler(pickle.Unpickler):
    def __init__(self, fh: BinaryIO):
        super().__init__(fh)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return lambda storage, offset, shape, stride, *_: _TensorRef(storage, offset, tuple(shape), tuple(stride))
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name in _TORCH_DTYPES:
            return name
        raise UnsafePickleError(f"the checkpoint asks for {module}.{name}, which a weights file never needs")

    def persistent_load(self, saved_id):
        _, storage_type, key, _location, size, _view = saved_id
        return self.storages.setdefault(key, _Storage(np.dtype(_TORCH_DTYPES[storage_type]), key, size))


def torch_legacy_state_dict(fh: BinaryIO) -> dict[str, np.ndarray]:
    """A PyTorch state dict saved in the legacy (pre-1.6, non-zip) format, as numpy arrays, without torch."""
    if pickle.load(fh) != _LEGACY_MAGIC:
        raise ValueError("not a legacy PyTorch checkpoint (magic number differs)")
    pickle.load(fh)  # protocol version
    sys_info = pickle.load(fh)
    if not sys_info.get("little_endian", False):
        raise ValueError("big-endian checkpoints are not supported")
    unpickler = _TorchUnpickler(fh)
    refs = unpickler.load()
    data: dict[str, np.ndarray] = {}
    for key in pickle.load(fh):  # storages follow in this order: an int64 element count, then the raw bytes
        storage = unpickler.storages[key]
        (count,) = struct.unpack("<q", fh.read(8))
        data[key] = np.frombuffer(fh.read(count * storage.dtype.itemsize), storage.dtype, count)
    arrays = {}
    for name, ref in refs.items():
        flat = data[ref.storage.key]
        itemsize = flat.dtype.itemsize
        arrays[name] = np.lib.stride_tricks.as_strided(
            flat[ref.offset:], ref.shape, tuple(s * itemsize for s in ref.stride)).copy()
    return arrays
