#!/usr/bin/python3
"""Converts the reference PyTorch pipeline's trained CNN into a deeppacket
model file, so its users can bring their trained weights.

    /usr/bin/python3 tools/import_torch.py CHECKPOINT -o MODEL
                     [-t app|traffic] [--labels TABLE]

CHECKPOINT is the reference's torch.save file (PyTorch Lightning): a dict
with "state_dict" (conv1.0.weight, conv1.0.bias, conv2.0.*, fc1.0.*, fc2.0.*,
fc3.0.*, out.weight, out.bias) and "hyper_parameters" (c1_output_dim,
c1_kernel_size, c1_stride, c2_output_dim, c2_kernel_size, c2_stride,
output_dim, signal_length). The reference's layers are deeppacket's CNN
(spec section 5): Conv1d + ReLU twice (no padding), MaxPool1d(2), flatten
(channel-major), Linear -> Dropout -> ReLU per hidden layer, Linear out; its
input is the 1500 packet bytes / 255, as deeppacket scales them.

The model file is docs/model-format.md, version 2 (src/model/dp_model_file.c):
kind CNN, packet input, no field mask, tensors renamed to deeppacket's
(conv1.0.weight -> conv1.weight, fc1.0.weight -> fc1.weight), the checksum
FNV-1a 64 of every byte before it. Class names come from a deeppacket label
table (default data/iscx-labels.tsv, whose ids are the reference's) for the
task (-t; by default app when output_dim is 15, traffic when 11). The file
is written atomically (temp file, fsync, rename, fsync of the folder).

Needs python3-torch (Debian) only; Lightning itself need not be installed
(classes of its own in the checkpoint are read as plain dicts).
Exit status: 0 done, 1 a bad checkpoint or table (message on stderr), 2 usage.
"""
import argparse
import os
import struct
import sys
import tempfile
import types

FNV_INIT = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
KIND_CNN, TASKS = 0, {"app": 0, "traffic": 1}
HP_KEYS = ("c1_output_dim", "c1_kernel_size", "c1_stride", "c2_output_dim", "c2_kernel_size", "c2_stride",
           "output_dim", "signal_length")
POOL, DROPOUT, SIGNAL = 2, 0.05, 1500


class Bad(Exception):
    """A checkpoint or table this tool cannot convert (exit 1)."""


def fnv1a(data, h=FNV_INIT):
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


class _Stub(dict):
    """Stands in for a class of a package that is not installed (Lightning's
    AttributeDict): keeps what it is given, as a dict."""

    def __init__(self, *args, **kw):
        super().__init__()
        if args and isinstance(args[0], dict):
            self.update(args[0])
        self.update(kw)

    def __setstate__(self, state):
        if isinstance(state, dict):
            self.update(state)


def _stub_class(module, attr):
    if attr.startswith("__"):  # the import machinery's questions (__path__, ...)
        raise AttributeError(attr)
    return type(attr, (_Stub,), {"__module__": module})


def _stub_module(name):
    """Registers module `name` (and its parents) as stand-ins whose every
    attribute is a _Stub class, so that pickle can rebuild objects of a
    package that is not installed (torch.load has no hook for this that every
    version honours: Debian's 1.13 ignores pickle_module)."""
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        n = ".".join(parts[:i])
        if n not in sys.modules:
            m = types.ModuleType(n)
            m.__getattr__ = lambda attr, n=n: _stub_class(n, attr)
            sys.modules[n] = m
            _STUBBED.append(n)


_STUBBED = []


def load_checkpoint(path):
    import torch
    kw, ck = {"map_location": "cpu"}, None
    if "weights_only" in torch.load.__code__.co_varnames:
        kw["weights_only"] = False  # the checkpoint holds more than tensors (trusted file)
    try:
        for _ in range(32):
            try:
                ck = torch.load(path, **kw)
                break
            except ModuleNotFoundError as e:  # a class of Lightning's: stand in for its module
                if not e.name or e.name in sys.modules:
                    raise
                _stub_module(e.name)
    except Exception as e:  # torch raises many kinds for a file that is not a checkpoint
        raise Bad("%s: cannot read as a torch.save file: %s" % (path, e))
    finally:
        for n in _STUBBED:
            sys.modules.pop(n, None)
    if not isinstance(ck, dict) or "state_dict" not in ck or "hyper_parameters" not in ck:
        raise Bad("%s: not a PyTorch Lightning checkpoint (no state_dict and hyper_parameters)" % path)
    return ck


