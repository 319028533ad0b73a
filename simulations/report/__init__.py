"""The HTML report of a simulated city day: one self-contained file, made to be looked at.

:func:`write_report` reads only the four files a run writes (``kpis.json``, ``orders.csv``,
``couriers.csv``, ``timeline.csv``, documented in the README) and writes
``report.html`` beside them: a header saying what was run, headline numbers per variant, the
KPI table with each variant's difference to the first, the day over time, distributions, and
maps. Every chart is an inline SVG drawn by matplotlib (no JavaScript, no CDN, no map tiles),
so the file opens anywhere with no network, and the same files give the same bytes.

Maps of a live city (``"coordinates": "latlng"``) are H3 hexagons at a resolution that suits
the city's size and the number of orders, over the city's outline (a circle of its radius).
Maps of the Grubhub replay (``"planar_m"``) are drawn in the instance's own metres on a square
grid, over its bounding box.
"""

from simulations.report.maps import h3_resolution_for
from simulations.report.page import KPI_LABELS, write_report

__all__ = ["KPI_LABELS", "h3_resolution_for", "write_report"]
