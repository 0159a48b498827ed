#!/usr/bin/env python3
"""Independent Python grpcio peer for echo.v1.Echo (testdata/echo/v1/echo.proto).

Usage:
  echo_peer.py serve [--gzip]    -> prints "LISTENING <port>", serves until
                                    SIGTERM/SIGINT or, when stdin is a pipe,
                                    stdin EOF.  Responses are gzip-compressed
                                    for calls with metadata
                                    `x-echo-compress: gzip`, or for all calls
                                    with --gzip.
  echo_peer.py call HOST:PORT    -> runs the interop scenario, one line per
                                    check ("ok NAME" / "FAIL NAME: why"),
                                    exit 0 only if all passed.

TLS options (PEM files):
  serve ... --tls CERT KEY [--client-ca CA]
      serves over TLS; with --client-ca, requires client certificates.
  call ... --ca CA [--cert CERT --key KEY] [--name NAME]
      calls over TLS trusting CA, presenting CERT/KEY when given, expecting
      NAME in the server certificate (default: the target's host).
"""

import atexit
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
import traceback

import grpc
from grpc_status import rpc_status
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_tools import protoc

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PROTO_ROOT = os.path.join(REPO, "testdata")
PROTO_FILE = os.path.join(PROTO_ROOT, "echo", "v1", "echo.proto")

MAX_MSG = 64 * 1024 * 1024
OPTIONS = [
    ("grpc.max_send_message_length", MAX_MSG),
    ("grpc.max_receive_message_length", MAX_MSG),
]
DEADLINE = 10.0


def _compile_proto():
    """Compile echo.proto into a temp dir and import the generated modules."""
    out = tempfile.mkdtemp(prefix="echo_peer_")
    atexit.register(shutil.rmtree, out, True)
    import importlib.resources

    well_known = str(importlib.resources.files("grpc_tools") / "_proto")
    rc = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{well_known}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            PROTO_FILE,
        ]
    )
    if rc != 0:
        raise SystemExit(f"protoc failed with exit code {rc}")
    # Generated modules live in out/echo/v1/; make them regular packages so
    # `echo.v1.echo_pb2` imports cleanly (echo_pb2_grpc imports
    # `from echo.v1 import echo_pb2`).
    for pkg in ("echo", os.path.join("echo", "v1")):
        init = os.path.join(out, pkg, "__init__.py")
        if not os.path.exists(init):
            open(init, "w").close()
    sys.path.insert(0, out)
    from echo.v1 import echo_pb2, echo_pb2_grpc

    return echo_pb2, echo_pb2_grpc


echo_pb2, echo_pb2_grpc = _compile_proto()


# --------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------


def _rich_status(code_value, message):
    bad = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(
                field="message", description="requested failure"
            )
        ]
    )
    detail = any_pb2.Any()
    detail.Pack(bad)
    return status_pb2.Status(
        code=code_value, message=message, details=[detail]
    )


