"""A small HTTP/1.1 load generator: many keep-alive connections on asyncio streams, one process.

Run as ``python bench/loadgen.py SPEC.json``; it prints one JSON object (:class:`Outcome`) on stdout. It is kept
apart from the benchmark driver so the driver's own work never runs inside a measured window, and it speaks
HTTP with raw streams (under uvloop when available) because an HTTP client library would cost more CPU than the
server on a machine where both share two cores.

Every connection is opened before the clock starts, one at a time (see :func:`run`). Each connection sends one
request, reads the whole response (``Content-Length`` framing, which is what the vault sends), and sends the
next. Responses that complete during the warm-up are checked but not counted; the measured window follows it.
A request pool is either cycled (reads, plain creates) or used once per request (``unique``: sealed creates,
each of which carries its own id); a run whose pool runs out ends early and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["Outcome", "Spec", "cpu_seconds", "run"]

EXCHANGE_TIMEOUT_S = 15.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Spec:
    """What to send, how hard and for how long."""

    host: str
    port: int
    token: str
    method: str
    paths: list[str]
    """Request targets: cycled, or (``unique``) paired with ``bodies`` one to one."""
    bodies: list[str] | None
    """JSON bodies (POST): cycled, or used once each with ``unique``."""
    unique: bool
    expect: int
    concurrency: int
    warmup_s: float
    duration_s: float
    watch_pids: list[int] = field(default_factory=list)
    """Processes (the server) whose CPU time is sampled over the measured window."""
    keep_locations: int = 0
    """How many ``Location`` headers of measured responses to return (ids for a later read run)."""
    connect_gap_s: float = 0.02
    """Pause between opening connections."""

    @classmethod
    def load(cls, path: Path) -> Spec:
        return cls(**json.loads(path.read_text()))

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))


@dataclass
class Outcome:
    """One run's result; ``errors`` counts every unexpected status or transport failure, warm-up included."""

    ok: int = 0
    window_s: float = 0.0
    rate: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    exhausted: bool = False
    server_cpu_s: dict[str, float] = field(default_factory=dict)
    """CPU seconds each watched process used in the measured window, by pid."""
    loadgen_cpu_s: float = 0.0
    locations: list[str] = field(default_factory=list)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process from /proc (0 if it has gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _request_bytes(spec: Spec, path: str, body: str | None) -> bytes:
    payload = body.encode() if body is not None else b""
    lines = [
        f"{spec.method} {path} HTTP/1.1",
        f"Host: {spec.host}:{spec.port}",
        f"Authorization: Bearer {spec.token}",
        "Accept: application/fhir+json",
    ]
    if body is not None:
        lines += ["Content-Type: application/fhir+json", f"Content-Length: {len(payload)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


class _Requests:
    """The request pool, shared by all connections (one event loop: no locking needed)."""

    def __init__(self, spec: Spec) -> None:
        bodies = spec.bodies
        if spec.unique:
            if bodies is None or len(bodies) != len(spec.paths):
                raise ValueError("a unique pool needs one body per path")
            self._items = [_request_bytes(spec, p, b) for p, b in zip(spec.paths, bodies, strict=True)]
        elif bodies:
            self._items = [_request_bytes(spec, spec.paths[i % len(spec.paths)], b) for i, b in enumerate(bodies)]
        else:
            self._items = [_request_bytes(spec, p, None) for p in spec.paths]
        self._unique = spec.unique
        self._next = 0
        self.exhausted = False

    def take(self) -> bytes | None:
        if self._next >= len(self._items):
            if self._unique:
                self.exhausted = True
                return None
            self._next = 0
        item = self._items[self._next]
        self._next += 1
        return item


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, str]:
    """Send one request and read its whole response; returns the status and the Location header (or "")."""
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    location = ""
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "location":
            location = value.strip()
        elif name == "transfer-encoding":
            raise ValueError("chunked responses are not supported by this load generator")
    if length:
        await reader.readexactly(length)
    return status, location


@dataclass
class _Tally:
    measure_from: float
    stop_at: float
    ok: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    locations: list[str] = field(default_factory=list)
    last_done: float = 0.0


async def _connection(
    spec: Spec, pool: _Requests, tally: _Tally, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while time.monotonic() < tally.stop_at:
            request = pool.take()
            if request is None:
                return
            started = time.monotonic()
            try:
                async with asyncio.timeout(EXCHANGE_TIMEOUT_S):
                    status, location = await _exchange(reader, writer, request)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                tally.errors[type(exc).__name__] += 1
                return  # the connection's state is unknown: stop using it
            done = time.monotonic()
            if status != spec.expect:
                tally.errors[f"HTTP {status}"] += 1
            elif tally.measure_from <= done <= tally.stop_at:
                tally.ok += 1
                tally.latencies.append(done - started)
                tally.last_done = max(tally.last_done, done)
                if location and len(tally.locations) < spec.keep_locations:
                    tally.locations.append(location)
    finally:
        writer.close()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(spec: Spec) -> Outcome:
    """Drive the load described by ``spec`` and measure it."""
    pool = _Requests(spec)
    tally = _Tally(measure_from=0.0, stop_at=float("inf"))
    # Connect first, so connection set-up stays out of both the warm-up and the window; one at a time with a
    # pause, because connections opened in one burst all land on whichever uvicorn worker wakes first.
    opened = []
    for _ in range(spec.concurrency):
        opened.append(await asyncio.open_connection(spec.host, spec.port))
        await asyncio.sleep(spec.connect_gap_s)
    tally.measure_from = time.monotonic() + spec.warmup_s
    tally.stop_at = tally.measure_from + spec.duration_s
    tasks = [asyncio.create_task(_connection(spec, pool, tally, r, w)) for r, w in opened]
    await asyncio.sleep(max(0.0, tally.measure_from - time.monotonic()))
    server_cpu0 = {p: cpu_seconds(p) for p in spec.watch_pids}
    own_cpu0 = time.process_time()
    await asyncio.gather(*tasks)
    end = min(tally.stop_at, time.monotonic())
    server_cpu = {str(p): cpu_seconds(p) - before for p, before in server_cpu0.items()}
    own_cpu = time.process_time() - own_cpu0
    if pool.exhausted and tally.last_done:
        end = tally.last_done
    window = max(end - tally.measure_from, 1e-9)
    lat = tally.latencies
    return Outcome(
        ok=tally.ok,
        window_s=window,
        rate=tally.ok / window,
        errors=dict(tally.errors),
        latency_ms={
            "p50": 1000 * _percentile(lat, 0.50),
            "p90": 1000 * _percentile(lat, 0.90),
            "p99": 1000 * _percentile(lat, 0.99),
            "max": 1000 * max(lat),
        }
        if lat
        else {},
        exhausted=pool.exhausted,
        server_cpu_s=server_cpu,
        loadgen_cpu_s=own_cpu,
        locations=tally.locations,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", type=Path, help="JSON file with the Spec fields")
    spec = Spec.load(parser.parse_args().spec)
    try:
        import uvloop
    except ImportError:
        outcome = asyncio.run(run(spec))
    else:
        outcome = uvloop.run(run(spec))
    json.dump(asdict(outcome), sys.stdout)


if __name__ == "__main__":
    main()
