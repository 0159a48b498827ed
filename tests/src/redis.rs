//! A real Redis for tests: Debian's `redis-server`, started on a free 127.0.0.1 port with
//! nothing persisted (`--save '' --appendonly no`), in a fresh directory.
//!
//! [`RedisServer::command`] speaks RESP over a plain socket, so tests can provision data
//! (`HSET`) with no client library of their own. [`RedisServer::stop`] kills it as a crash
//! would; dropping the fixture kills the process (by its pid, through its [`Child`]) and
//! removes the directory.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::etcd::free_port;

/// How long Redis may take to answer `PING`.
const STARTUP: Duration = Duration::from_secs(20);

/// One Redis server on loopback.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    password: Option<String>,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts Redis and waits until it answers `PING`. Panics (with its log) when it does
    /// not within 20 s.
    pub fn start() -> Self {
        Self::launch(None)
    }

    /// Starts Redis with `requirepass password`.
    pub fn with_password(password: &str) -> Self {
        Self::launch(Some(password.to_owned()))
    }

    fn launch(password: Option<String>) -> Self {
        let dir =
            std::env::temp_dir().join(format!("rzero-redis-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).expect("create redis test directory");
        let mut server = Self {
            port: free_port(),
            password,
            dir,
            child: None,
        };
        let log = std::fs::File::create(server.log_path()).expect("create redis log");
        let mut command = Command::new(redis_binary());
        command
            .arg("--port")
            .arg(server.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--save")
            .arg("")
            .arg("--appendonly")
            .arg("no")
            .arg("--dir")
            .arg(&server.dir)
            .arg("--daemonize")
            .arg("no");
        if let Some(password) = &server.password {
            command.arg("--requirepass").arg(password);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}); the auth tests need Debian's redis-server \
                     (`apt-get install redis-server`), which scripts/test installs"
                )
            });
        server.child = Some(child);
        server.wait_ready();
        server
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Runs one command and returns its reply as text (`+OK` → `OK`, a bulk string → its
    /// content, an integer → its digits, nil → `(nil)`, an error → `ERR …`).
    pub fn command(&self, args: &[&str]) -> String {
        self.try_command(args)
            .unwrap_or_else(|e| panic!("redis {args:?}: {e}"))
    }

    /// Kills Redis (SIGKILL, as a crash) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn try_command(&self, args: &[&str]) -> std::io::Result<String> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        let mut out = Vec::new();
        if let Some(password) = &self.password {
            out.extend(encode(&["AUTH", password]));
        }
        out.extend(encode(args));
        stream.write_all(&out)?;
        let mut reader = BufReader::new(stream);
        if self.password.is_some() {
            read_reply(&mut reader)?;
        }
        read_reply(&mut reader)
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + STARTUP;
        for _ in 0..10_000 {
            if self
                .try_command(&["PING"])
                .is_ok_and(|reply| reply == "PONG")
            {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "redis-server exited with {status} while starting:\n{}",
                    self.log()
                );
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server not ready within {STARTUP:?}:\n{}", self.log());
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("redis.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn redis_binary() -> &'static Path {
    let debian = Path::new("/usr/bin/redis-server");
    if debian.exists() {
        debian
    } else {
        Path::new("redis-server")
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A command as a RESP array of bulk strings.
fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend(format!("${}\r\n{arg}\r\n", arg.len()).into_bytes());
    }
    out
}

/// One RESP2 reply (simple string, error, integer, bulk string or nil) as text.
fn read_reply(reader: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let line = line.trim_end_matches("\r\n");
    let (kind, rest) = line.split_at(line.len().min(1));
    match kind {
        "+" | ":" => Ok(rest.to_owned()),
        "-" => Ok(rest.to_owned()),
        "$" if rest == "-1" => Ok("(nil)".to_owned()),
        "$" => {
            let len: usize = rest
                .parse()
                .map_err(|_| std::io::Error::other(format!("bad bulk length `{rest}`")))?;
            let mut body = vec![0; len + 2];
            reader.read_exact(&mut body)?;
            body.truncate(len);
            String::from_utf8(body).map_err(std::io::Error::other)
        }
        _ => Err(std::io::Error::other(format!("unexpected reply `{line}`"))),
    }
}