class EchoServicer(echo_pb2_grpc.EchoServicer):
    @staticmethod
    def _x_echo(context):
        """Handle request metadata; returns the `x-echo` value ("" if absent)."""
        value = ""
        for key, val in context.invocation_metadata():
            if isinstance(val, bytes):
                val = val.decode("utf-8", "replace")
            if key == "x-echo":
                value = val
            elif key == "x-echo-compress" and val.strip().lower() == "gzip":
                context.set_compression(grpc.Compression.Gzip)
        if value:
            context.send_initial_metadata((("x-echo-header", value),))
            context.set_trailing_metadata((("x-echo-trailer", value),))
        return value

    @staticmethod
    def _maybe_fail(request, context):
        if request.fail_with_code != 0:
            st = _rich_status(
                request.fail_with_code, f"requested failure: {request.message}"
            )
            context.abort_with_status(rpc_status.to_status(st))

    @staticmethod
    def _maybe_delay(request):
        if request.delay_ms > 0:
            time.sleep(request.delay_ms / 1000.0)

    def Unary(self, request, context):
        echo = self._x_echo(context)
        self._maybe_fail(request, context)
        self._maybe_delay(request)
        return echo_pb2.EchoReply(
            message=request.message,
            index=0,
            payload=request.payload,
            metadata_echo=echo,
        )

    def ServerStream(self, request, context):
        echo = self._x_echo(context)
        self._maybe_fail(request, context)
        self._maybe_delay(request)
        for i in range(request.count):
            yield echo_pb2.EchoReply(
                message=request.message, index=i, metadata_echo=echo
            )

    def ClientStream(self, request_iterator, context):
        echo = self._x_echo(context)
        messages = []
        for request in request_iterator:
            self._maybe_fail(request, context)
            self._maybe_delay(request)
            messages.append(request.message)
        return echo_pb2.EchoReply(
            message=",".join(messages),
            index=len(messages),
            metadata_echo=echo,
        )

    def Bidi(self, request_iterator, context):
        echo = self._x_echo(context)
        for i, request in enumerate(request_iterator):
            self._maybe_fail(request, context)
            self._maybe_delay(request)
            yield echo_pb2.EchoReply(
                message=request.message,
                index=i,
                payload=request.payload,
                metadata_echo=echo,
            )


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def serve(gzip_all=False, tls=None):
    from concurrent import futures

    # Requests compressed with gzip (or deflate) are always accepted.
    # Responses: grpc-core, when given a server-wide compression, compresses
    # every response with it even if the client's grpc-accept-encoding does
    # not list it, and the application cannot see the request's
    # grpc-encoding / grpc-accept-encoding headers.  So by default responses
    # go uncompressed, and gzip is used for a call's responses only when the
    # client asks through request metadata `x-echo-compress: gzip`, or for
    # every call with `serve --gzip`.
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=16),
        options=OPTIONS,
        compression=(
            grpc.Compression.Gzip if gzip_all else grpc.Compression.NoCompression
        ),
    )
    echo_pb2_grpc.add_EchoServicer_to_server(EchoServicer(), server)
    if tls is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        cert, key, client_ca = tls
        credentials = grpc.ssl_server_credentials(
            [(_read(key), _read(cert))],
            root_certificates=_read(client_ca) if client_ca else None,
            require_client_auth=client_ca is not None,
        )
        port = server.add_secure_port("127.0.0.1:0", credentials)
    if port == 0:
        raise SystemExit("could not bind 127.0.0.1:0")
    server.start()

    stop = threading.Event()

    def _on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    def _watch_stdin(fd):
        # Raw os.read (no buffered reader lock) so interpreter shutdown never
        # trips over this daemon thread.
        try:
            while os.read(fd, 4096):
                pass
        except OSError:
            pass
        stop.set()

    # Stdin EOF means "the parent went away" only when stdin is a pipe or a
    # socket; /dev/null, a regular file or a terminal would end at once (or
    # never), so those are not watched.
    try:
        mode = os.fstat(0).st_mode
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            threading.Thread(target=_watch_stdin, args=(0,), daemon=True).start()
    except OSError:
        pass

    sys.stdout.write(f"LISTENING {port}\n")
    sys.stdout.flush()

    while not stop.wait(0.2):
        pass
    server.stop(grace=1.0).wait(2.0)


# --------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------


class CheckFailed(Exception):
    pass


def expect(cond, why):
    if not cond:
        raise CheckFailed(why)


def md_get(metadata, key):
    for k, v in metadata or ():
        if k == key:
            return v
    return None


def check_unary_metadata(stub):
    reply, call = stub.Unary.with_call(
        echo_pb2.EchoRequest(message="hello", payload=b"\x00\x01\x02"),
        metadata=(("x-echo", "ping-42"),),
        timeout=DEADLINE,
    )
    expect(reply.message == "hello", f"message={reply.message!r}")
    expect(reply.index == 0, f"index={reply.index}")
    expect(reply.payload == b"\x00\x01\x02", f"payload={reply.payload!r}")
    expect(reply.metadata_echo == "ping-42", f"metadata_echo={reply.metadata_echo!r}")
    hdr = md_get(call.initial_metadata(), "x-echo-header")
    expect(hdr == "ping-42", f"x-echo-header={hdr!r}")
    trl = md_get(call.trailing_metadata(), "x-echo-trailer")
    expect(trl == "ping-42", f"x-echo-trailer={trl!r}")
    expect(call.code() == grpc.StatusCode.OK, f"code={call.code()}")


