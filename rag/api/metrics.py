"""Prometheus metrics of one app (its own CollectorRegistry): requests, stage latencies, answers, index size."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rag import Answer, RagError, RagService

log = logging.getLogger("rag.api")

STAGES = ("condense", "retrieve", "gate", "answer", "total")  # keys of Answer.timings_ms (rag/chain.py)
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class IndexCollector(Collector):
    """Index size read at scrape time (another instance may have changed a shared index)."""

    def __init__(self, svc: RagService) -> None:
        self.svc = svc

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("rag_index_up", "1 when the index could be read at this scrape")
        try:
            stats = self.svc.stats()
            articles, chunks = int(stats["articles"]), int(stats["chunks"])
        except RagError as exc:
            log.warning("metrics: the index cannot be read (%s)", exc.user_message)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily("rag_index_articles", "Articles in the index", value=articles)
        yield GaugeMetricFamily("rag_index_chunks", "Chunks (passages) in the index", value=chunks)


class ApiMetrics:
    """Counters and histograms of one app. A registry per app, so several apps may live in one process."""

    def __init__(self, svc: RagService) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "rag_http_requests", "HTTP requests by route template, method and status", ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "rag_http_request_duration_seconds", "Time to the end of the response, by route template", ["route"],
            buckets=_SECONDS, registry=r,
        )
        self.rejected = Counter(
            "rag_http_rejected", "Requests turned away: rate_limited (429), saturated (503), timeout (504)",
            ["reason"], registry=r,
        )
        self.in_flight = Gauge(
            "rag_http_in_flight", "Requests in progress (counted by the concurrency cap)", registry=r
        )
        self.stages = Histogram(
            "rag_stage_duration_seconds", "Answer pipeline stages (condense, retrieve, gate, answer, total)",
            ["stage"], buckets=_SECONDS, registry=r,
        )
        self.answers = Counter("rag_answers", "Answers by mode", ["mode"], registry=r)
        self.refusals = Counter("rag_refusals", "Refused answers (the corpus does not answer), by mode", ["mode"],
                                registry=r)
        r.register(IndexCollector(svc))

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def observe_answer(self, answer: Answer) -> None:
        self.answers.labels(answer.mode).inc()
        if answer.refused:
            self.refusals.labels(answer.mode).inc()
        for stage in STAGES:
            ms = answer.timings_ms.get(stage)
            if ms is not None:
                self.stages.labels(stage).observe(ms / 1000.0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
