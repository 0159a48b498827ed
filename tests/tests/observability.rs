//! Metrics scraped over HTTP by a real client (Python's urllib) after real calls, and tracing
//! spans seen by a subscriber.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rzero::Code;
use rzero::metrics::Metrics;
use rzero::testing::ExpectStatus;
use rzero_tests::default::echo::v1::EchoRequest;
use rzero_tests::default::echo::v1::echo_client::EchoClient;
use rzero_tests::echo;

const LIMIT: Duration = Duration::from_secs(20);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within {LIMIT:?}"))
}

async fn scrape(url: &str) -> String {
    let output = within(
        "python scrape",
        tokio::process::Command::new("python3")
            .args([
                "-c",
                "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())",
                url,
            ])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("run python3");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// `name{labels} value` lines, by `name{labels}`.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[tokio::test]
async fn calls_are_counted_and_timed_on_both_sides() {
    let metrics = Metrics::default();
    let (addr, _server) = echo::spawn_builder(
        rzero::Server::builder()
            .interceptor(metrics.server())
            .add_service(echo::echo_server()),
    )
    .await;
    let client = EchoClient::new(
        within("connect", rzero::Client::connect(&addr.to_string()))
            .await
            .expect("connect")
            .interceptor(metrics.client()),
    );
    for _ in 0..3 {
        within("unary", client.unary(EchoRequest::default()))
            .await
            .expect("unary");
    }
    within(
        "failing unary",
        client.unary(EchoRequest {
            fail_with_code: Code::NotFound as i32,
            ..Default::default()
        }),
    )
    .await
    .expect_status(Code::NotFound);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let metrics_addr = listener.local_addr().expect("address");
    let serving = tokio::spawn(metrics.clone().serve_with_listener(listener));
    let text = scrape(&format!("http://{metrics_addr}/metrics")).await;
    let samples = samples(&text);
    for side in ["server", "client"] {
        let ok = format!(r#"rzero_{side}_handled_total{{method="/echo.v1.Echo/Unary",code="OK"}}"#);
        let not_found = format!(
            r#"rzero_{side}_handled_total{{method="/echo.v1.Echo/Unary",code="NOT_FOUND"}}"#
        );
        let count =
            format!(r#"rzero_{side}_handling_seconds_count{{method="/echo.v1.Echo/Unary"}}"#);
        let inf = format!(
            r#"rzero_{side}_handling_seconds_bucket{{method="/echo.v1.Echo/Unary",le="+Inf"}}"#
        );
        assert_eq!(samples.get(&ok), Some(&3.0), "{ok} in\n{text}");
        assert_eq!(
            samples.get(&not_found),
            Some(&1.0),
            "{not_found} in\n{text}"
        );
        assert_eq!(samples.get(&count), Some(&4.0), "{count} in\n{text}");
        assert_eq!(samples.get(&inf), Some(&4.0), "{inf} in\n{text}");
    }
    assert!(text.contains("# TYPE rzero_server_handling_seconds histogram"));
    // Anything but /metrics is a 404.
    let python = tokio::process::Command::new("python3")
        .args([
            "-c",
            "import sys, urllib.request, urllib.error\ntry:\n    urllib.request.urlopen(sys.argv[1], timeout=10)\nexcept urllib.error.HTTPError as e:\n    print(e.code)",
            &format!("http://{metrics_addr}/other"),
        ])
        .kill_on_drop(true)
        .output();
    let output = within("python 404", python).await.expect("python3");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "404");
    serving.abort();
}

/// A span's name and its fields as text.
type Recorded = (String, BTreeMap<String, String>);

/// A minimal subscriber recording every span.
#[derive(Default, Clone)]
struct Spans(Arc<Mutex<Vec<Recorded>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        );
    }
}

impl tracing::Subscriber for Spans {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut fields = BTreeMap::new();
        span.record(&mut Fields(&mut fields));
        let mut spans = self.0.lock().expect("spans");
        spans.push((span.metadata().name().to_owned(), fields));
        tracing::span::Id::from_u64(spans.len() as u64)
    }

    fn record(&self, span: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut spans = self.0.lock().expect("spans");
        if let Some((_, fields)) = spans.get_mut(span.into_u64() as usize - 1) {
            values.record(&mut Fields(fields));
        }
    }

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn calls_run_in_spans_with_their_status() {
    let spans = Spans::default();
    let _default = tracing::subscriber::set_default(spans.clone());
    // One thread, so the thread-local default subscriber sees the server's spans too.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let server = rzero::testing::InProcessServer::start(
            rzero::Server::builder()
                .interceptor(rzero::interceptor::tracing_server())
                .add_service(echo::echo_server()),
        );
        let client = EchoClient::new(
            server
                .client()
                .interceptor(rzero::interceptor::tracing_client()),
        );
        within("unary", client.unary(EchoRequest::default()))
            .await
            .expect("unary");
        within(
            "failing unary",
            client.unary(EchoRequest {
                fail_with_code: Code::Aborted as i32,
                ..Default::default()
            }),
        )
        .await
        .expect_status(Code::Aborted);
        server.shutdown().await.expect("shutdown");
    });
    let spans = spans.0.lock().expect("spans").clone();
    let rpc: Vec<_> = spans
        .iter()
        .filter(|(name, _)| name.starts_with("rpc."))
        .collect();
    let codes = |kind: &str| -> Vec<String> {
        rpc.iter()
            .filter(|(name, _)| name == kind)
            .map(|(_, fields)| {
                assert_eq!(
                    fields.get("rpc.service").map(String::as_str),
                    Some("echo.v1.Echo")
                );
                assert_eq!(fields.get("rpc.method").map(String::as_str), Some("Unary"));
                fields
                    .get("rpc.grpc.status_code")
                    .cloned()
                    .unwrap_or_default()
            })
            .collect()
    };
    assert_eq!(codes("rpc.server"), ["0", "10"], "{spans:?}");
    assert_eq!(codes("rpc.client"), ["0", "10"], "{spans:?}");
}

