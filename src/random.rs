//! Randomness from the kernel, for tokens and for names mtswarm makes up.

use std::io::Read;

/// `N` random bytes from `/dev/urandom`.
pub fn bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut buf = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf)
}
