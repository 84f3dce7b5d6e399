"""Channel dependencies between layers, found by tracing the model with torch.fx.

Every tensor in the traced graph carries a *channel space*. Channel-wise ops (ReLU, pooling,
dropout, batch norm) pass their input's space on; an elementwise add, sub or product of two tensors
merges the spaces of both same-shaped operands and its output, because channel ``c`` of one operand
meets channel ``c`` of the other. A conv/linear ("producer") starts a new space.

A space is one :class:`ChannelGroup`: all producers whose outputs meet in it (a residual block's
last conv, its shortcut conv, and through an identity shortcut the producer before the block, back
to the stem) lose channel ``c`` together, with channel ``c`` of every batch norm in the space,
input channel ``c`` of every conv reading it, and the ``H*W`` columns ``c*H*W ... c*H*W + H*W - 1``
of a linear behind a flatten. A space that reaches a concat, a graph output, the graph input, a
depthwise/grouped conv or any op we cannot see through is *tied*: its producers keep their width.
(Concats stay tied on purpose: pruning through them needs index offsets per operand.)
"""

from __future__ import annotations

import operator
from collections import Counter
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

_CHANNELWISE_FUNCS = {torch.relu, F.relu, F.relu6, F.max_pool2d, F.avg_pool2d, F.dropout, F.adaptive_avg_pool2d, F.hardtanh}
_CHANNELWISE_METHODS = {"relu", "contiguous", "clamp"}
_CHANNELWISE_MODULES = (nn.ReLU, nn.ReLU6, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Dropout, nn.Identity, nn.Hardtanh)
# elementwise on two same-shaped tensors: channel c meets channel c (with a scalar: channel-wise)
_MERGING = {operator.add, operator.iadd, operator.sub, operator.mul, torch.add, torch.sub, torch.mul, "add", "add_", "sub", "mul"}
_MEANS = {torch.mean, "mean"}
_FLATTENS = {torch.flatten, "flatten", "view", "reshape"}


@dataclass
class Consumer:
    module: str
    spatial: int  # columns per channel (H*W after a flatten into a linear), 1 for conv/linear


@dataclass
class ChannelGroup:
    """Producers whose output channels are pruned together, and everything that shrinks with them."""

    layer: str  # the group's name: its first producer in graph order
    channels: int
    members: list[str] = field(default_factory=list)  # every producer of the space, ``layer`` first
    bns: list[str] = field(default_factory=list)
    consumers: list[Consumer] = field(default_factory=list)
    member_bn: dict[str, str] = field(default_factory=dict)  # producer -> batch norm applied right to its output


@dataclass
class Dependencies:
    groups: dict[str, ChannelGroup]  # prunable groups by name (= their first producer)
    tied: list[str]  # conv/linear layers that must keep their width
    producer_of: dict[str, tuple[str, int]]  # consumer module -> (group name, spatial)
    group_of: dict[str, str] = field(default_factory=dict)  # producer layer -> its group's name

    def width(self, layer: str, keep: dict[str, int], default: int) -> int:
        """Output channels of ``layer`` if each group ``g`` kept ``keep[g]`` channels."""
        return keep.get(self.group_of.get(layer, layer), default)


def _is_weight_layer(m: nn.Module) -> bool:
    return isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.groups == 1)


