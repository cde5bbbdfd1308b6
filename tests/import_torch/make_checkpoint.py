#!/usr/bin/python3
"""Writes a checkpoint shaped like the reference PyTorch pipeline's trained
CNN (PyTorch Lightning: state_dict with conv1.0.*, conv2.0.*, fc1.0.* ...,
hyper_parameters as Lightning's AttributeDict, whose package is not
installed where the tool runs), random weights, and the torch model's
log-probabilities on test vectors, for tests/import_torch/run.sh.

    make_checkpoint.py app|traffic SEED OUT.ckpt OUTDIR [VECTORS.npy] [--broken WHAT]

OUTDIR gets input.npy (uint8 [N, 1500]: 64 random vectors with trailing
zeros, then up to 300 rows of VECTORS.npy) and torch.npy (float32 [N, C]).
--broken writes a faulty checkpoint instead: "missing" (no out.bias),
"shape" (conv2 with the wrong kernel), "hparams" (no c2_stride).
"""
import sys
import types

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# the reference's hyper-parameters (train_cnn.py): app 15 classes, traffic 11
HP = {"app": dict(c1_kernel_size=4, c1_output_dim=200, c1_stride=3, c2_kernel_size=5, c2_output_dim=200,
                  c2_stride=1, output_dim=15, signal_length=1500),
      "traffic": dict(c1_kernel_size=5, c1_output_dim=200, c1_stride=3, c2_kernel_size=4, c2_output_dim=200,
                      c2_stride=3, output_dim=11, signal_length=1500)}


class RefCNN(nn.Module):
    """The reference's CNN (ml/model.py), its layers and forward."""

    def __init__(self, c1_kernel_size, c1_output_dim, c1_stride, c2_kernel_size, c2_output_dim, c2_stride,
                 output_dim, signal_length=1500):
        super().__init__()
        self.signal_length = signal_length
        self.conv1 = nn.Sequential(nn.Conv1d(1, c1_output_dim, c1_kernel_size, c1_stride), nn.ReLU())
        self.conv2 = nn.Sequential(nn.Conv1d(c1_output_dim, c2_output_dim, c2_kernel_size, c2_stride), nn.ReLU())
        self.max_pool = nn.MaxPool1d(kernel_size=2)
        n = self.max_pool(self.conv2(self.conv1(torch.rand(1, 1, signal_length)))).view(1, -1).shape[1]
        self.fc1 = nn.Sequential(nn.Linear(n, 200), nn.Dropout(p=0.05), nn.ReLU())
        self.fc2 = nn.Sequential(nn.Linear(200, 100), nn.Dropout(p=0.05), nn.ReLU())
        self.fc3 = nn.Sequential(nn.Linear(100, 50), nn.Dropout(p=0.05), nn.ReLU())
        self.out = nn.Linear(50, output_dim)

    def forward(self, x):
        b = x.shape[0]
        x = x.view(b, 1, self.signal_length)
        x = self.max_pool(self.conv2(self.conv1(x))).reshape(b, -1)
        return self.out(self.fc3(self.fc2(self.fc1(x))))


def lightning_attribute_dict():
    """A class pickled as pytorch_lightning.utilities.parsing.AttributeDict."""
    names = ["pytorch_lightning", "pytorch_lightning.utilities", "pytorch_lightning.utilities.parsing"]
    for n in names:
        sys.modules.setdefault(n, types.ModuleType(n))
    cls = type("AttributeDict", (dict,), {"__module__": names[-1]})
    sys.modules[names[-1]].AttributeDict = cls
    return cls


def main():
    task, seed, out, outdir = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    rest = sys.argv[5:]
    broken = rest[rest.index("--broken") + 1] if "--broken" in rest else None
    vectors = [a for a in rest if a.endswith(".npy")]
    torch.manual_seed(seed)
    hp = dict(HP[task])
    m = RefCNN(**hp).eval()
    with torch.no_grad():  # spread the outputs so that a wrong layer shows
        m.out.weight.mul_(30.0)
    sd = m.state_dict()
    if broken == "missing":
        del sd["out.bias"]
    elif broken == "shape":
        sd["conv2.0.weight"] = sd["conv2.0.weight"][:, :, :3].clone()
    elif broken == "hparams":
        del hp["c2_stride"]
    hp.update(data_path="train_test_data/traffic_classification/train.parquet")
    ck = {"epoch": 4, "global_step": 1000, "pytorch-lightning_version": "1.6.4", "state_dict": sd,
          "hyper_parameters": lightning_attribute_dict()(hp), "callbacks": {}, "optimizer_states": [],
          "lr_schedulers": []}
    torch.save(ck, out)
    if broken:
        return
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(64, 1500), dtype=np.uint8)
    for i in range(64):
        x[i, rng.integers(20, 1500):] = 0
    x[:, 0] = 0x45
    if vectors:
        x = np.concatenate([x, np.load(vectors[0], mmap_mode="r")[:300]])
    with torch.no_grad():
        lp = F.log_softmax(m(torch.from_numpy(x).float() / 255.0), 1).numpy().astype(np.float32)
    np.save(outdir + "/input.npy", x)
    np.save(outdir + "/torch.npy", lp)


if __name__ == "__main__":
    main()
