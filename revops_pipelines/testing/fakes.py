"""Shared machinery of the vendor stand-ins (Gong, Salesforce, HubSpot): a loopback HTTP(S) server
on 127.0.0.1 in a background thread, a request log, optional rate-limit enforcement and a fault plan.

Faults are queued on demand and consumed by the next matching requests::

    server.faults.add("429", path="/v2/calls", times=2)          # 429 with Retry-After
    server.faults.add("429_no_retry_after")
    server.faults.add("500"); server.faults.add("503")
    server.faults.add("timeout")        # hold the response longer than the client waits
    server.faults.add("truncated")      # a JSON body cut in half
    server.faults.add("malformed")      # not JSON at all
    server.faults.add("expired_cursor") # the next request that carries a cursor is told it expired
    server.faults.add("duplicates")     # the next page repeats the previous page's last record

Vendor servers decide what ``expired_cursor`` and ``duplicates`` mean for their paging; the
transport faults are applied here.
"""

from __future__ import annotations

import itertools
import json
import ssl
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

TRANSPORT_FAULTS = ("429", "429_no_retry_after", "500", "503", "timeout", "truncated", "malformed")
PAGING_FAULTS = ("expired_cursor", "duplicates")


@dataclass
class Fault:
    kind: str
    path: str | None
    times: int


