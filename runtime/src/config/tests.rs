//! Loading realistic go-zero files, and every kind of mistake naming its key and position.

use std::time::Duration;

use super::*;

#[cfg(feature = "etcd")]
const SERVER: &str = "\
Name: user.rpc
ListenOn: 0.0.0.0:8080
Etcd:
  Hosts:
    - 127.0.0.1:2379
    - 127.0.0.2:2379
  Key: user.rpc
  ID: 7
  TTL: 5
Timeout: 3000          # ms
CpuThreshold: 800
Health: false
Version: v2
Zone: eu-1
Weight: 10
Metadata: {team: core}
ShutdownDelay: 1500ms
MethodTimeouts:
  - FullMethod: /user.User/Export
    Timeout: 10s
  - {FullMethod: /user.User/Ping, Timeout: 50ms}
Middlewares: {Breaker: false, Prometheus: false}
";

// Uses `Etcd`, which a build without the `etcd` feature refuses.
#[cfg(feature = "etcd")]
#[test]
fn server_file_round_trips() {
    let c = ServerConfig::from_yaml_str(SERVER).unwrap();
    assert_eq!(c.name, "user.rpc");
    assert_eq!(c.listen_on(), "0.0.0.0:8080");
    let etcd = c.etcd.as_ref().unwrap();
    assert_eq!(etcd.hosts, ["127.0.0.1:2379", "127.0.0.2:2379"]);
    assert_eq!(etcd.key, "user.rpc");
    assert_eq!(etcd.id.as_deref(), Some("7"));
    assert_eq!(etcd.ttl, Some(Duration::from_secs(5)));
    assert_eq!(c.timeout, Duration::from_millis(3000));
    assert_eq!(c.cpu_threshold, 800);
    assert!(!c.health);
    assert_eq!(c.version.as_deref(), Some("v2"));
    assert_eq!(c.zone.as_deref(), Some("eu-1"));
    assert_eq!(c.weight, Some(10));
    assert_eq!(
        c.metadata,
        std::collections::BTreeMap::from([("team".to_owned(), "core".to_owned())])
    );
    assert_eq!(c.drain_delay, Duration::from_millis(1500));
    assert_eq!(
        c.method_timeouts,
        [
            MethodTimeout::new("/user.User/Export", Duration::from_secs(10)),
            MethodTimeout::new("/user.User/Ping", Duration::from_millis(50)),
        ]
    );
    assert!(!c.middlewares.breaker && !c.middlewares.prometheus);
    assert!(c.middlewares.trace && c.middlewares.recover && c.middlewares.stat);
}

#[test]
fn server_defaults_are_go_zeros() {
    let c = ServerConfig::from_yaml_str("ListenOn: 127.0.0.1:0\n").unwrap();
    assert_eq!(c, ServerConfig::new("127.0.0.1:0"));
    assert_eq!(c.timeout, Duration::from_millis(2000));
    assert_eq!(c.cpu_threshold, 900);
    assert!(c.health);
    assert_eq!(c.middlewares, ServerMiddlewares::default());
    assert!(c.etcd.is_none());
    assert_eq!(c.drain_delay, Duration::ZERO);
}

// Uses `Etcd`, which a build without the `etcd` feature refuses.
#[cfg(feature = "etcd")]
#[test]
fn client_files_round_trip() {
    let c = ClientConfig::from_yaml_str(
        "Etcd: {Hosts: [10.0.0.1:2379, 10.0.0.2:2379], Key: user.rpc}\n\
         BalancerName: consistent_hash\nSelect: {version: v2, zone: eu-1}\nSubsetSize: 0\n\
         KeepaliveTime: 20s\nTimeout: 1.5s\nNonBlock: false\nHealthCheck: true\n\
         Middlewares: {Breaker: false}\n\
         MethodTimeouts: [{FullMethod: /user.User/Export, Timeout: 1m}]\n",
    )
    .unwrap();
    assert_eq!(
        c.target().unwrap(),
        "etcd://10.0.0.1:2379,10.0.0.2:2379/user.rpc"
    );
    assert_eq!(c.balancer, crate::balance::Policy::ConsistentHash);
    assert_eq!(c.select.len(), 2);
    assert_eq!(c.subset_size, 0);
    assert_eq!(c.keepalive_time, Some(Duration::from_secs(20)));
    assert_eq!(c.timeout, Duration::from_millis(1500));
    assert!(!c.non_block);
    assert!(c.health_check);
    assert!(!c.middlewares.breaker && c.middlewares.timeout);
    assert_eq!(c.method_timeouts[0].timeout, Duration::from_secs(60));

    let c = ClientConfig::from_yaml_str("Endpoints: [10.0.0.1:8080, 10.0.0.2:8080]\n").unwrap();
    assert_eq!(c.target().unwrap(), "static:///10.0.0.1:8080,10.0.0.2:8080");
    assert_eq!(c.balancer, crate::balance::Policy::P2cEwma);
    assert_eq!(c.subset_size, 32);
    assert_eq!(c.timeout, Duration::from_millis(2000));
    assert!(c.non_block);

    // Labels may be written as numbers or booleans; they are text.
    let c =
        ClientConfig::from_yaml_str("Target: a:1\nSelect: {weight: 10, canary: true}\n").unwrap();
    assert_eq!(c.select["weight"], "10");
    assert_eq!(c.select["canary"], "true");

    let c = ClientConfig::from_yaml_str("Target: dns:///user-svc:8080\n").unwrap();
    assert_eq!(c.target().unwrap(), "dns:///user-svc:8080");
    assert_eq!(c, ClientConfig::new("dns:///user-svc:8080"));
}

/// `text` fails to load as `T` with `line:column: key: ...message...`.
#[track_caller]
fn fails<T: DeserializeOwned + fmt::Debug>(
    text: &str,
    line: usize,
    column: usize,
    key: &str,
    message: &str,
) {
    let error = from_yaml_str::<T>(text).expect_err(text);
    let shown = error.to_string();
    assert_eq!(
        (error.line(), error.column(), error.key()),
        (Some(line), Some(column), key),
        "{shown}"
    );
    assert!(
        shown.starts_with(&if key.is_empty() {
            format!("{line}:{column}: ")
        } else {
            format!("{line}:{column}: {key}: ")
        }),
        "{shown}"
    );
    assert!(error.message().contains(message), "{shown}");
}

