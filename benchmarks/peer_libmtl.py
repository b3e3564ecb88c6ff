"""LibMTL's step cost of the same weighting methods, on the same small CNN, batch and image size.

Runs in the separate peer environment (``make bench-peer`` builds ``.venv-peer`` with PyTorch
CPU and LibMTL from the package registry; never the package's own environment). The network
is a PyTorch copy of ``small_cnn`` as ``benchmarks.weighting_methods`` trains it: a shared trunk
of three conv(3x3, no bias)-BN-ReLU-maxpool stages (32, 64, 128 filters), per task two
conv-BN-ReLU (128) and a global average pool, then dropout 0.5 and the face bottleneck (128),
L2-normalised embedding and center loss (alpha 1e-4, centers moved at rate 0.5), identity logits;
expression FC 128 + ReLU and logits. RMSprop(1e-4, alpha 0.9, momentum 0.9, eps 1.0).

``plain`` is one backward pass of the unweighted loss sum (LibMTL's EW); every method is
LibMTL's class (its ``backward(losses, **kwargs)`` with the hyper-parameters of
docs/weighting.md) on the same network, the trunk being the shared parameters. Rounds of one
step of every variant in a rotating order, ratios to ``plain`` within each round (wall and
process CPU time), as ``benchmarks.train_step`` measures the TensorFlow side.

    .venv-peer/bin/python -m benchmarks.peer_libmtl [--methods pcgrad,mgda]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import time
import types
from pathlib import Path

from benchmarks.common import emit, quick_mode, row, tiny_mode

#: package method name -> (LibMTL 1.1.x class, backward kwargs). Absent: the methods LibMTL 1.1.5 (the
#: registry's release) lacks, and CAGrad, whose 1.1.5 objective hard-codes 3 tasks (a reshape to (1, 3)).
LIBMTL_METHODS = {
    "pcgrad": ("PCGrad", {}),
    "mgda": ("MGDA", {"mgda_gn": "none"}),
    "imtl_g": ("IMTL", {}),
    "gradvac": ("GradVac", {"beta": 0.01}),
    "rlw": ("RLW", {"dist": "Normal"}),
    "gls": ("GLS", {}),
}


def settings() -> dict:
    """The sizes of ``benchmarks.train_step.settings('small_cnn')``."""
    if tiny_mode():
        return dict(image_size=32, batch=8, rounds=2, warmup=1)
    if quick_mode():
        return dict(image_size=64, batch=32, rounds=15, warmup=2)
    return dict(image_size=64, batch=32, rounds=30, warmup=3)


def load_libmtl_weighting():
    """LibMTL's ``weighting`` sub-package without the package ``__init__`` (which imports its
    torchvision-based model zoo, not needed here)."""
    spec = importlib.util.find_spec("LibMTL")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("LibMTL is not installed in this environment (run `make bench-peer`)")
    root = Path(list(spec.submodule_search_locations)[0])
    package = types.ModuleType("LibMTL")
    package.__path__ = [str(root)]
    sys.modules.setdefault("LibMTL", package)
    return importlib.import_module("LibMTL.weighting")


def build_network(num_ids: int, num_expr: int, width: int = 32):
    import torch
    from torch import nn

    def conv_bn(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout, eps=1e-3, affine=True), nn.ReLU()]

    class Branch(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(
                *conv_bn(4 * width, 4 * width),
                *conv_bn(4 * width, 4 * width),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
                nn.Dropout(0.5),
            )

        def forward(self, x):
            return self.body(x)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            layers, cin = [], 3
            for filters in (width, 2 * width, 4 * width):
                layers += conv_bn(cin, filters) + [nn.MaxPool2d(2)]
                cin = filters
            self.trunk = nn.Sequential(*layers)
            self.face, self.expression = Branch(), Branch()
            self.bottleneck = nn.Linear(4 * width, 128)
            self.identity = nn.Linear(128, num_ids)
            self.hidden = nn.Sequential(nn.Linear(4 * width, 128), nn.ReLU())
            self.expression_logits = nn.Linear(128, num_expr)
            self.register_buffer("centers", torch.zeros(num_ids, 128))

        def forward(self, x):
            z = self.trunk(x)
            x1 = self.bottleneck(self.face(z))
            return x1, self.identity(x1), self.expression_logits(self.hidden(self.expression(z)))

    return Net()


class Variant:
    def __init__(self, name, weighting_module, s, num_ids=40, num_expr=7):
        import torch
        import torch.nn.functional as F

        torch.manual_seed(0)
        self.name, self.F, self.torch = name, F, torch
        self.net = build_network(num_ids, num_expr)
        self.net.train()
        self.optimizer = torch.optim.RMSprop(
            self.net.parameters(), lr=1e-4, alpha=0.9, momentum=0.9, eps=1.0, weight_decay=5e-5
        )
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(s["batch"], 3, s["image_size"], s["image_size"], generator=g)
        self.ids = torch.randint(0, num_ids, (s["batch"],), generator=g)
        self.expr = torch.randint(0, num_expr, (s["batch"],), generator=g)
        self.weighting, self.kwargs = None, {}
        if name != "plain":
            class_name, self.kwargs = LIBMTL_METHODS[name]
            self.weighting = _attach(getattr(weighting_module, class_name), self.net)
        for _ in range(s["warmup"]):
            self.step()

    def losses(self):
        x1, identity_logits, expression_logits = self.net(self.x)
        net = self.net
        centers = net.centers[self.ids]
        center = ((x1 - centers) ** 2).sum(dim=1).mean()
        with self.torch.no_grad():  # centers move towards the features (rate 0.5), as CenterLoss.update
            net.centers.index_add_(0, self.ids, 0.5 * (x1.detach() - centers))
        face = self.F.cross_entropy(identity_logits, self.ids) + 1e-4 * center
        return self.torch.stack([face, self.F.cross_entropy(expression_logits, self.expr)])

    def step(self):
        w0, c0 = time.perf_counter(), time.process_time()
        self.optimizer.zero_grad(set_to_none=False)
        losses = self.losses()
        if self.weighting is None:
            losses.sum().backward()
        else:
            self.weighting.backward(losses, **self.kwargs)
        self.optimizer.step()
        float(losses.detach().sum())
        return time.perf_counter() - w0, time.process_time() - c0


def _attach(cls, net):
    """A LibMTL weighting object on ``net``: the trunk is the shared part (LibMTL's encoder)."""
    import torch

    class Peer(cls):
        def __init__(self):
            super().__init__()
            self.task_num, self.device, self.rep_grad = 2, torch.device("cpu"), False
            self.encoder = net.trunk
            if hasattr(self, "init_param"):
                self.init_param()

        def get_share_params(self):
            return net.trunk.parameters()

        def zero_grad_share_params(self):
            net.trunk.zero_grad(set_to_none=False)

    weighting = Peer()
    for p in net.parameters():  # LibMTL resets .grad.data in place: allocate every .grad
        p.grad = torch.zeros_like(p)
    return weighting


def bench(methods) -> list[dict]:
    import torch

    s = settings()
    weighting_module = load_libmtl_weighting()
    import LibMTL  # noqa: F401  (the stub package set up above)

    version = _libmtl_version()
    section = (
        f"LibMTL {version}, PyTorch {torch.__version__} ({torch.get_num_threads()} threads): "
        f"small_cnn, {s['image_size']} px, batch {s['batch']}, CPU"
    )
    variants = [Variant("plain", weighting_module, s)] + [Variant(m, weighting_module, s) for m in methods]
    wall = {v.name: [] for v in variants}
    cpu = {v.name: [] for v in variants}
    for r in range(s["rounds"]):
        k = r % len(variants)
        for v in variants[k:] + variants[:k]:
            w, c = v.step()
            wall[v.name].append(w)
            cpu[v.name].append(c)
    rows = []
    for v in variants:
        rows.append(row(section, v.name, "step time", "ms", [1000 * t for t in wall[v.name]]))
    for v in variants[1:]:
        rows.append(
            row(section, v.name, "step time / plain", "ratio", [a / b for a, b in zip(wall[v.name], wall["plain"])])
        )
        rows.append(
            row(section, v.name, "CPU time / plain", "ratio", [a / b for a, b in zip(cpu[v.name], cpu["plain"])])
        )
    return rows


def _libmtl_version() -> str:
    try:
        from importlib.metadata import version

        return version("LibMTL")
    except Exception:  # noqa: BLE001
        return "?"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", default=",".join(LIBMTL_METHODS))
    a = p.parse_args(argv)
    methods = [m for m in a.methods.split(",") if m]
    unknown = set(methods) - set(LIBMTL_METHODS)
    if unknown:
        p.error(f"LibMTL has no {sorted(unknown)} here; choose from {', '.join(LIBMTL_METHODS)}")
    emit(bench(methods))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
