"""Who carries what: candidates, bundles and the assignment, behind one policy protocol.

A policy looks at a :class:`Snapshot` of the city (open orders, couriers that are free or
soon free) and returns :class:`Decision`s: a bundle of orders for a courier. The engine
turns decisions into timed plans and writes them all at once.

Two policies:

* :class:`OptimizingPolicy`: bundles orders of one merchant when couriers are scarce,
  prices every (bundle, candidate courier) pair, where candidates come from the H3 index,
  and solves the assignment exactly with OR-Tools min-cost flow. When that leaves an order
  waiting, the assignment may choose among overlapping bundles instead (a set packing,
  OR-Tools CP-SAT, started from the flow's answer). It commits an order only
  when the chosen courier would not reach the merchant much before the food is ready.
* :class:`GreedyPolicy`: the baseline every benchmark compares against: first placed,
  first served, each order to the idle courier that reaches its merchant soonest.

One module per concept: :mod:`~dispatch.matching.policy` (the protocol and its records),
:mod:`~dispatch.matching.candidates`, :mod:`~dispatch.matching.bundling`,
:mod:`~dispatch.matching.pricing`, :mod:`~dispatch.matching.assignment` (min-cost flow),
:mod:`~dispatch.matching.packing` (CP-SAT), :mod:`~dispatch.matching.optimizing` and
:mod:`~dispatch.matching.greedy`.
"""

from dispatch.matching.assignment import UNASSIGNED_COST, solve_assignment
from dispatch.matching.bundling import make_bundles
from dispatch.matching.greedy import GreedyPolicy
from dispatch.matching.optimizing import OptimizingPolicy
from dispatch.matching.policy import Bundle, Collecting, CourierSupply, Decision, DispatchPolicy, Snapshot

__all__ = [
    "UNASSIGNED_COST",
    "Bundle",
    "Collecting",
    "CourierSupply",
    "Decision",
    "DispatchPolicy",
    "GreedyPolicy",
    "OptimizingPolicy",
    "Snapshot",
    "make_bundles",
    "solve_assignment",
]
