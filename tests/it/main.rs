//! The integration tests: one binary (matklad's "Delete Cargo Integration Tests").
//!
//! Each test starts the real `mtswarm` on port 0 in front of a real engine of the test bed
//! (`scripts/testbed.sh up`) and drives it with the real docker CLI 28 and raw HTTP. Tests run in parallel:
//! every test has its own tenants and object names (see `support::Test`). `MTSWARM_IT_DIRECT=1` runs the same
//! tests against the engine itself, to check the tests' expectations against dockerd.

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
mod resources;
mod streams;
mod surface;
mod tls;
