"""Local fakes of the Google Analytics 4 Data API and the Meta Marketing API, serving a simulated
world's `ga4/` and `meta/` files over HTTP on 127.0.0.1, so the dlt sources for those APIs run
(and are tested) against the same request and response shapes as production, with no
credentials and with failures on demand. See README.md."""

from simulator.fakes.ga4 import GA4Fake
from simulator.fakes.meta import MetaFake
from simulator.fakes.server import FakeServer

__all__ = ["FakeServer", "GA4Fake", "MetaFake"]
