"""lucid.visual: summary totals against reference counts, and the shape of the Mermaid diagrams."""
from __future__ import annotations

import json
import re
from collections import deque

import pytest
import torch
from helpers import SharedModule
from torch import nn

from lucid import visual
from lucid.models import ResNeXt, ResNeXtConfig, create_model

BLOCK = "Bottleneck"  # class name of lucid's bottleneck block
RESNEXT50_PARAMS = 25_028_904  # torchvision's resnext50_32x4d
RESNEXT50_GMACS = 4.23  # torchvision's published figure for resnext50_32x4d at 224x224
SEED = dict(num_classes=10, in_channels=1, stem_type="deep", stem_width=32)

EDGE = re.compile(r"^\s*(\S+) (-->|-\.->|<-\.-) (\S+);$")
NODE = re.compile(r'^\s*(\w+)(\["|\(\[")(.*?)("\]|"\]\));$')


def conv_linear_macs(model: nn.Module, shape: tuple[int, ...]) -> int:
    """A second count: MACs of every Conv2d and Linear from its output size, on the meta device."""
    total = 0

    def hook(m: nn.Module, args: tuple, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(m, nn.Conv2d):
            total += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        else:
            total += out.numel() * m.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model.eval()(torch.zeros(shape, device="meta"))
    for h in handles:
        h.remove()
    return total


def parse(diagram: str) -> tuple[dict[str, str], list[tuple[str, str, bool]]]:
    """Node id -> label, and (source, target, dashed) edges."""
    nodes, edges = {}, []
    for line in diagram.splitlines():
        if m := EDGE.match(line):  # "a <-.- b" is the loop edge b -> a
            edges.append((m[3], m[1], True) if m[2] == "<-.-" else (m[1], m[3], m[2] == "-.->"))
        elif m := NODE.match(line):
            nodes[m[1]] = m[3]
    return nodes, edges


def reachable(edges: list[tuple[str, str, bool]], start: str) -> set[str]:
    seen, todo = {start}, deque([start])
    while todo:
        node = todo.popleft()
        for src, dst, _ in edges:
            if src == node and dst not in seen:
                seen.add(dst)
                todo.append(dst)
    return seen


@pytest.fixture(scope="module")
def resnext50() -> nn.Module:
    return create_model("resnext_50_32x4d")


@pytest.fixture(scope="module")
def seed_model() -> nn.Module:
    return ResNeXt(ResNeXtConfig(layers=[3, 4, 6, 3], cardinality=32, base_width=4, **SEED))


# ----------------------------------------------------------------------------- summary


def test_resnext50_totals_match_references_and_rows(resnext50: nn.Module) -> None:
    before = {k: v.clone() for k, v in resnext50.state_dict().items()}
    resnext50.train()
    s = visual.summary(resnext50, (1, 3, 224, 224), depth=3)
    assert s.total_params == s.trainable_params == RESNEXT50_PARAMS
    assert s.total_macs == pytest.approx(RESNEXT50_GMACS * 1e9, rel=2e-3)
    with torch.device("meta"):
        meta_model = create_model("resnext_50_32x4d")
    assert s.total_macs == conv_linear_macs(meta_model, (1, 3, 224, 224))
    # the leaf rows partition the totals, and every row is the sum of the rows listed under it
    leaves = s.leaf_rows()
    assert sum(r.params for r in leaves) == s.total_params
    assert sum(r.macs for r in leaves) == s.total_macs
    rows = s.rows
    for i, row in enumerate(rows):
        children = []
        for later in rows[i + 1:]:
            if later.depth <= row.depth:
                break
            if later.depth == row.depth + 1:
                children.append(later)
        if children:
            assert (row.params, row.macs) == (sum(c.params for c in children), sum(c.macs for c in children)), row.path
    assert max(r.depth for r in rows) == 3
    # the sums above hold by construction through "(self)" rows: ResNeXt's forward does all its work in submodules
    assert not any(r.type == "(self)" for r in rows)
    assert all(r.params >= 0 and r.macs >= 0 for r in rows)
    by_path = {r.path: r for r in rows}
    assert by_path["fc"].output_shape == (1, 1000) and by_path["fc"].macs == 2048 * 1000
    assert by_path["layer1.0.conv2"].output_shape == (1, 128, 56, 56)
    # MB figures follow from the counts: float32 parameters
    assert s.param_mb == pytest.approx(RESNEXT50_PARAMS * 4 / 1e6)
    assert s.input_mb == pytest.approx(3 * 224 * 224 * 4 / 1e6)
    # the traced pass ran on meta: the model is untouched and back in training mode
    assert resnext50.training and all(m.training for m in resnext50.modules())
    after = resnext50.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)

    data = json.loads(json.dumps(s.to_dict()))
    assert data["totals"]["params"] == RESNEXT50_PARAMS and data["totals"]["macs"] == s.total_macs
    assert data["rows"][0]["path"] == "stem" and data["output_shape"] == [1, 1000]
    text = str(s)
    assert "25,028,904" in text and "4.23 G" in text and "layer1.0.conv2" in text