class _Spaces:
    """Union-find over fx node names: nodes in one set share one channel space."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}
        self.tied: set[str] = set()

    def find(self, a: str) -> str:
        self.parent.setdefault(a, a)
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra
            if rb in self.tied:
                self.tied.add(ra)

    def tie(self, a: str) -> None:
        self.tied.add(self.find(a))

    def is_tied(self, a: str) -> bool:
        return self.find(a) in self.tied


def analyse(model: nn.Module, input_shape: tuple[int, ...]) -> Dependencies:
    """Trace ``model`` and return its prunable channel groups."""
    gm = fx.symbolic_trace(model.eval())
    ShapeProp(gm).propagate(torch.zeros(1, *input_shape))
    mods = dict(gm.named_modules())
    sp = _Spaces()
    spatial: dict[str, int] = {}  # node -> columns per channel of its output (1 until a flatten)
    producers: list[tuple[fx.Node, str]] = []
    consumers: list[tuple[fx.Node, str]] = []  # (input node, consumer module)
    bns: list[tuple[fx.Node, str]] = []  # (input node, batch norm module)
    calls = Counter(str(n.target) for n in gm.graph.nodes if n.op == "call_module")

    def inputs(n: fx.Node) -> list[fx.Node]:
        return list(n.all_input_nodes)

    def same_space(n: fx.Node, src: fx.Node) -> None:
        sp.union(src.name, n.name)
        spatial[n.name] = spatial.get(src.name, 1)

    def opaque(n: fx.Node) -> None:
        for a in inputs(n):
            sp.tie(a.name)
        sp.tie(n.name)

    for n in gm.graph.nodes:
        sp.find(n.name)
        first = n.args[0] if n.args and isinstance(n.args[0], fx.Node) else None
        if n.op in ("placeholder", "get_attr"):
            sp.tie(n.name)
        elif n.op == "output":
            opaque(n)
        elif n.op == "call_module":
            name, m = str(n.target), mods[str(n.target)]
            if first is None or len(inputs(n)) != 1:
                opaque(n)
            elif isinstance(m, (nn.Conv2d, nn.Linear)):
                if calls[name] > 1 or not _is_weight_layer(m) or not _reads_channels(m, first, spatial):
                    opaque(n)
                    continue
                producers.append((n, name))
                consumers.append((first, name))
            elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
                if calls[name] > 1 or spatial.get(first.name, 1) != 1:
                    opaque(n)
                    continue
                same_space(n, first)
                bns.append((first, name))
            elif isinstance(m, nn.Flatten):
                _flatten(n, first, sp, spatial)
            elif isinstance(m, _CHANNELWISE_MODULES):
                same_space(n, first)
            else:
                opaque(n)
        elif n.target in _MERGING and n.op in ("call_function", "call_method"):
            ops = inputs(n)
            if len(ops) == 2 and {tuple(_shape(o)) for o in ops} == {tuple(_shape(n))} and spatial.get(ops[0].name, 1) == spatial.get(ops[1].name, 1):
                same_space(n, ops[0])
                sp.union(ops[0].name, ops[1].name)
            elif len(ops) == 1 and _shape(ops[0]) == _shape(n):  # tensor and a scalar (or x + x)
                same_space(n, ops[0])
            else:  # broadcasting: channels no longer line up one to one
                opaque(n)
        elif first is not None and len(inputs(n)) == 1 and (
            (n.op == "call_function" and n.target in _CHANNELWISE_FUNCS)
            or (n.op == "call_method" and n.target in _CHANNELWISE_METHODS)
        ):
            same_space(n, first)
        elif first is not None and n.target in _FLATTENS and n.op in ("call_function", "call_method"):
            _flatten(n, first, sp, spatial)
        elif first is not None and n.target in _MEANS and n.op in ("call_function", "call_method") and _spatial_mean(n):
            same_space(n, first)  # global average pool written as x.mean((2, 3))
        elif n.op == "call_method" and n.target == "size":
            continue  # a shape, not a tensor: channels go nowhere
        else:
            opaque(n)
    return _collect(mods, sp, spatial, producers, consumers, bns)


def _reads_channels(m: nn.Module, src: fx.Node, spatial: dict[str, int]) -> bool:
    """Whether ``m`` indexes its input's channel dimension the way we slice it."""
    if isinstance(m, nn.Conv2d):
        return spatial.get(src.name, 1) == 1 and len(_shape(src)) == 4
    return len(_shape(src)) == 2  # a linear on 4-D input works on the last (width) axis


def _spatial_mean(n: fx.Node) -> bool:
    """A mean over spatial axes only: the channel axis (1) survives in place."""
    src = n.args[0]
    dims = n.args[1] if len(n.args) > 1 else n.kwargs.get("dim")
    if not isinstance(src, fx.Node) or len(_shape(src)) != 4 or dims is None:
        return False
    raw = list(dims) if isinstance(dims, (tuple, list)) else [dims]
    if not all(isinstance(d, int) for d in raw):
        return False
    axes = {d % 4 for d in raw if isinstance(d, int)}
    return 0 not in axes and 1 not in axes and len(_shape(n)) >= 2


def _flatten(n: fx.Node, src: fx.Node, sp: _Spaces, spatial: dict[str, int]) -> None:
    """``(N, C, H, W) -> (N, C*H*W)`` keeps the channel space, each channel now ``H*W`` columns."""
    if len(_shape(n)) != 2 or spatial.get(src.name, 1) != 1:
        sp.tie(src.name)
        sp.tie(n.name)
        return
    sp.union(src.name, n.name)
    spatial[n.name] = _spatial(src)


def _collect(
    mods: dict[str, nn.Module], sp: _Spaces, spatial: dict[str, int], producers: list[tuple[fx.Node, str]],
    consumers: list[tuple[fx.Node, str]], bns: list[tuple[fx.Node, str]],
) -> Dependencies:  # fmt: skip
    groups: dict[str, ChannelGroup] = {}  # by space root
    tied: list[str] = []
    for n, name in producers:
        m = mods[name]
        assert isinstance(m, nn.Conv2d | nn.Linear)  # producers are conv/linear by construction
        width = m.out_channels if isinstance(m, nn.Conv2d) else m.out_features
        root = sp.find(n.name)
        if sp.is_tied(n.name):
            tied.append(name)
            continue
        g = groups.setdefault(root, ChannelGroup(name, width))
        g.members.append(name)
    for src, name in bns:
        if sp.find(src.name) in groups:
            g = groups[sp.find(src.name)]
            g.bns.append(name)
            if src.op == "call_module" and str(src.target) in g.members:
                g.member_bn[str(src.target)] = name
    for src, name in consumers:
        if sp.find(src.name) in groups:
            groups[sp.find(src.name)].consumers.append(Consumer(name, spatial.get(src.name, 1)))
    # tied producers that are not conv/linear producers (depthwise, shared) are listed too
    tied += [k for k, m in mods.items() if isinstance(m, (nn.Conv2d, nn.Linear)) and k not in tied
             and not any(k in g.members for g in groups.values())]  # fmt: skip
    by_name = {g.layer: g for g in groups.values()}
    producer_of = {c.module: (g.layer, c.spatial) for g in by_name.values() for c in g.consumers}
    group_of = {member: g.layer for g in by_name.values() for member in g.members}
    return Dependencies(by_name, tied, producer_of, group_of)


def _shape(n: fx.Node) -> list[int]:
    meta = n.meta.get("tensor_meta")
    return list(meta.shape) if meta is not None and hasattr(meta, "shape") else []


def _spatial(n: fx.Node) -> int:
    s = _shape(n)
    out = 1
    for d in s[2:]:
        out *= int(d)
    return out
