"""Scoring quality on the simulator's ground truth, prequentially (pure domain code, no stack needed).

Every simulated person who leaves a contact (warm and buyer journeys) becomes a labelled lead: a buyer
converts (label 1) at their order, anyone else is reported lost (label 0). Each person is scored at the
moment their outcome is revealed, on the signals seen before it; the outcome is revealed to the
tenant's online model only after that (test, then train), in the order outcomes happen. Both classes
are scored the same random 0.5-5 days after their last signal, so the time since the last touch does
not give the label away.

Reported: the AUC of the rule score, of the online model and of the blend (what the grade uses), on all
outcomes and on the later half; the calibration (Brier, ECE) of each; and a batch logistic regression
(scikit-learn) on the same features, trained on the earlier half and tested on the later half, plus
its 5-fold cross-validated AUC. Figures go into docs/scoring.md with the machine.

Run: python -m bench.scoring_quality [--events 40000] [--seed 11]
"""

from __future__ import annotations

import argparse
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bench import machine
from leadflow.simulate.scenario import generate
from schemas.leads import LeadSnapshot, Stage, Verdict
from schemas.touchpoints import EventType
from services.scoring.domain.learning import Evaluation, Model, auc, blend_weight, calibration, update
from services.scoring.domain.rules import RuleSet, builtin
from services.scoring.domain.score import Signal, score

NOW = datetime(2026, 11, 1, tzinfo=UTC)
OUTCOMES = (EventType.ORDER_PLACED, EventType.PURCHASE_COMPLETED)


@dataclass(frozen=True)
class Case:
    person: str
    at: datetime  # when the person is scored
    signals: tuple[Signal, ...]  # what was seen by then
    label: int
    revealed_at: datetime  # when the outcome is known (the model may learn from it after this)


def cases(events: int, seed: int, early_days: float | None = None) -> list[Case]:
    """Labelled leads in the order they are scored: at their outcome, or `early_days` after their first signal."""
    simulated, truth = generate("bench", seed=seed, count=events, now=NOW, junk_rate=0.0)
    by_person: dict[str, list] = defaultdict(list)
    for sim in simulated:
        by_person[sim.actor_id].append(sim.event)
    rng = random.Random(seed)
    found = []
    for pid, person in truth.persons.items():
        if person.kind not in ("warm", "buyer"):
            continue
        seen = sorted(by_person[pid], key=lambda e: e.occurred_at)
        order = next((e for e in seen if e.event_type in OUTCOMES), None)
        before = [e for e in seen if order is None or e.occurred_at < order.occurred_at]
        before = [e for e in before if e.event_type not in OUTCOMES]
        if not before or (person.kind == "buyer" and order is None):
            continue  # a journey the simulator cut short
        revealed = before[-1].occurred_at + timedelta(days=rng.uniform(0.5, 5))
        at = revealed if early_days is None else min(revealed, before[0].occurred_at + timedelta(days=early_days))
        found.append(Case(pid, at, tuple(Signal(e.event_id, str(e.event_type), e.occurred_at)
                                         for e in before if e.occurred_at <= at), int(person.converted), revealed))
    return sorted(found, key=lambda c: (c.at, c.person))


def _lead(case: Case) -> LeadSnapshot:
    return LeadSnapshot(verdict=Verdict.VALID, stage=Stage.LEAD, reachable=True, touchpoints=len(case.signals),
                        first_seen_at=case.signals[0].occurred_at, last_seen_at=case.signals[-1].occurred_at)


def prequential(found: list[Case], rules: RuleSet) -> tuple[list[Evaluation], list[dict[str, float]], Model]:
    """Each case scored with the model as it was at that moment; a label trains the model only once it is
    revealed (on the features of the case's scoring). The evaluations and the features, in scoring order."""
    model, evaluations, features = Model(), [], []
    moments = sorted([(c.at, 0, i) for i, c in enumerate(found)] + [(c.revealed_at, 1, i) for i, c in enumerate(found)])
    seen: dict[int, dict[str, float]] = {}
    for _, kind, i in moments:
        case = found[i]
        if kind == 0:
            scored = score(case.signals, _lead(case), rules, case.at, model)
            x = seen[i] = dict(scored.features)
            p = model.predict(x)
            w = blend_weight(model.n, rules.learning)
            rule = (scored.rule_score or 0.0) / 100
            evaluations.append(Evaluation(rule, p, (1 - w) * rule + w * p, case.label))
            features.append(x)
        else:
            model = update(model, seen[i], case.label, rules.learning)
    return evaluations, features, model


def batch(features: list[dict[str, float]], labels: list[int]) -> tuple[float, float]:
    """A batch logistic regression on the same features: (AUC on the later half when trained on the
    earlier half, 5-fold cross-validated AUC)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    names = sorted(features[0])
    matrix = [[x[n] for n in names] for x in features]
    half = len(matrix) // 2
    fitted = LogisticRegression(max_iter=2000).fit(matrix[:half], labels[:half])
    later = roc_auc_score(labels[half:], fitted.predict_proba(matrix[half:])[:, 1])
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    oof = cross_val_predict(LogisticRegression(max_iter=2000), matrix, labels, cv=folds, method="predict_proba")[:, 1]
    return float(later), float(roc_auc_score(labels, oof))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--rules", default="car_dealer")
    args = parser.parse_args()
    rules = builtin(args.rules)
    print(f"== scoring quality, prequential ({machine()})")
    for early in (None, 2.0):
        report(cases(args.events, args.seed, early), rules,
               "at the outcome" if early is None else f"early: {early:g} days after the first signal")


def report(found: list[Case], rules: RuleSet, when: str) -> None:
    evaluations, features, model = prequential(found, rules)
    labels = [e.label for e in evaluations]
    half = len(evaluations) // 2
    print(f"-- scored {when}. rules {rules.ref}; {len(found)} labelled leads, {sum(labels)} converted; "
          f"model after all: n={model.n}, blend weight {blend_weight(model.n, rules.learning):.2f}")
    print(f"{'':8} {'AUC all':>8} {'AUC later half':>15} {'Brier':>7} {'ECE':>7}")
    for name, column in (("rules", [e.rule for e in evaluations]), ("model", [e.model for e in evaluations]),
                         ("blend", [e.blend for e in evaluations])):
        pairs = list(zip(column, labels, strict=True))
        cal = calibration(pairs)
        assert cal is not None
        print(f"{name:8} {auc(pairs):8.3f} {auc(pairs[half:]):15.3f} {cal.brier:7.3f} {cal.ece:7.3f}")
    later, cv = batch(features, labels)
    print(f"{'batch LR':8} {'':8} {later:15.3f}   (trained on the earlier half; 5-fold CV AUC {cv:.3f})")
    top = sorted(model.weights.items(), key=lambda kv: -abs(kv[1]))[:6]
    print("largest learned weights: " + ", ".join(f"{k} {v:+.2f}" for k, v in top))


if __name__ == "__main__":
    main()
