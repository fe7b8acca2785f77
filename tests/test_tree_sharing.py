"""The independent head's ``tree_sharing`` option: each code's weights are its own plus its ICD
ancestors' (:mod:`comorbid.heads.tree_sharing`). Checked against a brute-force construction of
the weights from ``icd.ancestors`` and a brute-force enumeration of the label sets, by
gradcheck, at extreme weights, on sparse and per-label features, through save/load, and on
what it is for: a rare code borrows its sibling's evidence."""

import numpy as np
import pytest
import torch

from comorbid import icd
from comorbid.data import MultiLabelDataset
from comorbid.distributions import all_label_sets
from comorbid.heads import HEADS
from comorbid.heads.tree_sharing import label_tree_links
from comorbid.model import MultiLabelModel
from comorbid.training import TrainConfig

float64 = pytest.mark.usefixtures("float64")

#: ICD-9-CM: two coughs/wheezes under 786, a pneumonia (another chapter), and 786.2's category
CODES = ["786.2", "786.07", "486", "786"]
D, B = 3, 6


def _brute_shared_weight(head, names):
    """``w_j = v_j + sum of u_a over the shared nodes a on j's path``, node by node from icd.ancestors."""
    _, nodes = label_tree_links(names)
    weight = head.linear.weight.detach().clone()
    for j, name in enumerate(names):
        for node in icd.ancestors(name, strict=False):
            if node in nodes:
                weight[j] += head.tree.weight.detach()[nodes.index(node)]
    return weight


def _head(names=CODES, seed=0, input_dim=D):
    labels = np.eye(len(names), dtype=np.int8)[np.arange(8) % len(names)]
    head = HEADS["independent"](input_dim, len(names), tree_sharing=True)
    head.prepare(labels, names)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in head.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))
    return head


def test_links_are_the_nodes_shared_by_at_least_two_labels():
    links, nodes = label_tree_links(CODES)
    # 786 is a label and the category of two others: shared by three; 486 shares no node with them
    assert nodes == ["780-799", "780-789", "786"]
    members = {nodes[a]: sorted(links[0, links[1] == a].tolist()) for a in range(len(nodes))}
    assert members == {"780-799": [0, 1, 3], "780-789": [0, 1, 3], "786": [0, 1, 3]}
    assert label_tree_links(["fever", "cough"])[0].shape == (2, 0)


@float64
def test_logits_equal_those_of_the_brute_force_weights():
    head = _head()
    h = torch.randn(B, D)
    expected = h @ _brute_shared_weight(head, CODES).T + head.linear.bias.detach()
    torch.testing.assert_close(head.logits(h), expected)


@float64
def test_training_loss_is_the_nll_of_the_enumerated_distribution():
    head = _head()
    h = torch.randn(B, D)
    y = (torch.rand(B, len(CODES)) < 0.4).double()
    sets = all_label_sets(len(CODES), dtype=torch.float64)
    logits = h @ _brute_shared_weight(head, CODES).T + head.linear.bias.detach()
    # p(y) = prod_j sigma(s_j)^y_j (1 - sigma(s_j))^(1 - y_j), enumerated and normalised
    log_p = (sets[:, None] * torch.nn.functional.logsigmoid(logits)
             + (1 - sets[:, None]) * torch.nn.functional.logsigmoid(-logits)).sum(-1)  # [2^M, B]
    log_p = log_p - log_p.logsumexp(0)
    index = (y * 2 ** torch.arange(len(CODES), dtype=y.dtype)).sum(-1).long()
    expected = -log_p[index, torch.arange(B)].mean()
    torch.testing.assert_close(head.nll(h, y), expected)


@float64
def test_gradcheck_over_own_and_shared_weights():
    head = _head()
    h = torch.randn(B, D)
    y = (torch.rand(B, len(CODES)) < 0.4).double()
    own, shared = head.linear.weight, head.tree.weight

    def loss(own_weight, shared_weight):
        with torch.no_grad():
            own.copy_(own_weight)
            shared.copy_(shared_weight)
        return torch.func.functional_call(head, {"linear.weight": own_weight, "tree.weight": shared_weight},
                                          (h,)).log_prob(y)

    assert torch.autograd.gradcheck(loss, (own.detach().clone().requires_grad_(),
                                           shared.detach().clone().requires_grad_()))


