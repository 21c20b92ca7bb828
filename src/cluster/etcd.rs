//! A small etcd v3 client over etcd's JSON gateway (HTTP/1.1, keys and values in base64), with only what
//! discovery, `join` and the managers' election need: list a prefix, put with a lease, grant and renew a lease,
//! delete, and two transactions (create keys unless one exists; read keys at one revision).
//!
//! Every call opens its own connection and runs under a deadline: a hung etcd delays one call, never
//! mtswarm. With several endpoints, a call goes to the first one that answers; an endpoint that cannot be
//! reached or does not answer in time is skipped, which is safe because every operation here is idempotent
//! (a creation retried on another endpoint finds its own key: the caller compares the lease).
//! The gateway's paths are those of etcd 3.4 (`/v3/kv/range`, `/v3/kv/put`, `/v3/kv/deleterange`,
//! `/v3/kv/txn`, `/v3/lease/grant`, `/v3/lease/keepalive`, `/v3/lease/revoke`), which 3.5 still serves.

use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpStream;

/// The largest answer read: a node list of thousands of engines fits many times over.
const MAX_ANSWER: usize = 16 << 20;

/// Why an etcd call failed.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// No endpoint answered: each refused the connection, broke it, or did not answer within the timeout.
    /// A write may or may not have happened.
    #[error("no etcd endpoint answered {path}: {attempts}")]
    Unavailable { path: &'static str, attempts: String },
    /// etcd answered with an error: the gRPC status that the gateway carries in its JSON body.
    #[error("etcd {endpoint} refused {path} ({status}): {message}")]
    Refused { endpoint: String, path: &'static str, status: StatusCode, message: String },
    /// etcd answered with something other than the JSON its gateway documents.
    #[error("etcd {endpoint} answered {path} with something unexpected: {cause}")]
    BadAnswer { endpoint: String, path: &'static str, cause: String },
}

/// One key and its value, as a range lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// The lease the key is attached to; 0 for none.
    pub lease: i64,
    /// The revision that created the key: it changes when the key is deleted and made again.
    pub create_revision: i64,
}

/// A granted lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub id: i64,
    /// The TTL etcd granted, which may be longer than the one asked for (etcd has a minimum).
    pub ttl: Duration,
}

/// An etcd cluster, reached through its client endpoints.
#[derive(Debug, Clone)]
pub struct Etcd {
    /// `host:port` of each client endpoint, tried in order.
    endpoints: Vec<String>,
    /// The deadline of one request to one endpoint, connection included.
    timeout: Duration,
}

impl Etcd {
    pub fn new(endpoints: Vec<String>, timeout: Duration) -> Etcd {
        Etcd { endpoints, timeout }
    }

