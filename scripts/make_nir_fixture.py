#!/usr/bin/python3
"""Write tests/data/fixture.nir: a NIR graph as another tool writes it (h5py, not eqprop).

Layout as neuromorphs/NIR's writer: /version, /node/type = "NIRGraph", /node/nodes/<name>/
groups of datasets, /node/edges (N x 2). What eqprop must cope with here: float64 arrays,
variable-length strings, no v_reset fields (they default to 0), padding as the string "same",
SumPool2d, a Flatten, a recurrent layer as a nested NIRGraph, and no eqprop metadata.

  input (1, 28, 28) -> conv (2 x 1 x 3 x 3, "same") -> pool (SumPool2d 4) -> lif1 (2, 7, 7)
  -> flat -> fc2 (32 x 98) -> rec2 {input -> lif -> w_rec -> lif -> output} -> fc3 (10 x 32)
  -> li3 -> output

Weights follow a closed form (tests/test_nir.c recomputes them): element k (row-major) of a
block with salt s is 0.3 sin(s + 0.7 k). With dt = 1 ms (eqprop's default): tau 10 ms and r 5
give decay 0.9 and gain (1 - 0.9) 5 = 0.5 under forward Euler (lif1: r 0.5, gain 0.05).
Usage: /usr/bin/python3 scripts/make_nir_fixture.py [OUT]   (Debian's python3-h5py)"""
import sys

import h5py
import numpy as np

out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/fixture.nir"
vstr = h5py.string_dtype()  # variable-length UTF-8


def wave(shape, salt):
    k = np.arange(int(np.prod(shape)), dtype=np.float64)
    return (0.3 * np.sin(salt + 0.7 * k)).reshape(shape)


def arr(g, name, v):
    # sizes, strides and paddings as int64 (as numpy makes them), parameters as float64
    a = np.asarray(v)
    a = a.astype(np.int64 if a.dtype.kind in "iu" else np.float64)
    g.create_dataset(name, data=a, compression="gzip" if a.ndim else None)


def node(parent, name, typ, **fields):
    g = parent.create_group(name)
    g.create_dataset("type", data=typ, dtype=vstr)
    for k, v in fields.items():
        if isinstance(v, str):
            g.create_dataset(k, data=v, dtype=vstr)
        else:
            arr(g, k, v)
    return g


def edges(g, pairs):
    g.create_dataset("edges", data=np.array(pairs, dtype=object), dtype=vstr)


with h5py.File(out, "w") as f:
    f.create_dataset("version", data="1.0.0", dtype=vstr)
    top = f.create_group("node")
    top.create_dataset("type", data="NIRGraph", dtype=vstr)
    nodes = top.create_group("nodes")
    node(nodes, "input", "Input", shape=[1, 28, 28])
    node(nodes, "conv", "Conv2d", weight=wave((2, 1, 3, 3), 1.0), bias=wave((2,), 2.0),
         stride=[1, 1], padding="same", dilation=[1, 1], groups=1, input_shape=[28, 28])
    node(nodes, "pool", "SumPool2d", kernel_size=[4, 4], stride=[4, 4], padding=[0, 0])
    m = (2, 7, 7)
    node(nodes, "lif1", "LIF", tau=np.full(m, 0.01), r=np.full(m, 0.5), v_leak=np.zeros(m),
         v_threshold=np.full(m, 0.5))
    node(nodes, "flat", "Flatten", start_dim=0, end_dim=-1, input_type=[2, 7, 7])
    node(nodes, "fc2", "Affine", weight=wave((32, 98), 3.0), bias=wave((32,), 4.0))
    rec = node(nodes, "rec2", "NIRGraph")
    rn = rec.create_group("nodes")
    node(rn, "input", "Input", shape=[32])
    node(rn, "lif", "LIF", tau=np.full(32, 0.01), r=np.full(32, 5.0), v_leak=np.zeros(32),
         v_threshold=np.full(32, 0.5))
    node(rn, "w_rec", "Linear", weight=wave((32, 32), 5.0))
    node(rn, "output", "Output", shape=[32])
    edges(rec, [("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])
    node(nodes, "fc3", "Affine", weight=wave((10, 32), 6.0), bias=wave((10,), 7.0))
    node(nodes, "li3", "LI", tau=np.full(10, 0.01), r=np.full(10, 5.0), v_leak=np.zeros(10))
    node(nodes, "output", "Output", shape=[10])
    edges(top, [("input", "conv"), ("conv", "pool"), ("pool", "lif1"), ("lif1", "flat"),
                ("flat", "fc2"), ("fc2", "rec2"), ("rec2", "fc3"), ("fc3", "li3"),
                ("li3", "output")])
print("wrote", out)
