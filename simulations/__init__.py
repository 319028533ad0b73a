"""The world around the dispatcher: synthetic cities and a discrete-event replay.

The simulator plays couriers and customers and sends the events a real courier app would
send, so a replay measures the real dispatch code.
"""

from simulations.city import CityPlan, OrderRequest, synthetic_city
from simulations.world import ReplayReport, World

__all__ = ["CityPlan", "OrderRequest", "ReplayReport", "World", "synthetic_city"]
