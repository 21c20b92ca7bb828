//! Small assertions on the CLI's text output.

/// The lines of `text`, trimmed, without empty ones (and without a pty's carriage returns).
pub fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim_matches(|c: char| c == '\r' || c.is_whitespace()).to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The lines of `text`, sorted.
pub fn sorted_lines(text: &str) -> Vec<String> {
    let mut v = lines(text);
    v.sort();
    v
}

/// Asserts that `items` holds `expected` in that order, other items allowed in between.
pub fn assert_subsequence(items: &[String], expected: &[&str]) {
    let mut it = items.iter();
    for want in expected {
        assert!(
            it.any(|item| item == want),
            "expected {expected:?} in this order within {items:?}; missing {want:?} (in order)"
        );
    }
}

/// Asserts that `s` is a full 64-hex-digit id.
pub fn assert_full_id(s: &str) {
    let id = s.strip_prefix("sha256:").unwrap_or(s);
    assert!(id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()), "not a 64-hex-digit id: {s:?}");
}