def check_unary_gzip(stub):
    payload = b"compress me " * 4096
    reply = stub.Unary(
        echo_pb2.EchoRequest(message="gzip", payload=payload),
        compression=grpc.Compression.Gzip,
        # Asks the Python peer's server to gzip its response too; servers that
        # do not know this header ignore it.
        metadata=(("x-echo-compress", "gzip"),),
        timeout=DEADLINE,
    )
    expect(reply.message == "gzip", f"message={reply.message!r}")
    expect(reply.payload == payload, f"payload length {len(reply.payload)} != {len(payload)}")


def check_server_stream(stub):
    replies = list(
        stub.ServerStream(
            echo_pb2.EchoRequest(message="tick", count=5),
            metadata=(("x-echo", "ss"),),
            timeout=DEADLINE,
        )
    )
    expect(len(replies) == 5, f"got {len(replies)} replies")
    for i, r in enumerate(replies):
        expect(r.message == "tick", f"reply {i} message={r.message!r}")
        expect(r.index == i, f"reply {i} index={r.index}")
        expect(r.metadata_echo == "ss", f"reply {i} metadata_echo={r.metadata_echo!r}")


def check_client_stream(stub):
    reqs = [echo_pb2.EchoRequest(message=m) for m in ("a", "b", "c")]
    reply = stub.ClientStream(
        iter(reqs), metadata=(("x-echo", "cs"),), timeout=DEADLINE
    )
    expect(reply.message == "a,b,c", f"message={reply.message!r}")
    expect(reply.index == 3, f"index={reply.index}")
    expect(reply.metadata_echo == "cs", f"metadata_echo={reply.metadata_echo!r}")


def check_bidi(stub):
    msgs = ["one", "two", "three", "four"]
    reqs = [
        echo_pb2.EchoRequest(message=m, payload=m.encode() * 3) for m in msgs
    ]
    replies = list(stub.Bidi(iter(reqs), timeout=DEADLINE))
    expect(len(replies) == 4, f"got {len(replies)} replies")
    for i, (m, r) in enumerate(zip(msgs, replies)):
        expect(r.message == m, f"reply {i} message={r.message!r}")
        expect(r.index == i, f"reply {i} index={r.index}")
        expect(r.payload == m.encode() * 3, f"reply {i} payload={r.payload!r}")


def check_rich_error(stub):
    try:
        stub.Unary(
            echo_pb2.EchoRequest(message="boom", fail_with_code=3),
            timeout=DEADLINE,
        )
    except grpc.RpcError as err:
        expect(
            err.code() == grpc.StatusCode.INVALID_ARGUMENT,
            f"code={err.code()}",
        )
        expect(
            err.details() == "requested failure: boom",
            f"details={err.details()!r}",
        )
        st = rpc_status.from_call(err)
        expect(st is not None, "no grpc-status-details-bin in trailers")
        expect(st.code == code_pb2.INVALID_ARGUMENT, f"status.code={st.code}")
        expect(st.message == "requested failure: boom", f"status.message={st.message!r}")
        expect(len(st.details) == 1, f"{len(st.details)} details")
        bad = error_details_pb2.BadRequest()
        expect(st.details[0].Unpack(bad), f"detail is {st.details[0].type_url}")
        expect(len(bad.field_violations) == 1, f"{len(bad.field_violations)} violations")
        fv = bad.field_violations[0]
        expect(fv.field == "message", f"field={fv.field!r}")
        expect(fv.description == "requested failure", f"description={fv.description!r}")
        return
    raise CheckFailed("call succeeded, expected INVALID_ARGUMENT")


def check_stream_error(stub):
    reqs = [
        echo_pb2.EchoRequest(message="fine"),
        echo_pb2.EchoRequest(message="bad", fail_with_code=9),
    ]
    try:
        stub.ClientStream(iter(reqs), timeout=DEADLINE)
    except grpc.RpcError as err:
        expect(
            err.code() == grpc.StatusCode.FAILED_PRECONDITION,
            f"code={err.code()}",
        )
        expect(
            err.details() == "requested failure: bad",
            f"details={err.details()!r}",
        )
        st = rpc_status.from_call(err)
        expect(st is not None, "no grpc-status-details-bin in trailers")
        expect(st.code == code_pb2.FAILED_PRECONDITION, f"status.code={st.code}")
        return
    raise CheckFailed("call succeeded, expected FAILED_PRECONDITION")


