//! The etcd v3 client: KV, watch and lease calls over one or more cluster members.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status, Streaming};

use super::pb::etcdserverpb::kv_client::KvClient;
use super::pb::etcdserverpb::lease_client::LeaseClient;
use super::pb::etcdserverpb::watch_client::WatchClient;
use super::pb::etcdserverpb::watch_create_request::FilterType;
use super::pb::etcdserverpb::watch_request::RequestUnion;
use super::pb::etcdserverpb::{
    DeleteRangeRequest, LeaseGrantRequest, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseRevokeRequest, PutRequest, RangeRequest, WatchCreateRequest, WatchRequest, WatchResponse,
};
use super::pb::mvccpb::event::EventType;
use crate::client::Client;

pub use super::pb::mvccpb::KeyValue;

/// Bound on one request to one member, so a member that accepts connections but never
/// answers cannot stall a caller: the same 3 s go-zero uses for its etcd reads.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Bound on connecting to one member; a dead host fails over to the next member this soon.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// HTTP/2 pings on idle connections, so a watch on a member that vanished without closing its
/// socket notices within seconds. etcd refuses pings more often than every 5 s.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// A client for an etcd v3 cluster, reached through any of its members.
///
/// Connections are lazy: creating a client never fails because etcd is down, and a member
/// that is down is skipped until it answers again. Each request goes to the member that
/// answered last; when that member is unreachable or times out, the request fails over to
/// the next one, each member tried at most once per request. Requests that etcd itself
/// rejects are not retried.
///
/// Cheap to clone: clones share connections.
#[derive(Clone)]
pub struct EtcdClient {
    inner: Arc<Inner>,
}

struct Inner {
    members: Vec<Member>,
    /// Index of the member to try first: the last one that answered.
    preferred: AtomicUsize,
}

struct Member {
    addr: String,
    client: Client,
}

impl fmt::Debug for EtcdClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addrs: Vec<&str> = self.inner.members.iter().map(|m| m.addr.as_str()).collect();
        f.debug_struct("EtcdClient")
            .field("members", &addrs)
            .finish()
    }
}

/// A lease etcd granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The lease id, to attach keys to and to keep alive or revoke.
    pub id: i64,
    /// The time to live etcd chose (at least the one asked for, and at least etcd's minimum).
    pub ttl: Duration,
}

/// One change a [`Watch`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// The key was written; the value is the new one.
    Put(KeyValue),
    /// The key was deleted, explicitly or because its lease ended. Only `key` and
    /// `mod_revision` (the deletion's revision) are set.
    Delete(KeyValue),
}

impl WatchEvent {
    /// The key (and value, for a put) the event is about.
    pub fn kv(&self) -> &KeyValue {
        match self {
            Self::Put(kv) | Self::Delete(kv) => kv,
        }
    }
}

/// Why an etcd operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum EtcdError {
    /// No member answered: the last member's failure.
    Unavailable(Status),
    /// etcd answered with an error.
    Rejected(Status),
    /// The lease does not exist (any more): it expired or was revoked.
    LeaseNotFound,
    /// A watch asked for revisions etcd has compacted away; list again and watch from the
    /// listing's revision.
    Compacted {
        /// The oldest revision etcd still has.
        compact_revision: i64,
    },
    /// etcd canceled a watch for another reason.
    WatchCanceled(String),
}

impl fmt::Display for EtcdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable(status) => write!(f, "no etcd member answered: {}", status.message()),
            Self::Rejected(status) => {
                write!(f, "etcd refused: {:?}: {}", status.code(), status.message())
            }
            Self::LeaseNotFound => f.write_str("etcd lease not found"),
            Self::Compacted { compact_revision } => {
                write!(
                    f,
                    "etcd compacted the watched revisions (oldest left: {compact_revision})"
                )
            }
            Self::WatchCanceled(reason) => write!(f, "etcd canceled the watch: {reason}"),
        }
    }
}

impl std::error::Error for EtcdError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unavailable(status) | Self::Rejected(status) => Some(status),
            _ => None,
        }
    }
}

