//! mtswarm's own token file, the embedded default backend:
//! `{"tokens": [{"tenant": "alice", "token": "plain"}, {"tenant": "bob", "sha256": "<64 hex>"}]}`.
//!
//! Only digests are kept in memory and compared, in constant time. The file is re-read when it
//! changes, so `mtswarm tokens add` takes effect without a restart.

use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::tenant::TenantId;

/// How often the file's modification time is looked at.
const RECHECK: Duration = Duration::from_secs(1);

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    tokens: Vec<Entry>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    tenant: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
}

/// The loaded file: each tenant with the digest of one token.
pub struct TokenFile {
    path: PathBuf,
    state: RwLock<Loaded>,
}

struct Loaded {
    entries: Entries,
    mtime: Option<SystemTime>,
    checked: Instant,
}

impl TokenFile {
    /// Loads the file; any problem is a start-up error that says how to make a good one.
    pub fn load(path: &Path) -> Result<TokenFile, String> {
        let (entries, mtime) = read(path)?;
        Ok(TokenFile {
            path: path.to_path_buf(),
            state: RwLock::new(Loaded { entries, mtime, checked: Instant::now() }),
        })
    }

    /// The tenant whose token this is, if any.
    pub fn tenant_of(&self, token: &str) -> Option<String> {
        self.reload_if_changed();
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        // Every entry is compared, whatever matched, so the time taken says nothing about the tokens.
        let mut found = None;
        for (tenant, d) in &state.entries {
            if bool::from(d.ct_eq(&digest)) && found.is_none() {
                found = Some(tenant.clone());
            }
        }
        found
    }

    /// Whether the file reads and parses now (the tokens in force stay so even when it does not).
    pub fn check(&self) -> Result<(), String> {
        read(&self.path).map(|_| ())
    }

    fn reload_if_changed(&self) {
        {
            let s = self.state.read().unwrap_or_else(|e| e.into_inner());
            if s.checked.elapsed() < RECHECK {
                return;
            }
        }
        let mut s = self.state.write().unwrap_or_else(|e| e.into_inner());
        s.checked = Instant::now();
        let mtime = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        if mtime == s.mtime {
            return;
        }
        match read(&self.path) {
            Ok((entries, mtime)) => {
                tracing::info!(file = %self.path.display(), tokens = entries.len(), "token file reloaded");
                s.entries = entries;
                s.mtime = mtime;
            }
            // A half-written or broken file must not lock everybody out: keep the tokens we had.
            Err(e) => tracing::warn!(cause = %e, "token file not reloaded; the previous tokens stay in force"),
        }
    }
}

/// Each tenant with its token's digest.
type Entries = Vec<(String, [u8; 32])>;

fn read(path: &Path) -> Result<(Entries, Option<SystemTime>), String> {
    let how = format!("make one with `mtswarm tokens add --tenant TENANT --file {}`", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| format!("token file {}: {e}; {how}", path.display()))?;
    let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let shape: FileShape = serde_json::from_str(&text).map_err(|e| {
        format!(
            "token file {}: {e}; expected {{\"tokens\": [{{\"tenant\": \"alice\", \"token\": \"SECRET\"}}, \
             {{\"tenant\": \"bob\", \"sha256\": \"64 HEX DIGITS\"}}]}}; {how}",
            path.display()
        )
    })?;
    let mut entries = Vec::with_capacity(shape.tokens.len());
    for (i, e) in shape.tokens.iter().enumerate() {
        let at = format!("token file {}: entry {} (tenant {:?})", path.display(), i + 1, e.tenant);
        let entry_error = |what: &str| format!("{at}: {what}; {how}");
        if !TenantId::valid(&e.tenant) {
            return Err(entry_error(
                "a tenant id is 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit",
            ));
        }
        let digest = match (&e.token, &e.sha256) {
            (Some(t), None) if !t.is_empty() => Sha256::digest(t.as_bytes()).into(),
            (None, Some(h)) => {
                let bytes = hex::decode(h).map_err(|_| entry_error("sha256 must be 64 hex digits"))?;
                <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| entry_error("sha256 must be 64 hex digits"))?
            }
            _ => return Err(entry_error("give exactly one of \"token\" or \"sha256\"")),
        };
        entries.push((e.tenant.clone(), digest));
    }
    Ok((entries, mtime))
}

/// `mtswarm tokens add`: a new random token for a tenant, stored only as its digest. Returns the token.
pub fn add_token(path: &Path, tenant: &str) -> Result<String, String> {
    if !TenantId::valid(tenant) {
        return Err(format!("--tenant {tenant:?}: a tenant id is 1 to 64 letters, digits, '_', '.' or '-'"));
    }
    let mut shape = if path.exists() {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str::<FileShape>(&text).map_err(|e| format!("{}: {e}", path.display()))?
    } else {
        FileShape { tokens: Vec::new() }
    };
    let raw: [u8; 32] = crate::random::bytes().map_err(|e| format!("no randomness: {e}"))?;
    let token = hex::encode(raw);
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    shape.tokens.push(Entry { tenant: tenant.to_string(), token: None, sha256: Some(digest) });
    let text = serde_json::to_string_pretty(&shape).map_err(|e| e.to_string())? + "\n";
    // Write beside, then rename: a running mtswarm never reads a half-written file.
    let tmp = path.with_extension("json.tmp");
    write_private(&tmp, &text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(token)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let p = dir.path().join("tokens.json");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn loads_plain_and_hashed_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let bob = hex::encode(Sha256::digest(b"bob-secret"));
        let p = write(
            &dir,
            &format!(
                r#"{{"tokens": [{{"tenant": "alice", "token": "a-secret"}}, {{"tenant": "bob", "sha256": "{bob}"}}]}}"#
            ),
        );
        let f = TokenFile::load(&p).unwrap();
        assert_eq!(f.tenant_of("a-secret").as_deref(), Some("alice"));
        assert_eq!(f.tenant_of("bob-secret").as_deref(), Some("bob"));
        assert_eq!(f.tenant_of("a-secre"), None);
        assert_eq!(f.tenant_of(""), None);
    }

    #[test]
    fn refuses_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let check = |text: &str, part: &str| {
            let p = write(&dir, text);
            let err = TokenFile::load(&p).err().unwrap_or_default();
            assert!(err.contains(part), "{text}: {err}");
            assert!(err.contains("mtswarm tokens add"), "{err}");
        };
        check(r#"{"tokne": []}"#, "unknown field `tokne`");
        check(r#"{"tokens": [{"tenant": "a", "token": "x", "sha256": "00"}]}"#, "exactly one of");
        check(r#"{"tokens": [{"tenant": "a b", "token": "x"}]}"#, "a tenant id is");
        check(r#"{"tokens": [{"tenant": "a", "sha256": "xyz"}]}"#, "64 hex digits");
        check("not json", "expected {");
        let missing = TokenFile::load(&dir.path().join("absent.json")).err().unwrap_or_default();
        assert!(missing.contains("mtswarm tokens add"), "{missing}");
    }

    #[test]
    fn add_stores_only_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.json");
        let token = add_token(&p, "carol").unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(!text.contains(&token));
        assert_eq!(TokenFile::load(&p).unwrap().tenant_of(&token).as_deref(), Some("carol"));
        let second = add_token(&p, "dave").unwrap();
        assert_eq!(TokenFile::load(&p).unwrap().tenant_of(&second).as_deref(), Some("dave"));
    }
}