#[test]
fn server_errors_name_key_and_position() {
    type S = ServerConfig;
    fails::<S>(
        "ListenOn: h:1\nEtcd:\n  Hosts: 127.0.0.1:2379\n  Key: k\n",
        3,
        10,
        "Etcd.Hosts",
        "expected a sequence",
    );
    fails::<S>(
        "ListenOn: h:1\nEtcd:\n  Hosts: []\n  Key: k\n",
        3,
        10,
        "Etcd.Hosts",
        "empty list",
    );
    fails::<S>(
        "ListenOn: h:1\nEtcd:\n  Hosts: [a:1, b]\n  Key: k\n",
        3,
        16,
        "Etcd.Hosts[1]",
        "expected `host:port`",
    );
    fails::<S>(
        "ListenOn: h:1\nEtcd:\n  Key: k\n",
        3,
        3,
        "Etcd.Hosts",
        "required key is missing",
    );
    fails::<S>(
        "ListenOn: h:1\nEtcd: {Hosts: [a:1]}\n",
        2,
        7,
        "Etcd.Key",
        "required key is missing",
    );
    fails::<S>("Name: x\n", 1, 1, "ListenOn", "required key is missing");
    fails::<S>(
        "ListenOn: 8080\n",
        1,
        11,
        "ListenOn",
        "expected `host:port`",
    );
    fails::<S>(
        "ListenOn: h:1\nTimout: 9000\n",
        2,
        1,
        "Timout",
        "unknown key (expected one of",
    );
    fails::<S>(
        "ListenOn: h:1\nEtcd: {Hosts: [a:1], Key: k, Hots: 1}\n",
        2,
        30,
        "Etcd.Hots",
        "unknown key",
    );
    fails::<S>("ListenOn: h:1\nAuth: true\n", 2, 7, "Auth", "needs Redis");
    fails::<S>(
        "ListenOn: h:1\nAuth: true\nRedis: {Host: h:2, Key: k, Type: cluster}\n",
        3,
        34,
        "Redis.Type",
        "`cluster` is not supported",
    );
    fails::<S>(
        "ListenOn: h:1\nLog: {Mode: file}\n",
        2,
        1,
        "Log",
        "go-zero setting this version of rzero does not support",
    );
    fails::<S>(
        "ListenOn: h:1\nMiddlewares: {Breakr: false}\n",
        2,
        15,
        "Middlewares.Breakr",
        "unknown key",
    );
    fails::<S>(
        "ListenOn: h:1\nTimeout: 2x\n",
        2,
        10,
        "Timeout",
        "unknown unit `x`",
    );
    fails::<S>(
        "ListenOn: h:1\nCpuThreshold: 1000\n",
        2,
        15,
        "CpuThreshold",
        "out of range",
    );
    fails::<S>(
        "ListenOn: h:1\nHealth: maybe\n",
        2,
        9,
        "Health",
        "expected a boolean",
    );
    fails::<S>(
        "ListenOn: h:1\nMethodTimeouts:\n  - FullMethod: /a.B/C\n    Timeout: 10\n",
        4,
        14,
        "MethodTimeouts[0].Timeout",
        "bare number is ambiguous",
    );
    fails::<S>(
        "ListenOn: h:1\nMethodTimeouts:\n  - FullMethod: a.B/C\n    Timeout: 1s\n",
        3,
        17,
        "MethodTimeouts[0].FullMethod",
        "expected `/package.Service/Method`",
    );
    fails::<S>(
        "ListenOn: h:1\nMethodTimeouts:\n  - {FullMethod: /a.B/C, Timeout: 1s}\n  - {FullMethod: /a.B/C, Timeout: 2s}\n",
        4,
        18,
        "MethodTimeouts[1].FullMethod",
        "already has a timeout (MethodTimeouts[0])",
    );
    fails::<S>(
        "ListenOn: h:1\nMethodTimeouts:\n  - FullMethod: /a.B/C\n    Timeout: 0\n",
        4,
        14,
        "MethodTimeouts[0].Timeout",
        "must be more than 0",
    );
    fails::<S>(
        "ListenOn: h:1\nVersion: v1\nMetadata: {version: v2}\n",
        2,
        10,
        "Version",
        "also given as Metadata.version",
    );
    fails::<S>(
        "ListenOn: h:1\nShutdownDelay: 1s\nDrainDelay: 2s\n",
        3,
        1,
        "DrainDelay",
        "duplicate key: another name for ShutdownDelay (line 2)",
    );
    fails::<S>(
        "ListenOn: h:1\nTimeout: 1\nTimeout: 2\n",
        3,
        1,
        "Timeout",
        "duplicate key (first on line 2)",
    );
}

#[test]
fn client_errors_name_key_and_position() {
    type C = ClientConfig;
    fails::<C>(
        "Endpoints: [a:1]\nBalancer: fastest\n",
        2,
        11,
        "Balancer",
        "unknown balancer `fastest`",
    );
    fails::<C>(
        "Target: dns:///a:1\nEndpoints: [a:1]\n",
        2,
        12,
        "Endpoints",
        "both Target and Endpoints are set",
    );
    fails::<C>(
        "Endpoints: [a:1]\nEtcd:\n  Hosts: [e:2379]\n  Key: k\n",
        3,
        3,
        "Etcd",
        "both Endpoints and Etcd are set",
    );
    fails::<C>("Timeout: 100\n", 1, 1, "", "no servers");
    fails::<C>("Target: \"etcd://h:1\"\n", 1, 9, "Target", "invalid target");
    fails::<C>(
        "Target: a:1\nKeepaliveTime: 20000\n",
        2,
        16,
        "KeepaliveTime",
        "bare number is ambiguous",
    );
    fails::<C>("Target: a:1\nApp: order\n", 2, 6, "App", "set Token too");
    fails::<C>(
        "Target: a:1\nApp: \"\"\nToken: t\n",
        3,
        8,
        "Token",
        "set App too",
    );
    fails::<C>(
        "Target: a:1\nEtcd: {Hosts: [h:1], Key: \"\"}\n",
        2,
        27,
        "Etcd.Key",
        "empty",
    );
    fails::<C>(
        "Target: a:1\nSubsetSize: -1\n",
        2,
        13,
        "SubsetSize",
        "expected usize",
    );
}

