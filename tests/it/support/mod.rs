//! The harness of the integration tests: the test bed, a running `mtswarm`, docker CLI clients with their own
//! config directories, raw HTTP, a pty, and a cleanup guard per test.
//!
//! Every test owns a `Test`: a tag unique to the test (test name, pid, counter) that every object name carries,
//! a temporary directory, and a drop guard that removes the test's containers, networks, volumes and images
//! directly on the engines. Tests therefore run in parallel against the shared engines.
//!
//! `MTSWARM_IT_DIRECT=1` points the clients at the engine itself instead of mtswarm: the suite then validates
//! its own expectations against dockerd. Tests of what only mtswarm does return early in that mode.
//!
//! The files, by concern:
//! - `testbed.rs`: the shared engines and image (the test bed's env file), direct mode, the CLI against an engine;
//! - `test.rs`: one test's tag, directory and cleanup; `poll`;
//! - `gateway.rs`: a running `mtswarm manage` and its tenants;
//! - `client.rs`: the docker CLI as one tenant; `spawned.rs`: a command in the background; `process.rs`: a
//!   command run to its end with a deadline;
//! - `http.rs`: raw HTTP, hijacks and multiplexed streams; `assert.rs`: small assertions on CLI output;
//! - what one group of test files shares: `auth.rs` (`auth.rs`, `keystone.rs`, and `mtswarm` commands that end
//!   by themselves), `cluster.rs` (the three engines, `cluster.rs`), `tls.rs` (certificates, `tls.rs`).

#![allow(dead_code)]

mod assert;
mod client;
mod gateway;
mod http;
mod process;
mod spawned;
mod test;
mod testbed;

pub mod auth;
pub mod cluster;
pub mod tls;

pub use self::test::*;
pub use assert::*;
pub use client::*;
pub use gateway::*;
pub use http::*;
pub use process::*;
pub use spawned::*;
pub use testbed::*;
