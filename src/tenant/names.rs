//! Engine-side names. A tenant's object `web` is `t<len>-<tenant>-web` on the engine: the length makes the
//! mapping injective whatever characters tenant ids hold (`t5-a.b-c-x` can only be tenant `a.b-c`, name `x`),
//! so no two tenants' names can collide, and the result is a valid Docker name because tenant ids are.

/// The engine-side prefix of a tenant's names.
pub fn prefix(tenant: &str) -> String {
    format!("t{}-{}-", tenant.len(), tenant)
}

/// The engine-side name of a tenant's object.
pub fn scope(tenant: &str, name: &str) -> String {
    format!("{}{}", prefix(tenant), name)
}

/// The tenant's name for an engine-side name, if the tenant's prefix is on it. A leading `/` (container
/// names as the engine reports them) is kept.
pub fn unscope<'a>(tenant: &str, engine_name: &'a str) -> Option<std::borrow::Cow<'a, str>> {
    let (slash, bare) = match engine_name.strip_prefix('/') {
        Some(rest) => ("/", rest),
        None => ("", engine_name),
    };
    let rest = bare.strip_prefix(prefix(tenant).as_str())?;
    Some(if slash.is_empty() { rest.into() } else { format!("/{rest}").into() })
}

/// Unscopes every `/`-separated part of a container path such as a link's `/t5-alice-web/db`.
pub fn unscope_path(tenant: &str, path: &str) -> String {
    let p = prefix(tenant);
    path.split('/').map(|part| part.strip_prefix(p.as_str()).unwrap_or(part)).collect::<Vec<_>>().join("/")
}

/// Removes the tenant's prefix wherever it appears in a sentence, such as an engine's error message.
pub fn unscope_text(tenant: &str, text: &str) -> String {
    text.replace(&prefix(tenant), "")
}

/// A valid name for a container, network or volume as the client gives it (Docker's rule for containers).
pub fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

/// A name for an unnamed container, in Docker's `adjective_surname` style, unique enough to retry on.
pub fn generated_name() -> std::io::Result<String> {
    const LEFT: [&str; 16] = [
        "brave", "calm", "eager", "fervent", "gallant", "happy", "jolly", "keen", "lucid", "merry", "nifty", "quirky",
        "serene", "tender", "vibrant", "zealous",
    ];
    const RIGHT: [&str; 16] = [
        "babbage", "curie", "darwin", "euler", "fermi", "gauss", "hopper", "kepler", "lovelace", "noether", "pascal",
        "ritchie", "shannon", "turing", "volta", "wozniak",
    ];
    let r: [u8; 4] = crate::random::bytes()?;
    Ok(format!(
        "{}_{}{}",
        LEFT[(r[0] % 16) as usize],
        RIGHT[(r[1] % 16) as usize],
        u16::from_le_bytes([r[2], r[3]]) % 1000
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoping_is_injective_and_reversible() {
        let cases = [("alice", "web"), ("a.b-c", "x"), ("a", "b-c-x"), ("t1-a", "web"), ("0f3c", "data")];
        let scoped: Vec<String> = cases.iter().map(|(t, n)| scope(t, n)).collect();
        for (i, (t, n)) in cases.iter().enumerate() {
            assert_eq!(unscope(t, &scoped[i]).as_deref(), Some(*n));
            assert_eq!(unscope(t, &format!("/{}", scoped[i])).as_deref(), Some(format!("/{n}").as_str()));
            assert!(valid_name(&scoped[i]), "{}", scoped[i]);
        }
        assert_eq!(scope("alice", "web"), "t5-alice-web");
        // Another tenant's name does not unscope, even when one id is a prefix of the other.
        assert_eq!(unscope("alic", &scope("alice", "web")), None);
        assert_eq!(unscope("alice", "t4-alic-e-web"), None);
        assert_ne!(scope("a-b", "c"), scope("a", "b-c"));
    }

    #[test]
    fn unscopes_paths_and_text() {
        assert_eq!(unscope_path("alice", "/t5-alice-web/t5-alice-db"), "/web/db");
        assert_eq!(
            unscope_text("alice", r#"Conflict. The container name "/t5-alice-web" is already in use"#),
            r#"Conflict. The container name "/web" is already in use"#
        );
        assert!(valid_name("web_1.a-b"));
        assert!(!valid_name("-web") && !valid_name("") && !valid_name("a/b"));
        assert!(valid_name(&generated_name().unwrap()));
    }
}