#[test]
fn syntax_errors_have_positions() {
    let error = ServerConfig::from_yaml_str("ListenOn: h:1\nEtcd: {Hosts: [a:1]\n").unwrap_err();
    assert!(error.line().is_some(), "{error}");
    let error = ServerConfig::from_yaml_str("ListenOn: h:1\nName: a: b\n").unwrap_err();
    assert_eq!(error.line(), Some(2), "{error}");
    let error = ServerConfig::from_yaml_str("# nothing\n\n").unwrap_err();
    assert_eq!(error.to_string(), "the document is empty");
    let error = ServerConfig::from_yaml_str("- ListenOn: h:1\n").unwrap_err();
    assert_eq!(
        (error.line(), error.column()),
        (Some(1), Some(1)),
        "{error}"
    );
}

#[test]
fn embedded_configs_are_checked_with_their_path() {
    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    #[allow(dead_code)]
    struct App {
        rpc: ServerConfig,
        user_rpc: ClientConfig,
    }
    let text =
        "Rpc:\n  ListenOn: 127.0.0.1:0\nUserRpc:\n  Target: dns:///a:1\n  Endpoints: [a:1]\n";
    fails::<App>(
        text,
        5,
        14,
        "UserRpc.Endpoints",
        "both Target and Endpoints",
    );
    let text =
        "Rpc:\n  ListenOn: 127.0.0.1:0\n  Etcd: {Hosts: x, Key: k}\nUserRpc: {Target: a:1}\n";
    fails::<App>(text, 3, 17, "Rpc.Etcd.Hosts", "expected a sequence");
    let app: App = from_yaml_str("Rpc: {ListenOn: 'h:1'}\nUserRpc: {Endpoints: [a:1]}\n").unwrap();
    assert_eq!(app.user_rpc.target().unwrap(), "static:///a:1");
}

#[test]
fn env_vars_expand_and_positions_stay_true() {
    // SAFETY-free: these names are used by this test only.
    let name = "RZERO_CONFIG_TEST_PORT";
    // set_var is unsafe in edition 2024; use a value known to be absent and the default form.
    assert!(std::env::var(name).is_err());
    let c =
        ServerConfig::from_yaml_str(&format!("ListenOn: 127.0.0.1:${{{name}:-9090}}\n")).unwrap();
    assert_eq!(c.listen_on(), "127.0.0.1:9090");
    let path = std::env::var("PATH").unwrap();
    assert!(!path.contains('\n'));
    let c = ServerConfig::from_yaml_str("ListenOn: h:1\nName: \"${PATH}\"\n").unwrap();
    assert_eq!(c.name, path);

    // Unset without default: named, with its position.
    let error =
        ServerConfig::from_yaml_str(&format!("ListenOn: h:1\nName: ${{{name}}}\n")).unwrap_err();
    assert_eq!(
        (error.line(), error.column()),
        (Some(2), Some(7)),
        "{error}"
    );
    assert!(error.message().contains(name), "{error}");

    // An error after an expansion on the same line points into the source as written.
    let error = ServerConfig::from_yaml_str("ListenOn: h:1\nEtcd: {Key: \"${PATH}\", Hosts: x}\n")
        .unwrap_err();
    assert_eq!(
        (error.line(), error.column()),
        (Some(2), Some(31)),
        "{error}"
    );
}

#[test]
fn files_are_named_in_errors() {
    let dir = std::env::temp_dir().join(format!("rzero-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("greeter.yaml");
    std::fs::write(&path, "Name: greeter.rpc\nListenOn: 0.0.0.0:8080\nEtcd:\n  Key: greeter.rpc\n  Hosts: 127.0.0.1:2379\n").unwrap();
    let error = ServerConfig::from_yaml_file(&path).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{}:5:10: Etcd.Hosts: invalid type: string \"127.0.0.1:2379\", expected a sequence of `host:port`",
            path.display()
        )
    );
    let missing = dir.join("missing.yaml");
    let error = ClientConfig::from_yaml_file(&missing).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with(&format!("{}: cannot read", missing.display())),
        "{error}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn configs_built_in_code_are_checked_by_builder() {
    let mut c = ClientConfig::new("a:1");
    c.endpoints = vec!["b:2".to_owned()];
    let error = c.builder().unwrap_err();
    assert_eq!(error.key(), "Endpoints");
    let mut s = ServerConfig::new("h:1");
    s.method_timeouts = vec![MethodTimeout::new("nope", Duration::from_secs(1))];
    assert_eq!(
        s.builder().unwrap_err().key(),
        "MethodTimeouts[0].FullMethod"
    );
}

#[cfg(feature = "tls")]
#[test]
fn tls_keys_load_and_their_mistakes_are_named() {
    use crate::tls::ClientAuth;
    use std::path::Path;

    let s = ServerConfig::from_yaml_str(
        "ListenOn: h:1\nTls:\n  CertFile: /etc/rzero/server.pem\n  KeyFile: server.key\n  \
         CaFile: clients.pem\n  ClientAuth: optional\n",
    )
    .unwrap();
    let tls = s.tls.as_ref().expect("Tls");
    assert_eq!(tls.cert_file, Path::new("/etc/rzero/server.pem"));
    assert_eq!(tls.key_file, Path::new("server.key"));
    assert_eq!(tls.ca_file.as_deref(), Some(Path::new("clients.pem")));
    assert_eq!(tls.client_auth, Some(ClientAuth::Optional));
    assert_eq!(ServerConfig::new("h:1").tls, None);

    let c = ClientConfig::from_yaml_str(
        "Target: a:1\nTls: {CaFile: ca.pem, CertFile: c.pem, KeyFile: c.key, ServerName: greeter.internal}\n",
    )
    .unwrap();
    let tls = c.tls.as_ref().expect("Tls");
    assert_eq!(tls.ca_file, Path::new("ca.pem"));
    assert_eq!(tls.cert_file.as_deref(), Some(Path::new("c.pem")));
    assert_eq!(tls.key_file.as_deref(), Some(Path::new("c.key")));
    assert_eq!(tls.server_name.as_deref(), Some("greeter.internal"));

    type S = ServerConfig;
    type C = ClientConfig;
    fails::<S>(
        "ListenOn: h:1\nTls: {CertFile: a, KeyFile: b, ClientAuth: sometimes}\n",
        2,
        44,
        "Tls.ClientAuth",
        "unknown client auth `sometimes` (known: required, optional)",
    );
    fails::<S>(
        "ListenOn: h:1\nTls:\n  CertFile: a\n  KeyFile: b\n  ClientAuth: required\n",
        5,
        15,
        "Tls.ClientAuth",
        "needs Tls.CaFile",
    );
    fails::<S>(
        "ListenOn: h:1\nTls: {CertFile: a}\n",
        2,
        6,
        "Tls.KeyFile",
        "required key is missing",
    );
    fails::<C>(
        "Target: a:1\nTls:\n  CaFile: ca.pem\n  CertFile: c.pem\n",
        4,
        13,
        "Tls.CertFile",
        "needs Tls.KeyFile",
    );
    fails::<C>(
        "Target: a:1\nTls: {CaFile: ca.pem, ServerName: ''}\n",
        2,
        35,
        "Tls.ServerName",
        "empty",
    );

    // Files are read when the builder is made: a missing one fails it, named.
    let error = ServerConfig::from_yaml_str(
        "ListenOn: h:1\nTls: {CertFile: /nonexistent/s.pem, KeyFile: /nonexistent/s.key}\n",
    )
    .unwrap()
    .builder()
    .expect_err("missing files");
    assert_eq!(error.key(), "Tls");
    assert!(error.message().contains("/nonexistent/s.pem"), "{error}");
    let error = ClientConfig::from_yaml_str("Target: a:1\nTls: {CaFile: /nonexistent/ca.pem}\n")
        .unwrap()
        .builder()
        .expect_err("missing CA");
    assert!(
        error
            .to_string()
            .contains("Tls: cannot read the CA file /nonexistent/ca.pem"),
        "{error}"
    );
}