def hparams(ck, path):
    hp = ck["hyper_parameters"]
    hp = dict(hp) if isinstance(hp, dict) else dict(getattr(hp, "__dict__", {}))
    missing = [k for k in HP_KEYS if k not in hp]
    if missing:
        raise Bad("%s: hyper_parameters lack %s" % (path, ", ".join(missing)))
    try:
        return {k: int(hp[k]) for k in HP_KEYS}
    except (TypeError, ValueError):
        raise Bad("%s: hyper_parameters %s are not all integers" % (path, ", ".join(HP_KEYS)))


def conv_len(n, k, s):
    return (n - k) // s + 1 if n >= k else 0


def tensors(ck, hp, path):
    """deeppacket's tensor list [(name, shape, float32 bytes)] from the state_dict,
    every shape checked against the hyper-parameters."""
    sd = ck["state_dict"]
    if hp["signal_length"] != SIGNAL:
        raise Bad("%s: signal_length %d: deeppacket's vectors are %d bytes" % (path, hp["signal_length"], SIGNAL))
    c1, k1, s1 = hp["c1_output_dim"], hp["c1_kernel_size"], hp["c1_stride"]
    c2, k2, s2 = hp["c2_output_dim"], hp["c2_kernel_size"], hp["c2_stride"]
    if not (1 <= c1 <= 4096 and 1 <= c2 <= 4096 and all(1 <= v <= 64 for v in (k1, s1, k2, s2))):
        raise Bad("%s: convolution sizes out of deeppacket's range (filters 1..4096, kernel and stride 1..64)"
                  % path)
    flat = c2 * (conv_len(conv_len(SIGNAL, k1, s1), k2, s2) // POOL)
    want = [("conv1.0.weight", (c1, 1, k1)), ("conv1.0.bias", (c1,)),
            ("conv2.0.weight", (c2, c1, k2)), ("conv2.0.bias", (c2,))]
    nh = 0
    while "fc%d.0.weight" % (nh + 1) in sd:
        nh += 1
    if not 1 <= nh <= 8:
        raise Bad("%s: %d hidden layers (fc1.0 ...), deeppacket takes 1..8" % (path, nh))
    width = flat
    for i in range(1, nh + 1):
        w = sd["fc%d.0.weight" % i]
        out = int(w.shape[0]) if w.dim() == 2 else -1
        want += [("fc%d.0.weight" % i, (out, width)), ("fc%d.0.bias" % i, (out,))]
        width = out
    want += [("out.weight", (hp["output_dim"], width)), ("out.bias", (hp["output_dim"],))]
    extra = sorted(set(k for k in sd if not k.endswith("num_batches_tracked")) - set(n for n, _ in want))
    if extra:
        raise Bad("%s: state_dict has tensors the reference CNN does not: %s" % (path, ", ".join(extra)))
    result, hidden = [], []
    for name, shape in want:
        if name not in sd:
            raise Bad("%s: state_dict lacks %s" % (path, name))
        t = sd[name].detach().to("cpu").float().contiguous()
        if tuple(t.shape) != shape:
            raise Bad("%s: %s has shape %s, expected %s" % (path, name, list(t.shape), list(shape)))
        if not bool(t.isfinite().all()):
            raise Bad("%s: %s holds NaN or infinite values" % (path, name))
        if name.startswith("fc") and name.endswith("bias"):
            hidden.append(shape[0])
        result.append((name.replace(".0.", "."), shape, t.numpy().astype("<f4").tobytes()))
    return result, hidden


def class_names(table, task, n):
    names = [""] * n
    try:
        with open(table, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except OSError as e:
        raise Bad("%s: %s" % (table, e.strerror))
    col = 1 if task == "app" else 3
    seen_header = False
    for i, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        if not seen_header:
            seen_header = True
            continue
        if len(cells) != 5:
            raise Bad("%s:%d: %d fields, expected 5 (prefix app_id app_name traffic_id traffic_name)"
                      % (table, i, len(cells)))
        if cells[col] == "":
            continue
        try:
            cid = int(cells[col])
        except ValueError:
            raise Bad("%s:%d: class id '%s' is not a number" % (table, i, cells[col]))
        if not 0 <= cid < n:
            raise Bad("%s:%d: class id %d, but the checkpoint has %d outputs" % (table, i, cid, n))
        names[cid] = cells[col + 1][:255]
    return names


def model_bytes(task, names, tens, hidden, strides, epochs_run):
    """The model file body (without the checksum), docs/model-format.md."""
    u32 = lambda *v: struct.pack("<%dI" % len(v), *v)
    c1, _, k1 = tens[0][1]
    c2, _, k2 = tens[2][1]
    b = bytearray(b"DPMODEL\0")
    b += u32(2, KIND_CNN, TASKS[task], len(names), SIGNAL)
    b += u32(c1, k1, strides[0], c2, k2, strides[1], POOL)
    b += u32(len(hidden), *(hidden + [0] * (8 - len(hidden))))
    b += struct.pack("<f", DROPOUT)
    b += u32(20, 16, 3, 2, 0, epochs_run)  # epochs, batch, patience, pretrain, threads, epochs_run
    b += struct.pack("<6f", 1e-3, 0.9, 0.999, 1e-8, 0.0, 0.0)  # Adam, validation, final_loss
    b += struct.pack("<2Q", 9876, 0)  # seed, train_samples (unknown)
    b += u32(0, 0, 0, 0, 0) + struct.pack("<8i", *([0] * 8))  # packet input, no mask, no flow config
    for n in names:
        s = n.encode("utf-8")[:255]
        b += struct.pack("<H", len(s)) + s
    b += u32(len(tens))
    off = 0
    for name, shape, data in tens:
        s = name.encode()
        numel = len(data) // 4
        b += struct.pack("<H", len(s)) + s + u32(len(shape), *shape) + struct.pack("<2Q", off, numel)
        off += numel
    b += struct.pack("<Q", off)
    for t in tens:
        b += t[2]
    b += struct.pack("<Q", 0)  # no blob
    return bytes(b)


def write_atomic(path, data):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".tmp.", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    dfd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def convert(args):
    ck = load_checkpoint(args.checkpoint)
    hp = hparams(ck, args.checkpoint)
    task = args.task or {15: "app", 11: "traffic"}.get(hp["output_dim"])
    if task is None:
        raise Bad("%s: output_dim %d: say the task with -t app|traffic" % (args.checkpoint, hp["output_dim"]))
    tens, hidden = tensors(ck, hp, args.checkpoint)
    names = class_names(args.labels, task, hp["output_dim"])
    epoch = ck.get("epoch", 0)
    strides = (hp["c1_stride"], hp["c2_stride"])
    body = model_bytes(task, names, tens, hidden, strides, int(epoch) + 1 if isinstance(epoch, int) else 0)
    write_atomic(args.output, body + struct.pack("<Q", fnv1a(body)))
    print("import_torch: %s -> %s (cnn %s, %d classes, conv1 %d/%d/%d, conv2 %d/%d/%d, hidden %s)"
          % (args.checkpoint, args.output, task, len(names), hp["c1_output_dim"], hp["c1_kernel_size"],
             hp["c1_stride"], hp["c2_output_dim"], hp["c2_kernel_size"], hp["c2_stride"], hidden),
          file=sys.stderr)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description="reference PyTorch CNN checkpoint -> deeppacket model file")
    p.add_argument("checkpoint")
    p.add_argument("-o", "--output", required=True, help="the deeppacket model file to write")
    p.add_argument("-t", "--task", choices=sorted(TASKS), help="app or traffic (default: from output_dim)")
    p.add_argument("--labels", default=os.path.join(here, "..", "data", "iscx-labels.tsv"),
                   help="label table giving the class names (default: data/iscx-labels.tsv)")
    args = p.parse_args()
    try:
        import torch  # noqa: F401
    except ImportError:
        print("import_torch: needs PyTorch (Debian: apt-get install python3-torch)", file=sys.stderr)
        return 1
    try:
        convert(args)
    except Bad as e:
        print("import_torch: %s" % e, file=sys.stderr)
        return 1
    except OSError as e:
        print("import_torch: %s: %s" % (e.filename or args.output, e.strerror), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