    /// Every key that starts with `prefix`, in key order, with its value and lease.
    pub async fn range_prefix(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, EtcdError> {
        const PATH: &str = "/v3/kv/range";
        let body = json!({ "key": base64::encode(prefix), "range_end": base64::encode(&prefix_end(prefix)) });
        let (endpoint, answer): (_, RawRange) = self.call(PATH, body).await?;
        answer.decode(&endpoint, PATH)
    }

    /// Creates every key of `puts` on `lease` in one transaction, unless `guard` (the first of them, usually)
    /// exists. Returns the revision of the creation, or the keys `read` as they are when `guard` existed.
    pub async fn create_unless_exists(
        &self,
        guard: &[u8],
        puts: &[(&[u8], &[u8])],
        lease: i64,
        read: &[&[u8]],
    ) -> Result<Result<i64, Vec<Option<KeyValue>>>, EtcdError> {
        let compare = json!([{
            "key": base64::encode(guard), "result": "EQUAL", "target": "CREATE", "create_revision": "0"
        }]);
        let success: Vec<_> = puts
            .iter()
            .map(|(k, v)| {
                json!({"request_put": {
                    "key": base64::encode(k), "value": base64::encode(v), "lease": lease.to_string()
                }})
            })
            .collect();
        let answer = self.txn(compare, success, read_ops(read)).await?;
        match answer.succeeded {
            true => Ok(Ok(answer.revision)),
            false => Ok(Err(answer.ranges)),
        }
    }

    /// The keys `read`, read together (one revision): `None` for a key that does not exist.
    pub async fn get_all(&self, read: &[&[u8]]) -> Result<Vec<Option<KeyValue>>, EtcdError> {
        Ok(self.txn(json!([]), read_ops(read), Vec::new()).await?.ranges)
    }

    /// One transaction; the answer's revision, whether the comparison held, and the first key of each range
    /// answered.
    async fn txn(
        &self,
        compare: serde_json::Value,
        success: Vec<serde_json::Value>,
        failure: Vec<serde_json::Value>,
    ) -> Result<TxnAnswer, EtcdError> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            header: Header,
            #[serde(default)]
            succeeded: bool,
            #[serde(default)]
            responses: Vec<Response>,
        }
        #[derive(Deserialize, Default)]
        struct Header {
            #[serde(default)]
            revision: Int64,
        }
        #[derive(Deserialize)]
        struct Response {
            response_range: Option<RawRange>,
        }
        const PATH: &str = "/v3/kv/txn";
        let body = json!({ "compare": compare, "success": success, "failure": failure });
        let (endpoint, answer): (_, Answer) = self.call(PATH, body).await?;
        let mut ranges = Vec::new();
        for r in answer.responses {
            if let Some(range) = r.response_range {
                ranges.push(range.decode(&endpoint, PATH)?.into_iter().next());
            }
        }
        Ok(TxnAnswer { revision: answer.header.revision.0, succeeded: answer.succeeded, ranges })
    }

    /// Sets `key` to `value`, attached to `lease` when given (the key then goes when the lease ends).
    pub async fn put(&self, key: &[u8], value: &[u8], lease: Option<i64>) -> Result<(), EtcdError> {
        let mut body = json!({ "key": base64::encode(key), "value": base64::encode(value) });
        if let Some(id) = lease {
            // int64 fields travel as strings in the gateway's JSON, as it writes them itself.
            body["lease"] = id.to_string().into();
        }
        let (_, _): (_, serde_json::Value) = self.call("/v3/kv/put", body).await?;
        Ok(())
    }

    /// Deletes `key`; true if it existed.
    pub async fn delete(&self, key: &[u8]) -> Result<bool, EtcdError> {
        Ok(self.delete_range(json!({ "key": base64::encode(key) })).await? > 0)
    }

    /// Deletes every key that starts with `prefix`; returns how many there were.
    pub async fn delete_prefix(&self, prefix: &[u8]) -> Result<u64, EtcdError> {
        self.delete_range(json!({ "key": base64::encode(prefix), "range_end": base64::encode(&prefix_end(prefix)) }))
            .await
    }

    async fn delete_range(&self, body: serde_json::Value) -> Result<u64, EtcdError> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            deleted: Int64,
        }
        let (_, answer): (_, Answer) = self.call("/v3/kv/deleterange", body).await?;
        Ok(answer.deleted.0.max(0) as u64)
    }

    /// A new lease of `ttl` (whole seconds, at least one).
    pub async fn grant(&self, ttl: Duration) -> Result<Lease, EtcdError> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(rename = "ID", default)]
            id: Int64,
            #[serde(rename = "TTL", default)]
            ttl: Int64,
        }
        const PATH: &str = "/v3/lease/grant";
        let (endpoint, answer): (_, Answer) =
            self.call(PATH, json!({ "TTL": ttl.as_secs().max(1).to_string() })).await?;
        if answer.id.0 == 0 || answer.ttl.0 <= 0 {
            let cause = format!("no lease in the answer (ID {}, TTL {})", answer.id.0, answer.ttl.0);
            return Err(EtcdError::BadAnswer { endpoint, path: PATH, cause });
        }
        Ok(Lease { id: answer.id.0, ttl: Duration::from_secs(answer.ttl.0 as u64) })
    }

    /// Renews `lease` once. `None` when etcd no longer has it (it expired, was revoked, or etcd lost it):
    /// keys attached to it are gone.
    pub async fn keepalive(&self, lease: i64) -> Result<Option<Duration>, EtcdError> {
        // The gateway maps the bidirectional stream onto one request and a stream of `{"result": ...}` or
        // `{"error": ...}` objects; one renewal in the request body gives one object in the answer.
        #[derive(Deserialize)]
        struct Answer {
            result: Option<Renewal>,
            error: Option<serde_json::Value>,
        }
        #[derive(Deserialize)]
        struct Renewal {
            #[serde(rename = "TTL", default)]
            ttl: Int64,
        }
        const PATH: &str = "/v3/lease/keepalive";
        let (endpoint, answer): (_, Answer) = self.call(PATH, json!({ "ID": lease.to_string() })).await?;
        match (answer.result, answer.error) {
            // etcd answers a lease it does not know with a TTL of 0, which the JSON leaves out.
            (Some(r), _) if r.ttl.0 <= 0 => Ok(None),
            (Some(r), _) => Ok(Some(Duration::from_secs(r.ttl.0 as u64))),
            (None, Some(e)) => Err(EtcdError::Refused {
                endpoint,
                path: PATH,
                status: StatusCode::OK,
                message: e.get("message").and_then(|m| m.as_str()).map_or_else(|| e.to_string(), str::to_string),
            }),
            (None, None) => {
                Err(EtcdError::BadAnswer { endpoint, path: PATH, cause: "neither result nor error".into() })
            }
        }
    }

    /// Ends `lease` now, deleting the keys attached to it.
    pub async fn revoke(&self, lease: i64) -> Result<(), EtcdError> {
        let (_, _): (_, serde_json::Value) = self.call("/v3/lease/revoke", json!({ "ID": lease.to_string() })).await?;
        Ok(())
    }

    /// POSTs `body` to `path` on the first endpoint that answers; returns that endpoint and the first JSON
    /// object of its answer.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        path: &'static str,
        body: serde_json::Value,
    ) -> Result<(String, T), EtcdError> {
        let body = Bytes::from(body.to_string());
        let mut attempts = Vec::new();
        for endpoint in &self.endpoints {
            let (status, bytes) = match tokio::time::timeout(self.timeout, post(endpoint, path, body.clone())).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(cause)) => {
                    attempts.push(format!("{endpoint}: {cause}"));
                    continue;
                }
                Err(_) => {
                    attempts.push(format!("{endpoint}: no answer within {} s", self.timeout.as_secs_f32()));
                    continue;
                }
            };
            let endpoint = endpoint.clone();
            // The keepalive answer is a stream of objects; every other answer is one.
            let first = serde_json::Deserializer::from_slice(&bytes).into_iter::<serde_json::Value>().next();
            let value = match first {
                Some(Ok(v)) => v,
                Some(Err(e)) => {
                    let cause = format!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes).trim());
                    return Err(EtcdError::BadAnswer { endpoint, path, cause });
                }
                None => return Err(EtcdError::BadAnswer { endpoint, path, cause: "an empty answer".into() }),
            };
            if !status.is_success() {
                let message = value
                    .get("message")
                    .or_else(|| value.get("error"))
                    .and_then(|m| m.as_str())
                    .map_or_else(|| value.to_string(), str::to_string);
                return Err(EtcdError::Refused { endpoint, path, status, message });
            }
            return match serde_json::from_value(value) {
                Ok(answer) => Ok((endpoint, answer)),
                Err(e) => Err(EtcdError::BadAnswer { endpoint, path, cause: e.to_string() }),
            };
        }
        Err(EtcdError::Unavailable { path, attempts: attempts.join("; ") })
    }
}

