//! Random ids and bearer tokens: hex from the OS-seeded generator, so they are URL-, header- and
//! file-safe without escaping.

use rand::RngCore as _;

/// A bearer token: 32 random bytes (256 bits), 64 hex digits.
pub fn new_token() -> String {
    random_hex::<32>()
}

/// An opaque id (idempotency keys and the like): 16 random bytes, 32 hex digits.
pub fn new_id() -> String {
    random_hex::<16>()
}

fn random_hex<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_ids_are_hex_of_their_length_and_differ() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(new_id().len(), 32);
        assert_ne!(new_id(), new_id());
    }
}