impl EtcdError {
    fn from_status(status: Status) -> Self {
        // etcd reports a missing lease as NOT_FOUND "etcdserver: requested lease not found".
        if status.code() == Code::NotFound && status.message().contains("lease not found") {
            Self::LeaseNotFound
        } else if fails_over(&status) {
            Self::Unavailable(status)
        } else {
            Self::Rejected(status)
        }
    }
}

/// Failures that say nothing about the request, only about the member or the path to it:
/// worth trying the next member.
fn fails_over(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Cancelled
    )
}

/// Keys from `prefix` on: `prefix` with its last byte below 0xff incremented (etcd's rule
/// for "every key with this prefix").
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff (or empty): every key from `prefix` on.
    vec![0]
}

impl EtcdClient {
    /// A client for the cluster whose members listen at `members` (`host:port`, or
    /// `http://host:port`; an item may list several, comma-separated, as in
    /// `"h1:2379,h2:2379"`). Nothing connects until the first request.
    ///
    /// ```
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// let etcd = rzero::discovery::etcd::EtcdClient::new(["127.0.0.1:2379", "10.0.0.2:2379"])?;
    /// etcd.put("greeting", "hello", None).await?;
    /// # Ok(()) }
    /// ```
    pub fn new<I, S>(members: I) -> Result<Self, crate::ConnectError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list = Vec::new();
        let members: Vec<String> = members
            .into_iter()
            .flat_map(|m| m.as_ref().split(',').map(str::to_owned).collect::<Vec<_>>())
            .collect();
        for addr in &members {
            let addr = addr.trim();
            if addr.is_empty() {
                continue;
            }
            let uri = if addr.contains("://") {
                addr.to_owned()
            } else {
                format!("http://{addr}")
            };
            let endpoint = tonic::transport::Endpoint::from_shared(uri)
                .map_err(|e| crate::ConnectError::invalid_target(addr, e))?
                .connect_timeout(CONNECT_TIMEOUT)
                .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
                .keep_alive_timeout(KEEPALIVE_TIMEOUT)
                .keep_alive_while_idle(true);
            list.push(Member {
                addr: addr.to_owned(),
                client: Client::from_channel(endpoint.connect_lazy()),
            });
        }
        if list.is_empty() {
            return Err(crate::ConnectError::invalid_target(
                "",
                "an etcd client needs at least one member address",
            ));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                members: list,
                preferred: AtomicUsize::new(0),
            }),
        })
    }

    /// Runs `call` on the preferred member, then on each other member while the failure is
    /// one that another member might not have.
    async fn with_failover<T, F, Fut>(&self, call: F) -> Result<T, EtcdError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        Ok(self.with_failover_at(call).await?.0)
    }

    /// [`with_failover`](Self::with_failover), also saying which member answered (for
    /// streams, which can fail on that member later).
    async fn with_failover_at<T, F, Fut>(&self, call: F) -> Result<(T, usize), EtcdError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let members = &self.inner.members;
        let first = self.inner.preferred.load(Ordering::Relaxed);
        let mut last = Status::unavailable("no etcd member tried");
        for offset in 0..members.len() {
            let index = (first + offset) % members.len();
            let member = &members[index];
            let status =
                match tokio::time::timeout(REQUEST_TIMEOUT, call(member.client.clone())).await {
                    Ok(Ok(value)) => {
                        self.inner.preferred.store(index, Ordering::Relaxed);
                        return Ok((value, index));
                    }
                    Ok(Err(status)) => status,
                    Err(_) => {
                        Status::deadline_exceeded(format!("no answer within {REQUEST_TIMEOUT:?}"))
                    }
                };
            if !fails_over(&status) {
                return Err(EtcdError::from_status(status));
            }
            last = Status::new(
                status.code(),
                format!("{}: {}", member.addr, status.message()),
            );
        }
        Err(EtcdError::Unavailable(last))
    }

    /// A stream on member `index` failed: unless another member answered since, start the
    /// next request on the member after it, so a member that hangs (rather than refusing)
    /// costs one timeout, not one per request.
    fn demote(&self, index: usize) {
        let next = (index + 1) % self.inner.members.len();
        let _ = self.inner.preferred.compare_exchange(
            index,
            next,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// The value of `key`, if it exists.
    pub async fn get(&self, key: &str) -> Result<Option<KeyValue>, EtcdError> {
        let request = RangeRequest {
            key: key.as_bytes().to_vec(),
            ..Default::default()
        };
        let response = self
            .with_failover(|c| {
                let request = request.clone();
                async move { KvClient::new(c).range(request).await }
            })
            .await?
            .into_inner();
        Ok(response.kvs.into_iter().next())
    }

    /// Every key starting with `prefix`, in key order, and the store revision the listing
    /// is from (watch from the next revision to miss nothing).
    pub async fn get_prefix(&self, prefix: &str) -> Result<(Vec<KeyValue>, i64), EtcdError> {
        let request = RangeRequest {
            key: prefix.as_bytes().to_vec(),
            range_end: prefix_end(prefix.as_bytes()),
            ..Default::default()
        };
        let response = self
            .with_failover(|c| {
                let request = request.clone();
                async move { KvClient::new(c).range(request).await }
            })
            .await?
            .into_inner();
        let revision = response.header.map_or(0, |h| h.revision);
        Ok((response.kvs, revision))
    }

    /// Writes `key`, attached to `lease` if given; returns the write's revision.
    pub async fn put(
        &self,
        key: &str,
        value: impl Into<Vec<u8>>,
        lease: Option<i64>,
    ) -> Result<i64, EtcdError> {
        let request = PutRequest {
            key: key.as_bytes().to_vec(),
            value: value.into(),
            lease: lease.unwrap_or(0),
            prev_kv: false,
        };
        let response = self
            .with_failover(|c| {
                let request = request.clone();
                async move { KvClient::new(c).put(request).await }
            })
            .await?
            .into_inner();
        Ok(response.header.map_or(0, |h| h.revision))
    }

    /// Deletes `key`; returns how many keys were deleted (0 or 1).
    pub async fn delete(&self, key: &str) -> Result<i64, EtcdError> {
        let request = DeleteRangeRequest {
            key: key.as_bytes().to_vec(),
            ..Default::default()
        };
        let response = self
            .with_failover(|c| {
                let request = request.clone();
                async move { KvClient::new(c).delete_range(request).await }
            })
            .await?
            .into_inner();
        Ok(response.deleted)
    }

    /// Creates a lease that ends `ttl` (whole seconds, at least 1) after its last renewal.
    pub async fn grant(&self, ttl: Duration) -> Result<Lease, EtcdError> {
        let request = LeaseGrantRequest {
            ttl: ttl.as_secs().max(1) as i64,
            id: 0,
        };
        let response = self
            .with_failover(|c| async move { LeaseClient::new(c).lease_grant(request).await })
            .await?
            .into_inner();
        if !response.error.is_empty() {
            return Err(EtcdError::Rejected(Status::unknown(response.error)));
        }
        Ok(Lease {
            id: response.id,
            ttl: Duration::from_secs(response.ttl.max(0) as u64),
        })
    }

    /// Ends lease `id` now, deleting every key attached to it.
    pub async fn revoke(&self, id: i64) -> Result<(), EtcdError> {
        let request = LeaseRevokeRequest { id };
        self.with_failover(|c| async move { LeaseClient::new(c).lease_revoke(request).await })
            .await?;
        Ok(())
    }

    /// Watches `key` (every key starting with `key` when `prefix`) from `start_revision`
    /// (inclusive; 0: from now on). Returns once etcd has created the watch; when
    /// `start_revision` is compacted away, etcd creates the watch and then cancels it, so
    /// the first [`Watch::next`] fails with [`EtcdError::Compacted`].
    pub async fn watch(
        &self,
        key: &str,
        prefix: bool,
        start_revision: i64,
    ) -> Result<Watch, EtcdError> {
        self.watch_with(key, prefix, start_revision, &[]).await
    }

    /// [`watch`](Self::watch) leaving out the event kinds in `filters`.
    pub(crate) async fn watch_with(
        &self,
        key: &str,
        prefix: bool,
        start_revision: i64,
        filters: &[FilterType],
    ) -> Result<Watch, EtcdError> {
        let create = WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                key: key.as_bytes().to_vec(),
                range_end: if prefix {
                    prefix_end(key.as_bytes())
                } else {
                    Vec::new()
                },
                start_revision,
                // Progress responses let a quiet watch resume from a recent revision, which
                // etcd is less likely to have compacted away.
                progress_notify: true,
                filters: filters.iter().map(|f| *f as i32).collect(),
                ..Default::default()
            })),
        };
        let ((requests, mut responses), member) = self
            .with_failover_at(|c| {
                let create = create.clone();
                async move {
                    // etcd sends response headers only with its first message, so the create
                    // request must be queued before the call is made.
                    let (tx, rx) = mpsc::channel(1);
                    tx.send(create).await.expect("receiver alive");
                    let responses = WatchClient::new(c)
                        .watch(ReceiverStream::new(rx))
                        .await?
                        .into_inner();
                    Ok((tx, responses))
                }
            })
            .await?;
        // The first response confirms the watch (or says why it could not start).
        let first = tokio::time::timeout(REQUEST_TIMEOUT, responses.message())
            .await
            .map_err(|_| {
                EtcdError::Unavailable(Status::deadline_exceeded("watch not created in time"))
            })
            .and_then(|r| r.map_err(EtcdError::from_status))
            .and_then(|r| {
                r.ok_or_else(|| EtcdError::Unavailable(Status::unavailable("watch stream closed")))
            });
        let first = first.inspect_err(|_| self.demote(member))?;
        let mut watch = Watch {
            client: self.clone(),
            member,
            _requests: requests,
            responses,
            revision: start_revision.saturating_sub(1),
            server_revision: 0,
        };
        let events = watch.accept(first)?;
        debug_assert!(events.is_empty(), "a create response carries no events");
        Ok(watch)
    }

    /// A renewer for lease `id`, opening its stream on first use.
    pub(crate) fn lease_keeper(&self, id: i64) -> LeaseKeeper {
        LeaseKeeper {
            client: self.clone(),
            id,
            stream: None,
        }
    }
}

