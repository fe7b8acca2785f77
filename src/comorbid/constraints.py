"""Parameter rules, declared once: a rule says what a value must be, and its error names the parameter.

Like scikit-learn's ``_parameter_constraints`` and torch.distributions' ``arg_constraints``: a
class lists a rule per parameter (:data:`comorbid.training.TRAIN_RULES`,
:data:`comorbid.spec.MODEL_RULES`) and checks them in one place (its ``__post_init__``). The
error, :class:`ParameterError`, keeps the parameter's name apart from the rule, so that the CLI
can say the same thing about its flag (``--epochs must be > 0, got 0``) that Python says about
the field (```epochs` must be > 0, got 0``).

This module imports nothing from comorbid: every layer may use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Callable


class ParameterError(ValueError):
    """A parameter outside its rule.

    Attributes:
        name: the parameter, dotted for a nested one (``"ensemble"``, ``"head_options.loss"``).
        expected: the rule in words (``"> 0"``, ``"one of 'l2', 'l1'"``).
        value: the value given.
        template: the whole message with ``{name}`` where the parameter's name goes, for rules
            that say more than "must be" (default: ``"{name} must be {expected}, got {value!r}"``).
    """

    def __init__(self, name: str, expected: str, value: Any, template: str | None = None):
        self.name, self.expected, self.value = name, expected, value
        self.template = template
        super().__init__(self.describe(f"`{name}`"))

    def describe(self, label: str) -> str:
        """The message with the parameter called ``label`` (a field name, a CLI flag)."""
        if self.template is not None:
            return self.template.format(name=label)
        return f"{label} must be {self.expected}, got {self.value!r}"


@dataclass(frozen=True)
class Rule:
    """What a value must be: ``test(value)`` is true for allowed values; ``expected`` says it in words."""

    test: Callable[[Any], bool]
    expected: str

    def check(self, name: str, value: Any) -> None:
        """Raise :class:`ParameterError` naming ``name`` unless ``value`` passes."""
        try:
            ok = self.test(value)
        except TypeError:  # a comparison with the wrong type: None > 0, "3" >= 1
            ok = False
        if not ok:
            raise ParameterError(name, self.expected, value)


def _number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and not math.isnan(value)


def greater_than(low: float) -> Rule:
    return Rule(lambda value: _number(value) and value > low, f"> {low:g}")


def at_least(low: float, integer: bool = False) -> Rule:
    """``value >= low`` (and an integer, not a bool, when ``integer``)."""
    if integer:
        return Rule(lambda value: isinstance(value, Integral) and not isinstance(value, bool) and value >= low,
                    f"an integer >= {low:g}")
    return Rule(lambda value: _number(value) and value >= low, f">= {low:g}")


def in_interval(low: float, high: float) -> Rule:
    """``low <= value < high``."""
    return Rule(lambda value: _number(value) and low <= value < high, f"in [{low:g}, {high:g})")


def one_of(*choices: Any) -> Rule:
    """One of ``choices``, compared by type and value (``1`` is not ``True``)."""
    return Rule(lambda value: any(type(value) is type(choice) and value == choice for choice in choices),
                "one of " + ", ".join(repr(choice) for choice in choices))


def check_all(rules: dict[str, Rule], values: Any, prefix: str = "") -> None:
    """Check every attribute of ``values`` that ``rules`` names (``prefix`` goes before each name)."""
    for name, rule in rules.items():
        rule.check(f"{prefix}{name}", getattr(values, name))
