"""Prometheus metrics of one app (its own registry, so that several apps in one process keep apart): requests by
route and status, their latency, each model's queue depth, and the tokens generated."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self, served: dict):
        self.registry = CollectorRegistry()
        self.requests = Counter("genlab_requests", "HTTP requests answered", ["route", "status"],
                                registry=self.registry)
        self.latency = Histogram("genlab_request_seconds", "time to a response's start (a stream: its headers)",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.generated = Counter("genlab_tokens_generated", "tokens sampled", ["model"], registry=self.registry)
        self.registry.register(QueueDepth(served))

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def tokens(self, model: str, n: int) -> None:
        self.generated.labels(model).inc(n)

    def render(self) -> str:
        return generate_latest(self.registry).decode("utf-8")


class QueueDepth:
    """Read at each scrape: requests waiting or running per model."""

    def __init__(self, served: dict):
        self.served = served

    def collect(self):
        gauge = GaugeMetricFamily("genlab_queue_depth", "requests waiting or running", labels=["model"])
        for name, s in self.served.items():
            gauge.add_metric([name], s.worker.depth)
        yield gauge

    def describe(self):
        return []
