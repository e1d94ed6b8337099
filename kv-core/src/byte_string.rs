//! Serde for a byte string (`Vec<u8>`) as one run of bytes: `#[serde(with = "byte_string")]`.
//!
//! serde treats a `Vec<u8>` as a sequence: postcard then writes and reads it one element (one
//! call) per byte. As serde bytes it is one copy. postcard encodes both the same way, a varint
//! length and then the bytes, so a field may switch without changing a byte of any stored
//! record or message (the golden tests in kv-node pin them), while keys and values are
//! encoded into the log and decoded from it, from peers and from snapshots several times
//! faster.

use serde::Deserializer;
use serde::Serializer;
use serde::de::SeqAccess;
use serde::de::Visitor;

/// Serializes `bytes` as serde bytes.
pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(bytes)
}

/// Deserializes serde bytes (or, from a format that writes byte strings as sequences, a
/// sequence of bytes) into a `Vec<u8>`.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    deserializer.deserialize_byte_buf(ByteString)
}

struct ByteString;

impl<'de> Visitor<'de> for ByteString {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
        Ok(bytes.to_vec())
    }

    fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(bytes)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        // Never trust a length from outside for the allocation: grow as bytes arrive.
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element()? {
            bytes.push(b);
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde::Serialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct AsSeq {
        a: Vec<u8>,
        b: u32,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct AsBytes {
        #[serde(with = "super")]
        a: Vec<u8>,
        b: u32,
    }

    /// The encoding is the one of a plain `Vec<u8>`, both ways, for every length class of the
    /// varint prefix.
    #[test]
    fn postcard_bytes_are_those_of_a_vec() {
        for len in [0, 1, 127, 128, 300, 20_000] {
            let a: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let plain = postcard::to_allocvec(&AsSeq { a: a.clone(), b: 9 }).unwrap();
            let fast = postcard::to_allocvec(&AsBytes { a: a.clone(), b: 9 }).unwrap();
            assert_eq!(plain, fast);
            assert_eq!(postcard::from_bytes::<AsBytes>(&plain).unwrap(), AsBytes { a, b: 9 });
        }
        // A truncated byte string is an error, not a panic.
        let bytes = postcard::to_allocvec(&AsSeq { a: vec![1; 10], b: 1 }).unwrap();
        assert!(postcard::from_bytes::<AsBytes>(&bytes[..5]).is_err());
    }
}
