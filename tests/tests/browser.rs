//! A real browser (headless Chromium) calling the gateway and gRPC-Web from a page of
//! another origin: the browser, not the test, decides whether CORS lets each answer through
//! and which headers scripts may read.
//!
//! A tiny page server on one loopback port serves a page whose script calls an rzero server
//! on another port (REST with a metadata header, so the browser sends a preflight; gRPC-Web
//! binary, a success and a failure answered as headers) and writes what it saw into the
//! page. `chromium --dump-dom` prints the page once the script is done. The same page from a
//! third, unlisted origin must see every call fail.
//!
//! Needs Debian's `chromium` (`scripts/test` installs it); fails, not skips, without it.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use rzero::Cors;
use rzero::gateway::{Gateway, HttpRule};
use rzero::server::GrpcWeb;
use rzero_tests::default::echo::v1::FILE_DESCRIPTOR_SET;
use rzero_tests::echo;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// Bound for Chromium to start, run the page and print it.
const LIMIT: Duration = Duration::from_secs(90);

/// The page's script: each call's outcome, or the error the browser gave the script.
const PAGE: &str = r#"<!doctype html>
<html><body><pre id="out">running</pre><script>
const api = "API";
const results = {};
function frame(bytes) {
  const out = new Uint8Array(5 + bytes.length);
  new DataView(out.buffer).setUint32(1, bytes.length);
  out.set(bytes, 5);
  return out;
}
// echo.v1.EchoRequest: message (1, string), fail_with_code (2, varint below 128)
function echoRequest(message, code) {
  const text = new TextEncoder().encode(message);
  const bytes = [0x0a, text.length, ...text];
  if (code) bytes.push(0x10, code);
  return new Uint8Array(bytes);
}
function unframe(buffer) {
  const view = new DataView(buffer);
  const out = { messages: [], trailers: "" };
  for (let at = 0; at + 5 <= buffer.byteLength; ) {
    const flag = view.getUint8(at);
    const len = view.getUint32(at + 1);
    const body = new Uint8Array(buffer, at + 5, len);
    if (flag & 0x80) out.trailers += new TextDecoder().decode(body);
    else out.messages.push(body);
    at += 5 + len;
  }
  return out;
}
// echo.v1.EchoReply.message (1, string, shorter than 128 bytes)
function replyMessage(bytes) {
  return bytes[0] === 0x0a ? new TextDecoder().decode(bytes.subarray(2, 2 + bytes[1])) : null;
}
function grpcWeb(request, metadata) {
  return fetch(api + "/echo.v1.Echo/Unary", {
    method: "POST",
    headers: Object.assign(
      { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" }, metadata),
    body: frame(request),
  });
}
async function attempt(name, call) {
  try { results[name] = await call(); } catch (e) { results[name] = "error: " + e; }
}
(async () => {
  await attempt("rest", async () => {
    const r = await fetch(api + "/v1/echo/hi", { headers: { "Grpc-Metadata-X-Echo": "m" } });
    return { status: r.status, message: (await r.json()).message,
             echoHeader: r.headers.get("grpc-metadata-x-echo-header") };
  });
  await attempt("grpcWeb", async () => {
    const r = await grpcWeb(echoRequest("web"), { "x-echo": "w" });
    const body = unframe(await r.arrayBuffer());
    return { status: r.status, message: replyMessage(body.messages[0]),
             echoHeader: r.headers.get("x-echo-header"), trailers: body.trailers };
  });
  await attempt("grpcWebFailure", async () => {
    const r = await grpcWeb(echoRequest("no", 5), {});
    return { status: r.status, grpcStatus: r.headers.get("grpc-status"),
             grpcMessage: r.headers.get("grpc-message") };
  });
  document.getElementById("out").textContent = "RESULT " + JSON.stringify(results);
})();
</script></body></html>
"#;

/// Serves `page` to every request on `listener` (HTTP/1.1, one request per connection).
async fn serve_page(listener: TcpListener, page: String) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let page = page.clone();
        tokio::spawn(async move {
            // Read the request head (bounded), then answer; Chromium asks for the page and
            // perhaps a favicon, and gets the page either way.
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// Loads the page from `origin` (a page server's address) in headless Chromium and returns
/// what its script reported.
async fn run_page(page_at: SocketAddr) -> Value {
    let profile = std::env::temp_dir().join(format!(
        "rzero-chromium-{}-{}",
        std::process::id(),
        page_at.port()
    ));
    let run = tokio::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=20000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("http://{page_at}/"))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(LIMIT, run)
        .await
        .expect("Chromium finishes in time")
        .expect("chromium runs (Debian package `chromium`; scripts/test installs it)");
    let _ = std::fs::remove_dir_all(&profile);
    let dom = String::from_utf8_lossy(&output.stdout);
    let Some(start) = dom.find("RESULT ") else {
        panic!(
            "the page did not report ({}):\n{dom}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let json = &dom[start + "RESULT ".len()..];
    let json = &json[..json.find("</pre>").unwrap_or(json.len())];
    serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {json}"))
}

#[tokio::test]
async fn a_browser_page_of_another_origin_calls_rest_and_grpc_web() {
    let allowed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let allowed_at = allowed.local_addr().unwrap();
    let unlisted = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let unlisted_at = unlisted.local_addr().unwrap();
    let cors = || Cors::origins([format!("http://{allowed_at}")]);
    let gateway = Gateway::builder()
        .descriptor_set(FILE_DESCRIPTOR_SET)
        .rules([HttpRule::new(
            "/echo.v1.Echo/Unary",
            "GET",
            "/v1/echo/{message}",
        )])
        .cors(cors())
        .build()
        .expect("gateway builds");
    let (api, handle) = echo::spawn_builder(
        rzero::Server::builder()
            .add_service(echo::echo_server())
            .gateway(gateway)
            .grpc_web(GrpcWeb::new().cors(cors())),
    )
    .await;
    let page = PAGE.replace("API", &format!("http://{api}"));
    let pages = [
        tokio::spawn(serve_page(allowed, page.clone())),
        tokio::spawn(serve_page(unlisted, page)),
    ];

    let seen = run_page(allowed_at).await;
    assert_eq!(seen["rest"]["status"], 200, "{seen}");
    assert_eq!(seen["rest"]["message"], "hi", "{seen}");
    // Readable only because the gateway exposes its Grpc-Metadata-* headers.
    assert_eq!(seen["rest"]["echoHeader"], "m", "{seen}");
    assert_eq!(seen["grpcWeb"]["status"], 200, "{seen}");
    assert_eq!(seen["grpcWeb"]["message"], "web", "{seen}");
    assert_eq!(seen["grpcWeb"]["echoHeader"], "w", "{seen}");
    let trailers = seen["grpcWeb"]["trailers"].as_str().unwrap_or_default();
    assert!(trailers.contains("grpc-status:0"), "{seen}");
    // A failure answered as headers: readable only because gRPC-Web's CORS exposes them.
    assert_eq!(seen["grpcWebFailure"]["grpcStatus"], "5", "{seen}");
    // Percent-encoded, as gRPC sends `grpc-message`.
    assert_eq!(
        seen["grpcWebFailure"]["grpcMessage"], "requested%20failure:%20no",
        "{seen}"
    );

    let refused = run_page(unlisted_at).await;
    for call in ["rest", "grpcWeb", "grpcWebFailure"] {
        let outcome = refused[call].as_str().unwrap_or_default();
        assert!(outcome.starts_with("error: TypeError"), "{call}: {refused}");
    }

    for page in pages {
        page.abort();
    }
    tokio::time::timeout(Duration::from_secs(10), handle.shutdown())
        .await
        .expect("server stops in time")
        .expect("server ran");
}