class FaultPlan:
    """Faults waiting for the next matching request (by path prefix); thread-safe."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, kind: str, *, path: str | None = None, times: int = 1) -> FaultPlan:
        if kind not in TRANSPORT_FAULTS + PAGING_FAULTS:
            raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            self._faults.append(Fault(kind, path, times))
        return self

    def take(self, path: str, kinds: tuple[str, ...]) -> str | None:
        with self._lock:
            for f in self._faults:
                if f.kind in kinds and (f.path is None or path.startswith(f.path)) and f.times > 0:
                    f.times -= 1
                    if f.times == 0:
                        self._faults.remove(f)
                    return f.kind
        return None

    def pending(self) -> int:
        with self._lock:
            return sum(f.times for f in self._faults)


def json_line(rec: dict) -> bytes:
    return json.dumps(rec, ensure_ascii=False, separators=(",", ":")).encode()


def jsonl_lines(path: str | Path) -> Iterator[bytes]:
    """The non-blank lines of a JSON Lines file, as bytes."""
    with Path(path).open("rb") as fh:
        yield from (line for line in fh if line.strip())


class LineCodec:
    """Deflates JSON lines one at a time against a dictionary of sample lines: records of one kind
    share most of their bytes (keys, id prefixes, dates), so a ~480-byte Salesforce or HubSpot line
    keeps ~60-80 bytes, and each is still read on its own (~1.5 µs, against ~4 µs to parse it)."""

    SAMPLE_LINES = 64

    def __init__(self, samples: Iterable[bytes] = ()):
        self.zdict = b"".join(samples)[-32_768:]  # deflate looks back 32 KiB at most
        # one compressor primed with the dictionary, copied per line (priming costs more than a copy)
        self._primed = zlib.compressobj(6, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, self.zdict)

    @classmethod
    def sample(cls, path: str | Path) -> LineCodec:
        """A codec primed with the first lines of a JSON Lines file."""
        return cls(itertools.islice(jsonl_lines(path), cls.SAMPLE_LINES))

    def pack(self, line: bytes) -> bytes:
        c = self._primed.copy()
        return c.compress(line) + c.flush()

    def unpack(self, packed: bytes) -> bytes:
        d = zlib.decompressobj(-15, self.zdict)
        return d.decompress(packed) + d.flush()

    def load(self, packed: bytes) -> dict:
        return json.loads(self.unpack(packed))


class JsonLines(Sequence[dict]):
    """Records kept as their JSON lines, deflated (:class:`LineCodec`), and parsed when read: how the
    stand-ins hold a large world (a 50,000-account world's Salesforce or HubSpot records took
    ~5.8 GB each as parsed dicts). To a server it is a list of records: indexing and iteration
    parse, so a dict read from it is a copy — a change is kept when it is stored back
    (``store[i] = rec`` or :meth:`append`), as a new line.

    ``key(record)`` is worked out once per stored record and kept in :attr:`keys`: the few fields a
    server filters and sorts on (ids, modified dates, deleted flags), so a query reads only the
    records it serves. :attr:`lines` (as stored: :meth:`load` reads one) and :attr:`keys` are
    parallel lists; :attr:`version` counts the writes, for indexes built from the keys."""

    def __init__(
        self,
        records: Iterable[dict] = (),
        *,
        key: Callable[[dict], Any] | None = None,
        codec: LineCodec | None = None,
    ):
        records = list(records)
        self.codec = codec or LineCodec(json_line(r) for r in records[: LineCodec.SAMPLE_LINES])
        self.lines: list[bytes] = []
        self.keys: list[Any] = []
        self.key = key
        self.version = 0
        for rec in records:
            self.append(rec)

    @classmethod
    def read(cls, path: str | Path, *, key: Callable[[dict], Any] | None = None) -> JsonLines:
        """The records of a JSON Lines file."""
        store = cls(key=key, codec=LineCodec.sample(path))
        pack = store.codec.pack
        for line in jsonl_lines(path):
            store.lines.append(pack(line))
            if key is not None:
                store.keys.append(key(json.loads(line)))
        return store

    def load(self, line: bytes) -> dict:
        """A record from one of :attr:`lines`."""
        return self.codec.load(line)

    def append(self, rec: dict) -> None:
        self.lines.append(self.codec.pack(json_line(rec)))
        if self.key is not None:
            self.keys.append(self.key(rec))
        self.version += 1

    def __setitem__(self, i: int, rec: dict) -> None:
        self.lines[i] = self.codec.pack(json_line(rec))
        if self.key is not None:
            self.keys[i] = self.key(rec)
        self.version += 1

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self.load(line) for line in self.lines[i]]
        return self.load(self.lines[i])

    def __len__(self) -> int:
        return len(self.lines)

    def __iter__(self) -> Iterator[dict]:
        return (self.load(line) for line in self.lines)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]


def as_is(rec: dict) -> dict:
    """The reader of records held as dicts (a :class:`JsonLines` store's is :meth:`JsonLines.load`)."""
    return rec


def find_record(stores: Iterable[list[dict] | JsonLines], record_id: str, id_field: str) -> tuple[Any, int]:
    """The store holding the record with ``record[id_field] == record_id`` and its position. A
    :class:`JsonLines` store is searched on its keys, whose second item is the id (the stand-ins'
    key functions put it there), so no record is parsed; ``KeyError`` when there is none."""
    for recs in stores:
        ids = (k[1] for k in recs.keys) if isinstance(recs, JsonLines) else (r[id_field] for r in recs)
        for i, rid in enumerate(ids):
            if rid == record_id:
                return recs, i
    raise KeyError(record_id)


class JsonLinesById(dict):
    """Id -> a record kept as its JSON line, deflated (see :class:`JsonLines`), and parsed when
    read; a dict read from it is a copy (store a changed record back with ``by_id[key] = rec``)."""

    def __init__(self, codec: LineCodec | None = None):
        super().__init__()
        self.codec = codec or LineCodec()

    def put_line(self, key: str, line: bytes) -> None:
        super().__setitem__(key, self.codec.pack(line))

    def __setitem__(self, key: str, rec: dict) -> None:
        self.put_line(key, json_line(rec))

    def __getitem__(self, key: str) -> dict:
        return self.codec.load(super().__getitem__(key))

    def get(self, key: str, default: Any = None) -> Any:
        packed = super().get(key)
        return default if packed is None else self.codec.load(packed)

    def values(self):  # type: ignore[override]
        return (self.codec.load(v) for v in super().values())

    def items(self):  # type: ignore[override]
        return ((k, self.codec.load(v)) for k, v in super().items())


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    at: float
    raw: bytes = b""  # the body as received


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None


class LoopbackServer:
    """Base class: subclasses implement ``handle(req) -> Reply``. Use as a context manager."""

    name = "fake"

    def __init__(
        self,
        *,
        rate_limit_per_s: float | None = None,
        timeout_hold_s: float = 2.0,
        tls_cert: tuple[Path, Path] | None = None,
    ):
        self.faults = FaultPlan()
        self.log: list[Request] = []
        self.statuses: list[int] = []
        self.rate_limit_per_s = rate_limit_per_s
        self.timeout_hold_s = timeout_hold_s
        self._recent: deque[float] = deque()
        self._lock = threading.Lock()
        self._tls_cert = tls_cert
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        scheme = "https" if self._tls_cert else "http"
        return f"{scheme}://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> LoopbackServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes

            def log_message(self, *args: Any) -> None:  # quiet
                return

            def _serve(self, method: str) -> None:
                server._dispatch(self, method)

            def do_GET(self) -> None:  # noqa: N802
                self._serve("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._serve("POST")

            def do_PATCH(self) -> None:  # noqa: N802
                self._serve("PATCH")

            def do_PUT(self) -> None:  # noqa: N802
                self._serve("PUT")

            def do_DELETE(self) -> None:  # noqa: N802
                self._serve("DELETE")

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        if self._tls_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(self._tls_cert[0]), str(self._tls_cert[1]))
            httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, name=f"{self.name}-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ---- counters ----------------------------------------------------------------------------
    def count(self, status: int) -> int:
        with self._lock:
            return sum(1 for s in self.statuses if s == status)

    def requests_to(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.log if r.path == path]

    # ---- request handling ----------------------------------------------------------------------
    def handle(self, req: Request) -> Reply:  # pragma: no cover - abstract
        raise NotImplementedError

    def _over_limit(self, now: float) -> bool:
        if not self.rate_limit_per_s:
            return False
        with self._lock:
            while self._recent and self._recent[0] <= now - 1.0:
                self._recent.popleft()
            if len(self._recent) >= self.rate_limit_per_s:
                return True
            self._recent.append(now)
            return False

    def _dispatch(self, h: BaseHTTPRequestHandler, method: str) -> None:
        now = time.monotonic()
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        ctype = h.headers.get("Content-Type") or ""
        body: Any = raw.decode("utf-8", "replace")
        if raw and "json" in ctype:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        elif raw and "x-www-form-urlencoded" in ctype:
            body = {k: v[0] for k, v in parse_qs(body).items()}
        req = Request(method, parts.path, parse_qs(parts.query), dict(h.headers.items()), body, now, raw)
        with self._lock:
            self.log.append(req)

        if self._over_limit(now):
            reply = Reply(429, {"errors": ["Too many requests"]}, {"Retry-After": "1"})
        else:
            fault = self.faults.take(parts.path, TRANSPORT_FAULTS)
            reply = self._fault_reply(fault) if fault else None
            if fault == "timeout":
                time.sleep(self.timeout_hold_s)
            if reply is None:
                try:
                    reply = self.handle(req)
                except Exception as e:  # a bug in the fake must show up as a 500, not hang the client
                    reply = Reply(500, {"errors": [f"fake server error: {e!r}"]})
            if fault in ("truncated", "malformed"):
                data = json.dumps(reply.body).encode()
                reply = Reply(
                    200, raw=data[: max(1, len(data) // 2)] if fault == "truncated" else b"{not json"
                )
        with self._lock:
            self.statuses.append(reply.status)
        self._write(h, reply)

    @staticmethod
    def _fault_reply(fault: str) -> Reply | None:
        if fault == "429":
            return Reply(429, {"errors": ["Too many requests"]}, {"Retry-After": "1"})
        if fault == "429_no_retry_after":
            return Reply(429, {"errors": ["Too many requests"]})
        if fault in ("500", "503"):
            return Reply(int(fault), {"errors": ["Internal error"]})
        return None

    @staticmethod
    def _write(h: BaseHTTPRequestHandler, reply: Reply) -> None:
        data = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
        try:
            h.send_response(reply.status)
            if "Content-Type" not in reply.headers:
                h.send_header("Content-Type", "application/json;charset=UTF-8")
            h.send_header("Content-Length", str(len(data)))
            for k, v in reply.headers.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout fault)
            pass


def make_test_cert(folder: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1/localhost (the HTTPS stand-ins need one:
    simple-salesforce always builds ``https://`` URLs). Returns ``(cert.pem, key.pem)``; the cert is
    also the CA bundle a client should trust."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "revops loopback stand-in")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path
