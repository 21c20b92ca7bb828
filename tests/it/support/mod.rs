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
//! - `testbed.rs`: the shared engines and image (the test bed's env file), direct mode, the CLI against an engine,
//!   `scripts/testbed.sh` (stopping and starting an engine or Keystone);
//! - `tenant.rs`: what mtswarm makes of a tenant's objects on the engine (the owner label, engine-side names);
//! - `test.rs`: one test's tag, directory and cleanup; `poll`;
//! - `gateway.rs`: a running `mtswarm manage` and its tenants;
//! - `client.rs`: the docker CLI as one tenant; `spawned.rs`: a command in the background; `process.rs`: a
//!   command run to its end with a deadline;
//! - `http.rs`: raw HTTP, hijacks and multiplexed streams; `assert.rs`: small assertions on CLI output;
//! - what one group of test files shares: `auth.rs` (`auth.rs`, `keystone.rs`, and `mtswarm` commands that end
//!   by themselves), `cluster.rs` (the three engines, `cluster.rs`), `tls.rs` (certificates, `tls.rs`).
//!
//! # One test: `it_test!`
//!
//! A test states only what it is about; [`it_test!`] writes the `#[test] fn` and its prelude (in the spirit of
//! ripgrep's `rgtest!`). Its arguments, in this order, the optional ones in brackets:
//!
//! ```text
//! it_test!(NAME, [mtswarm_only("WHAT"),] [lock(LOCK_FN),] [gw = GATEWAY_OPTS,] |t[, [mut] gw[, CLIENT...]]| { BODY });
//! ```
//!
//! - `|t| ...`: `let t = Test::new();`, the test's tag, directory and cleanup. Name it as you like (`test`).
//! - `|t, gw| ...`: also `let gw = t.gateway();`, mtswarm in front of the default engine with tenants alice and
//!   bob and an admin; `mut gw` for a test that restarts it.
//! - `gw = GatewayOpts { .. },`: start that gateway instead (`Gateway::start(&t, opts)`), e.g. with
//!   `GatewayOpts::cluster(&[..])` for the three engines, or other tenants, flags and env.
//! - `|t, gw, alice, bob, admin| ...`: a docker client per name after the gateway: the tenant of that name
//!   (`gw.tenant("alice")`), or the admin tenant for `admin` (`gw.admin()`).
//! - `mtswarm_only("authentication"),`: the test is about mtswarm's own behaviour, which dockerd does not
//!   have: with `MTSWARM_IT_DIRECT=1` it returns at once and says why (`skip_in_direct_mode`).
//! - `lock(cluster_lock),`: the test takes that global lock before its `Test` (so it is released after the
//!   cleanup); the lock's definition says which tests take it and why.
//!
//! For example:
//!
//! ```text
//! it_test!(another_tenant_sees_nothing, mtswarm_only("tenant isolation"), |t, gw, alice, bob| {
//!     let c = t.name("web");
//!     alice.ok(&["run", "-d", "--name", &c, image(), "sleep", "300"]);
//!     assert_eq!(bob.ok(&["ps", "-q"]), "");
//! });
//! ```
//!
//! expands to
//!
//! ```text
//! #[test]
//! fn another_tenant_sees_nothing() {
//!     if skip_in_direct_mode("tenant isolation") {
//!         return;
//!     }
//!     let t = Test::new();
//!     let gw = t.gateway();
//!     let alice = gw.tenant("alice");
//!     let bob = gw.tenant("bob");
//!     { /* the body */ }
//! }
//! ```
//!
//! The body is a closure's only in looks: every argument is a plain Rust expression, so `cargo fmt` formats the
//! test like any other code (a `fn`-shaped macro argument would be left unformatted). A test whose setup
//! needs more before its gateway (files to write, a fake engine, Keystone users) takes `|t|` and starts its
//! gateway in the body. A test that needs no `Test` is a plain `#[test] fn`.

#![allow(dead_code)]

mod assert;
mod client;
mod gateway;
mod http;
mod process;
mod spawned;
mod tenant;
mod test;
mod testbed;

pub mod auth;
pub mod cluster;
pub mod managers;
pub mod tls;

pub use self::test::*;
pub use assert::*;
pub use client::*;
pub use gateway::*;
pub use http::*;
pub use process::*;
pub use spawned::*;
pub use tenant::*;
pub use testbed::*;

/// Declares one integration test and its prelude: see this module's header for the forms.
macro_rules! it_test {
    (
        $name:ident,
        $(mtswarm_only($what:literal),)?
        $(lock($lock:path),)?
        $(gw = $opts:expr,)?
        |$t:ident $(, $($param:ident)+)*| $body:block
    ) => {
        #[test]
        fn $name() {
            $(
                if $crate::support::skip_in_direct_mode($what) {
                    return;
                }
            )?
            $(let _lock = $lock();)?
            let $t = $crate::support::Test::new();
            $crate::support::it_test!(@gateway $t, [$($opts)?], [$($($param)+),*], $body)
        }
    };
    (@gateway $t:ident, [], [], $body:block) => {
        $body
    };
    (@gateway $t:ident, [$($opts:expr)?], [mut $gw:ident $(, $client:ident)*], $body:block) => {{
        let mut $gw = $crate::support::it_test!(@start $t, $($opts)?);
        $(let $client = $gw.client_named(stringify!($client));)*
        $body
    }};
    (@gateway $t:ident, [$($opts:expr)?], [$gw:ident $(, $client:ident)*], $body:block) => {{
        let $gw = $crate::support::it_test!(@start $t, $($opts)?);
        $(let $client = $gw.client_named(stringify!($client));)*
        $body
    }};
    (@start $t:ident,) => {
        $t.gateway()
    };
    (@start $t:ident, $opts:expr) => {
        $crate::support::Gateway::start(&$t, $opts)
    };
}
pub(crate) use it_test;
