//! An echo server that registers itself in etcd: `scripts/etcd-demo` starts three.
//!
//! `echo_server --listen 127.0.0.1:0 --etcd 127.0.0.1:2379 --key echo.rpc --name a
//! [--version v1]`. It names itself in the `x-server` response header, serves until SIGINT
//! or SIGTERM, and then deregisters before it stops.

use rzero::discovery::etcd::{EtcdClient, Registration};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.windows(2)
        .find(|pair| pair[0] == name)
        .map(|pair| pair[1].clone())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let listen = arg(&args, "--listen").unwrap_or_else(|| "127.0.0.1:0".into());
    let etcd = arg(&args, "--etcd").ok_or("--etcd host:port is required")?;
    let key = arg(&args, "--key").unwrap_or_else(|| "echo.rpc".into());
    let name: &'static str = arg(&args, "--name").unwrap_or_else(|| "echo".into()).leak();
    let version = arg(&args, "--version").unwrap_or_else(|| "v1".into());

    let registration = Registration::builder(EtcdClient::new([etcd])?, key).version(version);
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("{name} listening on {}", listener.local_addr()?);
    rzero::Server::builder()
        .interceptor(rzero_tests::echo::names_itself(name))
        .register(registration)
        .add_service(rzero_tests::echo::echo_server())
        .serve_with_listener(listener, rzero::server::shutdown_signal())
        .await?;
    println!("{name} stopped");
    Ok(())
}
