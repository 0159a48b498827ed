//! A real etcd for tests: Debian's `etcd-server` (`/usr/bin/etcd`, or `etcd` on `PATH`),
//! started on free 127.0.0.1 ports with a fresh data directory.
//!
//! [`EtcdServer::cluster`] starts several members forming one cluster.
//! [`EtcdServer::stop`] kills it the way a crash would (SIGKILL) and [`EtcdServer::restart`]
//! brings it back on the same ports and data directory, so leases and keys survive as they do
//! in a real restart. Dropping the fixture kills the process (by its pid, through its
//! [`Child`]) and removes the data directory.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long etcd may take to elect itself leader and answer `/health`.
const STARTUP: Duration = Duration::from_secs(30);

/// One etcd member on loopback: a single-member cluster from [`start`](Self::start), or one
/// member of a cluster from [`cluster`](Self::cluster).
#[derive(Debug)]
pub struct EtcdServer {
    name: String,
    client_port: u16,
    peer_port: u16,
    /// `--initial-cluster`: every member's name and peer URL.
    initial_cluster: String,
    dir: PathBuf,
    child: Option<Child>,
}

impl EtcdServer {
    /// Starts a single-member etcd and waits until it answers as a healthy member. Panics
    /// (with etcd's log) when it does not within 30 s.
    pub fn start() -> Self {
        Self::cluster(1).pop().expect("one member")
    }

    /// Starts a cluster of `size` members and waits until every one is healthy (a leader is
    /// elected once a majority is up).
    pub fn cluster(size: usize) -> Vec<Self> {
        let run = format!("rzero-etcd-{}-{}", std::process::id(), unique());
        let mut members: Vec<Self> = (0..size)
            .map(|i| {
                let dir = std::env::temp_dir().join(format!("{run}-{i}"));
                std::fs::create_dir_all(&dir).expect("create etcd test directory");
                Self {
                    name: format!("m{i}"),
                    client_port: free_port(),
                    peer_port: free_port(),
                    initial_cluster: String::new(),
                    dir,
                    child: None,
                }
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        for member in &mut members {
            member.initial_cluster = initial_cluster.clone();
            member.launch();
        }
        for member in &mut members {
            member.wait_healthy();
        }
        members
    }

    /// `127.0.0.1:port` of the client URL, for `EtcdClient::new`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// Kills etcd (SIGKILL, as a crash) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Compacts etcd's history up to `revision`, through etcd's own JSON gateway (so tests
    /// need no compaction call in rzero's client).
    pub fn compact(&self, revision: i64) {
        let body = format!(r#"{{"revision":"{revision}","physical":true}}"#);
        let response = http(
            SocketAddr::from((Ipv4Addr::LOCALHOST, self.client_port)),
            &format!(
                "POST /v3/kv/compaction HTTP/1.0\r\nHost: 127.0.0.1\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
            Duration::from_secs(10),
        )
        .unwrap_or_default();
        assert!(
            response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"),
            "compaction to {revision} failed: {response}"
        );
    }

    /// Starts etcd again on the same ports and data directory, and waits until it is healthy.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
        self.wait_healthy();
    }

    fn launch(&mut self) {
        let client = format!("http://127.0.0.1:{}", self.client_port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open etcd log");
        let child = Command::new(etcd_binary())
            .arg(format!("--name={}", self.name))
            .arg(format!("--data-dir={}", self.dir.join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster={}", self.initial_cluster))
            .arg("--initial-cluster-state=new")
            .arg("--logger=zap")
            .arg("--log-outputs=stderr")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start etcd ({e}); the etcd tests need Debian's etcd-server \
                     (`apt-get install etcd-server`), which scripts/test installs"
                )
            });
        self.child = Some(child);
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + STARTUP;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.client_port));
        for _ in 0..10_000 {
            if health(addr) {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "etcd exited with {status} while starting:\n{}",
                    self.log_tail()
                );
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("etcd not healthy within {STARTUP:?}:\n{}", self.log_tail());
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("etcd.log")
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn etcd_binary() -> &'static Path {
    let debian = Path::new("/usr/bin/etcd");
    if debian.exists() {
        debian
    } else {
        Path::new("etcd")
    }
}

/// A port nothing listens on right now (the OS picks it; etcd binds it a moment later).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind a free loopback port")
        .port()
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// etcd's `/health` over plain HTTP/1 on the client port: healthy once it has a leader.
fn health(addr: SocketAddr) -> bool {
    let request = "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    http(addr, request, Duration::from_millis(500))
        .is_some_and(|response| response.contains("\"health\":\"true\""))
}

/// Sends one HTTP/1.0 request and reads the whole response (the server closes after it).
fn http(addr: SocketAddr, request: &str, timeout: Duration) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    Some(response)
}
