"""PyTorch twin of the deeppacket models (src/model/dp_model.c).

Same architectures, same parameter names (state_dict keys == the tensor
names in our model files: conv1.weight, ..., fc1.weight, ..., out.bias),
same layer order (Linear -> Dropout -> ReLU for each hidden layer), so
weights can be exchanged both ways. Input: float [B, 1500] (bytes / 255).

Used by tools/make_model_fixtures.py (exactness fixtures), bench/bench_train.sh
(speed) and bench/torch_pipeline.py (accuracy parity).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

APP, TRAFFIC = 0, 1
CNN_CONV = {APP: ((4, 3), (5, 1)), TRAFFIC: ((5, 3), (4, 3))}
CNN_HIDDEN = (200, 100, 50)
SAE_HIDDEN = (400, 300, 200, 100, 50)
IN_LEN = 1500


def conv_len(L, k, s):
    return (L - k) // s + 1 if L >= k else 0


class CNN(nn.Module):
    def __init__(self, task, nclasses, c1=200, c2=200, hidden=CNN_HIDDEN, dropout=0.05, pool=2):
        super().__init__()
        (k1, s1), (k2, s2) = CNN_CONV[task]
        self.conv1 = nn.Conv1d(1, c1, k1, s1)
        self.conv2 = nn.Conv1d(c1, c2, k2, s2)
        self.pool = nn.MaxPool1d(pool)
        L3 = conv_len(conv_len(IN_LEN, k1, s1), k2, s2) // pool
        dims = [c2 * L3] + list(hidden)
        for i in range(len(hidden)):
            setattr(self, "fc%d" % (i + 1), nn.Linear(dims[i], dims[i + 1]))
        self.out = nn.Linear(dims[-1], nclasses)
        self.nhidden = len(hidden)
        self.p = dropout

    def forward(self, x):
        x = x.unsqueeze(1)
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = self.pool(x).flatten(1)
        for i in range(self.nhidden):
            x = F.relu(F.dropout(getattr(self, "fc%d" % (i + 1))(x), self.p, self.training))
        return self.out(x)


class SAE(nn.Module):
    def __init__(self, nclasses, hidden=SAE_HIDDEN, dropout=0.05):
        super().__init__()
        dims = [IN_LEN] + list(hidden)
        for i in range(len(hidden)):
            setattr(self, "fc%d" % (i + 1), nn.Linear(dims[i], dims[i + 1]))
        self.out = nn.Linear(dims[-1], nclasses)
        self.nhidden = len(hidden)
        self.p = dropout

    def forward(self, x):
        for i in range(self.nhidden):
            x = F.relu(F.dropout(getattr(self, "fc%d" % (i + 1))(x), self.p, self.training))
        return self.out(x)


def make(kind, task, nclasses, **kw):
    return CNN(task, nclasses, **kw) if kind == "cnn" else SAE(nclasses, **kw)
