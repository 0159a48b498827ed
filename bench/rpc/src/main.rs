//! `rpcbench`: the processes `bench/rpc.sh` starts (see `bench/README.md`).
//!
//! ```text
//! rpcbench server        --impl rzero|tonic|rzero-gateway|rzero-grpc-web|tonic-web [--interceptor]
//! rpcbench gateway-proxy --upstream HOST:PORT [--grpc-web]
//! rpcbench backends      --delays-us 1000,1000,10000
//! rpcbench load     --client rzero|tonic --addr HOST:PORT [--interceptor]
//!                   [--conns M] [--concurrency N] [--warmup S] [--duration S]
//! rpcbench load     --client http1|h2c --addr HOST:PORT [--method GET|POST] [--path P]
//!                   [--conns M] [--concurrency N] [--warmup S] [--duration S]
//! rpcbench balance  --target static:///A,B,C --policy p2c_ewma|round_robin
//!                   [--concurrency N] [--warmup S] [--duration S]
//! ```
//!
//! Servers bind `127.0.0.1:0`, print `PORTS p1[,p2,...]` on stdout and serve until SIGTERM or
//! SIGINT. `load` and `balance` print one `key=value` result line on stdout.
//!
//! `--impl rzero-grpc-web` serves gRPC and gRPC-Web (`ServerBuilder::grpc_web`) on one port;
//! `--impl tonic-web` the same with a plain tonic server and tonic-web's `GrpcWebLayer`, as
//! tonic-web's docs set it up (`accept_http1`, no CORS layer).
//!
//! `--impl rzero-gateway` serves gRPC and the REST gateway (`GREETER_HTTP_RULES`, in-process)
//! on one port; `gateway-proxy` serves only the gateway, forwarding over gRPC through an
//! `rzero::Client` to `--upstream` (and, with `--grpc-web`, gRPC-Web calls too, untranslated:
//! `GatewayService::grpc_web`). The REST load sends the same request as the gRPC load:
//! `GET --path` (default `/v1/greeter/world`), or `POST --path` (default `/v1/greeter`) with
//! the body `{"name":"world"}`; anything but a 200 with `{"message":"Hello world!"}` is an
//! error. `http1` gives each task its own keep-alive connection (`--conns` is ignored); `h2c`
//! spreads the tasks over `--conns` connections, like the gRPC load.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

mod tonic_greeter;

#[allow(clippy::all)]
pub mod pb {
    rzero::include_proto!("greeter.v1");
}

use pb::{HelloReply, HelloRequest};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Parsed `--key value` / `--flag` arguments.
struct Args(BTreeMap<String, String>);