@float64
def test_extreme_weights_give_a_finite_loss_and_gradient():
    head = _head()
    with torch.no_grad():
        head.tree.weight.fill_(1e4)
        head.linear.weight.fill_(-1e4)
        head.tree.weight[0].fill_(-1e4)
    h = torch.randn(B, D)
    y = (torch.rand(B, len(CODES)) < 0.5).double()
    loss = head.nll(h, y)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in head.parameters())


@float64
def test_sparse_and_per_label_features_agree_with_dense():
    head = _head()
    h = torch.randn(B, D)
    h[h.abs() < 0.5] = 0.0
    torch.testing.assert_close(head.logits(h.to_sparse_csr()), head.logits(h))
    per_label = torch.randn(B, len(CODES), D)
    expected = torch.einsum("bmd,md->bm", per_label, _brute_shared_weight(head, CODES)) + head.linear.bias
    torch.testing.assert_close(head.logits(per_label), expected)


@float64
def test_labels_that_are_not_codes_give_the_plain_independent_head():
    names = ["fever", "cough", "rash"]
    shared = _head(names)
    assert shared.tree.weight.shape == (0, D)
    plain = HEADS["independent"](D, 3)
    plain.load_state_dict({k: v for k, v in shared.state_dict().items() if not k.startswith("tree.")})
    h = torch.randn(B, D)
    torch.testing.assert_close(shared.logits(h), plain.logits(h))


def test_bad_option_value_is_rejected():
    with pytest.raises(ValueError, match="tree_sharing"):
        HEADS["independent"](D, 3, tree_sharing="yes")


def _sibling_data(n=120, rare=2, seed=0):
    """Two sibling codes signalled by the same word: 786.2 in many notes, 786.07 in ``rare``."""
    rng = np.random.default_rng(seed)
    texts, labels = [], np.zeros((n, 3), dtype=np.int8)
    for i in range(n):
        if i < n // 3:
            labels[i, 0] = 1
            texts.append("persistent cough noted " + rng.choice(["today", "again", "at night"]))
        elif i < n // 3 + rare:
            labels[i, 1] = 1
            texts.append("persistent cough and wheezing")
        else:
            labels[i, 2] = 1
            texts.append("right lower lobe pneumonia " + rng.choice(["today", "again"]))
    return MultiLabelDataset([f"r{i}" for i in range(n)], texts, labels, ["786.2", "786.07", "486"])


def test_a_rare_code_borrows_its_siblings_evidence():
    data = _sibling_data()
    test = MultiLabelDataset(["t"], ["persistent cough"], np.zeros((1, 3), dtype=np.int8), data.label_names)
    train = TrainConfig(epochs=30, seed=0, weight_decay=1e-2, penalty="l2")
    plain = MultiLabelModel("independent", encoder="tfidf", train=train).fit(data).marginals(test)[0, 1]
    shared = MultiLabelModel("independent", encoder="tfidf", head_options={"tree_sharing": True},
                             train=train).fit(data).marginals(test)[0, 1]
    # the word signals 786.2 in 40 notes and 786.07 in 2: the shared 786 row lifts the rare code
    assert shared > 1.3 * plain


def test_save_and_load_rebuild_the_shared_weights(tmp_path):
    data = _sibling_data(n=40)
    model = MultiLabelModel("independent", encoder="tfidf", head_options={"tree_sharing": True},
                            train={"epochs": 3}).fit(data)
    assert model.head_.options["tree_nodes"] == 3  # 786, 780-789, 780-799
    model.save(tmp_path / "m")
    loaded = MultiLabelModel.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.marginals(data), model.marginals(data))


def test_the_option_is_reachable_from_the_cli_flags():
    from comorbid.spec import ModelSpec, parse_options

    options = parse_options(["tree_sharing=true"])
    assert options == {"tree_sharing": True}
    assert ModelSpec(model="independent", head_options=options).head_options == {"tree_sharing": True}


def test_the_docs_example_prints_what_it_promises():
    import contextlib
    import io
    import re
    from pathlib import Path

    page = Path(__file__).resolve().parents[1] / "docs" / "losses.md"
    block = next(b for b in re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.DOTALL)
                 if "tree_sharing" in b)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, str(page), "exec"), {})
    promised = [line.split("#", 1)[1].strip() for line in block.splitlines() if line.startswith("print(")]
    assert out.getvalue().splitlines() == promised
