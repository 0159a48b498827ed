//! rzero's etcd client, registration and discovery against a real etcd (`etcd-server`,
//! started per test on free loopback ports by `rzero_tests::etcd::EtcdServer`).
//!
//! Every wait is a poll with a bound; nothing asserts on a sleep.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rzero::discovery::Endpoint;
use rzero::discovery::etcd::{EtcdClient, EtcdError, Registration, WatchEvent, watch_endpoints};
use rzero_tests::default::echo::v1::EchoRequest;
use rzero_tests::default::echo::v1::echo_client::EchoClient;
use rzero_tests::echo::{self, ServerHandle};
use rzero_tests::etcd::{EtcdServer, free_port};
use rzero_tests::gate::Gate;
use tokio::sync::watch;

/// Bound for anything that should happen promptly.
const PROMPT: Duration = Duration::from_secs(10);

async fn within<T>(what: &str, limit: Duration, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within {limit:?}"))
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not seen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the watched endpoint set satisfies `check`, and returns it.
async fn endpoints_until(
    what: &str,
    limit: Duration,
    rx: &mut watch::Receiver<Vec<Endpoint>>,
    check: impl Fn(&[Endpoint]) -> bool,
) -> Vec<Endpoint> {
    within(what, limit, rx.wait_for(|set| check(set)))
        .await
        .expect("the watcher runs while a receiver exists")
        .clone()
}

fn addrs(endpoints: &[Endpoint]) -> Vec<&str> {
    endpoints.iter().map(|e| e.addr.as_str()).collect()
}

fn listening() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

#[tokio::test]
async fn put_get_delete_and_watch_round_trip() {
    let etcd = EtcdServer::start();
    let client = EtcdClient::new([etcd.addr()]).unwrap();

    let first = client.put("rt/a", "1", None).await.unwrap();
    let mut watch = client.watch("rt/", true, first + 1).await.unwrap();
    client.put("rt/b", "2", None).await.unwrap();
    assert_eq!(client.get("rt/b").await.unwrap().unwrap().value, b"2");
    assert_eq!(client.get("rt/missing").await.unwrap(), None);
    let (kvs, revision) = client.get_prefix("rt/").await.unwrap();
    let keys: Vec<&[u8]> = kvs.iter().map(|kv| kv.key.as_slice()).collect();
    assert_eq!(keys, [b"rt/a".as_slice(), b"rt/b"]);
    assert!(revision > first);
    assert_eq!(client.delete("rt/a").await.unwrap(), 1);
    assert_eq!(client.delete("rt/a").await.unwrap(), 0);

    let mut seen = Vec::new();
    while seen.len() < 2 {
        seen.extend(within("watch events", PROMPT, watch.next()).await.unwrap());
    }
    assert!(matches!(&seen[0], WatchEvent::Put(kv) if kv.key == b"rt/b" && kv.value == b"2"));
    assert!(matches!(&seen[1], WatchEvent::Delete(kv) if kv.key == b"rt/a"));
    assert_eq!(watch.revision(), seen[1].kv().mod_revision);

    // Leases: keys on a revoked lease go with it; a revoked lease is reported as not found.
    let lease = client.grant(Duration::from_secs(30)).await.unwrap();
    assert!(lease.ttl >= Duration::from_secs(30));
    client.put("rt/leased", "x", Some(lease.id)).await.unwrap();
    client.revoke(lease.id).await.unwrap();
    assert_eq!(client.get("rt/leased").await.unwrap(), None);
    assert!(matches!(
        client.revoke(lease.id).await,
        Err(EtcdError::LeaseNotFound)
    ));
    assert!(matches!(
        client.put("rt/leased", "x", Some(lease.id)).await,
        Err(EtcdError::LeaseNotFound)
    ));
}

#[tokio::test]
async fn fails_over_past_a_dead_member() {
    let etcd = EtcdServer::start();
    let dead = format!("127.0.0.1:{}", free_port());
    let client = EtcdClient::new([dead.as_str(), &etcd.addr()]).unwrap();
    client.put("fo/k", "v", None).await.unwrap();
    assert_eq!(client.get("fo/k").await.unwrap().unwrap().value, b"v");
    let watch = client.watch("fo/", true, 0).await;
    assert!(watch.is_ok(), "{watch:?}");

    let only_dead = EtcdClient::new([dead]).unwrap();
    assert!(matches!(
        only_dead.get("fo/k").await,
        Err(EtcdError::Unavailable(_))
    ));
}

#[tokio::test]
async fn registration_publishes_etcd_naming_json_and_stop_revokes_it() {
    let etcd = EtcdServer::start();
    let client = EtcdClient::new([etcd.addr()]).unwrap();
    let listening = listening();
    let mut endpoints = watch_endpoints(client.clone(), "greeter.rpc");

    let registration = Registration::builder(client.clone(), "greeter.rpc")
        .version("v2")
        .weight(10)
        .zone("eu-1")
        .start(listening)
        .await
        .unwrap();
    let published = within("publish", PROMPT, registration.published()).await;
    assert_eq!(published.key, format!("greeter.rpc/{}", published.lease));
    let kv = client
        .get(&published.key)
        .await
        .unwrap()
        .expect("key in etcd");
    assert_eq!(kv.lease, published.lease);
    assert_eq!(
        String::from_utf8(kv.value).unwrap(),
        format!(
            r#"{{"Op":0,"Addr":"{listening}","Metadata":{{"version":"v2","weight":"10","zone":"eu-1"}}}}"#
        )
    );

    let set = endpoints_until("discovered", PROMPT, &mut endpoints, |s| !s.is_empty()).await;
    assert_eq!(set, [registration.endpoint().clone()]);
    assert_eq!(set[0].metadata["version"], "v2");

    let started = Instant::now();
    within("stop", PROMPT, registration.stop()).await;
    assert_eq!(client.get(&published.key).await.unwrap(), None);
    endpoints_until("deregistered", PROMPT, &mut endpoints, |s| s.is_empty()).await;
    eprintln!("stop → gone from discovery: {:?}", started.elapsed());
}

#[tokio::test]
async fn a_key_deleted_behind_its_back_is_put_back() {
    let etcd = EtcdServer::start();
    let client = EtcdClient::new([etcd.addr()]).unwrap();
    let registration = Registration::builder(client.clone(), "svc")
        .start(listening())
        .await
        .unwrap();
    let published = within("publish", PROMPT, registration.published()).await;

    for round in 0..3 {
        let mut key_events = client.watch(&published.key, false, 0).await.unwrap();
        let started = Instant::now();
        assert_eq!(client.delete(&published.key).await.unwrap(), 1);
        let mut put_back = None;
        while put_back.is_none() {
            let events = within("key put back", PROMPT, key_events.next())
                .await
                .unwrap();
            put_back = events.into_iter().find_map(|e| match e {
                WatchEvent::Put(kv) => Some(kv),
                WatchEvent::Delete(_) => None,
            });
        }
        eprintln!(
            "round {round}: deleted → put back after {:?}",
            started.elapsed()
        );
        let kv = put_back.unwrap();
        // Same key, same lease: a deletion is not a lost lease.
        assert_eq!(kv.lease, published.lease);
        assert_eq!(registration.current(), Some(published.clone()));
    }
}

#[tokio::test]
async fn a_revoked_lease_is_replaced_and_the_server_republished() {
    let etcd = EtcdServer::start();
    let client = EtcdClient::new([etcd.addr()]).unwrap();
    let mut endpoints = watch_endpoints(client.clone(), "svc");
    let registration = Registration::builder(client.clone(), "svc")
        .ttl(Duration::from_secs(5))
        .start(listening())
        .await
        .unwrap();
    let first = within("publish", PROMPT, registration.published()).await;

    let mut puts = client.watch("svc/", true, 0).await.unwrap();
    let started = Instant::now();
    client.revoke(first.lease).await.unwrap();
    let mut republished = None;
    while republished.is_none() {
        let events = within("re-published", PROMPT, puts.next()).await.unwrap();
        republished = events.into_iter().find_map(|e| match e {
            WatchEvent::Put(kv) if kv.lease != first.lease => Some(kv),
            _ => None,
        });
    }
    eprintln!("revoked → re-published after {:?}", started.elapsed());
    let kv = republished.unwrap();
    let second = eventually("registration reports the new lease", PROMPT, || async {
        registration.current().filter(|p| p.lease != first.lease)
    })
    .await;
    assert_eq!(kv.lease, second.lease);
    assert_eq!(second.key, format!("svc/{}", second.lease));
    assert_eq!(client.get(&first.key).await.unwrap(), None);
    endpoints_until("endpoint back", PROMPT, &mut endpoints, |s| {
        s == [registration.endpoint().clone()]
    })
    .await;
}

#[tokio::test]
async fn a_fixed_id_keeps_its_key_across_a_lost_lease() {
    let etcd = EtcdServer::start();
    let client = EtcdClient::new([etcd.addr()]).unwrap();
    let registration = Registration::builder(client.clone(), "svc/")
        .id("node-1")
        .advertise("svc-1.internal:8080")
        .start(listening())
        .await
        .unwrap();
    let first = within("publish", PROMPT, registration.published()).await;
    assert_eq!(first.key, "svc/node-1");
    client.revoke(first.lease).await.unwrap();
    let kv = eventually("re-published", PROMPT, || async {
        client
            .get("svc/node-1")
            .await
            .unwrap()
            .filter(|kv| kv.lease != first.lease)
    })
    .await;
    assert!(
        String::from_utf8(kv.value)
            .unwrap()
            .contains(r#""Addr":"svc-1.internal:8080""#)
    );
}

#[tokio::test]
async fn discovery_reads_go_zero_bare_values_and_skips_garbage() {
    let etcd = EtcdServer::start();
    let client = EtcdClient::new([etcd.addr()]).unwrap();
    client.put("mixed/1", "10.0.0.1:8080", None).await.unwrap();
    client
        .put(
            "mixed/2",
            r#"{"Op":0,"Addr":"10.0.0.2:8080","Metadata":{"version":"v1"}}"#,
            None,
        )
        .await
        .unwrap();
    client.put("mixed/3", "not an address", None).await.unwrap();
    // Outside the prefix: not an endpoint of "mixed".
    client
        .put("mixedup/1", "10.0.0.9:8080", None)
        .await
        .unwrap();

    let mut endpoints = watch_endpoints(client.clone(), "mixed");
    let set = endpoints_until("listed", PROMPT, &mut endpoints, |s| s.len() == 2).await;
    assert_eq!(addrs(&set), ["10.0.0.1:8080", "10.0.0.2:8080"]);
    assert!(set[0].metadata.is_empty());
    assert_eq!(set[1].metadata["version"], "v1");

    // Watched updates: a new bare value, a deletion, the same address under a second key.
    client.put("mixed/4", "10.0.0.4:8080", None).await.unwrap();
    client.delete("mixed/1").await.unwrap();
    client.put("mixed/5", "10.0.0.2:8080", None).await.unwrap();
    let set = endpoints_until("watched", PROMPT, &mut endpoints, |s| {
        addrs(s) == ["10.0.0.2:8080", "10.0.0.4:8080"] && s[0].metadata.is_empty()
    })
    .await;
    assert_eq!(set.len(), 2);
    // Dropping the last receiver stops the watcher task (nothing to assert but no hang).
    drop(endpoints);
}

#[tokio::test]
async fn etcd_restart_keeps_the_last_set_then_registration_returns() {
    let mut etcd = EtcdServer::start();
    let client = EtcdClient::new([etcd.addr()]).unwrap();
    let mut endpoints = watch_endpoints(client.clone(), "svc");
    let registration = Registration::builder(client.clone(), "svc")
        .ttl(Duration::from_secs(2))
        .start(listening())
        .await
        .unwrap();
    let before = within("publish", PROMPT, registration.published()).await;
    let expected = vec![registration.endpoint().clone()];
    endpoints_until("discovered", PROMPT, &mut endpoints, |s| s == expected).await;

    etcd.stop();
    // With etcd gone, the lease cannot be renewed: after its TTL the registration gives it up.
    let started = Instant::now();
    eventually("lease given up", PROMPT, || async {
        registration.current().is_none().then_some(())
    })
    .await;
    eprintln!("etcd down → lease given up after {:?}", started.elapsed());
    // Meanwhile discovery still serves the last known set.
    assert_eq!(*endpoints.borrow(), expected);

    let started = Instant::now();
    etcd.restart();
    eprintln!(
        "etcd restart (process start to healthy): {:?}",
        started.elapsed()
    );
    let after = within(
        "re-published",
        Duration::from_secs(20),
        registration.published(),
    )
    .await;
    let kv = eventually("key in etcd", PROMPT, || async {
        client.get(&after.key).await.ok().flatten()
    })
    .await;
    eprintln!(
        "etcd restart begun → re-published after {:?}",
        started.elapsed()
    );
    assert_eq!(kv.lease, after.lease);
    assert_ne!(after.lease, before.lease);
    // The lease given up on is revoked once etcd is back, so no duplicate key lingers.
    eventually("old key gone", PROMPT, || async {
        client
            .get(&before.key)
            .await
            .ok()
            .and_then(|kv| kv.is_none().then_some(()))
    })
    .await;
    assert_eq!(*endpoints.borrow(), expected);

    // The watcher follows changes again.
    client.put("svc/other", "10.9.9.9:1", None).await.unwrap();
    endpoints_until("update after restart", PROMPT, &mut endpoints, |s| {
        s.len() == 2
    })
    .await;
}

#[tokio::test]
async fn discovery_keeps_its_set_while_cut_off_and_relists_after_compaction() {
    let etcd = EtcdServer::start();
    let direct = EtcdClient::new([etcd.addr()]).unwrap();
    let gate = Gate::start(etcd.addr().parse().unwrap()).await;
    let through_gate = EtcdClient::new([gate.addr()]).unwrap();
    let mut endpoints = watch_endpoints(through_gate, "cmp");
    direct.put("cmp/1", "10.0.0.1:1", None).await.unwrap();
    endpoints_until("first set", PROMPT, &mut endpoints, |s| {
        addrs(s) == ["10.0.0.1:1"]
    })
    .await;

    // Cut off, the watcher misses a replacement and the history it would resume from is
    // compacted away.
    gate.close();
    direct.put("cmp/2", "10.0.0.2:2", None).await.unwrap();
    direct.delete("cmp/1").await.unwrap();
    let latest = direct.put("unrelated", "x", None).await.unwrap();
    etcd.compact(latest);
    // Resuming from the compacted revision fails the way the watcher relies on: etcd creates
    // the watch, then cancels it with the compaction revision.
    let mut stale = direct.watch("cmp/", true, 2).await.unwrap();
    let compacted = within("compaction notice", PROMPT, stale.next()).await;
    assert!(
        matches!(compacted, Err(EtcdError::Compacted { compact_revision }) if compact_revision == latest),
        "{compacted:?}"
    );
    assert_eq!(
        addrs(&endpoints.borrow()),
        ["10.0.0.1:1"],
        "last set kept while cut off"
    );

    gate.open();
    endpoints_until("relisted after compaction", PROMPT, &mut endpoints, |s| {
        addrs(s) == ["10.0.0.2:2"]
    })
    .await;
    // And it watches again from the listing on.
    direct.put("cmp/3", "10.0.0.3:3", None).await.unwrap();
    endpoints_until("watching again", PROMPT, &mut endpoints, |s| s.len() == 2).await;
}

#[tokio::test]
async fn server_and_client_start_while_etcd_is_down() {
    let mut etcd = EtcdServer::start();
    etcd.stop();
    let client = EtcdClient::new([etcd.addr()]).unwrap();
    let mut endpoints = watch_endpoints(client.clone(), "late");
    let registration = within(
        "start with etcd down",
        PROMPT,
        Registration::builder(client.clone(), "late").start(listening()),
    )
    .await
    .unwrap();
    assert_eq!(registration.current(), None);
    assert!(endpoints.borrow().is_empty());

    etcd.restart();
    let started = Instant::now();
    let published = within(
        "published once etcd is up",
        PROMPT,
        registration.published(),
    )
    .await;
    eprintln!("etcd up → published after {:?}", started.elapsed());
    assert!(client.get(&published.key).await.unwrap().is_some());
    endpoints_until("discovered once etcd is up", PROMPT, &mut endpoints, |s| {
        s == [registration.endpoint().clone()]
    })
    .await;
}

/// go-zero's #1926/#4201: a partition outlasts the lease, etcd expires it (deleting the key),
/// and the server must come back once the partition heals.
#[tokio::test]
async fn a_lease_expired_during_a_partition_is_replaced_when_it_heals() {
    let etcd = EtcdServer::start();
    let direct = EtcdClient::new([etcd.addr()]).unwrap();
    let gate = Gate::start(etcd.addr().parse().unwrap()).await;
    let registration = Registration::builder(EtcdClient::new([gate.addr()]).unwrap(), "part")
        .ttl(Duration::from_secs(2))
        .start(listening())
        .await
        .unwrap();
    let before = within("publish", PROMPT, registration.published()).await;
    let mut events = direct.watch("part/", true, 0).await.unwrap();

    gate.close();
    let started = Instant::now();
    let mut expired = false;
    while !expired {
        let batch = within("lease expiry", PROMPT, events.next()).await.unwrap();
        expired = batch
            .iter()
            .any(|e| matches!(e, WatchEvent::Delete(kv) if kv.key == before.key.as_bytes()));
    }
    eprintln!(
        "partition → etcd expired the lease after {:?}",
        started.elapsed()
    );
    eventually("registration gives the lease up", PROMPT, || async {
        registration.current().is_none().then_some(())
    })
    .await;

    gate.open();
    let started = Instant::now();
    let mut back = None;
    while back.is_none() {
        let batch = within("re-published", PROMPT, events.next()).await.unwrap();
        back = batch.into_iter().find_map(|e| match e {
            WatchEvent::Put(kv) => Some(kv),
            WatchEvent::Delete(_) => None,
        });
    }
    eprintln!(
        "partition healed → re-published after {:?}",
        started.elapsed()
    );
    let back = back.unwrap();
    assert_ne!(back.lease, before.lease);
    let after = within("registration reports it", PROMPT, registration.published()).await;
    assert_eq!(after.lease, back.lease);
}

/// Three members; the client prefers the first. Killing it moves every request, the lease's
/// keep-alive and the watch to the others, without losing the lease.
#[tokio::test]
async fn survives_losing_the_member_it_talks_to() {
    let mut members = EtcdServer::cluster(3);
    let addrs_list: Vec<String> = members.iter().map(EtcdServer::addr).collect();
    let client = EtcdClient::new(&addrs_list).unwrap();
    let others = EtcdClient::new(&addrs_list[1..]).unwrap();
    // Long enough that a leader election (when the killed member led) fits in the margin
    // between renewals (every third of it) and the registration giving the lease up.
    let ttl = Duration::from_secs(5);
    let registration = Registration::builder(client.clone(), "ha")
        .ttl(ttl)
        .start(listening())
        .await
        .unwrap();
    let published = within("publish", PROMPT, registration.published()).await;
    let mut endpoints = watch_endpoints(client.clone(), "ha");
    let expected = vec![registration.endpoint().clone()];
    endpoints_until("discovered", PROMPT, &mut endpoints, |s| s == expected).await;

    members[0].stop();
    let killed = Instant::now();
    // The watch follows a change made on the remaining members.
    others.put("ha/other", "10.0.0.8:8", None).await.unwrap();
    endpoints_until("watch failed over", PROMPT, &mut endpoints, |s| {
        s.len() == 2
    })
    .await;
    eprintln!(
        "member killed → watch moved and saw a change after {:?}",
        killed.elapsed()
    );
    // The lease stays renewed through the other members: past its time to live the key
    // stays, on the same lease, and the registration never gave the lease up (without
    // renewals it would have by `ttl` after the kill).
    while killed.elapsed() < ttl + Duration::from_secs(2) {
        let kv = within("read", PROMPT, others.get(&published.key))
            .await
            .unwrap();
        assert_eq!(
            kv.map(|kv| kv.lease),
            Some(published.lease),
            "key lost {:?} after the member died",
            killed.elapsed()
        );
        assert_eq!(registration.current(), Some(published.clone()));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And the client as a whole keeps working.
    client.put("ha/after", "10.0.0.9:9", None).await.unwrap();
    endpoints_until("after", PROMPT, &mut endpoints, |s| s.len() == 3).await;
}

/// An echo server that names itself in the `x-server` response header.
async fn named_server(name: &'static str) -> (SocketAddr, ServerHandle) {
    let builder = rzero::Server::builder()
        .interceptor(echo::names_itself(name))
        .add_service(echo::echo_server());
    echo::spawn_builder(builder).await
}

/// Which server answered a call, or why none did.
async fn who(client: &EchoClient) -> Result<String, rzero::Status> {
    let request = rzero::Request::new(EchoRequest {
        message: "hi".into(),
        ..Default::default()
    });
    let reply = within("call", PROMPT, client.unary(request)).await?;
    Ok(reply
        .metadata()
        .get("x-server")
        .expect("x-server header")
        .to_str()
        .unwrap()
        .to_owned())
}

/// Polls until `n` calls in a row are answered by exactly the servers in `names`.
async fn answered_by(what: &str, client: &EchoClient, names: &[&str], n: usize) {
    eventually(what, PROMPT, || async {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..n {
            seen.insert(who(client).await.ok()?);
        }
        (seen.iter().map(String::as_str).collect::<Vec<_>>() == names).then_some(())
    })
    .await;
}

/// Registration and lookup end to end: servers register with metadata, clients find them
/// through an `etcd://` target (all of them, or only `version=v2`), and a server that
/// deregisters stops getting calls.
#[tokio::test]
async fn clients_find_registered_servers_through_an_etcd_target() {
    let etcd = EtcdServer::start();
    let client = EtcdClient::new([etcd.addr()]).unwrap();
    let (addr_a, server_a) = named_server("a").await;
    let (addr_b, server_b) = named_server("b").await;
    let a = Registration::builder(client.clone(), "echo.rpc")
        .version("v1")
        .start(addr_a)
        .await
        .unwrap();
    let b = Registration::builder(client.clone(), "echo.rpc")
        .version("v2")
        .start(addr_b)
        .await
        .unwrap();
    within("a published", PROMPT, a.published()).await;
    within("b published", PROMPT, b.published()).await;

    let target = format!("etcd://{}/echo.rpc", etcd.addr());
    let everyone = EchoClient::new(
        rzero::Client::builder(&target)
            .balancer(rzero::balance::Policy::RoundRobin)
            .build()
            .unwrap(),
    );
    let canary = EchoClient::new(
        rzero::Client::builder(&target)
            .select("version", "v2")
            .build()
            .unwrap(),
    );
    answered_by("both servers", &everyone, &["a", "b"], 10).await;
    answered_by("only v2", &canary, &["b"], 10).await;

    // Deregistering first (as a shutting-down server does) moves callers off it.
    b.stop().await;
    answered_by("only a after b left", &everyone, &["a"], 10).await;
    assert!(
        who(&canary).await.is_err(),
        "no v2 server is registered any more"
    );

    a.stop().await;
    server_a.shutdown().await.unwrap();
    server_b.shutdown().await.unwrap();
}

/// A loopback port that accepts connections and never answers: a member that hangs instead
/// of refusing.
async fn black_hole() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (addr, task)
}

#[tokio::test]
async fn a_hanging_member_costs_one_timeout_not_one_per_request() {
    let etcd = EtcdServer::start();
    let (hung, hole) = black_hole().await;
    let client = EtcdClient::new([hung.as_str(), &etcd.addr()]).unwrap();
    let started = Instant::now();
    within("first put", PROMPT, client.put("hang/k", "v", None))
        .await
        .unwrap();
    eprintln!(
        "first request, past a hanging member: {:?}",
        started.elapsed()
    );
    // Later requests start on the member that answered: five reads take far less than the
    // one 3 s timeout any of them would cost on the hanging member.
    let started = Instant::now();
    for _ in 0..5 {
        client.get("hang/k").await.unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let registration = Registration::builder(client.clone(), "hang")
        .start(listening())
        .await
        .unwrap();
    within("publish", PROMPT, registration.published()).await;
    hole.abort();
}
