"""The Python package against the CLI's own outputs: `test --save-logprobs`
log-probabilities and report, `classify` JSON lines, and the folders'
.npy files; then every refusal with its message."""
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from conftest import BUILD, ROOT, run

CAPTURE = os.path.join(ROOT, "data", "corpus", "chat_03.pcap")


def cli_lines(*args):
    """classify's JSON lines as dicts, and its exit status."""
    p = run("classify", *args, check=False)
    return [json.loads(line) for line in p.stdout.splitlines()], p.returncode


def read_pcap(path):
    """(frames, times) of a little-endian microsecond pcap file."""
    data = open(path, "rb").read()
    magic, _, _, _, _, _, linktype = struct.unpack_from("<IHHiIII", data, 0)
    assert magic == 0xA1B2C3D4 and linktype == 1
    frames, times, off = [], [], 24
    while off + 16 <= len(data):
        sec, usec, caplen, _ = struct.unpack_from("<IIII", data, off)
        frames.append(data[off + 16:off + 16 + caplen])
        times.append(sec + usec * 1e-6)
        off += 16 + caplen
    return frames, times


def test_precision_per_model(dp, work):
    x = dp.load_dataset(work["test"]).vectors[:64]
    m32 = dp.Model.load(work["sae"])
    assert m32.precision == "fp32"
    want32 = m32.predict(x)
    try:
        m16 = dp.Model(work["sae"], precision="bf16")
    except dp.DeepPacketError as e:
        assert "AVX512_BF16" in str(e) or "oneDNN" in str(e)
        pytest.skip("no bf16 here: %s" % e)
    assert m16.precision == "bf16"
    lp16 = m16.predict(x)
    assert 0 < np.abs(lp16 - want32).max() < 0.05  # bf16's rounding, not fp32's bits
    assert np.array_equal(m32.predict(x), want32)  # the other model keeps its own
    m32.precision = "bf16"
    assert np.array_equal(m32.predict(x), lp16)
    m32.precision = "auto"
    assert m32.precision == "bf16"
    m32.precision = "fp32"
    assert np.array_equal(m32.predict(x), want32)
    assert np.array_equal(m16.predict(x), lp16)


def test_precision_errors(dp, work):
    with pytest.raises(dp.DeepPacketError, match="fp64"):
        dp.Model(work["sae"], precision="fp64")
    m = dp.Model(work["sae"])
    with pytest.raises(TypeError, match="precision is"):
        m.precision = 16
    with pytest.raises(dp.DeepPacketError, match="fp64"):
        m.precision = "fp64"
    assert m.precision == "fp32"
    m.close()
    with pytest.raises(dp.ClosedError):
        m.precision = "fp32"


def test_model_info(dp, work):
    sae = dp.Model.load(work["sae"])
    classes = [line.split("\t")[1] for line in open(os.path.join(work["train"], "classes.tsv")).read().splitlines()]
    assert sae.classes == [c if c else "" for c in classes]
    assert (sae.kind, sae.task, sae.mask, sae.wants_flows, sae.flow_packets) == ("sae", "traffic", "none", False, 0)
    gbt = dp.Model.load(work["gbt"])
    assert (gbt.kind, gbt.task, gbt.wants_flows, gbt.flow_packets) == ("gbt", "traffic", True, 10)
    assert gbt.mask == "ports,ipid,ttl,checksum,seq,tcpts"
    assert gbt.flow_row_len == 10 * (44 + 64)
    assert dp.__version__ == run("--version").stdout.split()[1]


def test_predict_matches_cli_test(dp, work):
    rep = str(work["dir"] / "report")
    run("test", "-d", work["test"], "-m", work["sae"], "-o", rep, "--save-logprobs", "-j", "1")
    ds = dp.load_dataset(work["test"])
    model = dp.Model.load(work["sae"])
    lp = model.predict(ds.vectors)
    want = np.load(os.path.join(rep, "logprobs.npy"))
    assert lp.dtype == np.float32 and lp.shape == want.shape == (len(ds), len(model.classes))
    np.testing.assert_allclose(lp, want, atol=1e-4)
    report = json.load(open(os.path.join(rep, "report.json")))
    assert report["n"] == len(ds)
    assert report["correct"] == int((lp.argmax(axis=1) == ds.labels).sum())
    assert model.predict(ds.vectors[:0]).shape == (0, len(model.classes))