/// A running watch. Dropping it ends the watch.
#[derive(Debug)]
pub struct Watch {
    /// The client and member the watch runs on, to demote the member when the stream fails.
    client: EtcdClient,
    member: usize,
    /// Kept so the request stream stays open: etcd ends the watch when it closes.
    _requests: mpsc::Sender<WatchRequest>,
    responses: Streaming<WatchResponse>,
    /// Everything up to this revision has been reported.
    revision: i64,
    /// The store's revision when the watch was created (from the create response).
    server_revision: i64,
}

impl Watch {
    /// The next batch of events, in revision order. An empty batch is a progress report:
    /// [`revision`](Self::revision) moved on with nothing to report.
    pub async fn next(&mut self) -> Result<Vec<WatchEvent>, EtcdError> {
        let response = match self.responses.message().await {
            Ok(Some(response)) => response,
            Ok(None) => {
                self.client.demote(self.member);
                let closed = Status::unavailable("etcd closed the watch stream");
                return Err(EtcdError::Unavailable(closed));
            }
            Err(status) => {
                self.client.demote(self.member);
                return Err(EtcdError::from_status(status));
            }
        };
        self.accept(response)
    }

    /// Every change up to this revision has been reported: resume from the next one.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The store's revision when etcd created the watch. Lower than the revision the watch
    /// started from means etcd lost history (restored from an older backup, or a new
    /// cluster): resuming cannot be trusted, list again.
    pub(crate) fn created_at(&self) -> i64 {
        self.server_revision
    }