def test_summary_depth_and_own_share_rows() -> None:
    class WithOwnWork(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(6, 4))
            self.body = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3))
            self.body[2].bias.requires_grad_(False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x @ self.w)  # (2, 6) @ (6, 4): 48 MACs outside any submodule

    model = WithOwnWork()
    s = visual.summary(model, (2, 6), depth=1)
    assert [(r.path, r.type) for r in s.rows] == [("body", "Sequential"), ("", "(self)")]
    own = s.rows[1]
    assert (own.params, own.macs) == (24, 48)
    assert s.rows[0].macs == 2 * (4 * 5 + 5 * 3)
    assert s.total_params == 24 + 25 + 18 and s.trainable_params == s.total_params - 3
    assert sum(r.params for r in s.leaf_rows()) == s.total_params
    assert sum(r.macs for r in s.leaf_rows()) == s.total_macs
    assert [r.path for r in visual.summary(model, (2, 6), depth=2).rows] == ["body", "body.0", "body.1", "body.2", ""]
    bare = visual.summary(nn.Linear(3, 4), (2, 3))  # a model without submodules is all "(self)"
    assert [(r.type, r.params, r.macs) for r in bare.leaf_rows()] == [("(self)", 16, 24)] and bare.total_macs == 24
    with pytest.raises(ValueError, match="depth must be an int >= 1, got 0"):
        visual.summary(model, (2, 6), depth=0)
    with pytest.raises(ValueError, match="input_shape must be"):
        visual.summary(model, (2, -6))


def test_count_macs_of_a_convolution_and_of_two_inputs() -> None:
    """Counted by hand: one MAC per output element per kernel weight it reads."""
    assert visual.count_macs(nn.Conv2d(3, 8, 3, padding=1), (2, 3, 10, 10)) == 2 * 8 * 10 * 10 * (3 * 3 * 3)

    class TwoInputs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(4, 2), nn.Linear(5, 2)

        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return self.a(x) + self.b(y)

    assert visual.count_macs(TwoInputs(), [(3, 4), (3, 5)]) == 3 * 4 * 2 + 3 * 5 * 2
    with pytest.raises(ValueError, match="input_shape must be a shape of positive ints"):
        visual.count_macs(TwoInputs(), (3, 0))


def test_models_that_cannot_run_on_meta_are_run_for_real() -> None:
    class DataDependent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lin(x) * float(x.sum().item() == 0)  # .item() is impossible on meta

    s = visual.summary(DataDependent(), (4, 3))
    assert s.total_macs == 4 * 3 * 3 and s.rows[0].output_shape == (4, 3)


# ----------------------------------------------------------------------------- mermaid