/// What a transaction answered.
struct TxnAnswer {
    revision: i64,
    succeeded: bool,
    ranges: Vec<Option<KeyValue>>,
}

/// A range request of each key, for a transaction.
fn read_ops(keys: &[&[u8]]) -> Vec<serde_json::Value> {
    keys.iter().map(|k| json!({"request_range": {"key": base64::encode(k)}})).collect()
}

/// A range's answer as the gateway writes it.
#[derive(Deserialize)]
struct RawRange {
    #[serde(default)]
    kvs: Vec<RawKv>,
}

#[derive(Deserialize)]
struct RawKv {
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    lease: Int64,
    #[serde(default)]
    create_revision: Int64,
}

impl RawRange {
    fn decode(&self, endpoint: &str, path: &'static str) -> Result<Vec<KeyValue>, EtcdError> {
        let decode = |s: &str| {
            base64::decode(s).map_err(|cause| EtcdError::BadAnswer { endpoint: endpoint.to_string(), path, cause })
        };
        self.kvs
            .iter()
            .map(|kv| {
                Ok(KeyValue {
                    key: decode(&kv.key)?,
                    value: decode(&kv.value)?,
                    lease: kv.lease.0,
                    create_revision: kv.create_revision.0,
                })
            })
            .collect()
    }
}

