//! Registration: a server publishing itself under `<key>/<id>` with a lease kept alive.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Backoff;
use super::client::{EtcdClient, EtcdError, Lease, Watch, WatchEvent};
use super::pb::etcdserverpb::watch_create_request::FilterType;
use super::value;
use crate::discovery::Endpoint;

/// Lease time to live when none is set: go-zero's 10 s.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10);
/// How long `stop` waits for etcd to confirm the revoke.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);
/// Retry pace for a keep-alive, watch or put that failed while the lease may still be alive.
const RETRY: Duration = Duration::from_secs(1);
/// Leases given up on and kept for revoking; beyond this many they are left to expire.
const MAX_STALE_LEASES: usize = 8;

/// Where a registration currently is in etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The key, `<key>/<id>`.
    pub key: String,
    /// The lease the key is attached to.
    pub lease: i64,
}

/// Settings for a [`Registration`]; see [`Registration::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RegistrationBuilder {
    client: EtcdClient,
    key: String,
    ttl: Duration,
    id: Option<String>,
    advertise: Option<String>,
    metadata: BTreeMap<String, String>,
}

impl RegistrationBuilder {
    /// Lease time to live, in whole seconds (etcd raises values below its minimum, about
    /// 2 s). The lease is renewed every third of it. Default: 10 s.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Publishes under `<key>/<id>`. Default: the lease id, as go-zero does, which gives each
    /// running instance its own key and a new key after a lost lease.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Publishes this `host:port` instead of the one derived from the listening address.
    pub fn advertise(mut self, addr: impl Into<String>) -> Self {
        self.advertise = Some(addr.into());
        self
    }

    /// Adds a metadata label. Clients see it in [`Endpoint::metadata`].
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// The `version` label (for version-based routing, e.g. canaries).
    pub fn version(self, version: impl Into<String>) -> Self {
        self.metadata("version", version)
    }

    /// The `weight` label.
    pub fn weight(self, weight: u32) -> Self {
        self.metadata("weight", weight.to_string())
    }

    /// The `zone` label.
    pub fn zone(self, zone: impl Into<String>) -> Self {
        self.metadata("zone", zone)
    }

    /// Starts publishing the server listening on `listening`, and keeps it published until
    /// [`Registration::stop`] (or drop).
    ///
    /// Call it once the server is listening. It returns after the first attempt to publish
    /// (a grant and a put, each bounded by 3 s per etcd member tried): if etcd was unreachable, a background task keeps
    /// trying (with backoff) and the server appears as soon as etcd answers, so a server
    /// starts whether or not etcd is up; [`Registration::published`] waits for that. Fails
    /// only when no address to advertise can be found.
    ///
    /// The advertised address is, in order: the one set with
    /// [`advertise`](Self::advertise); the listening address, unless its host is unspecified
    /// (`0.0.0.0`, `::`); `POD_IP` from the environment with the listening port; the
    /// machine's outward IPv4 address with the listening port.
    pub async fn start(self, listening: SocketAddr) -> io::Result<Registration> {
        let pod_ip = std::env::var("POD_IP").ok();
        let addr = advertised_addr(
            listening,
            self.advertise.as_deref(),
            pod_ip.as_deref(),
            outward_ipv4,
        )?;
        let endpoint = Endpoint {
            addr,
            metadata: self.metadata,
        };
        let keeper = Keeper {
            client: self.client,
            prefix: self.key.trim_end_matches('/').to_owned(),
            id: self.id,
            ttl: self.ttl,
            value: value::encode(&endpoint),
        };
        let (state_tx, state) = watch::channel(None);
        let (stop_tx, stop_rx) = oneshot::channel();
        let (first_tx, first_rx) = oneshot::channel();
        let task = tokio::spawn(keeper.run(state_tx, stop_rx, first_tx));
        // Err: the task ended without reporting, which it does not do before being stopped.
        let _ = first_rx.await;
        Ok(Registration {
            endpoint,
            state,
            stop: Some(stop_tx),
            task: Some(task),
        })
    }
}