    fn accept(&mut self, response: WatchResponse) -> Result<Vec<WatchEvent>, EtcdError> {
        if response.canceled {
            return Err(if response.compact_revision > 0 {
                EtcdError::Compacted {
                    compact_revision: response.compact_revision,
                }
            } else {
                EtcdError::WatchCanceled(response.cancel_reason)
            });
        }
        let header_revision = response.header.as_ref().map_or(0, |h| h.revision);
        if response.created {
            self.server_revision = header_revision;
        }
        if response.compact_revision > 0 {
            return Err(EtcdError::Compacted {
                compact_revision: response.compact_revision,
            });
        }
        if response.events.is_empty() {
            // A progress report (or the create confirmation): nothing below the header's
            // revision is left to report.
            if !response.created || self.revision < 0 {
                self.revision = self.revision.max(header_revision);
            }
            return Ok(Vec::new());
        }
        let mut events = Vec::with_capacity(response.events.len());
        for event in response.events {
            let Some(kv) = event.kv else { continue };
            self.revision = self.revision.max(kv.mod_revision);
            events.push(match EventType::try_from(event.r#type) {
                Ok(EventType::Delete) => WatchEvent::Delete(kv),
                _ => WatchEvent::Put(kv),
            });
        }
        Ok(events)
    }
}

