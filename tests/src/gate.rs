//! A loopback TCP relay that can cut a client off from a server and let it back, without
//! touching the server: for "the registry (or a backend) is unreachable" tests where the
//! server must keep running (e.g. to change its data while a client cannot see it).

use std::net::{Ipv4Addr, SocketAddr};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Relays connections from [`addr`](Self::addr) to an upstream address while open.
#[derive(Debug)]
pub struct Gate {
    addr: SocketAddr,
    open: watch::Sender<bool>,
    task: JoinHandle<()>,
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
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if !*gate.borrow() {
                    // Closed: the connection is dropped at once, like a refused one.
                    continue;
                }
                tokio::spawn(relay(inbound, upstream, gate.subscribe()));
            }
        });
        Self { addr, open, task }
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
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.task.abort();
        self.close();
    }
}

async fn relay(mut inbound: TcpStream, upstream: SocketAddr, mut open: watch::Receiver<bool>) {
    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
        _ = open.wait_for(|open| !open) => {}
    }
}
