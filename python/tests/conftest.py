"""Fixtures of the Python package's tests: the in-tree build (skip with a
message without it), and a small dataset, split and models made with the
CLI from the committed corpus (data/corpus) once per session."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
CLI = os.path.join(BUILD, "deeppacket")
sys.path.insert(0, os.path.join(ROOT, "python"))


def run(*args, check=True):
    """Runs the CLI; the CompletedProcess (text)."""
    p = subprocess.run([CLI, *args], cwd=ROOT, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError("deeppacket %s: exit %d\n%s" % (" ".join(args), p.returncode, p.stderr))
    return p


@pytest.fixture(scope="session")
def built():
    if not os.access(CLI, os.X_OK) or not os.path.exists(os.path.join(BUILD, "libdeeppacket.so.0")):
        pytest.skip("no %s or libdeeppacket.so.0 there: run make first" % CLI)
    return BUILD


@pytest.fixture(scope="session")
def dp(built):
    """The package, on the library $DEEPPACKET_LIB names or build/'s."""
    import deeppacket
    return deeppacket


@pytest.fixture(scope="session")
def work(built, tmp_path_factory):
    """The corpus preprocessed, split by flow (traffic task), an SAE (one
    epoch) and a GBT (10 trees) trained on the split's training side."""
    t = tmp_path_factory.mktemp("dp")
    ds, split = str(t / "ds"), str(t / "split")
    run("preprocess", "-s", "data/corpus", "-t", ds, "--labels", "data/corpus/labels.tsv", "-q")
    run("split", "-s", ds, "-t", split, "--task", "traffic")
    train = os.path.join(split, "traffic_classification", "train")
    sae, gbt = str(t / "sae.model"), str(t / "gbt.model")
    run("train", "-d", train, "-m", sae, "-t", "traffic", "--model", "sae", "--epochs", "1",
        "--pretrain-epochs", "0", "-j", "1")
    run("train", "-d", train, "-m", gbt, "-t", "traffic", "--model", "gbt", "--trees", "10", "-j", "1")
    return {"dir": t, "dataset": ds, "train": train, "test": os.path.join(split, "traffic_classification", "test"),
            "sae": sae, "gbt": gbt}