def test_load_dataset_matches_npy(dp, work):
    ds = dp.load_dataset(work["test"])
    d = work["test"]
    assert np.array_equal(ds.vectors, np.load(os.path.join(d, "vectors.npy")))
    assert np.array_equal(ds.labels, np.load(os.path.join(d, "labels.npy")))
    assert np.array_equal(ds.flows, np.load(os.path.join(d, "meta.npy"))["flow"])
    assert ds.task == "traffic" and len(ds.classes) == 11 and ds.classes[0] == "Chat"
    # a dataset folder: the task's labelled rows only
    full = dp.load_dataset(work["dataset"], task="app")
    app = np.load(os.path.join(work["dataset"], "app.npy"))
    keep = app >= 0
    assert len(full) == int(keep.sum()) < len(app)
    assert np.array_equal(full.labels, app[keep])
    assert np.array_equal(full.vectors, np.load(os.path.join(work["dataset"], "vectors.npy"))[keep])
    assert full.task == "app"


@pytest.mark.parametrize("per,args", [(None, []), ("packet", ["--per", "packet"]), ("flow", ["--per", "flow"])])
def test_classify_pcap_matches_cli(dp, work, per, args):
    model = dp.Model.load(work["sae"])
    want, rc = cli_lines("-m", work["sae"], "-r", CAPTURE, *args)
    assert rc == 0 and want
    assert list(model.classify_pcap(CAPTURE, per=per)) == want


def test_classify_pcap_flow_model_and_first(dp, work):
    gbt = dp.Model.load(work["gbt"])
    want, rc = cli_lines("-m", work["gbt"], "-r", CAPTURE)
    assert rc == 0 and want[0]["packets"] == 10
    assert list(gbt.classify_pcap(CAPTURE)) == want
    assert list(gbt.classify_pcap(CAPTURE, per="flow")) == want
    sae = dp.Model.load(work["sae"])
    want, _ = cli_lines("-m", work["sae"], "-r", CAPTURE, "--per", "flow", "--first", "3")
    got = list(sae.classify_pcap(CAPTURE, per="flow", first=3))
    assert got == want and got[0]["packets"] == 3


def test_classify_flow_matches_cli(dp, work):
    """chat_03.pcap holds one flow: its frames give the CLI's flow verdict."""
    frames, times = read_pcap(CAPTURE)
    for path, first in ((work["gbt"], []), (work["sae"], ["--first", "1000"])):  # a flow model: its own N
        want, _ = cli_lines("-m", path, "-r", CAPTURE, "--per", "flow", *first)
        assert len(want) == 1
        v = dp.Model.load(path).classify_flow(frames, times)
        assert (v["class"], v["label"], v["packets"]) == (want[0]["class"], want[0]["label"], want[0]["packets"])
        assert abs(v["prob"] - want[0]["prob"]) < 2e-6
    assert dp.Model.load(work["sae"]).classify_flow([b"\x00" * 20], [0.0]) == \
        {"class": None, "label": None, "prob": 0.0, "packets": 0}


def test_min_prob(dp, work):
    """min_prob as classify --min-prob: the CLI's lines, unknown below it, in
    classify_pcap and classify_flow; refused values leave it unchanged."""
    sae = dp.Model(work["sae"])
    assert sae.min_prob == 0
    plain, _ = cli_lines("-m", work["sae"], "-r", CAPTURE)
    probs = sorted(set(v["prob"] for v in plain))
    assert len(probs) > 1
    t = (probs[0] + probs[-1]) / 2
    want, rc = cli_lines("-m", work["sae"], "-r", CAPTURE, "--min-prob", repr(t))
    assert rc == 0
    sae.min_prob = t
    got = list(sae.classify_pcap(CAPTURE))
    assert got == want
    unknown = [v for v in got if v["label"] == "unknown"]
    assert 0 < len(unknown) < len(got) and all(v["class"] == -1 and v["prob"] < t for v in unknown)
    frames, times = read_pcap(CAPTURE)
    g = dp.Model(work["gbt"], min_prob=1.0)
    assert g.min_prob == 1.0
    v = g.classify_flow(frames, times)
    assert (v["class"], v["label"]) == (-1, "unknown") and 0 < v["prob"] < 1
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(dp.DeepPacketError, match="not a probability"):
            sae.min_prob = bad
    with pytest.raises(TypeError, match="min_prob is"):
        sae.min_prob = "0.5"
    assert sae.min_prob == t
    with pytest.raises(dp.DeepPacketError, match="not a probability"):
        dp.Model(work["sae"], min_prob=2)


def test_predict_flows(dp, work):
    gbt = dp.Model.load(work["gbt"])
    rows = np.zeros((3, gbt.flow_row_len), dtype=np.float32)
    lp = gbt.predict_flows(rows)
    assert lp.shape == (3, len(gbt.classes))
    np.testing.assert_allclose(np.exp(lp).sum(axis=1), 1, atol=1e-5)
    assert np.array_equal(lp[0], lp[2])
    with pytest.raises(ValueError, match=r"want shape \(N, 1080\)"):
        gbt.predict_flows(rows[:, :100])


