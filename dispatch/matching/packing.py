"""The assignment over overlapping bundles: each order rides once, each courier carries one
bundle (a set packing, OR-Tools CP-SAT, started from the flow's answer)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model
from ortools.sat.python import cp_model_helper as cmh

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
    # the arcs (bundle, courier, cost, timely), bundle by bundle
    at_bundle, courier, cost, timely = [], [], [], []
    first_arc = [0]
    for i, (right, arc_cost, arc_timely) in enumerate(options):
        kept = np.arange(min(k, right.size))
        if i in hint:
            at = int(np.nonzero(right == hint[i].courier)[0][0])
            if at >= kept.size:
                kept = np.append(kept, at)
        at_bundle.append(np.full(kept.size, i, dtype=np.int64))
        courier.append(right[kept])
        cost.append(arc_cost[kept])
        timely.append(arc_timely[kept])
        first_arc.append(first_arc[-1] + kept.size)
    arc_bundle = np.concatenate(at_bundle)
    arc_courier = np.concatenate(courier).astype(np.int64)
    arc_cost = np.concatenate(cost).astype(np.int64)
    worth = PACK_WORTH * (1 + int(arc_cost.max()))
    # what carrying each bundle's orders is worth, and the bundle's courier in the hint
    carried = np.array(
        [sum(worth + priority[o.id] for o in bundle.orders) for bundle in bundles], dtype=np.int64
    )
    hinted = np.full(len(bundles), -1, dtype=np.int64)
    for i, m in hint.items():
        hinted[i] = m.courier
    gain = arc_cost - carried[arc_bundle]
    start_values = (hinted[arc_bundle] == arc_courier).astype(np.int64)
    # Each arc is a 0-1 variable: at most one per courier, and per order. The groups, their
    # members and the objective are in the order CpModel's API would write them (groups by
    # first arc, arcs in order, no zero coefficient), so the model is the same proto.
    groups = _by_first_arc(arc_courier)
    by_order: dict[str, list[int]] = {}
    for i, bundle in enumerate(bundles):
        arcs_of = range(first_arc[i], first_arc[i + 1])
        for o in bundle.orders:
            by_order.setdefault(o.id, []).extend(arcs_of)
    groups += by_order.values()
    model = cmh.CpModelProto()
    _add_bool_vars(model, arc_bundle.size)
    for group in groups:
        if len(group) > 1:
            model.constraints.add().at_most_one.literals.extend(group)
    terms = np.flatnonzero(gain)
    model.objective.vars.extend(terms.tolist())
    model.objective.coeffs.extend(gain[terms].tolist())
    model.objective.scaling_factor = 1.0
    # the hint: every variable, the flow's matching
    model.solution_hint.vars.extend(range(arc_bundle.size))
    model.solution_hint.values.extend(start_values.tolist())
    parameters = cmh.SatParameters()
    parameters.num_workers = 1
    # No presolve: these set packings are easy for the search (started from the hint, it
    # proves the optimum in a few conflicts), while presolve's rounds of probing and dominance
    # grew with the model and took 60-75% of the solve at a city's dinner peak (250 orders:
    # 0.2-0.45 s, against 0.07-0.13 s without, to the same optimal objective in all 8 models
    # sampled from metro-day); it was most of the per-order growth of a tick (#16).
    parameters.cp_model_presolve = False
    # Nor probing: with the hint, the search proves these optima without it, and its rounds at
    # the root took a quarter of the solve at metro-day's dinner peak (40 models of 150-340
    # bundles: 2.3 s in all instead of 3.0 s, every packing the same).
    parameters.cp_model_probing_level = 0
    parameters.max_deterministic_time = config.bundle_choice_time_s
    solver = cmh.SolveWrapper()  # as cp_model.CpSolver.solve does
    solver.set_parameters(parameters)
    response = solver.solve(model)  # type: ignore[no-untyped-call]  # the stub leaves it untyped
    start = int(gain[start_values == 1].sum())
    if response.status not in (cp_model.OPTIMAL, cp_model.FEASIBLE) or response.objective_value > start:
        return dict(hint)
    chosen = np.flatnonzero(np.asarray(response.solution, dtype=np.int64)[: arc_bundle.size])
    arc_timely = np.concatenate(timely)
    return {
        i: Match(j, c, t)
        for i, j, c, t in zip(
            arc_bundle[chosen].tolist(),
            arc_courier[chosen].tolist(),
            arc_cost[chosen].tolist(),
            arc_timely[chosen].tolist(),
            strict=True,
        )
    }


def _by_first_arc(values: np.ndarray) -> list[list[int]]:
    """The arcs of each value, in arc order, the values in the order they first appear."""
    order = np.argsort(values, kind="stable")
    bounds = np.flatnonzero(np.diff(values[order])) + 1
    members = np.split(order, bounds)
    members.sort(key=lambda m: int(m[0]))
    return [m.tolist() for m in members]


#: CpModelProtos of 2**b 0-1 variables: a model's variables are merged from them (a copy in
#: C++) instead of being added one Python call each.
_BOOL_VARS: list[cmh.CpModelProto] = []


def _add_bool_vars(model: cmh.CpModelProto, n: int) -> None:
    """Append ``n`` variables of domain [0, 1] and no name, as ``CpModel.new_bool_var("")``."""
    if not _BOOL_VARS:
        one = cmh.CpModelProto()
        one.variables.add().domain.extend((0, 1))
        _BOOL_VARS.append(one)
    b = 0
    while n >> b:
        if b == len(_BOOL_VARS):
            double = cmh.CpModelProto()
            double.merge_from(_BOOL_VARS[-1])
            double.merge_from(_BOOL_VARS[-1])
            _BOOL_VARS.append(double)
        if (n >> b) & 1:
            model.merge_from(_BOOL_VARS[b])
        b += 1
