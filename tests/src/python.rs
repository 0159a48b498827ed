//! The Python grpcio peer (`tests/python/echo_peer.py`), which speaks the same echo
//! contract as [`crate::echo`]: started as a server, or run as a client.
//!
//! It needs Python 3 with grpcio; tests using it fail (they do not skip) when it is missing:
//! `pip install -r tests/python/requirements.txt`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::task::JoinHandle;

/// Bound for the peer to compile the proto and start listening.
const STARTUP: Duration = Duration::from_secs(60);
/// Bound for reading what a peer that failed to start wrote.
const LIMIT: Duration = Duration::from_secs(30);

/// The Python interpreter the peers run on.
pub fn python() -> &'static str {
    "python3"
}

/// `tests/python/echo_peer.py`.
pub fn peer_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/echo_peer.py")
}

/// Fails the test unless Python 3 with grpcio (and grpcio-status / grpcio-tools) is there.
pub fn require_grpcio() {
    let requirements = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/requirements.txt");
    let hint = format!(
        "the Python interop tests need Python 3 with grpcio: run `pip install -r {}`",
        requirements.display()
    );
    match std::process::Command::new(python())
        .args(["-c", "import grpc, grpc_status, grpc_tools"])
        .stdin(Stdio::null())
        .output()
    {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "{hint}\n`{} -c \"import grpc, grpc_status, grpc_tools\"` failed ({}):\n{}",
            python(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(e) => panic!("{hint}\ncannot run `{}`: {e}", python()),
    }
}

/// A child process that is killed (by pid, SIGKILL) whenever this guard is dropped: on
/// success, on a failed assertion, on a timeout.
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // Err only if it already exited; tokio reaps it either way.
        let _ = self.0.start_kill();
    }
}

/// Reads a child's pipe to the end on a task.
pub fn drain(pipe: Option<impl AsyncRead + Unpin + Send + 'static>) -> JoinHandle<String> {
    tokio::spawn(async move {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes).await;
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

/// `echo_peer.py serve`, running.
#[derive(Debug)]
pub struct PythonServer {
    // Declared (so dropped) first: closing stdin tells the peer to exit on its own; the
    // guard then kills it regardless.
    _stdin: ChildStdin,
    _child: KillOnDrop,
    port: u16,
}

impl PythonServer {
    /// Starts `echo_peer.py serve ARGS` and waits until it listens.
    pub async fn start(args: &[&str]) -> Self {
        require_grpcio();
        let mut child = KillOnDrop(
            Command::new(python())
                .arg(peer_script())
                .arg("serve")
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", peer_script().display())),
        );
        let stdin = child.0.stdin.take().expect("piped stdin");
        let stdout = child.0.stdout.take().expect("piped stdout");
        let stderr = drain(child.0.stderr.take());

        let mut lines = BufReader::new(stdout).lines();
        let line = match tokio::time::timeout(STARTUP, lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            outcome => {
                drop(child);
                let stderr = tokio::time::timeout(LIMIT, stderr)
                    .await
                    .map(|text| text.unwrap_or_default())
                    .unwrap_or_default();
                panic!(
                    "the Python peer did not print `LISTENING <port>` ({outcome:?}); stderr:\n{stderr}"
                );
            }
        };
        let port = line
            .strip_prefix("LISTENING ")
            .and_then(|port| port.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the Python peer: {line:?}"));
        // Keep stdout drained so the peer never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            _stdin: stdin,
            _child: child,
            port,
        }
    }

    /// Its address, `127.0.0.1:PORT`.
    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}