def test_seed_model_diagram(seed_model: nn.Module) -> None:
    text = visual.mermaid(seed_model, (1, 1, 224, 224), title="resnext_50_32x4d")
    lines = text.splitlines()
    assert lines[0].startswith("%%{init:") and lines[1] == "flowchart LR"
    nodes, edges = parse(text)
    span = "<br/><span style='font-size:11px;color:{};font-weight:400'>{} → {}</span>"
    assert "Conv2d" + span.format("#c53030", "(1,1,224,224)", "(1,32,112,112)") in nodes.values()
    assert "Linear" + span.format("#2b6cb0", "(1,2048)", "(1,10)") in nodes.values()
    assert "MaxPool2d" + span.format("#b7791f", "(1,64,112,112)", "(1,64,56,56)") in nodes.values()
    assert "Input" + "<br/><span style='font-size:11px;color:#a67c00;font-weight:400'>(1,1,224,224)</span>" == nodes["input"]
    assert nodes["output"].endswith(">(1,10)</span>")
    # each stage its own subgraph with its shapes; identity blocks fold with their true count
    small = "<span style='font-size:11px;font-weight:400'>{}</span>"
    for stage, (before, after), identities in zip(
        ("layer1", "layer2", "layer3", "layer4"),
        [("(1,64,56,56)", "(1,256,56,56)"), ("(1,256,56,56)", "(1,512,28,28)"),
         ("(1,512,28,28)", "(1,1024,14,14)"), ("(1,1024,14,14)", "(1,2048,7,7)")],
        (2, 3, 5, 2),
    ):
        assert f'["{stage} {small.format(f"{before} → {after}")}"]' in text, stage
        assert f'["{BLOCK} x {identities} {small.format(after)}"]' in text, (stage, identities)
    assert len(re.findall(rf'subgraph sg_m\d+\["{BLOCK} x \d', text)) == 4
    assert len(re.findall(rf'subgraph sg_m\d+\["{BLOCK} ', text)) == 8  # first block and identity group per stage
    assert " x 4" not in text and "ConvBNReLU2d x" not in text  # a block's two ConvBNReLU2d differ in shapes
    assert text.count("subgraph ") == 1 + 1 + 4 * 3 and text.count("\n  end") == 1
    # every leaf of a kind is coloured; every node on an edge is defined
    for node_id, label in nodes.items():
        cls = label.split("<")[0]
        if cls in ("Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "AdaptiveAvgPool2d", "Linear"):
            assert re.search(rf"^  style {node_id} fill:#", text, re.M), node_id
    ids = set(nodes)
    assert all(src in ids and dst in ids for src, dst, _ in edges)
    # dashed exactly where several inputs meet
    incoming: dict[str, int] = {}
    for _, dst, _ in edges:
        incoming[dst] = incoming.get(dst, 0) + 1
    loops = [(src, dst) for src, dst, dashed in edges if dst.endswith("_in")]
    assert len(loops) == 4 and all(src == dst[:-3] + "_out" for src, dst in loops)  # one per identity group
    assert all(dashed == (incoming[dst] > 1) for _, dst, dashed in edges if not dst.endswith("_in"))
    relus_after_add = [n for n, label in nodes.items() if label == "ReLU" and incoming.get(n, 0) >= 2]
    assert len(relus_after_add) == 8  # out + shortcut meet before each drawn block's final ReLU (2 per stage)
    assert "output" in reachable(edges, "input")
    first_conv = next(n for n, label in nodes.items() if "(1,1,224,224) →" in label)
    assert ("input", first_conv, False) in edges


def test_structure_collapse_keeps_the_folded_picture(seed_model: nn.Module) -> None:
    text = visual.mermaid(seed_model, (1, 1, 224, 224), collapse="structure")
    small = "<span style='font-size:11px;font-weight:400'>{}</span>"
    # the four stages fold into one group, drawn with layer1's insides
    assert f'["layer1 x 4 {small.format("(1,64,56,56) → (1,2048,7,7)")}"]' in text
    assert "(1,64,56,56) → (1,128,56,56)" in text and "(1,512,28,28)" not in text
    assert re.search(rf'subgraph sg_m\d+\["{BLOCK} x 2 ', text) and "ConvBNReLU2d x 2" in text
    assert "layer2" not in text and "(1,2048,7,7) →" in text  # the pooling still sees the true last shape


def test_diagram_options(seed_model: nn.Module) -> None:
    flat = visual.mermaid(seed_model, (1, 1, 64, 64), collapse="none", show_shapes=False, direction="TB")
    assert flat.splitlines()[1] == "flowchart TB"
    assert " x " not in flat and "→" not in flat
    assert len(re.findall(rf'subgraph sg_m\d+\["{BLOCK}"\]', flat)) == 16
    assert len(re.findall(r'subgraph sg_m\d+\["layer\d"\]', flat)) == 4
    with pytest.raises(ValueError, match="collapse must be one of 'shapes', 'structure', 'none', got True"):
        visual.mermaid(seed_model, collapse=True)
    top = visual.mermaid(seed_model, (1, 1, 64, 64), depth=0)
    nodes, edges = parse(top)
    assert "subgraph" not in top.replace("subgraph sg_m0", "")
    assert [label.split("<")[0] for label in nodes.values()] == [
        "Sequential", "MaxPool2d", "Sequential", "Sequential", "Sequential", "Sequential", "AdaptiveAvgPool2d", "Linear",
        "Input", "Output"]
    assert "output" in reachable(edges, "input")
    with pytest.raises(ValueError, match="direction must be one of"):
        visual.mermaid(seed_model, direction="up")
    with pytest.raises(ValueError, match="depth must be an int >= 0"):
        visual.mermaid(seed_model, depth=-1)


def test_diagram_of_module_called_several_times_with_dict_output() -> None:
    text = visual.mermaid(SharedModule(), (2, 4), depth=1)
    nodes, edges = parse(text)
    labels = [label.split("<")[0] for label in nodes.values()]
    # act is called 4 times: once after inp, then once after each pass of block
    assert labels.count("GELU") == 4
    # block runs three times, each call its own subgraph; the parallel heads are not "repeats"
    assert len(re.findall(r'subgraph sg_m\d+\["block ', text)) == 3 and labels.count("LayerNorm") == 3
    assert labels.count("Linear") == 1 + 3 + 2 and "Linear x 2" not in text
    assert nodes["output"].endswith(">logits=(2,5), aux=(2,2)</span>")
    heads = [n for n, label in nodes.items() if label.startswith("Linear<br/>") and "(2,8) → (2," in label]
    assert {dst for src, dst, _ in edges if src in heads} == {"output"}
    assert "output" in reachable(edges, "input")


def test_repeated_block_in_a_loop_collapses_and_tuple_output() -> None:
    class Loop(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.block = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.ReLU())
            self.pool = nn.AdaptiveAvgPool2d(1)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            for _ in range(4):
                x = self.block(x)
            return x, self.pool(x)

    text = visual.mermaid(Loop(), (1, 3, 8, 8))
    nodes, edges = parse(text)
    group = re.search(r'subgraph sg_(m\d+)\["block x 4 <span[^>]*>\(1,3,8,8\)</span>"\]', text)
    assert group
    gid = group[1]
    assert {(f"{gid}_out", f"{gid}_in")} <= {(s, d) for s, d, _ in edges}
    assert nodes["output"].endswith(">(1,3,8,8), (1,3,1,1)</span>")
    sources_of_output = {s for s, d, _ in edges if d == "output"}
    assert f"{gid}_out" in sources_of_output and len(sources_of_output) == 2


def test_structure_only_diagram_without_input_shape() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4, 2))
    text = visual.mermaid(model)
    nodes, edges = parse(text)
    assert "→" not in text and nodes["input"] == "Input"
    order = [n for n in nodes if n.startswith("m")]
    assert [nodes[n] for n in order] == ["Conv2d", "BatchNorm2d", "ReLU", "Flatten", "Linear"]
    chain = ["input", *order, "output"]
    assert sorted((s, d) for s, d, _ in edges) == sorted(zip(chain, chain[1:]))


