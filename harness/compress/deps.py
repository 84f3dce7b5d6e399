"""Channel dependencies between layers, found by tracing the model with torch.fx.

Removing output channel ``c`` of a conv/linear ("producer") also removes: that channel of every
batch norm on the way, input channel ``c`` of the next conv, or the ``H*W`` columns
``c*H*W ... c*H*W + H*W - 1`` of a linear behind a flatten. A producer whose channels reach an add,
a concat, a graph output or any op we cannot see through is *tied* and is left unpruned (honest
and safe: residual-tied convs keep their width, the inner convs of residual blocks still shrink).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

_CHANNELWISE_FUNCS = {torch.relu, F.relu, F.relu6, F.max_pool2d, F.avg_pool2d, F.dropout, F.adaptive_avg_pool2d}
_CHANNELWISE_METHODS = {"relu", "contiguous", "clamp"}
_CHANNELWISE_MODULES = (nn.ReLU, nn.ReLU6, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Dropout, nn.Identity, nn.Hardtanh)


@dataclass
class Consumer:
    module: str
    spatial: int  # columns per channel (H*W after a flatten into a linear), 1 for conv/linear


@dataclass
class ChannelGroup:
    """One prunable producer layer and everything that shrinks with it."""

    layer: str
    channels: int
    bns: list[str] = field(default_factory=list)
    consumers: list[Consumer] = field(default_factory=list)
    act_node: str | None = None  # fx node whose output feeds the consumers (APoZ measured here)


@dataclass
class Dependencies:
    groups: dict[str, ChannelGroup]  # prunable producers only
    tied: list[str]  # conv/linear layers that must keep their width
    producer_of: dict[str, tuple[str, int]]  # consumer module -> (producer layer, spatial)


def _is_weight_layer(m: nn.Module) -> bool:
    return isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.groups == 1)


def analyse(model: nn.Module, input_shape: tuple[int, ...]) -> Dependencies:
    """Trace ``model`` and return its prunable channel groups."""
    gm = fx.symbolic_trace(model.eval())
    ShapeProp(gm).propagate(torch.zeros(1, *input_shape))
    mods = dict(gm.named_modules())
    groups: dict[str, ChannelGroup] = {}
    tied: list[str] = []
    for n in gm.graph.nodes:
        if n.op != "call_module" or not isinstance(mods[str(n.target)], (nn.Conv2d, nn.Linear)):
            continue
        m = mods[str(n.target)]
        g = ChannelGroup(str(n.target), m.out_channels if isinstance(m, nn.Conv2d) else m.out_features)
        if _is_weight_layer(m) and _follow(n, mods, g, spatial=1, flattened=False):
            groups[g.layer] = g
        else:
            tied.append(g.layer)
    producer_of = {c.module: (g.layer, c.spatial) for g in groups.values() for c in g.consumers}
    return Dependencies(groups, tied, producer_of)


def _follow(n: fx.Node, mods: dict[str, nn.Module], g: ChannelGroup, spatial: int, flattened: bool) -> bool:
    """Walk the users of ``n``; False as soon as the channels reach something we cannot shrink."""
    if not n.users:
        return False
    for u in n.users:
        if u.op == "output":
            return False
        if u.op == "call_module":
            m = mods[str(u.target)]
            if _is_weight_layer(m) and not (isinstance(m, nn.Conv2d) and flattened):
                g.consumers.append(Consumer(str(u.target), spatial))
                g.act_node = g.act_node or n.name
                continue
            if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d) and not flattened:
                g.bns.append(str(u.target))
            elif isinstance(m, nn.Flatten) and not flattened:
                if not _follow(u, mods, g, _spatial(n), True):
                    return False
                continue
            elif not isinstance(m, _CHANNELWISE_MODULES):
                return False
        elif (u.op == "call_function" and u.target in _CHANNELWISE_FUNCS and u.args[0] is n) or (u.op == "call_method" and u.target in _CHANNELWISE_METHODS and u.args[0] is n):
            pass
        elif (u.target in (torch.flatten, "flatten", "view", "reshape")) and not flattened and _flattens(u):
            if not _follow(u, mods, g, _spatial(n), True):
                return False
            continue
        elif u.op == "call_method" and u.target == "size":
            continue
        else:
            return False
        if not _follow(u, mods, g, spatial, flattened):
            return False
    return True


def _shape(n: fx.Node) -> list[int]:
    meta = n.meta.get("tensor_meta")
    return list(meta.shape) if meta is not None and hasattr(meta, "shape") else []


def _spatial(n: fx.Node) -> int:
    s = _shape(n)
    out = 1
    for d in s[2:]:
        out *= int(d)
    return out


def _flattens(u: fx.Node) -> bool:
    s = _shape(u)
    return len(s) == 2
