"""deeppacket: Deep Packet models from Python, over libdeeppacket (ctypes).

    import deeppacket
    model = deeppacket.Model.load("traffic.model")
    model.classes                                  # class names by id
    lp = model.predict(vectors)                    # uint8 [N, 1500] -> float32 [N, C] log-probabilities
    for v in model.classify_pcap("x.pcap", per="flow"):
        print(v["label"], v["prob"])               # the dicts of `deeppacket classify` JSON lines
    ds = deeppacket.load_dataset("split/traffic_classification/test")

A Model and a PcapReader free their library memory on close(), at the end
of a with block or on garbage collection; a closed one raises ClosedError (a
DeepPacketError and a ValueError). A reader made from a model keeps reading
after the model is closed: the library's model is freed once it and all its
readers are closed. Dataset arrays are copies, owned by numpy.

The library is found through $DEEPPACKET_LIB, next to the package (in the
source tree: build/), where `make install` put it, or the system's.
"""
from ._lib import ClosedError, DeepPacketError
from ._lib import path as library_path
from ._lib import lib as _clib
from ._model import Model, PcapReader
from ._dataset import Dataset, load_dataset

__version__ = _clib.deeppacket_version().decode()

__all__ = ["Model", "PcapReader", "Dataset", "load_dataset", "DeepPacketError", "ClosedError", "library_path",
           "__version__"]
