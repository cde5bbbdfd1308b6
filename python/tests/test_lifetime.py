"""Lifetimes of the library memory behind the package's objects: no
sequence of Python calls hands the library a freed pointer. A Model closed
(close(), a with block) while readers made from it are open keeps its
library handle until they close; a closed Model or PcapReader raises
ClosedError; neither can be copied or pickled; closing from another thread
waits for a running call; Dataset arrays are numpy's own.

The guard fixture stands in for ASan in an ordinary build: it sees every
library call and fails the test when one gets a handle that is not open
(a use after free, a double free) or frees a model under an open reader.
Under an ASan library (DEEPPACKET_LIB=build-asan/libdeeppacket.so.0,
LD_PRELOAD=libasan.so) the same tests check the library's side."""
import copy
import gc
import os
import pickle
import threading

import numpy as np
import pytest

from conftest import ROOT
from test_deeppacket import CAPTURE, cli_lines

BIG = os.path.join(ROOT, "data", "corpus", "vpn_sftpup_03.pcap")
OPENS = ("deeppacket_open", "deeppacket_dataset_open")
FREES = ("deeppacket_close", "deeppacket_pcap_close", "deeppacket_dataset_close")


class Guard:
    """The library's functions, wrapped: handles opened (with a reader's
    model) in live, frees in order in frees, refused calls in errors."""

    def __init__(self):
        self.live, self.frees, self.errors, self.calls = {}, [], [], 0

    def refuse(self, msg):
        self.errors.append(msg)
        raise AssertionError(msg)

    def wrap(self, name, fn):
        def call(*args):
            self.calls += 1
            if name in OPENS:
                h = fn(*args)
                if h:
                    self.live[h] = None
                return h
            h = args[0]
            if h not in self.live:
                self.refuse("%s(%#x): not an open handle (freed?)" % (name, h or 0))
            model = self.live[h]
            if model is not None and model not in self.live:
                self.refuse("%s(%#x): its model %#x was freed" % (name, h, model))
            if name == "deeppacket_close" and h in self.live.values():
                self.refuse("deeppacket_close(%#x): a reader of it is open" % h)
            if name == "deeppacket_pcap_open":
                r = fn(*args)
                if r:
                    self.live[r] = h
                return r
            if name in FREES:
                self.frees.append(name)
                del self.live[h]
            return fn(*args)
        return call


@pytest.fixture
def guard(dp, monkeypatch):
    g = Guard()
    for name in dp._lib._PROTOTYPES:
        monkeypatch.setattr(dp._lib.lib, name, g.wrap(name, getattr(dp._lib.lib, name)))
    yield g
    gc.collect()
    assert not g.errors
    assert not g.live, "handles never freed: %s" % g.live


def packet_lines(work):
    """classify --per packet's verdicts on CAPTURE with the SAE."""
    want, rc = cli_lines("-m", work["sae"], "-r", CAPTURE, "--per", "packet")
    assert rc == 0 and len(want) > 2
    return want


def test_reader_outlives_its_models_with_block(dp, work, guard):
    """The audit's reproducer: reading after the with block that made the reader."""
    want = packet_lines(work)
    with dp.Model(work["sae"]) as m:
        reader = m.classify_pcap(CAPTURE, per="packet")
    assert list(reader) == want
    assert m.closed and reader.closed
    assert guard.frees == ["deeppacket_pcap_close", "deeppacket_close"]
    with pytest.raises(dp.ClosedError, match="the model is closed"):
        m.predict(np.zeros((1, 1500), dtype=np.uint8))
    with dp.Model(work["sae"]) as m:
        reader = m.classify_pcap(CAPTURE, per="packet")
    assert m.closed and not reader.closed
    assert guard.frees == ["deeppacket_pcap_close", "deeppacket_close"]  # the reader needs the library's model
    del reader
    assert guard.frees == ["deeppacket_pcap_close", "deeppacket_close"] * 2


def test_model_closed_under_open_readers(dp, work, guard):
    want = packet_lines(work)
    m = dp.Model(work["sae"])
    r1, r2 = m.classify_pcap(CAPTURE, per="packet"), m.classify_pcap(CAPTURE, per="packet")
    assert next(r1) == want[0]
    m.close()
    m.close()
    with pytest.raises(dp.ClosedError):
        m.classify_pcap(CAPTURE)
    assert [next(r1), next(r2)] == want[1:2] + want[:1]
    r1.close()
    assert guard.frees == ["deeppacket_pcap_close"]
    with pytest.raises(dp.ClosedError, match="reader of"):
        next(r1)
    with pytest.raises(ValueError):  # as a closed file
        next(r1)
    assert list(r2) == want[1:]
    assert guard.frees == ["deeppacket_pcap_close"] * 2 + ["deeppacket_close"]


def test_dropped_reader_frees_closed_model(dp, work, guard):
    """A reader left half read: garbage collection closes it, and the model with it."""
    m = dp.Model(work["sae"])
    r = m.classify_pcap(CAPTURE, per="packet")
    next(r)
    m.close()
    assert guard.frees == []
    del r
    assert guard.frees == ["deeppacket_pcap_close", "deeppacket_close"]


