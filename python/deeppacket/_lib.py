"""Finds and loads libdeeppacket (ctypes) and declares its functions.

The library is looked for, in order: $DEEPPACKET_LIB (a path; nothing else
is tried when it is set), next to the package, the library `make install`
recorded in _install.py (or, in the source tree, ../../build/), then the
system's (ctypes.util.find_library, then the loader's own search)."""
import contextlib
import ctypes
import ctypes.util
import os

MAJOR = 0  # the soname's major version this package speaks to
SONAME = "libdeeppacket.so.%d" % MAJOR
ERRBUF_SIZE = 512
VECTOR_LEN = 1500


class DeepPacketError(Exception):
    """A deeppacket call failed; the message names the file and the problem."""


class ClosedError(DeepPacketError, ValueError):
    """A closed Model or PcapReader was used (a ValueError too, as for a
    closed file); nothing reached the library."""


def _candidates():
    env = os.environ.get("DEEPPACKET_LIB")
    if env:
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    paths = [os.path.join(here, SONAME)]
    try:
        from . import _install  # written by `make install`
        paths.append(_install.LIBRARY)
    except ImportError:  # the source tree: python/deeppacket -> build/
        paths.append(os.path.join(here, "..", "..", "build", SONAME))
    found = ctypes.util.find_library("deeppacket")
    if found:
        paths.append(found)
    paths.append(SONAME)
    return paths


def _load():
    tried = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append("%s (absent)" % path)
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
            continue
        lib.deeppacket_version.restype = ctypes.c_char_p
        version = lib.deeppacket_version().decode()
        if int(version.split(".")[0]) != MAJOR:
            tried.append("%s (version %s, not %d.x)" % (path, version, MAJOR))
            continue
        return lib, os.path.realpath(path) if os.sep in path else path
    raise ImportError("deeppacket: cannot load %s; tried: %s. Build it (make) or install it "
                      "(make install), or set DEEPPACKET_LIB to its path" % (SONAME, "; ".join(tried)))


lib, path = _load()

_P = ctypes.c_void_p
_S = ctypes.c_char_p
_I = ctypes.c_int
_Z = ctypes.c_size_t
_U64 = ctypes.c_uint64
_FP = ctypes.POINTER(ctypes.c_float)
_BP = ctypes.POINTER(ctypes.c_uint8)


class Result(ctypes.Structure):
    """deeppacket_result."""
    _fields_ = [("kept", _I), ("skip_reason", _S), ("class_id", _I), ("class_name", _S),
                ("probability", ctypes.c_float)]


_PROTOTYPES = {
    "deeppacket_open": (_P, [_S, _S]),
    "deeppacket_close": (None, [_P]),
    "deeppacket_nclasses": (_I, [_P]),
    "deeppacket_class_name": (_S, [_P, _I]),
    "deeppacket_wants_flows": (_I, [_P]),
    "deeppacket_flow_packets": (_I, [_P]),
    "deeppacket_flow_row_len": (_I, [_P]),
    "deeppacket_model_kind": (_S, [_P]),
    "deeppacket_task": (_S, [_P]),
    "deeppacket_mask": (_S, [_P]),
    "deeppacket_set_precision": (_I, [_P, _S, _S]),
    "deeppacket_precision": (_S, [_P]),
    "deeppacket_set_min_prob": (_I, [_P, ctypes.c_double, _S]),
    "deeppacket_min_prob": (ctypes.c_double, [_P]),
    "deeppacket_predict": (_I, [_P, _BP, _Z, _FP, _S]),
    "deeppacket_predict_flows": (_I, [_P, _FP, _Z, _FP, _S]),
    "deeppacket_classify_flow": (_I, [_P, _I, ctypes.POINTER(_BP), ctypes.POINTER(_Z),
                                      ctypes.POINTER(ctypes.c_double), _I, ctypes.POINTER(Result), _S]),
    "deeppacket_pcap_open": (_P, [_P, _S, _I, _I, _S]),
    "deeppacket_pcap_next": (_I, [_P, ctypes.POINTER(_S), _S]),
    "deeppacket_pcap_close": (None, [_P]),
    "deeppacket_dataset_open": (_P, [_S, _S, _S]),
    "deeppacket_dataset_close": (None, [_P]),
    "deeppacket_dataset_rows": (_U64, [_P]),
    "deeppacket_dataset_task": (_S, [_P]),
    "deeppacket_dataset_nclasses": (_I, [_P]),
    "deeppacket_dataset_class_name": (_S, [_P, _I]),
    "deeppacket_dataset_has_flows": (_I, [_P]),
    "deeppacket_dataset_read": (_I, [_P, _U64, _U64, _BP, ctypes.POINTER(ctypes.c_int16),
                                     ctypes.POINTER(_U64), _S]),
}
for _name, (_res, _args) in _PROTOTYPES.items():
    _fn = getattr(lib, _name)
    _fn.restype = _res
    _fn.argtypes = _args


def errbuf():
    """A fresh error buffer for one call."""
    return ctypes.create_string_buffer(ERRBUF_SIZE)


def fail(buf):
    """The DeepPacketError carrying the message in buf."""
    return DeepPacketError(buf.value.decode("utf-8", "replace"))


def fspath(path):
    """A path argument as bytes (str or os.PathLike)."""
    return os.fsencode(os.fspath(path))


def text(b):
    """A C string from the library as str."""
    return b.decode("utf-8", "replace") if b is not None else ""


class Handle:
    """One library handle (a C pointer) and when it is freed: once it is
    closed (close(), or this object's garbage collection) and nothing uses
    it -- no library call on it is running (use()) and no handle made from
    it is open (a capture reader holds its model's handle from its open to
    its free). A closed handle refuses use() with ClosedError, so the library
    never gets a freed pointer. Calls under use() hold lock (reentrant; a
    model's readers share the model's), one at a time across threads. Not
    copyable or picklable: two owners of one pointer would free it twice."""

    _ptr = None

    def __init__(self, ptr, free, lock, what, parent=None):
        """ptr is freed with the library function named free; parent (whose
        use() the caller is in) is held until then."""
        self._ptr, self._free, self.lock, self.what = ptr, free, lock, what
        self._lib, self._parent = lib, parent
        self.closed = False
        self._users = 0
        if parent is not None:
            parent._users += 1

    @contextlib.contextmanager
    def use(self):
        """with handle.use() as ptr: library calls on ptr, which stays
        allocated until the block ends even if the handle is closed within
        it (ClosedError when it already is)."""
        with self.lock:
            if self.closed:
                raise ClosedError("%s is closed" % self.what)
            self._users += 1
            try:
                yield self._ptr
            finally:
                self._users -= 1
                self._free_unused()

    def close(self):
        """Closes the handle: freed now, or when its last user is done."""
        with self.lock:
            self.closed = True
            self._free_unused()

    def _free_unused(self):
        if self.closed and self._users == 0 and self._ptr is not None:
            ptr, self._ptr = self._ptr, None
            getattr(self._lib, self._free)(ptr)
            parent, self._parent = self._parent, None
            if parent is not None:
                with parent.lock:
                    parent._users -= 1
                    parent._free_unused()

    def __del__(self):
        if self._ptr is not None:
            self.close()

    def __reduce_ex__(self, protocol):
        raise TypeError("%s: a library handle cannot be copied or pickled" % self.what)
