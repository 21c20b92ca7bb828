//! The integration tests: one binary (matklad's "Delete Cargo Integration Tests").
//!
//! Each test starts the real `mtswarm` on port 0 in front of a real engine of the test bed
//! (`scripts/testbed.sh up`) and drives it with the real docker CLI 28 and raw HTTP. Tests run in parallel:
//! every test has its own tenants and object names (see `support::Test`). `MTSWARM_IT_DIRECT=1` runs the same
//! tests against the engine itself, to check the tests' expectations against dockerd.
//!
//! # Writing a test
//!
//! Put it in the file of its subject (one file a concern, named after it) and write it with `it_test!`, which
//! writes the `#[test] fn` and the prelude (the forms are in `support`'s header):
//!
//! ```text
//! it_test!(a_tenant_sees_only_its_own_containers, mtswarm_only("tenant isolation"), |t, gw, alice, bob| {
//!     let c = t.name("web");
//!     alice.ok(&["run", "-d", "--name", &c, image(), "sleep", "300"]);
//!     assert_eq!(bob.ok(&["ps", "-aq"]), "");
//! });
//! ```
//!
//! - `t` is the test's `Test`: name every object with `t.name("...")` (or `t.label()` for a prune), so that
//!   parallel tests never meet and the cleanup finds what the test made, even when it fails.
//! - `gw` is mtswarm with tenants alice and bob and an admin (`gw = GatewayOpts { .. },` for other flags, env,
//!   tenants or engines); `alice`, `bob`, `admin` are their docker clients: `ok` asserts success and returns
//!   stdout, `fails` asserts failure and returns stderr, `http()` is raw HTTP with the same credentials.
//! - `mtswarm_only("what")` when dockerd has no such behaviour: the test then returns at once in direct mode.
//! - Never sleep to wait: `poll` (or `Spawned::expect_line` for a stream) with a bound; a command that hangs
//!   fails after `CLI_TIMEOUT`.
//! - A test that needs node1 or node2, or Keystone, takes their lock (`lock(cluster_lock)`,
//!   `lock(keystone_lock)`); see the locks' definitions for why.
//!
//! Run them against the test bed: `set -a; . /run/mtswarm-testbed/env; set +a; cargo test --release --test it`
//! (`MTSWARM_IT_SHOW_LOGS=1` prints every gateway's log, not only a failed test's).

mod support;

mod apifilter;
mod auth;
mod cluster;
mod compose;
mod containers;
mod decoding;
mod discovery;
mod escape;
mod failures;
mod hardening;
mod images;
mod isolation;
mod keystone;
mod networks;
mod operations;
mod policy;
mod protocol;
mod replication;
mod replication_attacks;
mod resources;
mod streams;
mod surface;
mod tls;
