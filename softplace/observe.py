"""Operability for every service: Prometheus metrics, ``/metrics``, ``/healthz``, ``/readyz``.

Each service owns one ``CollectorRegistry`` (so two services in one process, as in the demo
and the tests, never share counters) and hands it to ``ObserveServer`` together with its
ready checks. Metric names follow Prometheus conventions: a ``softplace_`` prefix, units in
the name (``_seconds``, ``_messages``), ``_total`` on counters, and no device id in any label
(a label value per device would make one time series per sensor; sensor health lives in the
store, not here).

The counts a service already keeps (``ConsumerCounts``, the gateway's outbox) are read at
scrape time through callables (``CallbackCollector``), so wiring a service in never changes
its hot path: ``consumer_metrics(registry, consumer)`` and the other ``*_metrics`` functions
below are the whole integration.

``/readyz`` runs every registered check (a callable returning True when ready; one that
raises counts as not ready) and answers 200 or 503 with a JSON body naming each check.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client import exposition as text_format
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.registry import Collector

from softplace.consumer import ConsumerCounts
from softplace.errors import ConfigError
from softplace.settings import ObserveSettings

log = logging.getLogger(__name__)

PREFIX = "softplace"
METRICS_PATH = "/metrics"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
OPENMETRICS_TYPE = "application/openmetrics-text"
JSON_TYPE = "application/json"
SERVER_JOIN_S = 5.0
# ingest batches are bounded by the consumer's queue (Receive Maximum, 1000)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
WRITE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

ReadyCheck = Callable[[], bool]
Number = Callable[[], float | int | None]  # None: nothing to report (the sample is left out)


class Kind(Enum):
    COUNTER = "counter"
    GAUGE = "gauge"


@dataclass(frozen=True, slots=True)
class Reading:
    """One metric read at scrape time: ``name`` without the prefix, and for a counter
    without ``_total`` (prometheus-client adds it)."""

    kind: Kind
    name: str
    documentation: str
    value: Number


class CallbackCollector(Collector):
    """Metrics whose values a service already keeps, read when ``/metrics`` is scraped."""

    def __init__(self, readings: Iterable[Reading]) -> None:
        self.readings = list(readings)

    def collect(self) -> Iterator[Metric]:
        for reading in self.readings:
            try:
                value = reading.value()
            except Exception:  # a scrape must never take the service down
                log.exception("metric %s could not be read", reading.name)
                continue
            if value is None:
                continue
            name = f"{PREFIX}_{reading.name}"
            if reading.kind is Kind.COUNTER:
                yield CounterMetricFamily(name, reading.documentation, value=value)
            else:
                yield GaugeMetricFamily(name, reading.documentation, value=value)


def new_registry(*, process: bool = True) -> CollectorRegistry:
    """A service's own registry, with the process and platform metrics (``process_*``,
    ``python_info``) unless told otherwise."""
    registry = CollectorRegistry(auto_describe=True)
    if process:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
    return registry


# -- what each service counts ----------------------------------------------------------------
class ConsumerLike(Protocol):
    @property
    def counts(self) -> ConsumerCounts: ...

    @property
    def queued(self) -> int: ...


def consumer_metrics(registry: CollectorRegistry, consumer: ConsumerLike) -> None:
    """The shared consumer shell's counts (gateway and ingest): ``ConsumerCounts`` as
    counters, one meaning each, and the bounded queue's depth as a gauge."""

    def count(field: str) -> Number:
        return lambda: getattr(consumer.counts, field)

    registry.register(CallbackCollector([
        Reading(Kind.COUNTER, "broker_connections", "connections the broker accepted",
                count("connections")),
        Reading(Kind.COUNTER, "messages_received", "messages taken in from the broker",
                count("received")),
        Reading(Kind.COUNTER, "messages_accepted", "valid messages turned into output",
                count("accepted")),
        Reading(Kind.COUNTER, "messages_dead_lettered", "bad messages kept as dead letters",
                count("dead_lettered")),
        Reading(Kind.COUNTER, "messages_duplicate", "redelivered duplicates, acked, not kept",
                count("skipped")),
        Reading(Kind.COUNTER, "messages_failed", "messages the stage's core raised on (a bug)",
                count("failed")),
        Reading(Kind.COUNTER, "messages_persisted", "messages whose batch was kept",
                count("persisted")),
        Reading(Kind.COUNTER, "messages_acknowledged", "acknowledgements sent to the broker",
                count("acknowledged")),
        Reading(Kind.COUNTER, "persist_retries", "persist attempts that failed and were retried",
                count("persist_retries")),
        Reading(Kind.GAUGE, "consumer_queue_messages", "messages waiting for the worker",
                lambda: consumer.queued),
    ]))


