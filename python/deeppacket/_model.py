"""deeppacket.Model: a trained model file over libdeeppacket."""
import ctypes
import json
import operator
import threading

import numpy as np

from . import _lib
from ._lib import DeepPacketError, lib

_PER = {None: -1, "packet": 0, "flow": 1}


class _Closable:
    """close(), a with block, and no copies: the library handle _h (a
    _lib.Handle) is not to have two owners."""
    _h = None

    @property
    def closed(self):
        return self._h is None or self._h.closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __reduce_ex__(self, protocol):
        raise TypeError("cannot copy or pickle a deeppacket.%s" % type(self).__name__)


class Model(_Closable):
    """A model written by `deeppacket train` (CNN, SAE, flow NN or GBT).

    close() (or the end of a with block) closes it: its methods raise
    ClosedError from then on. Readers made by classify_pcap before that keep
    reading: the library's model is freed when the last of them closes too.
    Calls on one model and its readers run one at a time (a lock); for
    parallel work use one Model per thread.

    precision ("fp32", "bf16" or "auto"; None: DEEPPACKET_PRECISION, else
    fp32) is this model's alone, as `classify --precision`; the precision
    attribute reads ("fp32" or "bf16") and changes it.

    min_prob (0 to 1; None: 0, never) makes a verdict whose best class is
    less probable "unknown", as `classify --min-prob`: class -1, label
    "unknown" (prob and top keep the guesses) in classify_pcap's dicts, and
    in classify_flow's result. The min_prob attribute reads and changes it;
    `deeppacket test` reports what each threshold keeps and how right it is."""

    def __init__(self, path, precision=None, min_prob=None):
        eb = _lib.errbuf()
        h = lib.deeppacket_open(_lib.fspath(path), eb)
        if not h:
            raise _lib.fail(eb)
        self.path = path
        self._h = _lib.Handle(h, "deeppacket_close", threading.RLock(), "%s: the model" % (path,))
        with self._h.use() as h:
            self.classes = [_lib.text(lib.deeppacket_class_name(h, c)) for c in range(lib.deeppacket_nclasses(h))]
            self.kind = _lib.text(lib.deeppacket_model_kind(h))
            self.task = _lib.text(lib.deeppacket_task(h))
            self.mask = _lib.text(lib.deeppacket_mask(h))
            self.wants_flows = bool(lib.deeppacket_wants_flows(h))
            self.flow_packets = lib.deeppacket_flow_packets(h)
            self.flow_row_len = lib.deeppacket_flow_row_len(h)
        try:
            if precision is not None:
                self.precision = precision
            if min_prob is not None:
                self.min_prob = min_prob
        except BaseException:
            self.close()
            raise

    @property
    def min_prob(self):
        """The probability below which a verdict is "unknown" (0: never)."""
        with self._use() as h:
            return lib.deeppacket_min_prob(h)

    @min_prob.setter
    def min_prob(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError("min_prob is a number in [0, 1], not %r" % (value,))
        eb = _lib.errbuf()
        with self._use() as h:
            if lib.deeppacket_set_min_prob(h, float(value), eb) != 0:
                raise _lib.fail(eb)

    @property
    def precision(self):
        """"fp32" or "bf16": the precision of this model's products."""
        with self._use() as h:
            return _lib.text(lib.deeppacket_precision(h))

    @precision.setter
    def precision(self, value):
        if not isinstance(value, str):
            raise TypeError("precision is 'fp32', 'bf16' or 'auto', not %r" % (value,))
        eb = _lib.errbuf()
        with self._use() as h:
            if lib.deeppacket_set_precision(h, value.encode("utf-8"), eb) != 0:
                raise _lib.fail(eb)

    def close(self):
        """Closes the model (again: nothing); see the class."""
        if self._h is not None:
            self._h.close()

    @classmethod
    def load(cls, path, precision=None, min_prob=None):
        """Loads the model file at path; DeepPacketError when it is missing,
        truncated, corrupt or of an unknown version, when precision is
        unknown or cannot run here, or min_prob is outside [0, 1]."""
        return cls(path, precision, min_prob)

    def __repr__(self):
        return "Model(%r: %s %s, %d classes)" % (self.path, self.kind, self.task, len(self.classes))

    def _use(self):
        """with self._use() as h: library calls on the model's handle h;
        ClosedError when the model is closed."""
        if self._h is None:  # __init__ failed or was not run
            raise _lib.ClosedError("the model is closed")
        return self._h.use()

    def _call(self, fn, x, ctype):
        n = x.shape[0]
        eb = _lib.errbuf()
        with self._use() as h:
            out = np.empty((n, len(self.classes)), dtype=np.float32)
            rc = fn(h, x.ctypes.data_as(ctypes.POINTER(ctype)), n,
                    out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), eb)
        if rc != 0:
            raise _lib.fail(eb)
        return out

    def predict(self, vectors):
        """Log-probabilities (float32 [N, classes]) of N packet vectors
        (uint8 [N, 1500], e.g. a dataset's vectors.npy), the model's mask
        applied as in `deeppacket test`. Packet models (CNN, SAE) only."""
        x = _array(vectors, np.uint8, _lib.VECTOR_LEN, "vectors")
        return self._call(lib.deeppacket_predict, x, ctypes.c_uint8)

    def predict_flows(self, rows):
        """Log-probabilities (float32 [N, classes]) of N flow rows (float32
        [N, flow_row_len], docs/flow-features.md). Flow models only."""
        if not self.wants_flows:
            raise DeepPacketError("%s: a %s packet model reads packet vectors (predict), not flow rows"
                                  % (self.path, self.kind))
        x = _array(rows, np.float32, self.flow_row_len, "rows")
        return self._call(lib.deeppacket_predict_flows, x, ctypes.c_float)

    def classify_flow(self, frames, times, linktype=1):
        """One verdict for one bidirectional flow from its captured frames
        (bytes, in capture order) captured at times (seconds), of pcap link
        type linktype (1 Ethernet, 101 raw IP, ...): a dict with class,
        label, prob and packets (kept frames used; 0: class None)."""
        frames = [bytes(f) for f in frames]
        linktype = operator.index(linktype)
        if not -2**31 <= linktype < 2**31:  # ctypes would wrap it silently: 2**32 + 1 became Ethernet
            raise ValueError("classify_flow: linktype %d is not a C int" % linktype)
        if len(times) != len(frames):
            raise ValueError("classify_flow: %d frames but %d times" % (len(frames), len(times)))
        n = len(frames)
        bufs = [ctypes.create_string_buffer(f, len(f) or 1) for f in frames]
        ptrs = (ctypes.POINTER(ctypes.c_uint8) * max(n, 1))(
            *[ctypes.cast(b, ctypes.POINTER(ctypes.c_uint8)) for b in bufs])
        lens = (ctypes.c_size_t * max(n, 1))(*[len(f) for f in frames])
        ts = (ctypes.c_double * max(n, 1))(*[float(t) for t in times])
        r = _lib.Result()
        eb = _lib.errbuf()
        with self._use() as h:
            if lib.deeppacket_classify_flow(h, linktype, ptrs, lens, ts, n, ctypes.byref(r), eb) != 0:
                raise _lib.fail(eb)
            label = _lib.text(r.class_name)  # points into the model
        if r.kept == 0:
            return {"class": None, "label": None, "prob": 0.0, "packets": 0}
        return {"class": r.class_id, "label": label, "prob": r.probability, "packets": r.kept}

    def classify_pcap(self, path, per=None, first=None):
        """The verdicts on a pcap/pcapng file as dicts, the JSON lines of
        `deeppacket classify -m MODEL -r PATH [--per PER] [--first N]` (same
        keys and values), read lazily. per: "packet", "flow" or None (the
        model's default: per packet, a flow model per flow). DeepPacketError
        when the file is no capture, the options do not fit the model, or
        (after the verdicts of what was readable) the capture is cut short."""
        if per not in _PER:
            raise ValueError("per is 'packet', 'flow' or None, not %r" % (per,))
        first_n = 0 if first is None else int(first)
        if first is not None and first_n < 1:
            raise ValueError("first wants a count >= 1, not %r" % (first,))
        return PcapReader(self, path, _PER[per], first_n)