def test_reader_close_end_and_with_block(dp, work, guard):
    want = packet_lines(work)
    m = dp.Model(work["sae"])
    with m.classify_pcap(CAPTURE, per="packet") as r:
        assert next(r) == want[0]
    with pytest.raises(dp.ClosedError, match="reader of"):
        next(r)
    assert r.closed
    r = m.classify_pcap(CAPTURE, per="packet")
    assert list(r) == want and r.closed
    for _ in range(2):  # the end stays the end
        with pytest.raises(StopIteration):
            next(r)
    r.close()
    with pytest.raises(dp.ClosedError):
        next(r)
    assert guard.frees == ["deeppacket_pcap_close"] * 2
    assert m.predict(np.zeros((1, 1500), dtype=np.uint8)).shape == (1, len(m.classes))
    m.close()
    assert guard.frees[-1] == "deeppacket_close"


def test_reader_failures_release_the_model(dp, work, guard):
    m = dp.Model(work["sae"])
    with pytest.raises(dp.DeepPacketError, match="not a pcap or pcapng file"):
        m.classify_pcap(work["sae"])
    with pytest.raises(TypeError, match="want a deeppacket.Model"):
        dp.PcapReader(object(), CAPTURE, -1, 0)
    cut = str(work["dir"] / "cut_lifetime.pcap")
    with open(CAPTURE, "rb") as f, open(cut, "wb") as g:
        g.write(f.read(9000))
    r = m.classify_pcap(cut, per="packet")
    with pytest.raises(dp.DeepPacketError, match="cut_lifetime.pcap"):
        list(r)
    assert r.closed and guard.frees == ["deeppacket_pcap_close"]
    with pytest.raises(StopIteration):
        next(r)
    m.close()
    assert guard.frees == ["deeppacket_pcap_close", "deeppacket_close"]


def test_closed_model_refuses_every_call(dp, work, guard):
    frames = [open(CAPTURE, "rb").read()[40:140]]
    for path in (work["sae"], work["gbt"]):
        m = dp.Model(path)
        m.close()
        calls = guard.calls
        todo = [lambda: m.predict(np.zeros((1, 1500), dtype=np.uint8)),
                lambda: m.classify_flow(frames, [0.0]),
                lambda: m.classify_pcap(CAPTURE),
                lambda: dp.PcapReader(m, CAPTURE, -1, 0)]
        if m.wants_flows:
            todo.append(lambda: m.predict_flows(np.zeros((1, m.flow_row_len), dtype=np.float32)))
        for call in todo:
            with pytest.raises(dp.ClosedError, match="the model is closed") as e:
                call()
            assert isinstance(e.value, ValueError) and isinstance(e.value, dp.DeepPacketError)
        assert guard.calls == calls  # nothing reached the library
        assert m.classes and m.kind  # the model's description stays
    with pytest.raises(dp.ClosedError):  # a Model whose __init__ did not run
        dp.Model.__new__(dp.Model).predict(np.zeros((1, 1500), dtype=np.uint8))


def test_cycle_of_model_and_reader(dp, work, guard):
    """Only the cyclic collector frees these, finalizers in any order."""
    m = dp.Model(work["sae"])
    r = m.classify_pcap(CAPTURE, per="flow")
    m.reader, r.model = r, m
    del m, r
    gc.collect()
    assert guard.frees == ["deeppacket_pcap_close", "deeppacket_close"]


@pytest.mark.parametrize("copier", [copy.copy, copy.deepcopy, pickle.dumps])
def test_no_copies(dp, work, guard, copier):
    """A copy would be a second owner of the handle: a double free."""
    m = dp.Model(work["sae"])
    r = m.classify_pcap(CAPTURE)
    for obj in (m, r):
        with pytest.raises(TypeError, match="cannot copy or pickle a deeppacket"):
            copier(obj)
    with pytest.raises(TypeError, match="cannot be copied or pickled"):
        copier(m._h)


def test_threads_close_while_reading(dp, work, guard):
    """close() from another thread waits for the running call; the reading
    thread then sees ClosedError, never freed memory."""
    m = dp.Model(work["sae"])
    x = np.zeros((64, 1500), dtype=np.uint8)
    unexpected = []

    def read(r):
        try:
            for _ in r:
                pass
        except dp.ClosedError:
            pass
        except BaseException as e:  # noqa: B902 - anything else fails the test
            unexpected.append(e)

    for rnd in range(6):
        readers = [m.classify_pcap(BIG, per="packet") for _ in range(3)]
        threads = [threading.Thread(target=read, args=(r,)) for r in readers]
        for t in threads:
            t.start()
        m.predict(x)
        readers[rnd % 3].close()
        if rnd == 5:
            m.close()
        readers[(rnd + 1) % 3].close()
        for t in threads:
            t.join()
    assert not unexpected
    del readers, threads
    assert guard.frees[-1] == "deeppacket_close"


def test_dataset_arrays_outlive_the_library_view(dp, work, guard):
    """load_dataset closes its library view before returning: the arrays are
    copies numpy owns, not views of the view's mapped files."""
    ds = dp.load_dataset(work["test"])
    assert guard.frees == ["deeppacket_dataset_close"] and not guard.live
    for a in (ds.vectors, ds.labels, ds.flows):
        assert a.base is None and a.flags.owndata and a.flags.writeable
    gc.collect()
    assert np.array_equal(ds.vectors, np.load(os.path.join(work["test"], "vectors.npy")))
    assert np.array_equal(ds.labels, np.load(os.path.join(work["test"], "labels.npy")))