#[test]
fn builder_refuses_a_cpu_threshold_set_out_of_range_in_code() {
    let mut config = ServerConfig::new("127.0.0.1:0");
    config.cpu_threshold = 1000;
    let error = config.builder().expect_err("out of range");
    assert_eq!(error.key(), "CpuThreshold");
    assert!(error.message().contains("0..1000"), "{error}");
    config.cpu_threshold = 0;
    assert!(config.builder().is_ok(), "0 turns shedding off");
}

#[test]
fn stat_conf_and_dev_server_default_as_documented() {
    let c = ServerConfig::from_yaml_str("ListenOn: 127.0.0.1:0\n").unwrap();
    let stat = &c.middlewares.stat_conf;
    assert!(c.middlewares.stat && c.middlewares.prometheus);
    assert_eq!(stat.slow_threshold, Duration::from_millis(500));
    assert!(stat.ignore_content_methods.is_empty());
    let dev = &c.dev_server;
    assert!(!dev.enabled, "off unless asked for");
    assert_eq!(dev.host, "0.0.0.0");
    assert_eq!(dev.port, 6060);
    assert_eq!(dev.metrics_path, "/metrics");
    assert_eq!(dev.health_path, "/healthz");
    assert!(dev.enable_metrics);
    assert_eq!(dev.enable_pprof, None);
    assert_eq!(dev.health_response, "OK");
    assert_eq!(dev.addr(), "0.0.0.0:6060");
    // An empty mapping is all defaults too.
    let c =
        ServerConfig::from_yaml_str("ListenOn: h:1\nDevServer: {}\nMiddlewares: {StatConf: {}}\n")
            .unwrap();
    assert_eq!(c, ServerConfig::new("h:1"));
}

#[test]
fn stat_conf_and_dev_server_load() {
    let c = ServerConfig::from_yaml_str(
        "\
ListenOn: h:1
Middlewares:
  Stat: false
  StatConf:
    SlowThreshold: 1.5s
    IgnoreContentMethods: [/user.User/Login, /user.User/SetPassword]
DevServer:
  Enabled: true
  Host: 127.0.0.1
  Port: 9100
  MetricsPath: /prom
  HealthPath: /ping
  EnableMetrics: false
  EnablePprof: false
  HealthResponse: alive
",
    )
    .unwrap();
    assert!(!c.middlewares.stat);
    let stat = &c.middlewares.stat_conf;
    assert_eq!(stat.slow_threshold, Duration::from_millis(1500));
    assert_eq!(
        stat.ignore_content_methods,
        ["/user.User/Login", "/user.User/SetPassword"]
    );
    let dev = &c.dev_server;
    assert!(dev.enabled && !dev.enable_metrics);
    assert_eq!(dev.addr(), "127.0.0.1:9100");
    assert_eq!(
        (dev.metrics_path.as_str(), dev.health_path.as_str()),
        ("/prom", "/ping")
    );
    assert_eq!(dev.enable_pprof, Some(false));
    assert_eq!(dev.health_response, "alive");

    // go-zero's default is `EnablePprof: true`: accepted (nothing is served).
    let c =
        ServerConfig::from_yaml_str("ListenOn: h:1\nDevServer: {Host: '::1', EnablePprof: true}\n")
            .unwrap();
    assert_eq!(c.dev_server.enable_pprof, Some(true));
    assert_eq!(c.dev_server.addr(), "[::1]:6060");
    // With metrics off, the health probe may take their path.
    ServerConfig::from_yaml_str(
        "ListenOn: h:1\nDevServer: {EnableMetrics: false, HealthPath: /metrics}\n",
    )
    .unwrap();
}

