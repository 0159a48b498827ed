// Independent gRPC-Web client for echo.v1.Echo (testdata/echo/v1/echo.proto): Connect for
// Node's gRPC-Web transport, the same protocol code connect-web runs in browsers.
//
// Usage: node grpc_web_peer.mjs BASE_URL DESCRIPTOR_SET_FILE HTTP_VERSION(1.1|2) [CA_PEM]
//
// With CA_PEM (and an https:// BASE_URL), the server's certificate must chain to that CA.
//
// The service is read from the encoded FileDescriptorSet at run time (no generated
// JavaScript). Prints one line per check, "ok NAME" or "FAIL NAME: why", and exits 0 only
// if every check passed. The server must follow tests/src/echo.rs's contract.

import { readFileSync } from "node:fs";
import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-node";

const [baseUrl, descriptorFile, httpVersion, caFile] = process.argv.slice(2);
if (!baseUrl || !descriptorFile || !["1.1", "2"].includes(httpVersion)) {
  console.error("usage: grpc_web_peer.mjs BASE_URL DESCRIPTOR_SET_FILE 1.1|2 [CA_PEM]");
  process.exit(2);
}

const registry = createFileRegistry(
  fromBinary(FileDescriptorSetSchema, readFileSync(descriptorFile)),
);
const echo = registry.getService("echo.v1.Echo");
if (!echo) {
  console.error("echo.v1.Echo is not in the descriptor set");
  process.exit(2);
}
const nodeOptions = caFile ? { ca: readFileSync(caFile) } : undefined;
const transport = createGrpcWebTransport({ baseUrl, httpVersion, nodeOptions });
const client = createClient(echo, transport);

let failed = 0;
async function check(name, body) {
  try {
    await body();
    console.log(`ok ${name}`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack.split("\n").slice(0, 3).join(" | ") : e}`);
  }
}

function expect(what, actual, wanted) {
  const a = JSON.stringify(actual);
  const w = JSON.stringify(wanted);
  if (a !== w) {
    throw new Error(`${what}: got ${a}, wanted ${w}`);
  }
}

const timeoutMs = 20000;

await check("unary", async () => {
  const payload = new Uint8Array([0, 1, 2, 250, 255]);
  const reply = await client.unary({ message: "hello", payload }, { timeoutMs });
  expect("message", reply.message, "hello");
  expect("index", reply.index, 0);
  expect("payload", Array.from(reply.payload), Array.from(payload));
});

await check("metadata", async () => {
  let header;
  let trailer;
  const reply = await client.unary(
    { message: "meta" },
    {
      timeoutMs,
      headers: { "x-echo": "from-node" },
      onHeader: (h) => (header = h),
      onTrailer: (t) => (trailer = t),
    },
  );
  expect("metadata_echo", reply.metadataEcho, "from-node");
  expect("x-echo-header", header && header.get("x-echo-header"), "from-node");
  expect("x-echo-trailer", trailer && trailer.get("x-echo-trailer"), "from-node");
});

await check("server_stream", async () => {
  const seen = [];
  for await (const reply of client.serverStream({ message: "s", count: 5 }, { timeoutMs })) {
    seen.push(`${reply.message}#${reply.index}`);
  }
  expect("replies", seen, ["s#0", "s#1", "s#2", "s#3", "s#4"]);
});

await check("large_message", async () => {
  const payload = new Uint8Array(1024 * 1024).map((_, i) => i % 251);
  const reply = await client.unary({ message: "big", payload }, { timeoutMs });
  expect("length", reply.payload.length, payload.length);
  for (let i = 0; i < payload.length; i += 4099) {
    if (reply.payload[i] !== payload[i]) {
      throw new Error(`payload differs at ${i}`);
    }
  }
});

await check("status", async () => {
  try {
    await client.unary({ message: "nope", failWithCode: 5 }, { timeoutMs });
  } catch (e) {
    const err = ConnectError.from(e);
    expect("code", err.code, Code.NotFound);
    expect("message", err.rawMessage, "requested failure: nope");
    expect(
      "detail types",
      err.details.map((d) => d.desc ? d.desc.typeName : d.type),
      ["google.rpc.BadRequest"],
    );
    return;
  }
  throw new Error("the call succeeded");
});

await check("stream_status", async () => {
  try {
    for await (const _ of client.serverStream(
      { message: "nope", count: 3, failWithCode: 9 },
      { timeoutMs },
    )) {
      // no reply comes before the failure
    }
  } catch (e) {
    const err = ConnectError.from(e);
    expect("code", err.code, Code.FailedPrecondition);
    expect("message", err.rawMessage, "requested failure: nope");
    return;
  }
  throw new Error("the stream ended well");
});

await check("deadline", async () => {
  try {
    await client.unary({ message: "slow", delayMs: 5000 }, { timeoutMs: 300 });
  } catch (e) {
    expect("code", ConnectError.from(e).code, Code.DeadlineExceeded);
    return;
  }
  throw new Error("the call succeeded");
});

process.exit(failed === 0 ? 0 : 1);
