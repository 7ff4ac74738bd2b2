"""Learning from outcomes: a per-tenant logistic regression trained online, one labelled person at a
time, on the features the rules compute; its blend weight; and the measures of how well rules, model
and blend rank and calibrate on outcomes none of them had seen (each person is scored before their
outcome trains the model: the prequential protocol).

Online by SGD with AdaGrad step sizes: each feature's step shrinks with the gradients it has seen, so
rare signals (a deposit) still learn quickly while common ones settle. The whole model is a few dozen
numbers, stored as one document per tenant. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from services.scoring.domain.rules import Learning, LearningMode

_EPS = 1e-8


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@dataclass(frozen=True)
class Model:
    """A logistic regression: P(converted | x) = sigmoid(bias + sum(w_k * x_k))."""

    weights: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    bias: float = 0.0
    g2: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))  # AdaGrad: squared gradients so far
    n: int = 0  # labelled persons learned from
    positives: int = 0
    version: int = 0  # grows by one per update

    def predict(self, x: Mapping[str, float]) -> float:
        return sigmoid(self.bias + sum(self.weights.get(k, 0.0) * v for k, v in x.items()))


_BIAS = "__bias__"


def update(model: Model, x: Mapping[str, float], label: int, learning: Learning) -> Model:
    """One SGD step on one labelled person (log loss, L2 on the weights)."""
    error = model.predict(x) - label
    weights, g2, bias = dict(model.weights), dict(model.g2), model.bias

    def step(key: str, w: float, grad: float) -> float:
        g2[key] = g2.get(key, 0.0) + grad * grad
        return w - learning.learning_rate * grad / math.sqrt(g2[key] + _EPS)

    for k, v in x.items():
        w = weights.get(k, 0.0)
        grad = error * v + learning.l2 * w
        if grad:
            weights[k] = step(k, w, grad)
    bias = step(_BIAS, bias, error)
    return replace(model, weights=MappingProxyType(weights), bias=bias, g2=MappingProxyType(g2), n=model.n + 1,
                   positives=model.positives + label, version=model.version + 1)


def blend_weight(n: int, learning: Learning) -> float:
    """The model's share of the score after `n` labelled persons: none before `min_outcomes`, then
    growing towards `max_weight` (half of it after `ramp` persons)."""
    if learning.mode is LearningMode.OFF or n < learning.min_outcomes:
        return 0.0
    return learning.max_weight * n / (n + learning.ramp)


# ---- held-out quality ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """One person's scores just before their outcome was revealed, and the outcome."""

    rule: float  # the rule score / 100
    model: float  # the model's probability
    blend: float  # the blended score / 100 (what the grade would use in blend mode)
    label: int


def auc(scored: Iterable[tuple[float, int]]) -> float | None:
    """The probability that a random converted person outranks a random other one (ties count half);
    None without both kinds."""
    pairs = sorted(scored)
    positives = sum(label for _, label in pairs)
    negatives = len(pairs) - positives
    if not positives or not negatives:
        return None
    rank_sum, i = 0.0, 0
    while i < len(pairs):  # average ranks over ties
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        average = (i + 1 + j) / 2
        rank_sum += average * sum(label for _, label in pairs[i:j])
        i = j
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


@dataclass(frozen=True)
class Bin:
    lower: float
    upper: float
    count: int
    predicted: float  # mean predicted probability in the bin
    observed: float  # share that converted


@dataclass(frozen=True)
class Calibration:
    brier: float  # mean squared error of the probability; 0 is perfect
    ece: float  # expected calibration error: |predicted - observed| weighted by bin size
    bins: tuple[Bin, ...]


def calibration(scored: Sequence[tuple[float, int]], bins: int = 10) -> Calibration | None:
    if not scored:
        return None
    brier = sum((p - y) ** 2 for p, y in scored) / len(scored)
    grouped: list[list[tuple[float, int]]] = [[] for _ in range(bins)]
    for p, y in scored:
        grouped[min(int(p * bins), bins - 1)].append((p, y))
    table = tuple(Bin(b / bins, (b + 1) / bins, len(g), sum(p for p, _ in g) / len(g), sum(y for _, y in g) / len(g))
                  for b, g in enumerate(grouped) if g)
    ece = sum(b.count * abs(b.predicted - b.observed) for b in table) / len(scored)
    return Calibration(round(brier, 4), round(ece, 4), table)


@dataclass(frozen=True)
class Quality:
    n: int
    positives: int
    auc: Mapping[str, float | None]  # rules, model, blend
    calibration: Mapping[str, Calibration | None]


def quality(evaluations: Sequence[Evaluation]) -> Quality:
    """AUC and calibration of rules, model and blend on held-out outcomes. The rule score is not a
    probability; its calibration is that of score / 100, reported so the gap is visible."""
    columns = {"rules": [(e.rule, e.label) for e in evaluations], "model": [(e.model, e.label) for e in evaluations],
               "blend": [(e.blend, e.label) for e in evaluations]}
    return Quality(
        n=len(evaluations),
        positives=sum(e.label for e in evaluations),
        auc={name: None if (a := auc(col)) is None else round(a, 4) for name, col in columns.items()},
        calibration={name: calibration(col) for name, col in columns.items()},
    )