/// A server's registration in etcd, kept alive by a background task.
///
/// The task renews the lease every third of its time to live, watches its own key, and puts
/// the key back when someone deletes it. When the lease is gone (revoked, expired, or not
/// renewed within its time to live because etcd was unreachable), it grants a new lease and
/// publishes again, retrying with backoff until etcd answers, then revokes the leases it
/// gave up on.
///
/// [`stop`](Self::stop) revokes the lease, which deletes the key at once; dropping the
/// registration does the same in the background (unless the runtime is shutting down too:
/// then the lease expires after its time to live). Either way clients stop seeing the server
/// before it stops serving, if the server stops after this.
#[derive(Debug)]
pub struct Registration {
    endpoint: Endpoint,
    state: watch::Receiver<Option<Published>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Registration {
    /// Settings for registering under `key` through `client`.
    pub fn builder(client: EtcdClient, key: impl Into<String>) -> RegistrationBuilder {
        RegistrationBuilder {
            client,
            key: key.into(),
            ttl: DEFAULT_TTL,
            id: None,
            advertise: None,
            metadata: BTreeMap::new(),
        }
    }

    /// What is published: the advertised address and metadata.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Where the registration is in etcd now, as far as the task knows; `None` while it is
    /// (re-)publishing.
    pub fn current(&self) -> Option<Published> {
        self.state.borrow().clone()
    }

    /// Waits until the registration is in etcd (at once if it is) and says where.
    pub async fn published(&self) -> Published {
        let mut state = self.state.clone();
        let published = state.wait_for(Option::is_some).await;
        match published {
            Ok(published) => published.clone().expect("waited for Some"),
            // The task is gone only after stop, which consumes self.
            Err(_) => std::future::pending().await,
        }
    }

    /// Revokes the lease (deleting the key) and stops the background task. Returns once etcd
    /// confirmed, or after 3 s if it does not answer (the lease then expires on its own).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // The task revokes on its own once told; it outlives this handle for that.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

struct Keeper {
    client: EtcdClient,
    prefix: String,
    id: Option<String>,
    ttl: Duration,
    value: String,
}

impl Keeper {
    async fn run(
        self,
        state: watch::Sender<Option<Published>>,
        mut stop: oneshot::Receiver<()>,
        first_attempt: oneshot::Sender<()>,
    ) {
        let mut first_attempt = Some(first_attempt);
        // Leases given up on and not yet revoked.
        let mut stale: Vec<i64> = Vec::new();
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        let mut current: Option<Lease> = None;
        let work = async {
            loop {
                let published = self.publish().await;
                if let Some(first) = first_attempt.take() {
                    let _ = first.send(());
                }
                let (lease, key, revision, expires) = match published {
                    Ok(published) => published,
                    Err(unused) => {
                        remember_stale(&mut stale, unused);
                        tokio::time::sleep(backoff.next_delay()).await;
                        continue;
                    }
                };
                backoff.reset();
                current = Some(lease);
                state.send_replace(Some(Published {
                    key: key.clone(),
                    lease: lease.id,
                }));
                if !stale.is_empty() {
                    // A lease given up on during an outage may have outlived it (etcd renews
                    // leases when it restarts), keeping a duplicate key alive: revoke it now
                    // that etcd answers. In the background, so the new lease is renewed on
                    // time; one that still fails expires on its own.
                    let client = self.client.clone();
                    let leases = std::mem::take(&mut stale);
                    tokio::spawn(async move { revoke_all(&client, leases).await });
                }
                self.hold(lease, &key, revision, expires).await;
                state.send_replace(None);
                current = None;
                remember_stale(&mut stale, Some(lease.id));
            }
        };
        tokio::select! {
            _ = &mut stop => {}
            () = work => {}
        }
        // The live lease first: revoking it deletes the key clients see.
        let leases = current
            .map(|lease| lease.id)
            .into_iter()
            .chain(stale)
            .collect();
        // Best effort: if etcd does not answer in time, the leases expire on their own.
        let _ = tokio::time::timeout(STOP_TIMEOUT, revoke_all(&self.client, leases)).await;
        state.send_replace(None);
    }

    /// Grants a lease and puts the key on it; returns the lease, the key, the put's revision
    /// and the latest the lease can expire unless renewed. Err carries a lease granted but
    /// not used.
    async fn publish(&self) -> Result<(Lease, String, i64, Instant), Option<i64>> {
        // etcd starts the lease's clock at some point after this, never before.
        let asked = Instant::now();
        let lease = self.client.grant(self.ttl).await.map_err(|_| None)?;
        let key = match &self.id {
            Some(id) => format!("{}/{id}", self.prefix),
            None => format!("{}/{}", self.prefix, lease.id),
        };
        match self
            .client
            .put(&key, self.value.as_bytes(), Some(lease.id))
            .await
        {
            Ok(revision) => Ok((lease, key, revision, asked + lease.ttl)),
            Err(_) => Err(Some(lease.id)),
        }
    }

    /// Keeps `lease` alive and `key` on it. Returns when the lease is gone or must be assumed
    /// gone (not renewed within its time to live): time to publish under a new one.
    async fn hold(&self, lease: Lease, key: &str, put_revision: i64, mut expires: Instant) {
        let mut keeper = self.client.lease_keeper(lease.id);
        let renew_every = (lease.ttl / 3).max(Duration::from_millis(500));
        let mut next_renewal = Instant::now() + renew_every;
        let mut own_key: Option<Watch> = None;
        let mut watch_from = put_revision + 1;
        let mut next_watch = Instant::now();
        let mut needs_put = false;
        loop {
            if needs_put {
                match self
                    .client
                    .put(key, self.value.as_bytes(), Some(lease.id))
                    .await
                {
                    Ok(revision) => {
                        needs_put = false;
                        if own_key.is_none() {
                            watch_from = revision + 1;
                        }
                    }
                    Err(EtcdError::LeaseNotFound) => return,
                    Err(_) => {}
                }
            }
            if own_key.is_none() && Instant::now() >= next_watch {
                match self
                    .client
                    .watch_with(key, false, watch_from, &[FilterType::Noput])
                    .await
                {
                    Ok(watch) => own_key = Some(watch),
                    Err(EtcdError::Compacted { .. }) => {
                        // What happened to the key since is unknown: put it back to be sure
                        // (same value, same lease), then watch from that put.
                        needs_put = true;
                        next_watch = Instant::now();
                    }
                    Err(_) => next_watch = Instant::now() + RETRY,
                }
            }
            let mut wake = next_renewal;
            if own_key.is_none() || needs_put {
                wake = wake.min(next_watch.max(Instant::now() + RETRY / 4));
            }
            tokio::select! {
                () = tokio::time::sleep_until(wake) => {}
                event = next_event(&mut own_key) => match event {
                    Ok(events) => {
                        if let Some(watch) = &own_key {
                            watch_from = watch.revision() + 1;
                        }
                        if events.iter().any(|e| matches!(e, WatchEvent::Delete(_))) {
                            // Deleted behind our back (or the lease just expired: then the put
                            // says so).
                            needs_put = true;
                        }
                        continue;
                    }
                    Err(EtcdError::Compacted { .. }) => {
                        own_key = None;
                        needs_put = true;
                        continue;
                    }
                    Err(_) => {
                        own_key = None;
                        next_watch = Instant::now() + RETRY;
                        continue;
                    }
                },
            }
            if Instant::now() < next_renewal {
                continue;
            }
            let asked = Instant::now();
            match keeper.renew().await {
                Ok(ttl) => {
                    // Counted from the request, not the answer: never later than etcd's clock.
                    expires = asked + ttl;
                    next_renewal = Instant::now() + renew_every;
                }
                Err(EtcdError::LeaseNotFound) => return,
                Err(_) if Instant::now() >= expires => return,
                Err(_) => next_renewal = Instant::now() + RETRY.min(renew_every),
            }
        }
    }
}

/// Adds a lease to revoke later, forgetting the oldest beyond [`MAX_STALE_LEASES`] (the
/// oldest are the likeliest to have expired already).
fn remember_stale(stale: &mut Vec<i64>, lease: Option<i64>) {
    stale.extend(lease);
    let excess = stale.len().saturating_sub(MAX_STALE_LEASES);
    stale.drain(..excess);
}

/// Revokes each lease in turn (each request bounded by the client's timeouts); failures are
/// ignored because an unrevoked lease still expires after its time to live.
async fn revoke_all(client: &EtcdClient, leases: Vec<i64>) {
    for lease in leases {
        let _ = client.revoke(lease).await;
    }
}

/// The next batch from the watch, or never when there is none.
async fn next_event(watch: &mut Option<Watch>) -> Result<Vec<WatchEvent>, EtcdError> {
    match watch {
        Some(watch) => watch.next().await,
        None => std::future::pending().await,
    }
}

/// The address to publish for a server listening on `listening`; see
/// [`RegistrationBuilder::start`].
fn advertised_addr(
    listening: SocketAddr,
    configured: Option<&str>,
    pod_ip: Option<&str>,
    outward: impl FnOnce() -> Option<IpAddr>,
) -> io::Result<String> {
    if let Some(addr) = configured.filter(|a| !a.trim().is_empty()) {
        return Ok(addr.trim().to_owned());
    }
    if !listening.ip().is_unspecified() {
        return Ok(listening.to_string());
    }
    let port = listening.port();
    if let Some(ip) = pod_ip.and_then(|ip| ip.trim().parse::<IpAddr>().ok()) {
        return Ok(SocketAddr::new(ip, port).to_string());
    }
    if let Some(ip) = outward() {
        return Ok(SocketAddr::new(ip, port).to_string());
    }
    Err(io::Error::new(
        io::ErrorKind::AddrNotAvailable,
        format!(
            "cannot tell which address to publish for a server listening on {listening}: \
             set POD_IP or configure the advertised address"
        ),
    ))
}

/// The IPv4 address this machine uses to leave the host: the source address the kernel picks
/// for the default route. Connecting a UDP socket sends nothing; it only chooses the route.
///
/// go-zero takes the first non-loopback IPv4 of the first interface that is up; on a pod or a
/// single-NIC machine that is the same address, and on a multi-homed host (docker0, VPNs) the
/// routed one is the one peers can reach.
fn outward_ipv4() -> Option<IpAddr> {
    let socket = UdpSocket::bind(("0.0.0.0", 0)).ok()?;
    // TEST-NET-3 (RFC 5737): never a real peer; only the route to it matters.
    socket.connect(("203.0.113.1", 9)).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn advertises_in_the_documented_order() {
        let none = || None;
        let outward = || Some("10.1.2.3".parse().unwrap());
        // Configured wins over everything.
        assert_eq!(
            advertised_addr(
                addr("0.0.0.0:80"),
                Some("svc.example:443"),
                Some("10.0.0.9"),
                outward
            )
            .unwrap(),
            "svc.example:443"
        );
        // A specific listening host is published as is.
        assert_eq!(
            advertised_addr(addr("127.0.0.1:8080"), None, Some("10.0.0.9"), outward).unwrap(),
            "127.0.0.1:8080"
        );
        // Unspecified: POD_IP, then the outward address, each with the listening port.
        assert_eq!(
            advertised_addr(addr("0.0.0.0:8080"), None, Some("10.0.0.9"), outward).unwrap(),
            "10.0.0.9:8080"
        );
        assert_eq!(
            advertised_addr(addr("[::]:8080"), None, Some("fd00::1"), outward).unwrap(),
            "[fd00::1]:8080"
        );
        assert_eq!(
            advertised_addr(addr("0.0.0.0:8080"), None, Some(""), outward).unwrap(),
            "10.1.2.3:8080"
        );
        assert_eq!(
            advertised_addr(addr("0.0.0.0:8080"), None, None, none)
                .unwrap_err()
                .kind(),
            io::ErrorKind::AddrNotAvailable
        );
    }
}
