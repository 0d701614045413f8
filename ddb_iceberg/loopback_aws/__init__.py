"""AWS on loopback for the test suite and `make bench`: moto's server, with rules of real AWS that moto does not
enforce, and a record of every request it receives.

moto answers like AWS where it implements a call, but it is lenient where AWS is strict: it answers 404 for a
missing key whatever the caller's permissions (S3 answers 403 without `s3:ListBucket`), and it stores any Glue
column (Glue refuses comments over 255 characters). Each such rule is a `Rule` here, checked on every request
whichever client sends it (boto3, pyarrow's C++ S3 client, the JVM's AWS SDK in Spark), and cites the AWS page
it comes from.

moto is a development dependency: only the tests and the bench import this package.
"""

from __future__ import annotations

import io
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


@dataclass(frozen=True)
class AwsRequest:
    """One request as AWS would see it: the service it was signed for, the operation, and where it points."""

    service: str
    operation: str
    method: str
    bucket: str = ""
    key: str = ""
    query: dict[str, list[str]] = field(default_factory=dict)
    body: Any = None  # the parsed JSON body of a JSON-protocol call (Glue, DynamoDB, EMR Serverless)

    @property
    def is_s3_object_read(self) -> bool:
        return self.service == "s3" and self.method in ("GET", "HEAD") and bool(self.key)


@dataclass(frozen=True)
class Response:
    status: str
    headers: list[tuple[str, str]]
    body: bytes


class Rule(Protocol):
    """A rule of real AWS: a refusal before moto sees the request, or a different answer after."""

    def before(self, request: AwsRequest) -> Response | None: ...

    def after(self, request: AwsRequest, response: Response) -> Response | None: ...


class RequestLog:
    """The requests the server received, in order (thread-safe: the server answers on several threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[AwsRequest] = []

    def add(self, request: AwsRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def since(self, mark: int) -> list[AwsRequest]:
        with self._lock:
            return self._requests[mark:]

    def mark(self) -> int:
        """A position to count from (`since`)."""
        with self._lock:
            return len(self._requests)

    def count(self, mark: int = 0, service: str | None = None) -> int:
        return sum(1 for request in self.since(mark) if service is None or request.service == service)

    def operations(self, mark: int = 0, service: str | None = None) -> Counter[str]:
        return Counter(
            f"{request.service} {request.operation}"
            for request in self.since(mark)
            if service is None or request.service == service
        )


class LoopbackAws:
    """moto's server on a free loopback port, its requests recorded and checked against `rules`."""

    def __init__(self, rules: Sequence[Rule] = ()) -> None:
        self.rules = list(rules)
        self.log = RequestLog()
        self._moto = DomainDispatcherApplication(create_backend_app)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LoopbackAws:
        self._server = make_server("127.0.0.1", 0, self, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        request = _describe(environ)
        self.log.add(request)
        for rule in self.rules:
            refusal = rule.before(request)
            if refusal is not None:
                return _send(refusal, start_response)
        if not self.rules:
            return self._moto(environ, start_response)  # type: ignore[no-any-return]
        response = _call(self._moto, environ)
        for rule in self.rules:
            response = rule.after(request, response) or response
        return _send(response, start_response)


def _call(app: Callable[[Environ, StartResponse], Iterable[bytes]], environ: Environ) -> Response:
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        captured["status"], captured["headers"] = status, headers
        return lambda _data: None

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return Response(captured["status"], list(captured["headers"]), body)


def _send(response: Response, start_response: StartResponse) -> Iterator[bytes]:
    headers = response.headers
    if not any(name.lower() == "content-length" for name, _ in headers):
        # moto's own answers keep theirs (a HEAD's is the object's size); the rules' answers get their body's.
        headers = [*headers, ("Content-Length", str(len(response.body)))]
    start_response(response.status, headers)
    yield response.body


def _describe(environ: Environ) -> AwsRequest:
    """The service (from the SigV4 credential scope), the operation and, for S3, the bucket and key."""
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    service = ""
    if "Credential=" in authorization:
        scope = authorization.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        service = scope[3] if len(scope) == 5 else ""
    method = environ.get("REQUEST_METHOD", "GET")
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if target:
        body = _json_body(environ)
        return AwsRequest(service or target.split("_")[0].lower(), target.rsplit(".", 1)[-1], method, body=body)
    if service in ("", "s3"):
        # Path-style addressing (every client here is pointed at the loopback endpoint): /bucket/key
        path = unquote(environ.get("PATH_INFO", "/")).lstrip("/")
        bucket, _, key = path.partition("/")
        return AwsRequest("s3", _s3_operation(method, bucket, key, query), method, bucket, key, query)
    return AwsRequest(service, f"{method} {environ.get('PATH_INFO', '/')}", method, query=query)


def _s3_operation(method: str, bucket: str, key: str, query: dict[str, list[str]]) -> str:
    if not key:
        if method == "GET" and "list-type" in query:
            return "ListObjectsV2"
        if method == "GET" and not query:
            return "ListObjects" if bucket else "ListBuckets"
        if method == "POST" and "delete" in query:
            return "DeleteObjects"
        return {"PUT": "CreateBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}.get(method, f"{method} bucket")
    if "uploadId" in query or "uploads" in query:
        return "MultipartUpload"
    return {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject", "DELETE": "DeleteObject"}.get(
        method, f"{method} object"
    )


def _json_body(environ: Environ) -> Any:
    """Read (and put back) the body of a JSON-protocol call."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    data = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(data)
    try:
        return json.loads(data) if data else None
    except ValueError:
        return None


def xml_error(status: str, code: str, message: str) -> Response:
    """An S3-style error answer."""
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    ).encode()
    return Response(status, [("Content-Type", "application/xml")], body)


def json_error(status: str, code: str, message: str) -> Response:
    """A JSON-protocol error answer (Glue, DynamoDB), as botocore and the AWS SDKs parse it."""
    body = json.dumps({"__type": code, "message": message, "Message": message}).encode()
    return Response(status, [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code)], body)