impl Args {
    fn parse(args: impl Iterator<Item = String>) -> Result<Self, BoxError> {
        let mut map = BTreeMap::new();
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            let key = arg
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument `{arg}`"))?
                .to_owned();
            let value = match args.peek() {
                Some(next) if !next.starts_with("--") => args.next().unwrap_or_default(),
                _ => String::new(),
            };
            map.insert(key, value);
        }
        Ok(Self(map))
    }

    fn str(&self, key: &str) -> Result<&str, BoxError> {
        self.0
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| format!("--{key} is required").into())
    }

    fn num<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, BoxError> {
        match self.0.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{key}: bad number `{v}`").into()),
        }
    }

    fn flag(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1);
    let command = argv.next().unwrap_or_default();
    let result = match Args::parse(argv) {
        Err(e) => Err(e),
        Ok(args) => match command.as_str() {
            "server" => server(&args).await,
            "gateway-proxy" => gateway_proxy(&args).await,
            "backends" => backends(&args).await,
            "load" => load(&args).await,
            "balance" => balance(&args).await,
            _ => {
                Err("usage: rpcbench server|gateway-proxy|backends|load|balance [--options]".into())
            }
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rpcbench {command}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A trivial pass-through interceptor: what "one more interceptor in the chain" costs.
fn pass_through() -> impl rzero::Interceptor {
    rzero::interceptor::from_fn(|call, next: rzero::interceptor::Next| async move {
        next.run(call).await
    })
}

// --- servers -------------------------------------------------------------------------------

/// The same handler on both sides.
fn greet(request: HelloRequest) -> HelloReply {
    HelloReply {
        message: format!("Hello {}!", request.name),
    }
}

struct RzeroGreeter {
    /// Backend name (the reply, for `balance` to count who answered) and service time.
    backend: Option<(String, Duration)>,
}

#[rzero::async_trait]
impl pb::greeter_server::Greeter for RzeroGreeter {
    async fn say_hello(
        &self,
        request: rzero::Request<HelloRequest>,
    ) -> Result<rzero::Response<HelloReply>, rzero::Status> {
        match &self.backend {
            None => Ok(rzero::Response::new(greet(request.into_inner()))),
            Some((name, delay)) => {
                // A thread's sleep, not tokio's: tokio's timer rounds up to whole
                // milliseconds and fires late under load, so a "1 ms" backend took 2.5–4 ms and
                // the "ten times slower" one only about 4 times as long.
                let delay = *delay;
                tokio::task::spawn_blocking(move || std::thread::sleep(delay))
                    .await
                    .map_err(|e| rzero::Status::internal(e.to_string()))?;
                Ok(rzero::Response::new(HelloReply {
                    message: name.clone(),
                }))
            }
        }
    }

    async fn say_hello_stream(
        &self,
        _request: rzero::Request<HelloRequest>,
    ) -> Result<rzero::Response<rzero::BoxStream<HelloReply>>, rzero::Status> {
        Err(rzero::Status::unimplemented("not benchmarked"))
    }
}

struct TonicGreeter;

#[tonic::async_trait]
impl tonic_greeter::Greeter for TonicGreeter {
    async fn say_hello(
        &self,
        request: tonic::Request<HelloRequest>,
    ) -> Result<tonic::Response<HelloReply>, tonic::Status> {
        Ok(tonic::Response::new(greet(request.into_inner())))
    }
}

fn rzero_server(greeter: RzeroGreeter, interceptor: bool) -> rzero::ServerBuilder {
    let builder =
        rzero::Server::builder().add_service(pb::greeter_server::GreeterServer::new(greeter));
    if interceptor {
        builder.interceptor(pass_through())
    } else {
        builder
    }
}

fn print_ports(ports: &[u16]) {
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    println!("PORTS {}", ports.join(","));
}

async fn server(args: &Args) -> Result<(), BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    print_ports(&[listener.local_addr()?.port()]);
    let interceptor = args.flag("interceptor");
    match args.str("impl")? {
        "rzero" => {
            rzero_server(RzeroGreeter { backend: None }, interceptor)
                .serve_with_listener(listener, rzero::server::shutdown_signal())
                .await?
        }
        "rzero-gateway" => {
            rzero_server(RzeroGreeter { backend: None }, interceptor)
                .gateway(greeter_gateway()?)
                .serve_with_listener(listener, rzero::server::shutdown_signal())
                .await?
        }
        "rzero-grpc-web" => {
            rzero_server(RzeroGreeter { backend: None }, interceptor)
                .grpc_web(rzero::server::GrpcWeb::new())
                .serve_with_listener(listener, rzero::server::shutdown_signal())
                .await?
        }
        "tonic-web" => {
            if interceptor {
                return Err("--interceptor is for --impl rzero".into());
            }
            let incoming =
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            tonic::transport::Server::builder()
                .accept_http1(true)
                .layer(tonic_web::GrpcWebLayer::new())
                .add_service(tonic_greeter::GreeterServer::new(TonicGreeter))
                .serve_with_incoming_shutdown(incoming, rzero::server::shutdown_signal())
                .await?
        }
        "tonic" => {
            if interceptor {
                return Err("--interceptor is for --impl rzero".into());
            }
            let incoming =
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            tonic::transport::Server::builder()
                .add_service(tonic_greeter::GreeterServer::new(TonicGreeter))
                .serve_with_incoming_shutdown(incoming, rzero::server::shutdown_signal())
                .await?
        }
        other => return Err(format!("--impl: unknown `{other}`").into()),
    }
    Ok(())
}

/// The REST gateway for the greeter's generated `google.api.http` rules.
fn greeter_gateway() -> Result<rzero::gateway::Gateway, BoxError> {
    Ok(rzero::gateway::Gateway::builder()
        .service(&pb::GREETER_HTTP_RULES)
        .build()?)
}

/// The gateway alone, forwarding every call over gRPC to `--upstream` (a plain rzero server).
async fn gateway_proxy(args: &Args) -> Result<(), BoxError> {
    let client = rzero::Client::connect(args.str("upstream")?).await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    print_ports(&[listener.local_addr()?.port()]);
    let mut service = greeter_gateway()?.proxy(&client);
    if args.flag("grpc-web") {
        service = service.grpc_web(rzero::server::GrpcWeb::new())?;
    }
    rzero::gateway::serve(listener, service, rzero::server::shutdown_signal()).await?;
    Ok(())
}

/// Several rzero greeters in one process; backend `bI` sleeps the I-th delay per call.
async fn backends(args: &Args) -> Result<(), BoxError> {
    let delays: Vec<u64> = args
        .str("delays-us")?
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let mut ports = Vec::new();
    let mut servers = Vec::new();
    for (i, delay) in delays.into_iter().enumerate() {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        ports.push(listener.local_addr()?.port());
        let greeter = RzeroGreeter {
            backend: Some((format!("b{i}"), Duration::from_micros(delay))),
        };
        servers.push(tokio::spawn(
            rzero_server(greeter, false)
                .serve_with_listener(listener, rzero::server::shutdown_signal()),
        ));
    }
    print_ports(&ports);
    for server in servers {
        server.await??;
    }
    Ok(())
}

// --- load ----------------------------------------------------------------------------------

enum Caller {
    Rzero(pb::greeter_client::GreeterClient),
    Tonic(tonic_greeter::GreeterClient<tonic::transport::Channel>),
    Rest(Rest),
}

impl Caller {
    async fn call(&mut self) -> Result<HelloReply, tonic::Status> {
        let request = HelloRequest {
            name: "world".into(),
            repeat: 0,
        };
        let reply = match self {
            Self::Rzero(client) => client.say_hello(request).await?,
            Self::Tonic(client) => client.say_hello(request).await?,
            Self::Rest(rest) => return rest.call().await.map_err(tonic::Status::unknown),
        };
        Ok(reply.into_inner())
    }
}

/// The REST reply to `name: "world"`, byte for byte (the gateway's default JSON options).
const REST_REPLY: &[u8] = br#"{"message":"Hello world!"}"#;
const REST_BODY: &str = r#"{"name":"world"}"#;

/// One task's REST caller: a hyper connection (HTTP/1.1 of its own, or a shared h2c one) and
/// the request to repeat.
struct Rest {
    sender: RestSender,
    uri: hyper::Uri,
    host: hyper::header::HeaderValue,
    post: bool,
}

enum RestSender {
    Http1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2c(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl RestSender {
    async fn connect(addr: &str, h2c: bool) -> Result<Self, BoxError> {
        let io = TokioIo::new(TcpStream::connect(addr).await?);
        io.inner().set_nodelay(true)?;
        Ok(if h2c {
            let (sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(conn);
            Self::H2c(sender)
        } else {
            let (sender, conn) = hyper::client::conn::http1::handshake(io).await?;
            tokio::spawn(conn);
            Self::Http1(sender)
        })
    }
}

impl Rest {
    async fn call(&mut self) -> Result<HelloReply, String> {
        let mut request = hyper::Request::builder().uri(self.uri.clone());
        let body = if self.post {
            request = request
                .method(hyper::Method::POST)
                .header(hyper::header::CONTENT_TYPE, "application/json");
            Full::new(Bytes::from_static(REST_BODY.as_bytes()))
        } else {
            Full::new(Bytes::new())
        };
        let response = match &mut self.sender {
            RestSender::Http1(sender) => {
                let request = request
                    .header(hyper::header::HOST, self.host.clone())
                    .body(body)
                    .map_err(|e| e.to_string())?;
                sender.ready().await.map_err(|e| e.to_string())?;
                sender.send_request(request).await
            }
            RestSender::H2c(sender) => {
                let request = request.body(body).map_err(|e| e.to_string())?;
                sender.ready().await.map_err(|e| e.to_string())?;
                sender.send_request(request).await
            }
        }
        .map_err(|e| e.to_string())?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if status != hyper::StatusCode::OK || bytes != REST_REPLY {
            return Err(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
            ));
        }
        Ok(HelloReply {
            message: "Hello world!".into(),
        })
    }
}

/// `concurrency` REST callers: HTTP/1.1 one connection each, h2c over `conns` connections.
async fn rest_callers(
    args: &Args,
    h2c: bool,
    conns: usize,
    concurrency: usize,
) -> Result<Vec<Caller>, BoxError> {
    let addr = args.str("addr")?;
    let post = match args.0.get("method").map(String::as_str) {
        None | Some("GET") => false,
        Some("POST") => true,
        Some(other) => return Err(format!("--method: GET or POST, not `{other}`").into()),
    };
    let path = match args.0.get("path") {
        Some(path) => path.as_str(),
        None if post => "/v1/greeter",
        None => "/v1/greeter/world",
    };
    // HTTP/1.1 writes the request target as given (origin form) plus `Host`; h2c needs the
    // scheme and authority for its pseudo-headers.
    let uri: hyper::Uri = if h2c {
        format!("http://{addr}{path}").parse()?
    } else {
        path.parse()?
    };
    let host = hyper::header::HeaderValue::from_str(addr)?;
    let mut senders = Vec::new();
    for i in 0..concurrency {
        // h2c: task i shares connection i % conns (`SendRequest` clones multiplex).
        let sender = match senders.get(i % conns.max(1)) {
            Some(RestSender::H2c(shared)) if h2c => RestSender::H2c(shared.clone()),
            _ => RestSender::connect(addr, h2c).await?,
        };
        senders.push(sender);
    }
    Ok(senders
        .into_iter()
        .map(|sender| {
            Caller::Rest(Rest {
                sender,
                uri: uri.clone(),
                host: host.clone(),
                post,
            })
        })
        .collect())
}

/// What one task saw in the measured window.
#[derive(Default)]
struct Samples {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
    /// Calls and summed latency per answering backend (`balance` only).
    per_backend: BTreeMap<String, (u64, u64)>,
}

/// `concurrency` tasks, each calling in a loop with its own `Caller`, for `warmup` then
/// `duration`; only calls started in the second window count.
async fn drive(
    callers: Vec<Caller>,
    warmup: Duration,
    duration: Duration,
    by_backend: bool,
) -> Result<Samples, BoxError> {
    let measure_from = Instant::now() + warmup;
    let end = measure_from + duration;
    let mut tasks = Vec::new();
    for mut caller in callers {
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::default();
            loop {
                let start = Instant::now();
                if start >= end {
                    break;
                }
                let result = caller.call().await;
                if start < measure_from {
                    continue;
                }
                let micros = start.elapsed().as_micros() as u64;
                match result {
                    Ok(reply) => {
                        samples
                            .latencies_us
                            .push(micros.min(u64::from(u32::MAX)) as u32);
                        if by_backend {
                            let entry = samples.per_backend.entry(reply.message).or_default();
                            entry.0 += 1;
                            entry.1 += micros;
                        }
                    }
                    Err(status) => {
                        samples.errors += 1;
                        samples
                            .first_error
                            .get_or_insert_with(|| status.to_string());
                    }
                }
            }
            samples
        }));
    }
    let mut all = Samples::default();
    for task in tasks {
        let samples = task.await?;
        all.latencies_us.extend(samples.latencies_us);
        all.errors += samples.errors;
        if all.first_error.is_none() {
            all.first_error = samples.first_error;
        }
        for (backend, (calls, sum)) in samples.per_backend {
            let entry = all.per_backend.entry(backend).or_default();
            entry.0 += calls;
            entry.1 += sum;
        }
    }
    all.latencies_us.sort_unstable();
    Ok(all)
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(samples: &Samples, duration: Duration) -> String {
    let lat = &samples.latencies_us;
    let mut line = format!(
        "calls={} rate={:.0} p50_us={} p90_us={} p99_us={} max_us={} errors={}",
        lat.len(),
        lat.len() as f64 / duration.as_secs_f64(),
        percentile(lat, 50.0),
        percentile(lat, 90.0),
        percentile(lat, 99.0),
        lat.last().copied().unwrap_or(0),
        samples.errors,
    );
    if let Some(error) = &samples.first_error {
        line.push_str(&format!(" first_error={error:?}"));
    }
    line
}

fn windows(args: &Args) -> Result<(Duration, Duration), BoxError> {
    Ok((
        Duration::from_secs_f64(args.num("warmup", 2.0)?),
        Duration::from_secs_f64(args.num("duration", 10.0)?),
    ))
}

async fn load(args: &Args) -> Result<(), BoxError> {
    let addr = args.str("addr")?;
    let conns: usize = args.num("conns", 1)?;
    let concurrency: usize = args.num("concurrency", 16)?;
    let (warmup, duration) = windows(args)?;
    let kind = args.str("client")?;
    if let "http1" | "h2c" = kind {
        let callers = rest_callers(args, kind == "h2c", conns, concurrency).await?;
        return report(drive(callers, warmup, duration, false).await?, duration);
    }
    // M connections (one client each), N tasks spread over them round-robin.
    let mut clients = Vec::new();
    for _ in 0..conns.max(1) {
        clients.push(match kind {
            "rzero" => {
                let mut client = rzero::Client::connect(addr).await?;
                if args.flag("interceptor") {
                    client = client.interceptor(pass_through());
                }
                Caller::Rzero(pb::greeter_client::GreeterClient::new(client))
            }
            "tonic" => {
                if args.flag("interceptor") {
                    return Err("--interceptor is for --client rzero".into());
                }
                Caller::Tonic(
                    tonic_greeter::GreeterClient::connect(format!("http://{addr}")).await?,
                )
            }
            other => return Err(format!("--client: unknown `{other}`").into()),
        });
    }
    let callers = (0..concurrency)
        .map(|i| match &clients[i % clients.len()] {
            Caller::Rzero(c) => Caller::Rzero(c.clone()),
            Caller::Tonic(c) => Caller::Tonic(c.clone()),
            Caller::Rest(_) => unreachable!("REST callers are made by rest_callers"),
        })
        .collect();
    report(drive(callers, warmup, duration, false).await?, duration)
}

fn report(samples: Samples, duration: Duration) -> Result<(), BoxError> {
    println!("{}", summary(&samples, duration));
    if samples.latencies_us.is_empty() {
        return Err("no successful call".into());
    }
    Ok(())
}

async fn balance(args: &Args) -> Result<(), BoxError> {
    let target = args.str("target")?;
    let policy: rzero::balance::Policy = args.str("policy")?.parse()?;
    let concurrency: usize = args.num("concurrency", 8)?;
    let (warmup, duration) = windows(args)?;
    // One client for all tasks (rzero clients are `&self` and share connections).
    let client = pb::greeter_client::GreeterClient::new(
        rzero::Client::builder(target).balancer(policy).build()?,
    );
    let callers = (0..concurrency)
        .map(|_| Caller::Rzero(client.clone()))
        .collect();
    let samples = drive(callers, warmup, duration, true).await?;
    let mut line = summary(&samples, duration);
    for (backend, (calls, sum)) in &samples.per_backend {
        line.push_str(&format!(
            " {backend}_calls={calls} {backend}_mean_us={}",
            sum / (*calls).max(1)
        ));
    }
    println!("{line}");
    Ok(())
}
