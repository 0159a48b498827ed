#!/usr/bin/env python3
"""Independent Python client of gRPC server reflection, against the rzero server of
tests/tests/reflection.rs (greeter.v1.Greeter and echo.v1.Echo served; the shop packages'
descriptor sets registered too, their services not served).

Usage:
  reflection_peer.py HOST:PORT  -> runs the scenario, one line per check
                                   ("ok NAME" / "FAIL NAME: why"), exit 0 only if all
                                   passed.

It knows no .proto of the services: every descriptor comes from the server, through
grpcio-reflection's v1alpha ProtoReflectionDescriptorDatabase and through raw
grpc.reflection.v1 calls (grpcio-reflection ships no v1 stubs, so they are compiled here
from runtime/proto/grpc/reflection/v1/reflection.proto).
"""

import atexit
import importlib.resources
import os
import shutil
import sys
import tempfile
import traceback

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpc_tools import protoc

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
REFLECTION_V1 = os.path.join(REPO, "runtime", "proto", "grpc", "reflection", "v1", "reflection.proto")
DEADLINE = 10.0

SERVED = {
    "greeter.v1.Greeter",
    "echo.v1.Echo",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
}

RESULTS = []


def check(name):
    def run(fn):
        try:
            fn()
            print(f"ok {name}", flush=True)
            RESULTS.append(True)
        except Exception as e:  # noqa: BLE001 - every failure is reported the same way
            print(f"FAIL {name}: {e!r}", flush=True)
            traceback.print_exc()
            RESULTS.append(False)
        return fn

    return run


def expect(condition, why):
    if not condition:
        raise AssertionError(why)


def compile_v1():
    """Compiles grpc.reflection.v1 into a temp dir and imports its modules.

    The proto is copied under another directory first: its own path would make the modules
    `grpc.reflection.v1`, inside grpcio's `grpc` package. The proto package, hence the
    method path, stays `grpc.reflection.v1`.
    """
    out = tempfile.mkdtemp(prefix="reflection_peer_")
    atexit.register(shutil.rmtree, out, True)
    src = os.path.join(out, "src")
    os.makedirs(os.path.join(src, "reflection_v1"))
    shutil.copy(REFLECTION_V1, os.path.join(src, "reflection_v1", "reflection.proto"))
    well_known = str(importlib.resources.files("grpc_tools") / "_proto")
    rc = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{src}",
            f"-I{well_known}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            os.path.join(src, "reflection_v1", "reflection.proto"),
        ]
    )
    if rc != 0:
        raise RuntimeError(f"protoc failed on {REFLECTION_V1}: {rc}")
    sys.path.insert(0, out)
    from reflection_v1 import reflection_pb2, reflection_pb2_grpc  # noqa: E402

    return reflection_pb2, reflection_pb2_grpc