/// One POST on a connection of its own; the status and the whole answer.
async fn post(endpoint: &str, path: &str, body: Bytes) -> Result<(StatusCode, Bytes), String> {
    let stream = TcpStream::connect(endpoint).await.map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| super::node::error_chain(&e))?;
    // The connection task ends with the exchange, or when the caller's deadline drops the future.
    let conn = tokio::spawn(conn);
    let req = Request::post(path)
        .header(header::HOST, endpoint)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    let result = async {
        let resp = sender.send_request(req).await.map_err(|e| super::node::error_chain(&e))?;
        let status = resp.status();
        let bytes = Limited::new(resp.into_body(), MAX_ANSWER).collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((status, bytes))
    }
    .await;
    conn.abort();
    result
}

/// The end of the range of keys that start with `prefix`: the prefix with its last byte that is not 0xff
/// incremented (and what follows dropped), or `\0` (every key) when there is no such byte.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// An int64 as the gateway writes it: a JSON string of digits (a number is accepted too).
#[derive(Debug, Default, Clone, Copy)]
struct Int64(i64);

impl<'de> Deserialize<'de> for Int64 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Int64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Number(i64),
            Text(String),
        }
        match Either::deserialize(d)? {
            Either::Number(n) => Ok(Int64(n)),
            Either::Text(s) => s.parse().map(Int64).map_err(serde::de::Error::custom),
        }
    }
}

/// Standard base64 with padding, as the gateway encodes `bytes` fields. Small enough to keep here rather
/// than add a dependency for two functions.
mod base64 {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    pub fn decode(text: &str) -> Result<Vec<u8>, String> {
        let bytes = text.as_bytes();
        if !bytes.len().is_multiple_of(4) {
            return Err(format!("base64 of {} characters, not a multiple of 4", bytes.len()));
        }
        let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
        for (q, quad) in bytes.chunks(4).enumerate() {
            let last = q == bytes.len() / 4 - 1;
            let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
            if pad > 2 || (pad > 0 && !last) {
                return Err("misplaced '=' in base64".to_string());
            }
            let mut n = 0u32;
            for &c in &quad[..4 - pad] {
                let v = ALPHABET
                    .iter()
                    .position(|&a| a == c)
                    .ok_or_else(|| format!("{:?} is not a base64 character", c as char))?;
                n = (n << 6) | v as u32;
            }
            n <<= 6 * pad as u32;
            out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `expected` is the decoded bytes (which must also encode back to `encoded`) or a part of the error.
    fn check(encoded: &str, expected: Result<&[u8], &str>) {
        let got = base64::decode(encoded);
        match expected {
            Ok(bytes) => {
                assert_eq!(got.as_deref(), Ok(bytes), "decode {encoded}");
                assert_eq!(base64::encode(bytes), encoded, "encode {bytes:?}");
            }
            Err(part) => assert!(got.as_ref().is_err_and(|e| e.contains(part)), "{encoded}: {got:?}"),
        }
    }

    #[test]
    fn base64_round_trips_and_refuses_garbage() {
        check("", Ok(b""));
        check("Zg==", Ok(b"f"));
        check("Zm8=", Ok(b"fo"));
        check("Zm9v", Ok(b"foo"));
        check("Zm9vYg==", Ok(b"foob"));
        check("L210c3dhcm0tdGVzdC1wcm9iZS9h", Ok(b"/mtswarm-test-probe/a"));
        check("//4APj8=", Ok(&[0xff, 0xfe, 0x00, 0x3e, 0x3f]));
        check("Zg=", Err("multiple of 4"));
        check("Z===", Err("misplaced"));
        check("Zg==Zg==", Err("misplaced"));
        check("Zm9!", Err("'!' is not"));
    }

    #[test]
    fn ranges_end_after_the_prefix() {
        let table: &[(&[u8], &[u8])] = &[(b"/p/", b"/p0"), (b"a\xff", b"b"), (b"\xff\xff", b"\0"), (b"", b"\0")];
        for (prefix, end) in table {
            assert_eq!(prefix_end(prefix), *end, "{prefix:?}");
        }
    }
}