def check_deadline(stub):
    start = time.monotonic()
    try:
        stub.Unary(
            echo_pb2.EchoRequest(message="slow", delay_ms=2000), timeout=0.3
        )
    except grpc.RpcError as err:
        elapsed = time.monotonic() - start
        expect(
            err.code() == grpc.StatusCode.DEADLINE_EXCEEDED,
            f"code={err.code()}",
        )
        expect(elapsed < 1.9, f"took {elapsed:.2f}s")
        return
    raise CheckFailed("call succeeded, expected DEADLINE_EXCEEDED")


def check_large(stub):
    size = 12 * 1024 * 1024
    payload = bytes(i % 251 for i in range(size))
    reply = stub.Unary(
        echo_pb2.EchoRequest(message="big", payload=payload), timeout=30.0
    )
    expect(reply.message == "big", f"message={reply.message!r}")
    expect(len(reply.payload) == size, f"payload length {len(reply.payload)}")
    expect(reply.payload == payload, "payload bytes differ")


CHECKS = [
    ("unary_metadata", check_unary_metadata),
    ("unary_gzip", check_unary_gzip),
    ("server_stream", check_server_stream),
    ("client_stream", check_client_stream),
    ("bidi", check_bidi),
    ("rich_error", check_rich_error),
    ("stream_error", check_stream_error),
    ("deadline", check_deadline),
    ("large_payload", check_large),
]


def _channel(target, tls):
    if tls is None:
        return grpc.insecure_channel(target, options=OPTIONS)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(tls["ca"]),
        private_key=_read(tls["key"]) if tls.get("key") else None,
        certificate_chain=_read(tls["cert"]) if tls.get("cert") else None,
    )
    options = list(OPTIONS)
    if tls.get("name"):
        options.append(("grpc.ssl_target_name_override", tls["name"]))
    return grpc.secure_channel(target, credentials, options=options)


def call(target, tls=None):
    failures = 0
    with _channel(target, tls) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=DEADLINE)
        except grpc.FutureTimeoutError:
            print(f"FAIL connect: {target} not ready within {DEADLINE}s", flush=True)
            return 1
        stub = echo_pb2_grpc.EchoStub(channel)
        for name, fn in CHECKS:
            try:
                fn(stub)
                print(f"ok {name}", flush=True)
            except CheckFailed as exc:
                failures += 1
                print(f"FAIL {name}: {exc}", flush=True)
            except grpc.RpcError as exc:
                failures += 1
                print(f"FAIL {name}: rpc error {exc.code()}: {exc.details()}", flush=True)
            except Exception as exc:  # noqa: BLE001
                failures += 1
                why = f"{type(exc).__name__}: {exc}".replace("\n", " ")
                print(f"FAIL {name}: {why}", flush=True)
                traceback.print_exc(file=sys.stderr)
    return 0 if failures == 0 else 1


def _usage():
    sys.stderr.write(__doc__)
    return 2


def main(argv):
    args = argv[1:]
    if args[:1] == ["serve"]:
        gzip_all, tls, client_ca = False, None, None
        rest = args[1:]
        while rest:
            if rest[0] == "--gzip":
                gzip_all, rest = True, rest[1:]
            elif rest[0] == "--tls" and len(rest) >= 3:
                tls, rest = (rest[1], rest[2]), rest[3:]
            elif rest[0] == "--client-ca" and len(rest) >= 2:
                client_ca, rest = rest[1], rest[2:]
            else:
                return _usage()
        if client_ca and not tls:
            return _usage()
        serve(gzip_all=gzip_all, tls=(tls + (client_ca,)) if tls else None)
        return 0
    if len(args) >= 2 and args[0] == "call":
        tls, rest = {}, args[2:]
        while rest:
            flag = rest[0]
            if flag in ("--ca", "--cert", "--key", "--name") and len(rest) >= 2:
                tls[flag[2:]], rest = rest[1], rest[2:]
            else:
                return _usage()
        if tls and "ca" not in tls:
            return _usage()
        if ("cert" in tls) != ("key" in tls):
            return _usage()
        return call(args[1], tls or None)
    return _usage()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