#[test]
fn stat_conf_and_dev_server_mistakes_name_key_and_position() {
    type S = ServerConfig;
    fails::<S>(
        "ListenOn: h:1\nMiddlewares:\n  StatConf:\n    SlowThreshold: 500\n",
        4,
        20,
        "Middlewares.StatConf.SlowThreshold",
        "bare number is ambiguous",
    );
    fails::<S>(
        "ListenOn: h:1\nMiddlewares:\n  StatConf:\n    SlowThreshold: 0s\n",
        4,
        20,
        "Middlewares.StatConf.SlowThreshold",
        "must be more than 0 (to log no slow calls, set Middlewares.Stat: false)",
    );
    fails::<S>(
        "ListenOn: h:1\nMiddlewares: {StatConf: {IgnoreContentMethods: [/a.B/C, a.B/D]}}\n",
        2,
        57,
        "Middlewares.StatConf.IgnoreContentMethods[1]",
        "expected `/package.Service/Method`",
    );
    fails::<S>(
        "ListenOn: h:1\nMiddlewares: {StatConf: {Slow: 1s}}\n",
        2,
        26,
        "Middlewares.StatConf.Slow",
        "unknown key",
    );
    fails::<S>(
        "ListenOn: h:1\nDevServer:\n  Enabled: true\n  Port: 70000\n",
        4,
        9,
        "DevServer.Port",
        "expected u16",
    );
    fails::<S>(
        "ListenOn: h:1\nDevServer:\n  MetricsPath: metrics\n",
        3,
        16,
        "DevServer.MetricsPath",
        "expected a path such as `/metrics`",
    );
    fails::<S>(
        "ListenOn: h:1\nDevServer:\n  Enabled: true\n  HealthPath: /metrics\n",
        4,
        15,
        "DevServer.HealthPath",
        "`/metrics` is MetricsPath too",
    );
    fails::<S>(
        "ListenOn: h:1\nDevServer: {Host: 0.0.0.0:6060}\n",
        2,
        19,
        "DevServer.Host",
        "the port goes in DevServer.Port",
    );
    fails::<S>(
        "ListenOn: h:1\nDevServer: {Enabled: yes please}\n",
        2,
        22,
        "DevServer.Enabled",
        "expected a boolean",
    );
    fails::<S>(
        "ListenOn: h:1\nDevServer: {EnablePprofs: false}\n",
        2,
        13,
        "DevServer.EnablePprofs",
        "unknown key",
    );
    // Still refused by name: go-zero's deprecated top-level `Prometheus`.
    fails::<S>(
        "ListenOn: h:1\nPrometheus: {Host: 0.0.0.0, Port: 9101}\n",
        2,
        1,
        "Prometheus",
        "go-zero setting this version of rzero does not support",
    );
}

#[test]
fn stat_conf_and_dev_server_set_in_code_are_checked_by_builder() {
    let mut c = ServerConfig::new("127.0.0.1:0");
    c.middlewares.stat_conf.slow_threshold = Duration::ZERO;
    let error = c.builder().expect_err("zero threshold");
    assert_eq!(error.key(), "Middlewares.StatConf.SlowThreshold");

    let mut c = ServerConfig::new("127.0.0.1:0");
    c.middlewares.stat_conf.ignore_content_methods = vec!["Login".to_owned()];
    let error = c.builder().expect_err("bad method");
    assert_eq!(error.key(), "Middlewares.StatConf.IgnoreContentMethods[0]");

    let mut c = ServerConfig::new("127.0.0.1:0");
    c.dev_server.enabled = true;
    c.dev_server.metrics_path = "metrics".to_owned();
    let error = c.builder().expect_err("bad path");
    assert_eq!(error.key(), "DevServer.MetricsPath");
    c.dev_server.metrics_path = "/metrics".to_owned();
    assert!(c.builder().is_ok());
}

#[cfg(feature = "grpc-web")]
#[test]
fn grpc_web_and_cors_keys_load() {
    let c = ServerConfig::from_yaml_str(
        "\
ListenOn: h:1
GrpcWeb:
  Enabled: true
  Cors:
    AllowOrigins: [https://app.example.com, 'https://*.example.com', http://localhost:3000]
    AllowCredentials: true
    AllowHeaders: [x-grpc-web, Authorization]
    ExposeHeaders: X-Request-Id, X-Total
    MaxAge: 10m
",
    )
    .unwrap();
    assert!(c.grpc_web.enabled);
    let cors = c.grpc_web.cors.as_ref().expect("Cors");
    assert_eq!(
        cors.allow_origins,
        [
            "https://app.example.com",
            "https://*.example.com",
            "http://localhost:3000"
        ]
    );
    assert!(cors.allow_credentials);
    assert_eq!(
        cors.allow_headers.as_deref(),
        Some(&["x-grpc-web".to_owned(), "Authorization".to_owned()][..])
    );
    assert_eq!(cors.expose_headers, ["X-Request-Id", "X-Total"]);
    assert_eq!(cors.max_age, Some(Duration::from_secs(600)));
    assert!(c.builder().is_ok());

    // `*` (quoted), one string of origins, seconds, and the defaults.
    let c = ServerConfig::from_yaml_str(
        "ListenOn: h:1\nGrpcWeb: {Cors: {AllowOrigins: '*', MaxAge: 30}}\n",
    )
    .unwrap();
    assert!(!c.grpc_web.enabled, "off unless Enabled");
    let cors = c.grpc_web.cors.as_ref().unwrap();
    assert_eq!(cors.allow_origins, ["*"]);
    assert_eq!(cors.max_age, Some(Duration::from_secs(30)));
    assert!(!cors.allow_credentials);
    assert_eq!(cors.allow_headers, None, "mirrored by default");
    assert!(cors.expose_headers.is_empty());
    let c = ServerConfig::from_yaml_str("ListenOn: h:1\nGrpcWeb: {Enabled: true}\n").unwrap();
    assert!(c.grpc_web.enabled && c.grpc_web.cors.is_none());
    let c = ServerConfig::from_yaml_str("ListenOn: h:1\n").unwrap();
    assert_eq!(c.grpc_web, GrpcWebConfig::default());
    assert!(!c.grpc_web.enabled);
}

/// The policy `cors` builds answers a preflight from `origin` with these headers.
#[cfg(any(feature = "gateway", feature = "grpc-web"))]
fn preflight_headers(cors: &CorsConfig, origin: &str) -> Option<http::HeaderMap> {
    let policy = cors.to_cors().compile().expect("a valid policy");
    let origin = http::HeaderValue::from_str(origin).unwrap();
    if !policy.allows(&origin) {
        return None;
    }
    let mut request = http::HeaderMap::new();
    request.insert(http::header::ORIGIN, origin);
    request.insert(
        http::header::ACCESS_CONTROL_REQUEST_HEADERS,
        http::HeaderValue::from_static("x-asked"),
    );
    let mut headers = http::HeaderMap::new();
    policy.preflight(&request, "POST", &mut headers);
    Some(headers)
}

#[cfg(any(feature = "gateway", feature = "grpc-web"))]
#[test]
fn cors_config_maps_onto_the_policy() {
    let cors: CorsConfig = from_yaml_str(
        "AllowOrigins: [https://app.example.com, 'https://*.example.com']\n\
         AllowCredentials: true\nAllowHeaders: [x-grpc-web]\nMaxAge: 2m\n",
    )
    .unwrap();
    let headers = preflight_headers(&cors, "https://a.example.com").expect("allowed");
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://a.example.com"
    );
    assert_eq!(headers["access-control-allow-credentials"], "true");
    assert_eq!(headers["access-control-allow-headers"], "x-grpc-web");
    assert_eq!(headers["access-control-max-age"], "120");
    assert!(preflight_headers(&cors, "https://example.org").is_none());

    let any = CorsConfig::new(["*"]);
    let headers = preflight_headers(&any, "https://anyone.example.org").expect("any origin");
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert_eq!(
        headers["access-control-allow-headers"], "x-asked",
        "mirrored"
    );
    assert!(!headers.contains_key("access-control-allow-credentials"));
    assert!(!headers.contains_key("access-control-max-age"));
}