/// Renews one lease over a keep-alive stream, reopening the stream (on whichever member
/// answers) after it breaks.
pub(crate) struct LeaseKeeper {
    client: EtcdClient,
    id: i64,
    /// The open keep-alive stream and the member it runs on.
    stream: Option<KeepAliveStream>,
}

struct KeepAliveStream {
    requests: mpsc::Sender<LeaseKeepAliveRequest>,
    responses: Streaming<LeaseKeepAliveResponse>,
    member: usize,
}

impl LeaseKeeper {
    /// Renews the lease once; returns its new time to live.
    pub(crate) async fn renew(&mut self) -> Result<Duration, EtcdError> {
        let result = self.renew_inner().await;
        if let Err(error) = &result {
            // A stream that failed once is not trusted again: the next renewal reopens it,
            // starting on another member unless the failure was about the lease itself.
            let stream = self.stream.take();
            if let Some(stream) = stream.filter(|_| !matches!(error, EtcdError::LeaseNotFound)) {
                self.client.demote(stream.member);
            }
        }
        result
    }

    async fn renew_inner(&mut self) -> Result<Duration, EtcdError> {
        let request = LeaseKeepAliveRequest { id: self.id };
        let sent = match &self.stream {
            Some(stream) => stream.requests.send(request).await.is_ok(),
            None => false,
        };
        if !sent {
            // Opening is bounded per member by the failover; as for watches, the first
            // request is queued before the call is made.
            let ((requests, responses), member) = self
                .client
                .with_failover_at(|c| async move {
                    let (tx, rx) = mpsc::channel(1);
                    tx.send(request).await.expect("receiver alive");
                    let responses = LeaseClient::new(c)
                        .lease_keep_alive(ReceiverStream::new(rx))
                        .await?
                        .into_inner();
                    Ok((tx, responses))
                })
                .await?;
            self.stream = Some(KeepAliveStream {
                requests,
                responses,
                member,
            });
        }
        let stream = self.stream.as_mut().expect("opened above");
        let response = tokio::time::timeout(REQUEST_TIMEOUT, stream.responses.message())
            .await
            .map_err(|_| {
                EtcdError::Unavailable(Status::deadline_exceeded(
                    "lease keep-alive not answered in time",
                ))
            })?
            .map_err(EtcdError::from_status)?
            .ok_or_else(|| {
                EtcdError::Unavailable(Status::unavailable("keep-alive stream ended"))
            })?;
        if response.ttl <= 0 {
            return Err(EtcdError::LeaseNotFound);
        }
        Ok(Duration::from_secs(response.ttl as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_increments_the_last_byte_below_0xff() {
        assert_eq!(prefix_end(b"svc/"), b"svc0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), b"\0");
        assert_eq!(prefix_end(b""), b"\0");
    }
}