class PcapReader(_Closable):
    """An iterator over a capture's verdicts (dicts); see Model.classify_pcap.
    It closes itself at the end of the capture (or on its error), and on
    close(), the end of a with block or garbage collection. next() on a
    reader closed by close() or a with block raises ClosedError; at the end
    it keeps raising StopIteration. An open reader keeps its model's library
    handle, not the closed Model's methods, alive."""

    def __init__(self, model, path, per_flow, first_n):
        if not isinstance(model, Model):
            raise TypeError("PcapReader: want a deeppacket.Model, not %s" % type(model).__name__)
        self.path, self._ended = path, False
        eb = _lib.errbuf()
        with model._use() as mh:
            h = lib.deeppacket_pcap_open(mh, _lib.fspath(path), per_flow, first_n, eb)
            if not h:
                raise _lib.fail(eb)
            self._h = _lib.Handle(h, "deeppacket_pcap_close", model._h.lock,
                                  "%s: the reader of %s" % (path, model.path), parent=model._h)

    def __iter__(self):
        return self

    def __next__(self):
        if self._h is None or self._ended:
            raise StopIteration
        line = ctypes.c_char_p()
        eb = _lib.errbuf()
        with self._h.use() as h:  # ClosedError after close()
            rc = lib.deeppacket_pcap_next(h, ctypes.byref(line), eb)
            data = line.value if rc == 1 else None  # valid until the next call
        if rc == 1:
            return json.loads(data.decode("utf-8"))
        self._ended = True
        self._h.close()
        if rc < 0:
            raise _lib.fail(eb)
        raise StopIteration

    def close(self):
        """Closes the reader (again: nothing); next() raises ClosedError."""
        self._ended = False
        if self._h is not None:
            self._h.close()


def _array(a, dtype, width, what):
    """a as a C-contiguous 2-D array of dtype with width columns (no copy
    when it already is one); ValueError/TypeError otherwise."""
    a = np.asarray(a)
    if a.dtype != dtype:
        raise TypeError("%s: want a %s array, not %s" % (what, np.dtype(dtype).name, a.dtype))
    if a.ndim != 2 or a.shape[1] != width:
        raise ValueError("%s: want shape (N, %d), not %s" % (what, width, a.shape))
    return np.ascontiguousarray(a)
