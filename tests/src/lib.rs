//! Generated code for every testdata file, compiled under `#![deny(warnings)]`, plus the
//! shared pieces the behaviour tests use (the echo service implementation, a real etcd, a real
//! Redis, a TCP gate to cut connectivity, the Node.js gRPC-Web peer).

#![deny(warnings)]

pub mod echo;
pub mod etcd;
pub mod gate;
pub mod gateway;
pub mod node;
pub mod python;
pub mod redis;
pub mod testdata;

/// All testdata with default options.
#[allow(missing_docs)]
pub mod default {
    include!(concat!(env!("OUT_DIR"), "/default/mod.rs"));
}

/// The "options" case: no server, `Bytes`, `BTreeMap`, attributes, `prost::Name`, `mockall` mocks.
#[allow(missing_docs)]
pub mod options {
    include!(concat!(env!("OUT_DIR"), "/options/mod.rs"));
}