class _ReasonCollector(Collector):
    def __init__(self, counts: Callable[[], Mapping[str, int]]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(f"{PREFIX}_dead_letters", "dead letters by reason",
                                     labels=["reason"])
        try:
            counts = dict(self.counts())
        except Exception:  # a scrape must never take the service down
            log.exception("dead letters by reason could not be read")
            return
        for reason, n in sorted(counts.items()):
            family.add_metric([reason], n)
        yield family


def dead_letter_reasons(registry: CollectorRegistry,
                        counts: Callable[[], Mapping[str, int]]) -> None:
    """Dead letters by reason (a short fixed vocabulary, never a device id), read at scrape
    time from the counts the stage keeps (the gateway's ``dead_letters``)."""
    registry.register(_ReasonCollector(counts))


def gateway_metrics(
    registry: CollectorRegistry,
    *,
    outbox_depth: Number,
    outbox_oldest_age_s: Number,
    forwarder_inflight: Number,
    forwarded: Number,
    parked: Number,
) -> None:
    """The gateway's outbox and forwarder; ``outbox_oldest_age_s`` returns None when the
    outbox is empty."""
    registry.register(CallbackCollector([
        Reading(Kind.GAUGE, "outbox_messages", "rows waiting in the outbox", outbox_depth),
        Reading(Kind.GAUGE, "outbox_oldest_age_seconds", "age of the oldest outbox row",
                outbox_oldest_age_s),
        Reading(Kind.GAUGE, "forwarder_inflight_messages", "published, not yet acknowledged",
                forwarder_inflight),
        Reading(Kind.COUNTER, "messages_forwarded", "outbox rows the upstream broker acked",
                forwarded),
        Reading(Kind.COUNTER, "messages_parked", "outbox rows upstream refused for good",
                parked),
    ]))


@dataclass(frozen=True, slots=True)
class StoreMetrics:
    """Ingest's writes: observe ``batch_size`` and ``write_seconds`` per batch, ``inc``
    ``write_failures`` per failed attempt and set ``backoff_seconds`` to the wait (0 once a
    write succeeds)."""

    batch_size: Histogram
    write_seconds: Histogram
    write_failures: Counter
    backoff_seconds: Gauge


def store_metrics(registry: CollectorRegistry) -> StoreMetrics:
    return StoreMetrics(
        batch_size=Histogram(f"{PREFIX}_ingest_batch_size_messages", "samples per store write",
                             buckets=BATCH_BUCKETS, registry=registry),
        write_seconds=Histogram(f"{PREFIX}_store_write_duration_seconds",
                                "time one store write took", buckets=WRITE_BUCKETS,
                                registry=registry),
        write_failures=Counter(f"{PREFIX}_store_write_failures", "store writes that raised",
                               registry=registry),
        backoff_seconds=Gauge(f"{PREFIX}_store_backoff_seconds",
                              "current wait before the next write attempt", registry=registry),
    )


@dataclass(frozen=True, slots=True)
class WebMetrics:
    """The web app's answers, labelled by route template (``/offers/{site}/{room}``, never a
    booking id or a user name): ``observe`` once per answered request."""

    requests: Counter
    seconds: Histogram

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.seconds.labels(route).observe(seconds)


def web_metrics(registry: CollectorRegistry) -> WebMetrics:
    return WebMetrics(
        requests=Counter(f"{PREFIX}_web_requests", "HTTP requests answered",
                         ["route", "method", "status"], registry=registry),
        seconds=Histogram(f"{PREFIX}_web_request_duration_seconds", "time to answer a request",
                          ["route"], buckets=WRITE_BUCKETS, registry=registry),
    )


def detector_metrics(
    registry: CollectorRegistry, *, lag_s: Number, checkpoint_age_s: Number, late_dropped: Number,
) -> None:
    """The detector: how far behind the newest reading it is, how old its checkpoint is and
    how many readings arrived too late to count."""
    registry.register(CallbackCollector([
        Reading(Kind.GAUGE, "detector_lag_seconds",
                "the clock minus the slowest site's detector position", lag_s),
        Reading(Kind.GAUGE, "detector_checkpoint_age_seconds", "time since the last checkpoint",
                checkpoint_age_s),
        Reading(Kind.COUNTER, "detector_late_readings_dropped",
                "readings older than the detector's position", late_dropped),
    ]))


# -- ready checks ----------------------------------------------------------------------------
def below(value: Number, threshold: float) -> ReadyCheck:
    """Ready while ``value()`` (e.g. the outbox depth) is below ``threshold``."""
    def check() -> bool:
        current = value()
        return current is None or current < threshold
    return check


def succeeds(probe: Callable[[], object]) -> ReadyCheck:
    """Ready when ``probe`` returns without raising (e.g. a cheap store query)."""
    def check() -> bool:
        probe()
        return True
    return check


def run_checks(checks: Mapping[str, ReadyCheck]) -> dict[str, bool]:
    results: dict[str, bool] = {}
    for name, check in checks.items():
        try:
            results[name] = bool(check())
        except Exception as err:  # not ready, not a crash
            log.info("ready check %s failed: %s", name, err)
            results[name] = False
    return results


# -- the HTTP endpoint -----------------------------------------------------------------------
class ObserveServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` on ``host:port`` in a daemon thread.

    ``/metrics`` answers OpenMetrics when the scraper accepts it (Prometheus does), else
    the classic text format. Port 0 picks a free port (``port`` tells which, after start)."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry,
                 checks: Mapping[str, ReadyCheck] | None = None) -> None:
        self.host = host
        self.registry = registry
        self.checks: dict[str, ReadyCheck] = dict(checks or {})
        try:
            self._server = ThreadingHTTPServer((host, port), self._handler())
        except OSError as err:  # most often a second process on the same observe.port
            raise ConfigError(f"observe.port: cannot listen on {host}:{port} ({err.strerror});"
                              " each process on a host needs a port of its own") from err
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="observe",
                                        daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def add_check(self, name: str, check: ReadyCheck) -> None:
        self.checks[name] = check

    def start(self) -> None:
        self._thread.start()
        log.info("metrics and health on http://%s:%d", self.host, self.port)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(SERVER_JOIN_S)
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == METRICS_PATH:
                    self._metrics()
                elif path == HEALTH_PATH:
                    self._send(HTTPStatus.OK, JSON_TYPE, b'{"status": "alive"}')
                elif path == READY_PATH:
                    results = run_checks(server.checks)
                    status = HTTPStatus.OK if all(results.values()) else \
                        HTTPStatus.SERVICE_UNAVAILABLE
                    body = {"ready": status is HTTPStatus.OK, "checks": results}
                    self._send(status, JSON_TYPE, json.dumps(body, sort_keys=True).encode())
                else:
                    self._send(HTTPStatus.NOT_FOUND, JSON_TYPE, b'{"error": "not found"}')

            def _metrics(self) -> None:
                if OPENMETRICS_TYPE in self.headers.get("Accept", ""):
                    body = openmetrics.generate_latest(server.registry)  # type: ignore[no-untyped-call]
                    content_type = openmetrics.CONTENT_TYPE_LATEST
                else:
                    body = text_format.generate_latest(server.registry)
                    content_type = text_format.CONTENT_TYPE_LATEST
                self._send(HTTPStatus.OK, content_type, body)

            def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("observe: " + format, *args)  # noqa: G003

        return Handler


@contextlib.contextmanager
def serving(server: ObserveServer | None) -> Iterator[ObserveServer | None]:
    """Stop ``server`` (if any) when the block ends: ``with serving(serve(...)):``."""
    try:
        yield server
    finally:
        if server is not None:
            server.stop()


def serve(settings: ObserveSettings, registry: CollectorRegistry,
          checks: Mapping[str, ReadyCheck] | None = None) -> ObserveServer | None:
    """Start the endpoint the settings ask for; None (and nothing started) when it is off."""
    if settings.port is None:
        return None
    server = ObserveServer(settings.host, settings.port, registry, checks)
    server.start()
    return server
