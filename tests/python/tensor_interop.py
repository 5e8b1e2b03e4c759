"""Oracle for slt's tensor-file interop tests; run with Debian's /usr/bin/python3 (python3-torch).

  write DIR   writes reference.pt (torch.save), reference.safetensors and, per tensor,
              NAME.raw (the exact bytes) plus manifest.json (name, dtype, shape)
  check DIR   loads slt_written.pt and slt_written.safetensors (written by slt from
              what it read) and compares every tensor bit for bit with the originals
"""
import collections
import json
import os
import struct
import sys

import torch


def reference_tensors():
    g = torch.Generator().manual_seed(1234)
    t = collections.OrderedDict()
    t["f32"] = torch.randn(3, 5, generator=g)
    t["f16"] = torch.randn(4, 2, generator=g).half()
    t["bf16"] = torch.randn(7, generator=g).bfloat16()
    t["f64"] = torch.randn(2, 2, 2, generator=g).double()
    t["i64"] = torch.arange(-6, 6).reshape(3, 4)
    t["i32"] = torch.arange(10, dtype=torch.int32)
    t["i8"] = torch.arange(-4, 4, dtype=torch.int8)
    t["u8"] = torch.arange(250, 256, dtype=torch.uint8)
    t["bool"] = torch.tensor([True, False, True])
    t["scalar"] = torch.tensor(3.5)
    t["empty"] = torch.zeros(0, 768)
    t["noncontiguous"] = torch.arange(12.0).reshape(3, 4).t()
    return t


DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
          torch.int64: "I64", torch.int32: "I32", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}


def raw_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def write_safetensors(path, tensors):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        b = raw_bytes(t)
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    inverse = {v: k for k, v in DTYPES.items()}
    out = {}
    for name, entry in header.items():
        start, end = entry["data_offsets"]
        blob = bytearray(data[8 + n + start:8 + n + end])
        dtype = inverse[entry["dtype"]]
        if dtype == torch.bfloat16:
            t = torch.frombuffer(blob, dtype=torch.int16).view(torch.bfloat16) if blob else torch.empty(0, dtype=dtype)
        else:
            t = torch.frombuffer(blob, dtype=dtype) if blob else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(entry["shape"])
    return out


def main():
    mode, folder = sys.argv[1], sys.argv[2]
    tensors = reference_tensors()
    if mode == "write":
        checkpoint = {
            "model": tensors,
            "optimizer": {"state": {0: {"step": 3}}, "param_groups": [{"lr": 0.001, "params": [0, 1]}]},
            "epoch": 7,
            "name": "slt",
            "nested": [(1, 2.5, None, True), ["x"]],
            "tied": tensors["f32"],  # shares storage with model.f32
            "namespace": __import__("argparse").Namespace(lr=0.1),
        }
        torch.save(checkpoint, os.path.join(folder, "reference.pt"))
        torch.save(tensors["f32"], os.path.join(folder, "single.pt"))
        write_safetensors(os.path.join(folder, "reference.safetensors"), tensors)
        manifest = []
        for name, t in tensors.items():
            with open(os.path.join(folder, name + ".raw"), "wb") as f:
                f.write(raw_bytes(t))
            manifest.append({"name": name, "dtype": DTYPES[t.dtype], "shape": list(t.shape)})
        with open(os.path.join(folder, "manifest.json"), "w") as f:
            json.dump(manifest, f)
    elif mode == "check":
        written = torch.load(os.path.join(folder, "slt_written.pt"))
        assert written["epoch"] == 7 and written["name"] == "slt", written
        assert list(written["model"].keys()) == list(tensors.keys()), list(written["model"].keys())
        safe = read_safetensors(os.path.join(folder, "slt_written.safetensors"))
        for name, t in tensors.items():
            for source, got in (("pt", written["model"][name]), ("safetensors", safe[name])):
                assert got.dtype == t.dtype and got.shape == t.shape, (source, name, got.dtype, got.shape)
                assert raw_bytes(got) == raw_bytes(t), (source, name)
        print("python read slt's files: all tensors bit-identical")
    else:
        raise SystemExit("usage: tensor_interop.py write|check DIR")


if __name__ == "__main__":
    main()
