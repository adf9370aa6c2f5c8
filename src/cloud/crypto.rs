//! The hash and HMAC primitives every cloud's signature is built from, in one place so each
//! signer reads as its scheme and nothing else.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// hex(sha256("")), the payload hash of an empty body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// SHA-256.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Lower-case hex SHA-1.
pub fn sha1_hex(data: &[u8]) -> String {
    hex::encode(Sha1::digest(data))
}

/// HMAC-SHA256.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// HMAC-SHA1.
pub fn hmac_sha1(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = match Hmac::<Sha1>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The canonical-headers block (`name:value\n` each) and the signed-headers list (`a;b`) of
/// already-normalised (lower-case name, value) pairs, sorted by name: the part every
/// HMAC-SHA256 request signature (Aliyun V3, TC3, SigV4, Huawei SDK) shares.
pub fn canonical_headers(mut headers: Vec<(String, String)>) -> (String, String) {
    headers.sort();
    let mut block = String::with_capacity(headers.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
    let mut signed = String::with_capacity(headers.iter().map(|(k, _)| k.len() + 1).sum());
    for (k, v) in &headers {
        block.push_str(k);
        block.push(':');
        block.push_str(v);
        block.push('\n');
        if !signed.is_empty() {
            signed.push(';');
        }
        signed.push_str(k);
    }
    (block, signed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_headers_are_sorted_with_their_list() {
        let (block, signed) = canonical_headers(vec![
            ("x-b".into(), "2".into()),
            ("host".into(), "h".into()),
        ]);
        assert_eq!(block, "host:h\nx-b:2\n");
        assert_eq!(signed, "host;x-b");
    }

    #[test]
    fn digests_match_known_answers() {
        assert_eq!(sha256_hex(b""), EMPTY_SHA256);
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        // RFC 4231 test case 2 and RFC 2202 test case 2.
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex::encode(hmac_sha1(b"Jefe", b"what do ya want for nothing?")),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }
}
