"""The assignment over overlapping bundles: each order rides once, each courier carries one
bundle (a set packing, OR-Tools CP-SAT, started from the flow's answer)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from dispatch.config import DispatchConfig
from dispatch.matching.assignment import Match
from dispatch.matching.bundling import alternatives
from dispatch.matching.policy import Bundle
from dispatch.matching.pricing import Option, Prices
from dispatch.models import Order

__all__ = ["PACK_WORTH", "Group", "choose_bundles", "pack"]

#: An order carried is worth this many times the dearest arc of the packing.
PACK_WORTH = 64


@dataclass(frozen=True, slots=True)
class Group:
    """One merchant's orders of a tick, their prices, and its bundles ``first:end`` of the
    partition."""

    orders: Sequence[Order]
    prices: Prices
    first: int
    end: int


def choose_bundles(
    groups: Sequence[Group],
    bundles: Sequence[Bundle],
    options: Sequence[Option],
    matched: Mapping[int, Match],
    priority: Mapping[str, int],
    config: DispatchConfig,
    now: int,
) -> tuple[list[Bundle], dict[int, Match]]:
    """The partition's bundles with each merchant's :func:`alternatives` after its own, and
    the set packing over them all, from the partition's ``matched``; the partition as it is
    when no merchant has an alternative anyone can carry."""
    chosen_from: list[Bundle] = []
    priced: list[Option] = []
    hint: dict[int, Match] = {}
    for group in groups:
        offered = {bundles[i].key for i in range(group.first, group.end)}
        for i in range(group.first, group.end):
            if i in matched:
                hint[len(chosen_from)] = matched[i]
            chosen_from.append(bundles[i])
            priced.append(options[i])
        if len(group.orders) < 2:
            continue
        for bundle in alternatives(group.orders, group.prices.merchant, group.prices.tick, now):
            if bundle.key in offered:
                continue
            offered.add(bundle.key)
            option = group.prices.of(bundle)
            if option is not None:
                chosen_from.append(bundle)
                priced.append(option)
    if len(chosen_from) == len(bundles):
        return list(bundles), dict(matched)
    return chosen_from, pack(chosen_from, priced, priority, hint, config)


def pack(
    bundles: Sequence[Bundle],
    options: Sequence[Option],
    priority: Mapping[str, int],
    hint: Mapping[int, Match],
    config: DispatchConfig,
) -> dict[int, Match]:
    """The assignment over overlapping bundles: each order in at most one chosen bundle,
    each courier carrying at most one (a set packing, solved with CP-SAT from ``hint``).

    Each order carried is worth 64 times the dearest arc (plus its ``priority``, from its
    age), so carrying more orders comes first unless that would cost more than that in all
    (the flow's 10^9 per order makes CP-SAT far slower), then least cost. ``hint`` (a
    matching of some of the bundles) is the starting point and is kept unless something
    better is found within the solver's deterministic time limit.

    Each bundle keeps its ``candidates_per_bundle`` cheapest arcs and the hint's.

    Returns bundle -> its :class:`~dispatch.matching.assignment.Match`, like :func:`assign_in_rounds`.
    """
    k = config.candidates_per_bundle
    arcs: list[tuple[int, int, int, bool]] = []  # (bundle, courier, cost, timely)
    for i, (right, cost, timely) in enumerate(options):
        kept = list(range(min(k, right.size)))
        if i in hint:
            at = int(np.nonzero(right == hint[i].courier)[0][0])
            if at >= len(kept):
                kept.append(at)
        arcs += zip(
            [i] * len(kept), right[kept].tolist(), cost[kept].tolist(), timely[kept].tolist(), strict=True
        )
    worth = PACK_WORTH * (1 + max(c for _, _, c, _ in arcs))
    # what carrying each bundle's orders is worth, and the bundle's courier in the hint
    carried = [sum(worth + priority[o.id] for o in bundle.orders) for bundle in bundles]
    hinted = {i: m.courier for i, m in hint.items()}
    model = cp_model.CpModel()
    x = [model.new_bool_var("") for _ in arcs]
    by_courier: dict[int, list[cp_model.IntVar]] = {}
    by_order: dict[str, list[cp_model.IntVar]] = {}
    gain: list[int] = []
    start_values: list[int] = []
    for var, (i, j, c, _) in zip(x, arcs, strict=True):
        by_courier.setdefault(j, []).append(var)
        for o in bundles[i].orders:
            by_order.setdefault(o.id, []).append(var)
        gain.append(c - carried[i])
        start_values.append(int(hinted.get(i) == j))
    # the same hint as model.add_hint(var, value) per variable, in one call
    model.model_proto.solution_hint.vars.extend(range(len(x)))
    model.model_proto.solution_hint.values.extend(start_values)
    for group in (*by_courier.values(), *by_order.values()):
        if len(group) > 1:
            model.add_at_most_one(group)
    model.minimize(cp_model.LinearExpr.weighted_sum(x, gain))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_deterministic_time = config.bundle_choice_time_s
    status = solver.solve(model)
    start = sum(g for g, v in zip(gain, start_values, strict=True) if v)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE) or solver.objective_value > start:
        return dict(hint)
    return {i: Match(j, c, t) for var, (i, j, c, t) in zip(x, arcs, strict=True) if solver.boolean_value(var)}
