//! Answers for the endpoints of features mtswarm's engines have off, in the words of a dockerd that has them
//! off: swarm mode (mtswarm is a Swarm classic cluster; its engines are in no swarm) and checkpoints (an
//! experimental feature). Clients and their test suites accept exactly these answers (docker-py's teardown
//! calls `POST /swarm/leave?force=true` and accepts 503), so a 404 would break them. Pure.

use http::StatusCode;

use super::{ApiError, SwarmOp};

/// dockerd's `errNoManager` for a node that is in no swarm.
pub const NOT_A_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" \
                                 to connect this node to swarm and try again.";

/// dockerd's `errNoSwarm`, the answer to leaving when in no swarm.
pub const NOT_IN_A_SWARM: &str = "This node is not part of a swarm";

/// Swarm mode is not offered: an engine would init or join, mtswarm cannot make its cluster one.
pub const NO_SWARM_MODE: &str = "swarm mode is not available on this service: it is a Swarm classic cluster \
                                 (mtswarm), whose engines cannot init or join a swarm through it";

/// dockerd's answer to a checkpoint request without experimental mode.
pub const EXPERIMENTAL_OFF: &str = "This experimental feature is disabled by default. Start the Docker daemon in \
                                    experimental mode in order to enable it.";

/// The answer of a dockerd in no swarm to a swarm mode endpoint. `query` is the request's query string (logs
/// check their streams before anything else, as dockerd does).
pub fn swarm(op: SwarmOp, query: &[(String, String)]) -> ApiError {
    use SwarmOp as S;
    let on = |key: &str| super::query::bool_value(query, key);
    match op {
        S::Leave => ApiError::unavailable(NOT_IN_A_SWARM),
        S::Init | S::Join => ApiError::unavailable(NO_SWARM_MODE),
        S::ServiceLogs | S::TaskLogs if !on("stdout") && !on("stderr") => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Bad parameters: you must choose at least one stream")
        }
        _ => ApiError::unavailable(NOT_A_MANAGER),
    }
}

/// The answer to any checkpoint endpoint.
pub fn checkpoint() -> ApiError {
    ApiError::new(StatusCode::NOT_IMPLEMENTED, EXPERIMENTAL_OFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(op: SwarmOp, query: &str, expected: (u16, &str)) {
        let pairs = crate::api::query::pairs(Some(query));
        let e = swarm(op, &pairs);
        assert_eq!((e.status.as_u16(), e.message.as_str()), expected, "{op:?} {query}");
    }

    #[test]
    fn answers_as_a_dockerd_in_no_swarm() {
        check(SwarmOp::Leave, "force=true", (503, NOT_IN_A_SWARM));
        check(SwarmOp::Inspect, "", (503, NOT_A_MANAGER));
        check(SwarmOp::ServiceList, "", (503, NOT_A_MANAGER));
        check(SwarmOp::Init, "", (503, NO_SWARM_MODE));
        check(SwarmOp::TaskLogs, "", (500, "Bad parameters: you must choose at least one stream"));
        check(SwarmOp::ServiceLogs, "stdout=1", (503, NOT_A_MANAGER));
    }
}
