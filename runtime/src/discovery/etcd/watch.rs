//! Discovery: the endpoint set registered under a key, kept current from an etcd watch.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::watch;

use super::Backoff;
use super::client::{EtcdClient, EtcdError, KeyValue, WatchEvent};
use super::value;
use crate::discovery::Endpoint;

/// Follows the servers registered under `key` (every key under `<key>/`), as a watch channel
/// of endpoint sets.
///
/// The set starts empty and is filled by the first listing; it changes only when the
/// registrations do. Values may be rzero's (etcd `naming/endpoints` JSON, with metadata) or
/// go-zero's bare `host:port`; anything else is ignored. Two keys with the same address (a
/// server that re-registered under a new lease before its old key expired) are one
/// endpoint, with the newest value's metadata. Endpoints are sorted by address.
///
/// While etcd is unreachable the last known set stays; the watch resumes from the last
/// revision it saw, so no change is missed, and lists again when etcd has compacted that
/// revision away or lost its history. The background task stops when every receiver is
/// dropped. Must be called inside a Tokio runtime.
pub fn watch_endpoints(client: EtcdClient, key: &str) -> watch::Receiver<Vec<Endpoint>> {
    let (tx, rx) = watch::channel(Vec::new());
    let prefix = format!("{}/", key.trim_end_matches('/'));
    tokio::spawn(async move {
        tokio::select! {
            () = tx.closed() => {}
            () = follow(&client, &prefix, &tx) => {}
        }
    });
    rx
}

/// Registrations seen under the prefix: key → (revision of its value, endpoint).
type Registrations = BTreeMap<Vec<u8>, (i64, Endpoint)>;

async fn follow(client: &EtcdClient, prefix: &str, tx: &watch::Sender<Vec<Endpoint>>) {
    let mut registrations = Registrations::new();
    // Every change up to this revision is in `registrations`; `None`: list again.
    let mut revision: Option<i64> = None;
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    loop {
        let seen = match revision {
            Some(seen) => seen,
            None => match client.get_prefix(prefix).await {
                Ok((kvs, listed_at)) => {
                    registrations = kvs.into_iter().filter_map(registration).collect();
                    publish(tx, &registrations);
                    revision = Some(listed_at);
                    listed_at
                }
                Err(_) => {
                    tokio::time::sleep(backoff.next_delay()).await;
                    continue;
                }
            },
        };
        let mut watch = match client.watch(prefix, true, seen + 1).await {
            Ok(watch) if watch.created_at() < seen => {
                // etcd is behind what we saw: it lost history, so resuming would wait for
                // revisions that mean something else now.
                revision = None;
                continue;
            }
            Ok(watch) => watch,
            Err(EtcdError::Compacted { .. }) => {
                revision = None;
                continue;
            }
            Err(_) => {
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
        };
        loop {
            match watch.next().await {
                Ok(events) => {
                    backoff.reset();
                    for event in events {
                        match event {
                            WatchEvent::Put(kv) => match registration(kv) {
                                Some((key, entry)) => registrations.insert(key, entry),
                                None => None,
                            },
                            WatchEvent::Delete(kv) => registrations.remove(&kv.key),
                        };
                    }
                    publish(tx, &registrations);
                    revision = Some(watch.revision());
                }
                Err(EtcdError::Compacted { .. }) => {
                    revision = None;
                    break;
                }
                // The stream broke (etcd restarting, network) or etcd canceled the watch:
                // resume from `revision`, paced so a watch etcd keeps refusing is no busy loop.
                Err(_) => {
                    tokio::time::sleep(backoff.next_delay()).await;
                    break;
                }
            }
        }
    }
}

fn registration(kv: KeyValue) -> Option<(Vec<u8>, (i64, Endpoint))> {
    let endpoint = value::decode(&kv.value)?;
    Some((kv.key, (kv.mod_revision, endpoint)))
}

/// Sends the endpoint set if it changed: one endpoint per address, the newest value winning.
fn publish(tx: &watch::Sender<Vec<Endpoint>>, registrations: &Registrations) {
    let mut by_addr: BTreeMap<&str, (i64, &Endpoint)> = BTreeMap::new();
    for (revision, endpoint) in registrations.values() {
        let slot = by_addr
            .entry(endpoint.addr.as_str())
            .or_insert((*revision, endpoint));
        if *revision > slot.0 {
            *slot = (*revision, endpoint);
        }
    }
    let endpoints: Vec<Endpoint> = by_addr.into_values().map(|(_, e)| e.clone()).collect();
    tx.send_if_modified(|current| {
        if *current == endpoints {
            false
        } else {
            *current = endpoints;
            true
        }
    });
}
