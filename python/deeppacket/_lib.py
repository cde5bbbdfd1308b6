"""Finds and loads libdeeppacket (ctypes) and declares its functions.

The library is looked for, in order: $DEEPPACKET_LIB (a path; nothing else
is tried when it is set), next to the package, the library `make install`
recorded in _install.py (or, in the source tree, ../../build/), then the
system's (ctypes.util.find_library, then the loader's own search)."""
import ctypes
import ctypes.util
import os

MAJOR = 0  # the soname's major version this package speaks to
SONAME = "libdeeppacket.so.%d" % MAJOR
ERRBUF_SIZE = 512
VECTOR_LEN = 1500


class DeepPacketError(Exception):
    """A deeppacket call failed; the message names the file and the problem."""


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