def test_truncated_capture(dp, work):
    """The verdicts of what could be read, as the CLI prints them, then the error."""
    cut = str(work["dir"] / "cut.pcap")
    with open(CAPTURE, "rb") as f, open(cut, "wb") as g:
        g.write(f.read(9000))
    want, rc = cli_lines("-m", work["sae"], "-r", cut, "--per", "packet")
    assert rc == 1 and want
    got = []
    with pytest.raises(dp.DeepPacketError, match="cut.pcap"):
        for v in dp.Model.load(work["sae"]).classify_pcap(cut, per="packet"):
            got.append(v)
    assert got == want


def test_classify_flow_linktype_range(dp, work):
    """A link type that is no C int is refused, not wrapped (2**32 + 1 read
    Ethernet frames, 2**40 BSD loopback ones)."""
    gbt = dp.Model.load(work["gbt"])
    frames, times = [b"\x00" * 60], [0.0]
    for lt in (2**32 + 1, 2**40, -2**31 - 1):
        with pytest.raises(ValueError, match="linktype %d is not a C int" % lt):
            gbt.classify_flow(frames, times, linktype=lt)
    with pytest.raises(TypeError):
        gbt.classify_flow(frames, times, linktype=1.5)
    assert gbt.classify_flow(frames, times, linktype=2**31 - 1)["packets"] == 0  # unsupported: nothing kept


def test_errors(dp, work):
    with pytest.raises(dp.DeepPacketError, match="/nonexistent/x.model"):
        dp.Model.load("/nonexistent/x.model")
    sae, gbt = dp.Model.load(work["sae"]), dp.Model.load(work["gbt"])
    with pytest.raises(TypeError, match="want a uint8 array, not float64"):
        sae.predict(np.zeros((2, 1500)))
    with pytest.raises(ValueError, match=r"want shape \(N, 1500\), not \(1500,\)"):
        sae.predict(np.zeros(1500, dtype=np.uint8))
    with pytest.raises(dp.DeepPacketError, match="gbt flow model reads flow rows"):
        gbt.predict(np.zeros((1, 1500), dtype=np.uint8))
    with pytest.raises(dp.DeepPacketError, match="packet model reads packet vectors"):
        sae.predict_flows(np.zeros((1, 1080), dtype=np.float32))
    with pytest.raises(dp.DeepPacketError, match="gives one verdict per flow"):
        gbt.classify_pcap(CAPTURE, per="packet")
    with pytest.raises(dp.DeepPacketError, match="not a pcap or pcapng file"):
        sae.classify_pcap(work["sae"])
    with pytest.raises(ValueError, match="per is"):
        sae.classify_pcap(CAPTURE, per="frame")
    with pytest.raises(ValueError, match="first wants a count"):
        sae.classify_pcap(CAPTURE, first=0)
    with pytest.raises(dp.DeepPacketError, match="no_such_dir"):
        dp.load_dataset(str(work["dir"] / "no_such_dir"))
    with pytest.raises(dp.DeepPacketError, match="task"):
        dp.load_dataset(work["dataset"])  # a dataset folder has two tasks
    with pytest.raises(dp.DeepPacketError, match="unknown task 'video'"):
        dp.load_dataset(work["test"], task="video")
    sae.close()
    with pytest.raises(dp.DeepPacketError, match="closed"):
        sae.predict(np.zeros((1, 1500), dtype=np.uint8))


def test_library_exports_only_the_api(dp, built):
    so = os.path.join(built, "libdeeppacket.so.0")
    syms = subprocess.run(["nm", "-D", "--defined-only", so], capture_output=True, text=True, check=True).stdout
    names = [line.split()[-1] for line in syms.splitlines() if line.strip()]
    assert names and all(n.startswith("deeppacket_") for n in names), names
    assert "deeppacket_pcap_next" in names and "deeppacket_version" in names
    dyn = subprocess.run(["readelf", "-d", so], capture_output=True, text=True, check=True).stdout
    assert "Library soname: [libdeeppacket.so.0]" in dyn
    assert os.path.realpath(so).endswith("libdeeppacket.so." + dp.__version__)


def python(code, **env):
    """Runs /usr/bin/python3 -c code with the in-tree package and env added."""
    e = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"), **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e)


def test_library_lookup(dp, built):
    p = python("import deeppacket; print(deeppacket.library_path)")
    assert p.returncode == 0 and p.stdout.strip() == os.path.realpath(os.path.join(built, "libdeeppacket.so.0"))
    copy = os.path.join(built, "libdeeppacket.so.0")
    p = python("import deeppacket; print(deeppacket.library_path)", DEEPPACKET_LIB=copy)
    assert p.returncode == 0 and p.stdout.strip() == os.path.realpath(copy)
    p = python("import deeppacket", DEEPPACKET_LIB="/nonexistent/libdeeppacket.so.0")
    assert p.returncode != 0
    assert "/nonexistent/libdeeppacket.so.0 (absent)" in p.stderr and "DEEPPACKET_LIB" in p.stderr