#[cfg(feature = "grpc-web")]
#[test]
fn grpc_web_and_cors_mistakes_name_key_and_position() {
    type S = ServerConfig;
    fails::<S>(
        "ListenOn: h:1\nGrpcWeb: {Enabled: maybe}\n",
        2,
        20,
        "GrpcWeb.Enabled",
        "expected a boolean",
    );
    fails::<S>(
        "ListenOn: h:1\nGrpcWeb: {Enable: true}\n",
        2,
        11,
        "GrpcWeb.Enable",
        "unknown key",
    );
    fails::<S>(
        "ListenOn: h:1\nGrpcWeb:\n  Enabled: true\n  Cors:\n    AllowCredentials: true\n",
        5,
        5,
        "GrpcWeb.Cors.AllowOrigins",
        "required key is missing",
    );
    fails::<S>(
        "ListenOn: h:1\nGrpcWeb:\n  Cors:\n    AllowOrigins:\n      - https://app.example.com\n      - https://app.example.com/\n",
        6,
        9,
        "GrpcWeb.Cors.AllowOrigins[1]",
        "`https://app.example.com/`: expected scheme://host[:port]",
    );
    fails::<S>(
        "ListenOn: h:1\nGrpcWeb:\n  Cors: {AllowOrigins: [app.example.com]}\n",
        3,
        25,
        "GrpcWeb.Cors.AllowOrigins[0]",
        "`app.example.com`: expected scheme://host[:port]",
    );
    fails::<S>(
        "ListenOn: h:1\nGrpcWeb:\n  Cors: {AllowOrigins: 'https://a.example.com, null'}\n",
        3,
        24,
        "GrpcWeb.Cors.AllowOrigins",
        "`null`: expected scheme://host[:port]",
    );
    fails::<S>(
        "ListenOn: h:1\nGrpcWeb:\n  Cors: {AllowOrigins: 'https://a.example.com,,'}\n",
        3,
        24,
        "GrpcWeb.Cors.AllowOrigins",
        "an empty item",
    );
    fails::<S>(
        "ListenOn: h:1\nGrpcWeb:\n  Cors: {AllowOrigins: []}\n",
        3,
        24,
        "GrpcWeb.Cors.AllowOrigins",
        "empty: list the origins allowed, or `*` for any",
    );
    fails::<S>(
        "ListenOn: h:1\nGrpcWeb:\n  Cors: {AllowOrigins: ['*', https://a.example.com]}\n",
        3,
        24,
        "GrpcWeb.Cors.AllowOrigins",
        "`*` allows any origin: give it alone",
    );
    fails::<S>(
        "ListenOn: h:1\nGrpcWeb:\n  Cors:\n    AllowOrigins: '*'\n    AllowCredentials: true\n",
        5,
        23,
        "GrpcWeb.Cors.AllowCredentials",
        "not with AllowOrigins `*`: browsers refuse credentials",
    );
    fails::<S>(
        "ListenOn: h:1\nGrpcWeb:\n  Cors:\n    AllowOrigins: [https://a.example.com]\n    ExposeHeaders: [X-Ok, 'bad header']\n",
        5,
        27,
        "GrpcWeb.Cors.ExposeHeaders[1]",
        "`bad header` is not a header name",
    );
    fails::<S>(
        "ListenOn: h:1\nGrpcWeb:\n  Cors:\n    AllowOrigins: [https://a.example.com]\n    AllowHeaders: 'x-a, x(b)'\n",
        5,
        19,
        "GrpcWeb.Cors.AllowHeaders",
        "`x(b)` is not a header name",
    );
    fails::<S>(
        "ListenOn: h:1\nGrpcWeb:\n  Cors:\n    AllowOrigins: [https://a.example.com]\n    MaxAge: 1500ms\n",
        5,
        13,
        "GrpcWeb.Cors.MaxAge",
        "whole seconds only (Access-Control-Max-Age counts seconds), not 1.5s",
    );
    fails::<S>(
        "ListenOn: h:1\nGrpcWeb:\n  Cors:\n    AllowOrigins: [https://a.example.com]\n    MaxAge: 10x\n",
        5,
        13,
        "GrpcWeb.Cors.MaxAge",
        "unknown unit `x`",
    );
    fails::<S>(
        "ListenOn: h:1\nGrpcWeb:\n  Cors:\n    AllowOrigin: [https://a.example.com]\n",
        4,
        5,
        "GrpcWeb.Cors.AllowOrigin",
        "unknown key",
    );
}

#[cfg(feature = "grpc-web")]
#[test]
fn grpc_web_set_in_code_is_checked_by_builder() {
    let mut c = ServerConfig::new("127.0.0.1:0");
    c.grpc_web.enabled = true;
    let mut cors = CorsConfig::new(["*"]);
    cors.allow_credentials = true;
    c.grpc_web.cors = Some(cors);
    let error = c.builder().expect_err("`*` with credentials");
    assert_eq!(error.key(), "GrpcWeb.Cors.AllowCredentials");
    c.grpc_web.cors = Some(CorsConfig::new(["https://a.example.com/path"]));
    let error = c.builder().expect_err("a path");
    assert_eq!(error.key(), "GrpcWeb.Cors.AllowOrigins[0]");
    c.grpc_web.cors = Some(CorsConfig::new(["https://a.example.com"]));
    assert!(c.builder().is_ok());
}