def main(target):
    channel = grpc.insecure_channel(target)
    grpc.channel_ready_future(channel).result(timeout=DEADLINE)
    db = ProtoReflectionDescriptorDatabase(channel)
    pool = descriptor_pool.DescriptorPool(db)

    @check("v1alpha lists exactly the served services")
    def _():
        services = set(db.get_services())
        expect(services == SERVED, f"listed {sorted(services)}")

    @check("v1alpha resolves greeter.v1.Greeter by symbol")
    def _():
        service = pool.FindServiceByName("greeter.v1.Greeter")
        methods = {m.name: m for m in service.methods}
        expect(set(methods) == {"SayHello", "SayHelloStream"}, f"methods {sorted(methods)}")
        say = methods["SayHello"]
        expect(say.input_type.full_name == "greeter.v1.HelloRequest", say.input_type.full_name)
        expect(say.output_type.full_name == "greeter.v1.HelloReply", say.output_type.full_name)
        expect(methods["SayHelloStream"].server_streaming, "SayHelloStream streams")
        fields = [f.name for f in say.input_type.fields]
        expect(fields == ["name", "repeat"], f"HelloRequest fields {fields}")

    @check("v1alpha resolves messages and methods by symbol")
    def _():
        reply = pool.FindMessageTypeByName("greeter.v1.HelloReply")
        expect([f.name for f in reply.fields] == ["message"], "HelloReply fields")
        method = pool.FindMethodByName("echo.v1.Echo.Bidi")
        expect(method.client_streaming and method.server_streaming, "Echo.Bidi is bidi")

    @check("v1alpha resolves files by name")
    def _():
        greeter = pool.FindFileByName("greeter/v1/greeter.proto")
        expect(greeter.package == "greeter.v1", greeter.package)
        expect("Greeter" in greeter.services_by_name, "greeter.proto defines Greeter")
        echo = db.FindFileByName("echo/v1/echo.proto")
        expect(echo.package == "echo.v1", echo.package)

    @check("v1alpha resolves a described service across packages and well-known types")
    def _():
        # Described by the registered sets (which share files), not served.
        orders = pool.FindServiceByName("shop.orders.v1.OrderService")
        expect(len(orders.methods) > 0, "OrderService has methods")
        imports = {f.name for f in orders.file.dependencies}
        expect("shop/catalog/v1/catalog.proto" in imports, f"orders.proto imports {imports}")
        catalog = pool.FindServiceByName("shop.catalog.v1.CatalogService")
        expect(catalog.file.name == "shop/catalog/v1/catalog.proto", catalog.file.name)

    @check("v1alpha: an unknown symbol is not found")
    def _():
        try:
            pool.FindMessageTypeByName("nope.v1.Nothing")
        except KeyError:
            pass
        else:
            raise AssertionError("nope.v1.Nothing was found")
        try:
            db.FindFileByName("nope/v1/nothing.proto")
        except KeyError:
            pass
        else:
            raise AssertionError("nope/v1/nothing.proto was found")

    @check("a dynamic unary call built from reflected descriptors")
    def _():
        method = pool.FindMethodByName("greeter.v1.Greeter.SayHello")
        request_class = message_factory.GetMessageClass(method.input_type)
        reply_class = message_factory.GetMessageClass(method.output_type)
        call = channel.unary_unary(
            "/greeter.v1.Greeter/SayHello",
            request_serializer=request_class.SerializeToString,
            response_deserializer=reply_class.FromString,
        )
        reply = call(request_class(name="reflected"), timeout=DEADLINE)
        expect(reply.message == "Hello reflected", f"reply {reply.message!r}")

    @check("a dynamic streaming call built from reflected descriptors")
    def _():
        method = pool.FindMethodByName("echo.v1.Echo.ServerStream")
        request_class = message_factory.GetMessageClass(method.input_type)
        reply_class = message_factory.GetMessageClass(method.output_type)
        call = channel.unary_stream(
            "/echo.v1.Echo/ServerStream",
            request_serializer=request_class.SerializeToString,
            response_deserializer=reply_class.FromString,
        )
        replies = list(call(request_class(message="hi", count=3), timeout=DEADLINE))
        got = [(r.message, r.index) for r in replies]
        expect(got == [("hi", 0), ("hi", 1), ("hi", 2)], f"replies {got}")

    pb, pb_grpc = compile_v1()
    stub = pb_grpc.ServerReflectionStub(channel)

    @check("raw v1: one stream answers a list, a lookup, a miss, then a lookup")
    def _():
        requests = [
            pb.ServerReflectionRequest(list_services=""),
            pb.ServerReflectionRequest(file_containing_symbol="echo.v1.EchoRequest"),
            pb.ServerReflectionRequest(file_containing_symbol="nope.v1.Nothing"),
            pb.ServerReflectionRequest(file_by_filename="greeter/v1/greeter.proto"),
        ]
        responses = list(stub.ServerReflectionInfo(iter(requests), timeout=DEADLINE))
        expect(len(responses) == 4, f"{len(responses)} responses")
        listed = {s.name for s in responses[0].list_services_response.service}
        expect(listed == SERVED, f"listed {sorted(listed)}")
        files = responses[1].file_descriptor_response.file_descriptor_proto
        expect(len(files) == 1, f"{len(files)} files for echo.v1.EchoRequest")
        from google.protobuf import descriptor_pb2

        echo = descriptor_pb2.FileDescriptorProto.FromString(files[0])
        expect(echo.name == "echo/v1/echo.proto", echo.name)
        miss = responses[2]
        expect(miss.WhichOneof("message_response") == "error_response", str(miss))
        expect(
            miss.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0],
            f"error code {miss.error_response.error_code}",
        )
        expect(
            miss.original_request.file_containing_symbol == "nope.v1.Nothing",
            "the miss echoes its request",
        )
        greeter = responses[3].file_descriptor_response.file_descriptor_proto
        expect(len(greeter) == 1, f"{len(greeter)} files for greeter.proto")

    @check("raw v1: a file comes with its imports, each once per stream")
    def _():
        requests = [
            pb.ServerReflectionRequest(file_containing_symbol="shop.orders.v1.OrderService"),
            pb.ServerReflectionRequest(file_containing_symbol="shop.catalog.v1.CatalogService"),
        ]
        responses = list(stub.ServerReflectionInfo(iter(requests), timeout=DEADLINE))
        from google.protobuf import descriptor_pb2

        def names(response):
            return [
                descriptor_pb2.FileDescriptorProto.FromString(raw).name
                for raw in response.file_descriptor_response.file_descriptor_proto
            ]

        first = names(responses[0])
        expect(first[0] == "shop/orders/v1/orders.proto", f"first answer {first}")
        for needed in [
            "shop/catalog/v1/catalog.proto",
            "shop/common/v1/money.proto",
            "google/protobuf/timestamp.proto",
        ]:
            expect(needed in first, f"{needed} missing from {first}")
        expect(len(first) == len(set(first)), f"duplicates in {first}")
        # catalog.proto and its imports went out already: only the requested file again.
        second = names(responses[1])
        expect(second == ["shop/catalog/v1/catalog.proto"], f"second answer {second}")

    channel.close()
    return all(RESULTS) and len(RESULTS) > 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(0 if main(sys.argv[1]) else 1)
