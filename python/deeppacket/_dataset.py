"""deeppacket.load_dataset: a split or dataset folder as numpy arrays."""
import ctypes

import numpy as np

from . import _lib
from ._lib import lib


class Dataset:
    """Rows of one task of a split folder (SPLIT_DIR/<task>/{train,test}) or
    a preprocessed dataset folder, as `deeppacket train` and `test` see them:
    vectors (uint8 [N, 1500]), labels (int16 [N], class ids of the task),
    flows (uint64 [N] flow ids, or None without meta.npy), classes (names by
    class id) and task ("app", "traffic"; "" when an old split folder does
    not say). The arrays are numpy's own copies: no library memory is kept
    (load_dataset closes its library view before returning)."""

    def __init__(self, path, vectors, labels, flows, classes, task):
        self.path, self.vectors, self.labels, self.flows = path, vectors, labels, flows
        self.classes, self.task = classes, task

    def __len__(self):
        return len(self.labels)

    def __repr__(self):
        return "Dataset(%r: %d rows, task %r, %d classes)" % (self.path, len(self), self.task, len(self.classes))


def load_dataset(path, task=None):
    """Reads the folder at path (task "app" or "traffic"; None for a split
    folder's own task, a dataset folder needs one). A dataset folder's rows
    without a label for the task are left out. The rows are copied into
    memory (N x 1500 bytes); for larger folders use numpy.load(...,
    mmap_mode="r") on the .npy files (README, "File formats").
    DeepPacketError naming the folder when it cannot be read."""
    eb = _lib.errbuf()
    h = lib.deeppacket_dataset_open(_lib.fspath(path), task.encode() if task is not None else None, eb)
    if not h:
        raise _lib.fail(eb)
    try:
        n = lib.deeppacket_dataset_rows(h)
        vectors = np.empty((n, _lib.VECTOR_LEN), dtype=np.uint8)
        labels = np.empty(n, dtype=np.int16)
        flows = np.empty(n, dtype=np.uint64) if lib.deeppacket_dataset_has_flows(h) else None
        if lib.deeppacket_dataset_read(h, 0, n, _ptr(vectors), _ptr(labels), _ptr(flows), eb) != 0:
            raise _lib.fail(eb)
        classes = [_lib.text(lib.deeppacket_dataset_class_name(h, c))
                   for c in range(lib.deeppacket_dataset_nclasses(h))]
        return Dataset(path, vectors, labels, flows, classes, _lib.text(lib.deeppacket_dataset_task(h)))
    finally:
        lib.deeppacket_dataset_close(h)


_CTYPES = {np.dtype(np.uint8): ctypes.c_uint8, np.dtype(np.int16): ctypes.c_int16, np.dtype(np.uint64): ctypes.c_uint64}


def _ptr(a):
    """The data pointer of a (None stays None) for a ctypes argument."""
    return None if a is None else a.ctypes.data_as(ctypes.POINTER(_CTYPES[a.dtype]))
