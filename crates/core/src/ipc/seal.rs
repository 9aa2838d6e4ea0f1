//! Request heads authenticated for one daemon process group: the Apache side appends an
//! HMAC-SHA256 over the group's name and the head, keyed with the group's secret; a daemon
//! process runs only a head that carries its own group's tag. A process of another group
//! (which knows its own secret, and can connect to any socket its user may reach) can
//! therefore neither forge a head for this group nor replay one it was sent.

use super::IpcError;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const TAG_LEN: usize = 32;

fn mac(key: &[u8], group: &str) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(&(group.len() as u32).to_le_bytes());
    m.update(group.as_bytes());
    m
}

/// Appends the tag of `head` for `group` under `key`.
pub fn seal(key: &[u8], group: &str, head: &mut Vec<u8>) {
    let mut m = mac(key, group);
    m.update(head);
    let tag = m.finalize().into_bytes();
    head.extend_from_slice(&tag);
}

/// The head inside `sealed` if its tag is right for `group` under `key` (checked in constant
/// time).
pub fn open<'a>(key: &[u8], group: &str, sealed: &'a [u8]) -> Result<&'a [u8], IpcError> {
    let split = sealed
        .len()
        .checked_sub(TAG_LEN)
        .ok_or(IpcError::Truncated)?;
    let (head, tag) = sealed.split_at(split);
    let mut m = mac(key, group);
    m.update(head);
    m.verify_slice(tag)
        .map_err(|_| IpcError::Invalid("request head tag (not sealed for this group)"))?;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_right_group_and_key_open_a_head() {
        let mut h = b"REQUEST_METHOD=GET".to_vec();
        seal(b"secret-a", "a", &mut h);
        assert_eq!(open(b"secret-a", "a", &h).unwrap(), b"REQUEST_METHOD=GET");
        assert!(
            open(b"secret-b", "b", &h).is_err(),
            "replayed into another group"
        );
        assert!(
            open(b"secret-a", "b", &h).is_err(),
            "same key, another group"
        );
        let mut forged = h.clone();
        forged[0] ^= 1;
        assert!(open(b"secret-a", "a", &forged).is_err());
        assert!(open(b"secret-a", "a", &h[..10]).is_err());
    }
}
