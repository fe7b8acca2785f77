"""Every registry line has a conformance example: a test here fails naming the one that lacks it.

The registries (one dict literal each): heads ``comorbid.heads.HEADS`` (and the distributions
they return, with every ``JointLabelDistribution`` of ``comorbid.distributions``), decoders
``comorbid.decoders.DECODERS``, losses ``comorbid.losses.LOSSES``, encoders
``comorbid.encoders.ENCODERS``, readers ``comorbid.data.readers.READERS``. The examples: the
distributions, decoders and readers of ``tests/examples.py`` (run by ``test_conformance.py`` and
``test_data_readers.py``), the losses of ``test_losses.py`` (``EXAMPLES``) and the encoders of
``test_encoders.py`` (``ENCODER_EXAMPLES``).
"""

from __future__ import annotations

import importlib
import pkgutil

import numpy as np
import pytest
import torch

import comorbid.distributions
from comorbid.data.readers import READERS
from comorbid.decoders import DECODERS
from comorbid.distributions.base import JointLabelDistribution
from comorbid.encoders import ENCODERS
from comorbid.heads import HEADS
from comorbid.losses import LOSSES
import examples


def _missing(kind: str, registered, covered, where: str) -> str:
    missing = sorted(set(registered) - set(covered))
    return f"{kind} without a conformance example (add one to {where}): {', '.join(missing)}" if missing else ""


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _example_distribution_classes() -> set[type]:
    """The classes the distribution examples build (the outermost: the one the suite checks)."""
    return {type(example.make(batch_size=2, n_labels=3)[0]) for example in examples.DISTRIBUTIONS}


def test_every_distribution_has_an_example():
    for module in pkgutil.iter_modules(comorbid.distributions.__path__):
        importlib.import_module(f"comorbid.distributions.{module.name}")
    defined = {cls for cls in _subclasses(JointLabelDistribution) if cls.__module__.startswith("comorbid.")}
    names = {cls.__name__ for cls in defined}
    covered = {cls.__name__ for cls in _example_distribution_classes()}
    message = _missing("distributions", names, covered, "tests/examples.py DISTRIBUTIONS")
    assert not message, message


def test_every_head_returns_a_distribution_with_an_example():
    labels = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    returns = {}
    for name, head_cls in HEADS.items():
        head = head_cls(3, labels.shape[1])
        head.prepare(labels, ["a", "b", "c"])
        with torch.no_grad():
            returns[name] = type(head(torch.zeros(len(labels), 3)))
    covered = _example_distribution_classes()
    heads = {f"{name} ({cls.__name__})" for name, cls in returns.items() if cls not in covered}
    message = _missing("heads whose distribution has no example", heads, (), "tests/examples.py DISTRIBUTIONS")
    assert not message, message


def test_a_bag_looks_its_members_up_in_the_one_head_registry():
    assert HEADS["bagging"].member_heads is HEADS
    with pytest.raises(ValueError, match="Unknown model 'forest'"):
        HEADS["bagging"](3, 2, base="forest")


def test_heads_flagged_linear_logits_have_one_logit_row_per_code():
    """explain's ``"linear"`` method reads ``head.linear`` as ``[M, d]`` code logits for these heads."""
    flagged = {name for name, head_cls in HEADS.items() if head_cls.linear_logits}
    assert flagged == {"independent", "chain", "ising"}
    for name in flagged:
        linear = HEADS[name](3, 4).linear
        assert isinstance(linear, torch.nn.Linear) and (linear.in_features, linear.out_features) == (3, 4), name


def test_every_decoder_has_an_example():
    names = [example.make(3).name for example in examples.DECODERS]
    message = _missing("decoders", DECODERS, names, "tests/examples.py DECODERS")
    assert not message, message
    assert set(names) <= set(DECODERS), f"examples of decoders that are not registered: {set(names) - set(DECODERS)}"


def test_every_loss_has_an_example_once():
    from test_losses import EXAMPLES

    names = [example.name for example in EXAMPLES]
    message = _missing("losses", LOSSES, names, "tests/test_losses.py EXAMPLES")
    assert not message, message
    assert len(set(names)) == len(names) and set(names) <= set(LOSSES), sorted(names)
    for example in EXAMPLES:
        assert example.make(4).name == example.name


def test_every_encoder_has_an_example():
    from test_encoders import ENCODER_EXAMPLES

    names = {e.values[0] if hasattr(e, "values") else e[0] for e in ENCODER_EXAMPLES}
    message = _missing("encoders", ENCODERS, names, "tests/test_encoders.py ENCODER_EXAMPLES")
    assert not message, message
    assert names <= set(ENCODERS), f"examples of encoders that are not registered: {names - set(ENCODERS)}"


def test_every_reader_has_an_example():
    suffixes = [example.suffix for example in examples.READERS]
    message = _missing("readers (file endings)", READERS, suffixes, "tests/examples.py READERS")
    assert not message, message
    assert len(set(suffixes)) == len(suffixes) and set(suffixes) <= set(READERS), suffixes


def test_a_missing_example_is_named():
    assert _missing("decoders", {"hamming", "new-one"}, ["hamming"], "X") == (
        "decoders without a conformance example (add one to X): new-one")


def test_cli_help_lists_every_registered_name():
    """The CLI's help strings are generated from the registries, so a new line shows up there."""
    from comorbid import cli

    for name in HEADS:
        assert name in cli.ModelOption.help
    for name in ENCODERS:
        assert name in cli.EncoderOption.help
    for name in DECODERS:
        assert name in cli.DECODE_HELP
    for suffix in READERS:
        assert suffix in cli.DataArgument.help
