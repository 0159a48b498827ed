//! The Node.js peer in `tests/node`: Connect's gRPC-Web client (`grpc_web_peer.mjs`), run
//! against a server following the echo contract of [`crate::echo`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::default::echo::v1::FILE_DESCRIPTOR_SET;

/// Bound for the whole scenario, Node's start included.
const LIMIT: Duration = Duration::from_secs(60);

/// The checks the scenario runs; each prints `ok <name>` when it passes.
pub const GRPC_WEB_CHECKS: [&str; 7] = [
    "unary",
    "metadata",
    "server_stream",
    "large_message",
    "status",
    "stream_status",
    "deadline",
];

/// Runs the gRPC-Web scenario against the server at `addr` over `http_version` (`"1.1"` or
/// `"2"`): over TLS when `ca` names a PEM file of the CA to trust (the server is called as
/// `localhost`), else plaintext (h2c prior knowledge for HTTP/2). Returns the report.
///
/// # Panics
/// If Node.js or the peer's packages (`npm ci` in `tests/node`) are missing, if the run
/// takes over a minute, or if any check fails, with the report.
pub async fn grpc_web_peer(addr: SocketAddr, http_version: &str, ca: Option<&Path>) -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node");
    assert!(
        dir.join("node_modules/@connectrpc/connect-node").is_dir(),
        "the gRPC-Web peer needs its packages: run `npm ci` in {}",
        dir.display()
    );
    let descriptors = std::env::temp_dir().join(format!(
        "rzero-grpc-web-{}-{}.binpb",
        std::process::id(),
        addr.port()
    ));
    std::fs::write(&descriptors, FILE_DESCRIPTOR_SET).expect("descriptor set written");
    let base_url = match ca {
        Some(_) => format!("https://localhost:{}", addr.port()),
        None => format!("http://{addr}"),
    };
    let mut command = tokio::process::Command::new("node");
    command
        .arg(dir.join("grpc_web_peer.mjs"))
        .arg(base_url)
        .arg(&descriptors)
        .arg(http_version);
    if let Some(ca) = ca {
        command.arg(ca);
    }
    let run = command.stdin(Stdio::null()).kill_on_drop(true).output();
    let output = tokio::time::timeout(LIMIT, run)
        .await
        .expect("the Node peer finishes in time")
        .expect("node runs (is Node.js installed?)");
    let _ = std::fs::remove_file(&descriptors);
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the Node gRPC-Web peer failed over HTTP/{http_version} ({}):\n{report}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    for check in GRPC_WEB_CHECKS {
        assert!(
            report.lines().any(|line| line == format!("ok {check}")),
            "HTTP/{http_version}: no `ok {check}` in\n{report}"
        );
    }
    report
}
