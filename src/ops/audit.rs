//! The audit log: one JSON object per line for every request that changes something (any method but GET and
//! HEAD) and every denial, 401s included.
//!
//! Requests never wait for the file: a record is handed to a bounded queue ([`QUEUE`]) that one writer thread
//! empties. When the queue is full (a slow or stuck disk) the record is dropped and counted
//! (`mtswarm_audit_dropped_total`); when the file refuses a write (a full disk) that is counted too
//! (`mtswarm_audit_errors_total`) and logged, once until writes succeed again. SIGHUP reopens the file, for
//! logrotate.
//!
//! A record holds no token, no password and no `X-Registry-Auth`: it is made from the request's context (ids,
//! names, the status), never from its headers or body.

use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::time::SystemTime;

use crate::ops::metrics::metrics;

/// How many records may wait for the writer.
pub const QUEUE: usize = 16 * 1024;

/// Where audit records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditTarget {
    Stderr,
    File(PathBuf),
}

/// One request, as audited.
#[derive(Debug, Clone)]
pub struct Record {
    pub request_id: u64,
    pub tenant: Option<String>,
    pub remote: Option<String>,
    pub method: String,
    pub path: String,
    pub endpoint: Option<&'static str>,
    /// The object as the tenant named it.
    pub object: Option<String>,
    pub node: Option<String>,
    /// The denial's reason kind and message, when refused.
    pub denied: Option<(&'static str, String)>,
    pub status: u16,
    pub duration_ms: f64,
}

impl Record {
    fn to_line(&self, at: SystemTime) -> String {
        let (decision, reason, kind) = match &self.denied {
            Some((kind, message)) => ("denied", Some(message.as_str()), Some(*kind)),
            None => ("allowed", None, None),
        };
        let mut line = serde_json::json!({
            "time": rfc3339_ms(at),
            "request_id": self.request_id,
            "tenant": self.tenant,
            "remote": self.remote,
            "method": self.method,
            "path": self.path,
            "endpoint": self.endpoint,
            "object": self.object,
            "node": self.node,
            "decision": decision,
            "reason": reason,
            "denial": kind,
            "status": self.status,
            "duration_ms": (self.duration_ms * 1000.0).round() / 1000.0,
        })
        .to_string();
        line.push('\n');
        line
    }
}

enum Msg {
    Line(String),
    Reopen,
}

/// The handle requests write through; cheap to share.
pub struct Audit {
    tx: SyncSender<Msg>,
    /// Records are being dropped: said once in the log, then only counted, until one is queued again.
    dropping: std::sync::atomic::AtomicBool,
}

impl Audit {
    /// Opens the target (an error here is a start-up error) and starts the writer thread.
    pub fn open(target: AuditTarget) -> Result<Audit, String> {
        let out = Out::open(&target)?;
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("mtswarm-audit".into())
            .spawn(move || writer(target, out, rx))
            .map_err(|e| format!("cannot start the audit writer: {e}"))?;
        Ok(Audit { tx, dropping: std::sync::atomic::AtomicBool::new(false) })
    }

    pub fn record(&self, record: Record) {
        let line = record.to_line(SystemTime::now());
        match self.tx.try_send(Msg::Line(line)) {
            Ok(()) => self.dropping.store(false, std::sync::atomic::Ordering::Relaxed),
            Err(TrySendError::Full(_)) => {
                metrics().audit_dropped.inc();
                if !self.dropping.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    tracing::warn!(
                        request_id = record.request_id,
                        "audit records dropped: the audit log is not keeping up (counted in mtswarm_audit_dropped_total)"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                metrics().audit_errors.inc();
            }
        }
    }

    /// Reopens the file at the next write (logrotate moved it).
    pub fn reopen(&self) {
        let _ = self.tx.try_send(Msg::Reopen);
    }
}

enum Out {
    Stderr,
    File(std::fs::File),
}

impl Out {
    fn open(target: &AuditTarget) -> Result<Out, String> {
        match target {
            AuditTarget::Stderr => Ok(Out::Stderr),
            AuditTarget::File(path) => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map(Out::File)
                .map_err(|e| format!("--audit-log {}: {e}", path.display())),
        }
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Out::Stderr => std::io::stderr().lock().write_all(bytes),
            Out::File(f) => f.write_all(bytes),
        }
    }
}

fn writer(target: AuditTarget, mut out: Out, rx: Receiver<Msg>) {
    let mut failing = false;
    while let Ok(msg) = rx.recv() {
        // Lines waiting together go out in one write.
        let mut batch = Vec::new();
        let mut reopen = false;
        let mut add = |m: Msg, batch: &mut Vec<u8>| match m {
            Msg::Line(l) => batch.extend_from_slice(l.as_bytes()),
            Msg::Reopen => reopen = true,
        };
        add(msg, &mut batch);
        while batch.len() < 1 << 20 {
            match rx.try_recv() {
                Ok(m) => add(m, &mut batch),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            match out.write(&batch) {
                Ok(()) => failing = false,
                Err(e) => {
                    metrics().audit_errors.inc();
                    if !failing {
                        tracing::error!(cause = %e, "audit log write failed; records are lost until it works again");
                    }
                    failing = true;
                }
            }
        }
        if reopen {
            match Out::open(&target) {
                Ok(o) => {
                    out = o;
                    tracing::info!("audit log reopened");
                }
                Err(e) => {
                    metrics().audit_errors.inc();
                    tracing::error!(cause = %e, "audit log not reopened; writing to the file already open");
                }
            }
        }
    }
}

/// `2026-11-25T14:22:10.123Z`.
pub fn rfc3339_ms(at: SystemTime) -> String {
    let d = at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn check(secs: u64, millis: u64, expected: &str) {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis);
        assert_eq!(rfc3339_ms(at), expected);
    }

    #[test]
    fn formats_rfc3339_with_milliseconds() {
        check(0, 0, "1970-01-01T00:00:00.000Z");
        check(951_782_400, 5, "2000-02-29T00:00:00.005Z");
        check(1_700_000_000, 123, "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn a_record_is_one_json_line() {
        let r = Record {
            request_id: 7,
            tenant: None,
            remote: Some("127.0.0.1:5000".into()),
            method: "POST".into(),
            path: "/containers/create".into(),
            endpoint: Some("containerscreate"),
            object: Some("web".into()),
            node: None,
            denied: Some(("auth", "authentication required".into())),
            status: 401,
            duration_ms: 1.5,
        };
        let line = r.to_line(SystemTime::UNIX_EPOCH);
        assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["tenant"], serde_json::Value::Null);
        assert_eq!(v["decision"], "denied");
        assert_eq!(v["reason"], "authentication required");
        assert_eq!(v["status"], 401);
    }
}
