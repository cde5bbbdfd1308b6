"""deeppacket: Deep Packet models from Python, over libdeeppacket (ctypes).

    import deeppacket
    model = deeppacket.Model.load("traffic.model")
    model.classes                                  # class names by id
    lp = model.predict(vectors)                    # uint8 [N, 1500] -> float32 [N, C] log-probabilities
    for v in model.classify_pcap("x.pcap", per="flow"):
        print(v["label"], v["prob"])               # the dicts of `deeppacket classify` JSON lines
    ds = deeppacket.load_dataset("split/traffic_classification/test")

The library is found through $DEEPPACKET_LIB, next to the package (in the
source tree: build/), where `make install` put it, or the system's.
"""
from ._lib import DeepPacketError
from ._lib import path as library_path
from ._lib import lib as _clib
from ._model import Model, PcapReader
from ._dataset import Dataset, load_dataset

__version__ = _clib.deeppacket_version().decode()

__all__ = ["Model", "PcapReader", "Dataset", "load_dataset", "DeepPacketError", "library_path", "__version__"]