/// `GET url` with Python's urllib: the status code and the body (error statuses included).
async fn get(url: &str) -> (u16, String) {
    let output = within(
        "python get",
        tokio::process::Command::new("python3")
            .args([
                "-c",
                "import sys, urllib.request, urllib.error\n\
                 try:\n    r = urllib.request.urlopen(sys.argv[1], timeout=10)\n    code, body = r.status, r.read()\n\
                 except urllib.error.HTTPError as e:\n    code, body = e.code, e.read()\n\
                 sys.stdout.write(str(code) + ' ' + body.decode())",
                url,
            ])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("run python3");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let (code, body) = text.split_once(' ').expect("code and body");
    (code.parse().expect("status code"), body.to_owned())
}

#[tokio::test]
async fn a_dev_server_serves_metrics_and_follows_the_health_reporter() {
    let metrics = Metrics::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let dev = listener.local_addr().expect("address");
    let builder = rzero::Server::builder()
        .metrics(&metrics)
        .dev_server_on(
            listener,
            rzero::server::DevServer::new()
                .metrics("/stats", &metrics)
                .health("/ready", "ready"),
        )
        .add_service(echo::echo_server());
    let health = builder.health_reporter().expect("health is on");
    let (addr, server) = echo::spawn_builder(builder).await;
    let client = EchoClient::new(
        within("connect", rzero::Client::connect(&addr.to_string()))
            .await
            .expect("connect"),
    );
    within("unary", client.unary(EchoRequest::default()))
        .await
        .expect("unary");

    let (code, text) = get(&format!("http://{dev}/stats")).await;
    assert_eq!(code, 200);
    assert_eq!(
        samples(&text).get(r#"rzero_server_handled_total{method="/echo.v1.Echo/Unary",code="OK"}"#),
        Some(&1.0),
        "{text}"
    );
    assert_eq!(text, metrics.render(), "the registry, as rendered");
    assert_eq!(
        get(&format!("http://{dev}/ready")).await,
        (200, "ready".to_owned())
    );
    assert_eq!(get(&format!("http://{dev}/metrics")).await.0, 404);

    // The probe follows the server's overall status, set by hand too.
    health.set_not_serving("");
    assert_eq!(
        get(&format!("http://{dev}/ready")).await,
        (503, "Service Unavailable\n".to_owned())
    );
    health.set_serving("");
    assert_eq!(get(&format!("http://{dev}/ready")).await.0, 200);
    server.shutdown().await.expect("shutdown");
}
