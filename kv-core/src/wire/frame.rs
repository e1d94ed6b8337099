//! Length-prefixed frames of the Raft port: encoding, and decoding from a buffer (kv-node reads
//! them from sockets with [`check_header`] first). Wire format: see the [module docs](super).
//!
//! ```text
//! +--------+---------+-------------+------------------------------------------+
//! | magic  | version | payload len | payload: postcard encoding of a          |
//! | "QKVR" | u16 LE  | u32 LE      | RaftRequest (client -> server) or a      |
//! |        |         | <= max      | RaftReply (server -> client)             |
//! +--------+---------+-------------+------------------------------------------+
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::RaftReply;
use super::RaftRequest;
use crate::raft::KvTypeConfig;

/// First bytes of every frame.
pub const MAGIC: [u8; 4] = *b"QKVR";
/// Version of the frame format and of every message it carries ([`super`]). Version 2: a
/// forward carries a run of operations, and errors tell "outcome unknown" apart.
pub const PROTOCOL_VERSION: u16 = 3;
/// Bytes before the payload: magic, version, payload length.
pub const HEADER_LEN: usize = 10;
/// Default bound on a frame's payload.
pub const DEFAULT_MAX_FRAME: u32 = 16 << 20;

/// Why a frame could not be read or decoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The connection failed or closed mid-frame.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer does not speak this protocol.
    #[error("bad frame magic {0:02x?}")]
    BadMagic([u8; 4]),
    /// The peer speaks another version of the protocol.
    #[error("unsupported protocol version {found} (this build speaks {PROTOCOL_VERSION})")]
    UnsupportedVersion {
        /// The version in the frame.
        found: u16,
    },
    /// The frame announces more bytes than allowed; nothing of that size was allocated.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Announced payload length.
        len: u32,
        /// The limit.
        max: u32,
    },
    /// The payload is not a valid message.
    #[error("malformed frame payload: {0}")]
    Malformed(String),
    /// A buffer ended before the frame did.
    #[error("truncated frame: {needed} more bytes needed")]
    Truncated {
        /// Bytes missing.
        needed: usize,
    },
}

/// Encodes `message` as one frame.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    // Serializing our own message types into a Vec cannot fail.
    let mut out = postcard::to_extend(message, out).expect("postcard encoding into a Vec cannot fail");
    let len = u32::try_from(out.len() - HEADER_LEN).expect("a frame is shorter than 4 GiB");
    out[6..HEADER_LEN].copy_from_slice(&len.to_le_bytes());
    out
}

/// Checks a frame header and returns the payload length it announces.
pub fn check_header(header: &[u8; HEADER_LEN], max: u32) -> Result<u32, FrameError> {
    let magic: [u8; 4] = header[..4].try_into().expect("4 bytes");
    if magic != MAGIC {
        return Err(FrameError::BadMagic(magic));
    }
    let version = u16::from_le_bytes(header[4..6].try_into().expect("2 bytes"));
    if version != PROTOCOL_VERSION {
        return Err(FrameError::UnsupportedVersion { found: version });
    }
    let len = u32::from_le_bytes(header[6..HEADER_LEN].try_into().expect("4 bytes"));
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(len)
}

/// Decodes a payload; trailing bytes are an error.
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    let (value, rest) = postcard::take_from_bytes(payload).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameError::Malformed(format!("{} trailing bytes", rest.len())));
    }
    Ok(value)
}

/// Decodes one whole frame held in `bytes`, returning the message and the bytes it used.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], max: u32) -> Result<(T, usize), FrameError> {
    let header: &[u8; HEADER_LEN] =
        bytes
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| FrameError::Truncated {
                needed: HEADER_LEN - bytes.len(),
            })?;
    let len = check_header(header, max)? as usize;
    let payload = bytes
        .get(HEADER_LEN..HEADER_LEN + len)
        .ok_or_else(|| FrameError::Truncated {
            needed: HEADER_LEN + len - bytes.len(),
        })?;
    Ok((decode_payload(payload)?, HEADER_LEN + len))
}

/// Decodes arbitrary bytes as request and reply frames, one after another. Never panics; the
/// fuzz target and the corpus replay test call it.
pub fn check_input<C: KvTypeConfig>(input: &[u8]) {
    let max = 1 << 20;
    let mut rest = input;
    while let Ok((_, used)) = decode::<RaftRequest<C>>(rest, max) {
        rest = &rest[used..];
    }
    let mut rest = input;
    while let Ok((_, used)) = decode::<RaftReply<C>>(rest, max) {
        rest = &rest[used..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bounds() {
        let frame = encode(&(7u64, "hello".to_string()));
        let (msg, used): ((u64, String), usize) = decode(&frame, 1024).unwrap();
        assert_eq!(msg, (7, "hello".to_string()));
        assert_eq!(used, frame.len());
        for cut in 0..frame.len() {
            assert!(matches!(
                decode::<(u64, String)>(&frame[..cut], 1024),
                Err(FrameError::Truncated { .. })
            ));
        }
        assert!(matches!(
            decode::<(u64, String)>(&frame, 3),
            Err(FrameError::TooLarge { len: 7, max: 3 })
        ));
        let mut bad = frame.clone();
        bad[0] = b'X';
        assert!(matches!(
            decode::<(u64, String)>(&bad, 1024),
            Err(FrameError::BadMagic(_))
        ));
        let mut bad = frame.clone();
        bad[4] = 9;
        assert!(matches!(
            decode::<(u64, String)>(&bad, 1024),
            Err(FrameError::UnsupportedVersion { found: 9 })
        ));
    }
}
