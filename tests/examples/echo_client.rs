//! Calls the echo service through a balancing client and counts who answered:
//! `echo_client --target etcd://127.0.0.1:2379/echo.rpc [--balancer round_robin]
//! [--calls 30] [--select version=v2]`.

use std::collections::BTreeMap;
use std::time::Duration;

use rzero_tests::default::echo::v1::EchoRequest;
use rzero_tests::default::echo::v1::echo_client::EchoClient;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.windows(2)
        .find(|pair| pair[0] == name)
        .map(|pair| pair[1].clone())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let target = arg(&args, "--target").ok_or("--target is required")?;
    let policy: rzero::balance::Policy = arg(&args, "--balancer")
        .unwrap_or_else(|| "p2c_ewma".into())
        .parse()?;
    let calls: usize = arg(&args, "--calls")
        .unwrap_or_else(|| "30".into())
        .parse()?;
    let mut builder = rzero::Client::builder(&target)
        .balancer(policy)
        .timeout(Duration::from_secs(2));
    if let Some(select) = arg(&args, "--select") {
        let (key, value) = select.split_once('=').ok_or("--select takes key=value")?;
        builder = builder.select(key, value);
    }
    let client = EchoClient::new(builder.build()?);

    // The client starts before it has heard from etcd: wait (bounded) for a first answer.
    let mut answers: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = 0;
    for attempt in 0.. {
        match client.unary(EchoRequest::default()).await {
            Ok(_) => break,
            Err(_) if attempt < 100 => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(status) => return Err(format!("no server answered: {status}").into()),
        }
    }
    for _ in 0..calls {
        match client.unary(EchoRequest::default()).await {
            Ok(response) => {
                let server = response
                    .metadata()
                    .get("x-server")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("?")
                    .to_owned();
                *answers.entry(server).or_default() += 1;
            }
            Err(_) => failures += 1,
        }
    }
    for (server, count) in &answers {
        println!("{server}: {count} calls");
    }
    println!("failed: {failures}");
    Ok(())
}