def test_module_kinds() -> None:
    kinds = {nn.Conv1d(1, 1, 1): "conv", nn.ConvTranspose2d(1, 1, 1): "conv", nn.GroupNorm(1, 2): "norm",
             nn.LayerNorm(3): "norm", nn.SiLU(): "activation", nn.AvgPool2d(2): "pool", nn.Linear(1, 1): "linear",
             nn.Identity(): None, nn.Sequential(): None, nn.Dropout(): None}
    assert {type(m).__name__: visual.module_kind(m) for m in kinds} == {type(m).__name__: k for m, k in kinds.items()}


def test_a_module_registered_twice_is_traced_without_touching_its_weights() -> None:
    shared = nn.Linear(4, 4)

    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Sequential(shared, nn.ReLU())
            self.b = nn.Sequential(nn.ReLU(), shared)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(self.a(x))

    model = Twice()
    before = shared.weight.detach().clone()
    s = visual.summary(model, (2, 4))
    visual.mermaid(model, (2, 4))
    assert type(shared.weight) is nn.Parameter and shared.weight.device.type == "cpu"
    assert torch.equal(shared.weight, before) and model.a[0] is model.b[1] is shared
    assert s.total_params == s.trainable_params == 20 and s.total_macs == 2 * 16 * 2  # two calls of 2x16 MACs
    assert all(r.macs >= 0 for r in s.rows)
