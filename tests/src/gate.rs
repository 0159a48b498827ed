//! A loopback TCP relay that can cut a client off from a server and let it back, without
//! touching the server: for "the registry (or a backend) is unreachable" tests where the
//! server must keep running (e.g. to change its data while a client cannot see it).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Relays connections from [`addr`](Self::addr) to an upstream address while open.
#[derive(Debug)]
pub struct Gate {
    addr: SocketAddr,
    open: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// Bytes relayed from clients to the upstream so far.
    sent: Arc<AtomicU64>,
}

impl Gate {
    /// Starts relaying to `upstream`, open.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind the gate");
        let addr = listener.local_addr().expect("gate address");
        let (open, _) = watch::channel(true);
        let gate = open.clone();
        let sent = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&sent);
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if !*gate.borrow() {
                    // Closed: the connection is dropped at once, like a refused one.
                    continue;
                }
                tokio::spawn(relay(
                    inbound,
                    upstream,
                    gate.subscribe(),
                    Arc::clone(&counter),
                ));
            }
        });
        Self {
            addr,
            open,
            task,
            sent,
        }
    }

    /// `127.0.0.1:port` clients connect to.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Cuts every relayed connection and drops new ones until [`open`](Self::open).
    pub fn close(&self) {
        self.open.send_replace(false);
    }

    /// Relays new connections again.
    pub fn open(&self) {
        self.open.send_replace(true);
    }

    /// Bytes clients have sent through the gate so far.
    pub fn bytes_sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.task.abort();
        self.close();
    }
}

async fn relay(
    inbound: TcpStream,
    upstream: SocketAddr,
    mut open: watch::Receiver<bool>,
    sent: Arc<AtomicU64>,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let Ok(outbound) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = inbound.into_split();
    let (mut server_read, mut server_write) = outbound.into_split();
    // Client to server counted, byte by byte as relayed; server to client plain.
    let up = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    sent.fetch_add(n as u64, Ordering::SeqCst);
                    if server_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = server_write.shutdown().await;
    };
    let down = async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::select! {
        _ = async { tokio::join!(up, down) } => {}
        _ = open.wait_for(|open| !open) => {}
    }
}
