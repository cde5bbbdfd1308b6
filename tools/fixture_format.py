"""The one file format of the PyTorch reference fixtures in tests/fixtures/
(nn_*.bin from tools/make_nn_fixtures.py, model_*.bin from
tools/make_model_fixtures.py), read by tests/dp_model_fixture.h.

Layout (all little-endian):
  1. magic    8 bytes  b"DPFIX001"
  2. count    u32      number of records (at most 256)
  3. count records, each:
     a. name_len u16, name  name_len bytes (ASCII, no NUL, < 64)
     b. dtype    u8       b"f" float32, b"i" int32, b"u" uint8
     c. ndim     u32, shape  ndim x u32 (ndim <= 8)
     d. data     prod(shape) elements, row-major

Written to PATH.tmp, then renamed over PATH.
"""
import os
import struct

import numpy as np

_DTYPES = {np.dtype(np.float32): b"f", np.dtype(np.int32): b"i", np.dtype(np.uint8): b"u"}


def write(path, recs):
    """recs: (name, numpy array of float32, int32 or uint8) pairs, in file order.
    Returns the file's size in bytes."""
    if len(recs) > 256:
        raise ValueError("%s: %d records (at most 256)" % (path, len(recs)))
    out = [b"DPFIX001", struct.pack("<I", len(recs))]
    for name, arr in recs:
        arr = np.ascontiguousarray(arr)
        nb = name.encode("ascii")
        if len(nb) >= 64 or arr.ndim > 8:
            raise ValueError("%s: record %s: name of 64+ bytes or more than 8 dimensions" % (path, name))
        out.append(struct.pack("<H", len(nb)) + nb + _DTYPES[arr.dtype] + struct.pack("<I", arr.ndim))
        out.append(struct.pack("<%dI" % arr.ndim, *arr.shape))
        out.append(arr.astype(arr.dtype.newbyteorder("<")).tobytes())
    data = b"".join(out)
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)
    return len(data)