#[cfg(feature = "gateway")]
const GATEWAY: &str = "\
ListenOn: 0.0.0.0:8080
Gateway:
  ListenOn: 0.0.0.0:8888
  Timeout: 3000
  MaxBytes: 1048576
  MaxReplySize: 8388608
  Json:
    EmitUnpopulated: false
    UseProtoNames: true
    EnumsAsInts: true
    DiscardUnknown: false
  RejectUnknownQueryParams: true
  PlusAsSpace: false
  MultiSegmentDecoding: KeepSlash
  StrictTrailingSlash: true
  StreamFraming: JsonArray
  Healthz: /healthz
  Cors:
    AllowOrigins: [https://app.example.com]
";

#[cfg(feature = "gateway")]
#[test]
fn gateway_keys_load() {
    use crate::gateway::{MultiSegmentDecoding, StreamFraming};

    let c = ServerConfig::from_yaml_str(GATEWAY).unwrap();
    let g = &c.gateway;
    assert_eq!(g.listen_on.as_deref(), Some("0.0.0.0:8888"));
    assert_eq!(g.timeout, Some(Duration::from_secs(3)));
    assert_eq!(g.max_bytes, Some(1 << 20));
    assert_eq!(g.max_reply_size, Some(8 << 20));
    assert_eq!(g.json.emit_unpopulated, Some(false));
    assert_eq!(g.json.use_proto_names, Some(true));
    assert_eq!(g.json.enums_as_ints, Some(true));
    assert_eq!(g.json.discard_unknown, Some(false));
    assert_eq!(g.reject_unknown_query_params, Some(true));
    assert_eq!(g.plus_as_space, Some(false));
    assert_eq!(
        g.multi_segment_decoding,
        Some(MultiSegmentDecoding::KeepSlash)
    );
    assert_eq!(g.strict_trailing_slash, Some(true));
    assert_eq!(g.stream_framing, Some(StreamFraming::JsonArray));
    assert_eq!(g.healthz.as_deref(), Some("/healthz"));
    assert_eq!(
        g.cors.as_ref().unwrap().allow_origins,
        ["https://app.example.com"]
    );

    // Aliases and other spellings.
    let g: GatewayConfig = from_yaml_str(
        "MaxBodySize: 10\nTimeout: 1.5s\nJson: {UseEnumNumbers: true}\n\
         StreamFraming: server_sent_events\nMultiSegmentDecoding: decode_all\n",
    )
    .unwrap();
    assert_eq!(g.max_bytes, Some(10));
    assert_eq!(g.timeout, Some(Duration::from_millis(1500)));
    assert_eq!(g.json.enums_as_ints, Some(true));
    assert_eq!(g.stream_framing, Some(StreamFraming::ServerSentEvents));
    assert_eq!(
        g.multi_segment_decoding,
        Some(MultiSegmentDecoding::DecodeAll)
    );
    for (text, framing) in [
        ("Ndjson", StreamFraming::Ndjson),
        ("ndjson", StreamFraming::Ndjson),
        ("json-array", StreamFraming::JsonArray),
        ("SSE", StreamFraming::ServerSentEvents),
    ] {
        let g: GatewayConfig = from_yaml_str(&format!("StreamFraming: {text}\n")).unwrap();
        assert_eq!(g.stream_framing, Some(framing), "{text}");
    }
}

#[cfg(feature = "gateway")]
#[test]
fn gateway_defaults_leave_the_builder_alone() {
    use crate::gateway::{Gateway, JsonOptions};

    let c = ServerConfig::from_yaml_str("ListenOn: h:1\n").unwrap();
    assert_eq!(c.gateway, GatewayConfig::default());
    assert_eq!(
        c.gateway,
        GatewayConfig {
            listen_on: None,
            timeout: None,
            max_bytes: None,
            max_reply_size: None,
            json: GatewayJsonConfig::default(),
            reject_unknown_query_params: None,
            plus_as_space: None,
            multi_segment_decoding: None,
            strict_trailing_slash: None,
            stream_framing: None,
            healthz: None,
            cors: None,
        }
    );
    let c = ServerConfig::from_yaml_str("ListenOn: h:1\nGateway: {}\n").unwrap();
    assert_eq!(c, ServerConfig::new("h:1"));

    // Nothing given: what code set stays.
    let code = Gateway::builder()
        .max_body_size(7)
        .timeout(Duration::from_secs(9))
        .json(JsonOptions::new().enums_as_numbers(true));
    let before = format!("{code:?}");
    let after = GatewayConfig::default().apply(code);
    assert_eq!(format!("{after:?}"), before);

    // Some given: those change, the rest stays.
    let g: GatewayConfig =
        from_yaml_str("MaxBytes: 64\nJson: {UseProtoNames: true, DiscardUnknown: false}\n")
            .unwrap();
    let built = g.apply(
        Gateway::builder()
            .max_body_size(7)
            .json(JsonOptions::new().enums_as_numbers(true)),
    );
    assert_eq!(
        built.json_options(),
        JsonOptions::new()
            .enums_as_numbers(true)
            .proto_field_names(true)
            .reject_unknown_fields(true)
    );
    assert!(
        format!("{built:?}").contains("max_body_size: 64"),
        "{built:?}"
    );
    // `Timeout: 0` drops a deadline code set; a duration replaces it.
    let code = || Gateway::builder().timeout(Duration::from_secs(9));
    assert!(format!("{:?}", code()).contains("timeout: Some(9s)"));
    let g: GatewayConfig = from_yaml_str("Timeout: 0\n").unwrap();
    assert_eq!(g.timeout, Some(Duration::ZERO));
    assert!(format!("{:?}", g.apply(code())).contains("timeout: None"));
    let g: GatewayConfig = from_yaml_str("Timeout: 250\n").unwrap();
    assert!(format!("{:?}", g.apply(code())).contains("timeout: Some(250ms)"));

    // Every key given.
    let c = ServerConfig::from_yaml_str(GATEWAY).unwrap();
    let built = c.gateway.apply(Gateway::builder());
    assert_eq!(
        built.json_options(),
        JsonOptions::new()
            .emit_unpopulated(false)
            .proto_field_names(true)
            .enums_as_numbers(true)
            .reject_unknown_fields(true)
    );
    let shown = format!("{built:?}");
    for part in [
        "max_body_size: 1048576",
        "max_reply_size: 8388608",
        "timeout: Some(3s)",
        "stream_framing: JsonArray",
        "cors: Some(",
    ] {
        assert!(shown.contains(part), "{part}: {shown}");
    }
    assert!(c.builder().is_ok());
}

#[cfg(feature = "gateway")]
#[test]
fn gateway_mistakes_name_key_and_position() {
    type S = ServerConfig;
    type G = GatewayConfig;
    fails::<S>(
        "ListenOn: h:1\nGateway:\n  MaxBytes: 0\n",
        3,
        13,
        "Gateway.MaxBytes",
        "must be more than 0",
    );
    fails::<S>(
        "ListenOn: h:1\nGateway:\n  MaxBytes: -1\n",
        3,
        13,
        "Gateway.MaxBytes",
        "must be more than 0 bytes",
    );
    fails::<S>(
        "ListenOn: h:1\nGateway:\n  MaxBytes: 1MB\n",
        3,
        13,
        "Gateway.MaxBytes",
        "expected a number of bytes",
    );
    fails::<S>(
        "ListenOn: h:1\nGateway:\n  MaxReplySize: many\n",
        3,
        17,
        "Gateway.MaxReplySize",
        "expected a number of bytes",
    );
    fails::<S>(
        "ListenOn: h:1\nGateway:\n  Timeout: 2x\n",
        3,
        12,
        "Gateway.Timeout",
        "unknown unit `x`",
    );
    fails::<S>(
        "ListenOn: h:1\nGateway:\n  StreamFraming: jsonl\n",
        3,
        18,
        "Gateway.StreamFraming",
        "unknown framing `jsonl` (known: Ndjson, JsonArray, ServerSentEvents)",
    );
    fails::<S>(
        "ListenOn: h:1\nGateway:\n  MultiSegmentDecoding: all\n",
        3,
        25,
        "Gateway.MultiSegmentDecoding",
        "unknown decoding `all` (known: KeepReserved, KeepSlash, DecodeAll)",
    );
    fails::<S>(
        "ListenOn: h:1\nGateway:\n  Healthz: healthz\n",
        3,
        12,
        "Gateway.Healthz",
        "`healthz`: expected a path such as `/healthz`",
    );
    fails::<S>(
        "ListenOn: h:1\nGateway:\n  ListenOn: 8888\n",
        3,
        13,
        "Gateway.ListenOn",
        "expected `host:port`",
    );
    fails::<S>(
        "ListenOn: 0.0.0.0:8080\nGateway:\n  ListenOn: 0.0.0.0:8080\n",
        3,
        13,
        "Gateway.ListenOn",
        "is ListenOn too",
    );
    fails::<S>(
        "ListenOn: h:1\nGateway:\n  Json: {UseProtoName: true}\n",
        3,
        10,
        "Gateway.Json.UseProtoName",
        "unknown key",
    );
    fails::<S>(
        "ListenOn: h:1\nGateway:\n  Json:\n    DiscardUnknown: nope\n",
        4,
        21,
        "Gateway.Json.DiscardUnknown",
        "expected a boolean",
    );
    fails::<S>(
        "ListenOn: h:1\nGateway:\n  StrictTrailingSlash: 1\n",
        3,
        24,
        "Gateway.StrictTrailingSlash",
        "expected a boolean",
    );
    fails::<S>(
        "ListenOn: h:1\nGateway:\n  Cors:\n    AllowOrigins: [https://a.example.com:x]\n",
        4,
        20,
        "Gateway.Cors.AllowOrigins[0]",
        "bad port",
    );
    fails::<S>(
        "ListenOn: h:1\nGateway:\n  Healthz: /healthz\n  Healtz: /x\n",
        4,
        3,
        "Gateway.Healtz",
        "unknown key",
    );
    fails::<G>(
        "MaxBytes: 10\nMaxBodySize: 20\n",
        2,
        1,
        "MaxBodySize",
        "duplicate key: another name for MaxBytes (line 1)",
    );
    fails::<G>(
        "MaxBodySize: 10\nJson: {}\nMaxBytes: 20\n",
        3,
        1,
        "MaxBytes",
        "duplicate key: another name for MaxBodySize (line 1)",
    );
    fails::<G>(
        "MaxBytes: 10\nMaxBytes: 20\n",
        2,
        1,
        "MaxBytes",
        "duplicate key (first on line 1)",
    );
}

#[cfg(feature = "gateway")]
#[test]
fn gateway_set_in_code_is_checked_by_builder() {
    let mut c = ServerConfig::new("127.0.0.1:0");
    c.gateway.max_bytes = Some(0);
    assert_eq!(c.builder().unwrap_err().key(), "Gateway.MaxBytes");
    c.gateway.max_bytes = None;
    c.gateway.healthz = Some("healthz".to_owned());
    assert_eq!(c.builder().unwrap_err().key(), "Gateway.Healthz");
    c.gateway.healthz = None;
    c.gateway.cors = Some(CorsConfig::new(Vec::<String>::new()));
    assert_eq!(c.builder().unwrap_err().key(), "Gateway.Cors.AllowOrigins");
    c.gateway.cors = None;
    c.gateway.listen_on = Some("127.0.0.1:8888".to_owned());
    assert!(c.builder().is_ok());
}

#[cfg(not(feature = "grpc-web"))]
#[test]
fn grpc_web_without_its_feature_is_named() {
    fails::<ServerConfig>(
        "ListenOn: h:1\nGrpcWeb:\n  Enabled: true\n",
        3,
        3,
        "GrpcWeb",
        "this rzero was built without its `grpc-web` feature",
    );
}

#[cfg(not(feature = "gateway"))]
#[test]
fn gateway_without_its_feature_is_named() {
    fails::<ServerConfig>(
        "ListenOn: h:1\nGateway: {MaxBytes: 10}\n",
        2,
        10,
        "Gateway",
        "this rzero was built without its `gateway` feature",
    );
}

#[cfg(not(feature = "tls"))]
#[test]
fn tls_without_its_feature_is_named() {
    fails::<ServerConfig>(
        "ListenOn: h:1\nTls: {CertFile: a, KeyFile: b}\n",
        2,
        6,
        "Tls",
        "this rzero was built without its `tls` feature",
    );
    fails::<ClientConfig>(
        "Target: a:1\nTls:\n  CaFile: ca.pem\n",
        3,
        3,
        "Tls",
        "this rzero was built without its `tls` feature",
    );
}
