//! The on-disk formats: segment headers, framed log records and snapshot files.
//!
//! Everything here is pure: bytes in, values or a [`FormatError`] out. Decoding never panics on
//! any input (the fuzz target `segment` holds it to that); the caller adds the file name.
//! The layouts are drawn in the [module docs of `storage`](super).

use openraft::alias::EntryOf;
use openraft::alias::LogIdOf;
use openraft::alias::SnapshotMetaOf;
use openraft::alias::VoteOf;
use serde::Deserialize;
use serde::Serialize;

use kv_core::raft::KvTypeConfig;

/// Magic bytes opening every log segment file.
pub const SEGMENT_MAGIC: [u8; 6] = *b"QKVLOG";
/// Magic bytes opening every snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 6] = *b"QKVSNP";
/// The on-disk format version this build writes and reads, for segments and snapshots alike.
pub const FORMAT_VERSION: u16 = 1;
/// Length of a segment header: magic, version, segment id, CRC32C.
pub const SEGMENT_HEADER_LEN: usize = 6 + 2 + 8 + 4;
/// Length of a record frame header: payload length, CRC32C.
pub const RECORD_HEADER_LEN: usize = 4 + 4;
/// Largest record payload written or accepted, in bytes.
pub const MAX_RECORD_LEN: usize = 256 << 20;
/// Length of a snapshot file header: magic, version, meta length, data length, CRC32C.
pub const SNAPSHOT_HEADER_LEN: usize = 6 + 2 + 4 + 8 + 4;

/// One record of the log. A segment is a header followed by records; replaying every record of
/// every segment, in order, rebuilds the log store's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub enum Record<C: KvTypeConfig> {
    /// A log entry. Its index is one past the previous entry's, unless a [`Record::Truncate`]
    /// or [`Record::Purge`] came between.
    Entry(EntryOf<C>),
    /// The vote, replacing any earlier one.
    Vote(VoteOf<C>),
    /// The committed log id, replacing any earlier one.
    Committed(Option<LogIdOf<C>>),
    /// Every entry after this log id (every entry, for `None`) is removed.
    Truncate(Option<LogIdOf<C>>),
    /// Every entry up to and including this log id is removed; it becomes the last purged id.
    Purge(LogIdOf<C>),
}

/// Why bytes do not decode. The caller adds the file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The bytes are damaged or not ours.
    #[error("corrupt at offset {offset}: {reason}")]
    Corrupt {
        /// Byte offset in the file where the damage starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The file was written by a format version this build does not read.
    #[error("format version {found} (this build reads version {FORMAT_VERSION})")]
    UnsupportedVersion {
        /// The version found in the header.
        found: u16,
    },
}

/// The result of decoding one segment file.
#[derive(Debug)]
pub struct SegmentScan<C: KvTypeConfig> {
    /// The valid records, with the offset each starts at.
    pub records: Vec<(u64, Record<C>)>,
    /// A torn tail found at the end of the newest segment, if any.
    pub torn: Option<TornTail>,
}

/// An incomplete or unreadable final stretch of the newest segment, with nothing valid after
/// it: what a crash in the middle of a write leaves. Recovery cuts the file at `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// Where the torn stretch starts; the file keeps the bytes before it.
    pub offset: u64,
    /// How many bytes it spans, to the end of the file.
    pub len: u64,
    /// What is wrong with the first torn record.
    pub reason: String,
}

impl TornTail {
    /// Whether the tear starts inside the header, so the file holds nothing worth keeping.
    pub fn in_header(&self) -> bool {
        self.offset < SEGMENT_HEADER_LEN as u64
    }
}

/// Encodes a segment header for segment `id`.
pub fn encode_segment_header(id: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    header[..6].copy_from_slice(&SEGMENT_MAGIC);
    header[6..8].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[8..16].copy_from_slice(&id.to_le_bytes());
    let crc = crc32c::crc32c(&header[..16]);
    header[16..].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Appends `record`, framed, to `out`. Fails only if its payload exceeds [`MAX_RECORD_LEN`];
/// `out` is then left as it was.
pub fn encode_record<C: KvTypeConfig>(record: &Record<C>, out: &mut Vec<u8>) -> Result<(), RecordTooLarge> {
    let start = out.len();
    out.extend_from_slice(&[0u8; RECORD_HEADER_LEN]);
    // Serializing our own types into a Vec cannot fail: they contain no construct postcard rejects.
    let mut buf = postcard::to_extend(record, std::mem::take(out)).expect("postcard encoding into a Vec cannot fail");
    let len = buf.len() - start - RECORD_HEADER_LEN;
    if len > MAX_RECORD_LEN {
        buf.truncate(start);
        *out = buf;
        return Err(RecordTooLarge { len });
    }
    let len_bytes = (len as u32).to_le_bytes();
    let crc = frame_crc(len_bytes, &buf[start + RECORD_HEADER_LEN..]);
    buf[start..start + 4].copy_from_slice(&len_bytes);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    *out = buf;
    Ok(())
}

/// A record whose payload exceeds [`MAX_RECORD_LEN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("record of {len} bytes exceeds the limit of {MAX_RECORD_LEN} bytes")]
pub struct RecordTooLarge {
    /// The payload length.
    pub len: usize,
}

/// The CRC32C of a frame: over its length field, then its payload.
fn frame_crc(len_bytes: [u8; 4], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&len_bytes), payload)
}

/// Decodes a whole segment file.
///
/// `id` is the segment id its name gives. In the `newest` segment a bad final stretch with no
/// valid record after it is a torn tail, returned in [`SegmentScan::torn`]; anywhere else a bad
/// record is [`FormatError::Corrupt`]. A newest segment too short for its header, or holding only
/// zeros, is torn at offset 0.
pub fn decode_segment<C: KvTypeConfig>(bytes: &[u8], id: u64, newest: bool) -> Result<SegmentScan<C>, FormatError> {
    let torn_at_start = |reason: &str| SegmentScan {
        records: Vec::new(),
        torn: Some(TornTail {
            offset: 0,
            len: bytes.len() as u64,
            reason: reason.to_string(),
        }),
    };
    if bytes.len() < SEGMENT_HEADER_LEN {
        if newest {
            return Ok(torn_at_start("incomplete segment header"));
        }
        return Err(corrupt(
            0,
            format!("segment header is {} bytes, expected {SEGMENT_HEADER_LEN}", bytes.len()),
        ));
    }
    if newest && bytes.iter().all(|&b| b == 0) {
        return Ok(torn_at_start("segment holds only zeros"));
    }
    decode_segment_header(&bytes[..SEGMENT_HEADER_LEN], id)?;

    let mut records = Vec::new();
    let mut offset = SEGMENT_HEADER_LEN;
    while offset < bytes.len() {
        match decode_frame::<C>(bytes, offset) {
            Ok((record, next)) => {
                records.push((offset as u64, record));
                offset = next;
            }
            Err(reason) => {
                if !newest {
                    return Err(corrupt(offset, reason));
                }
                if let Some(valid) = (offset + 1..bytes.len()).find(|&p| decode_frame::<C>(bytes, p).is_ok()) {
                    return Err(corrupt(
                        offset,
                        format!("{reason}; a valid record follows at offset {valid}"),
                    ));
                }
                let torn = TornTail {
                    offset: offset as u64,
                    len: (bytes.len() - offset) as u64,
                    reason,
                };
                return Ok(SegmentScan {
                    records,
                    torn: Some(torn),
                });
            }
        }
    }
    Ok(SegmentScan { records, torn: None })
}

/// Checks a segment header: magic, version, checksum and the segment id.
fn decode_segment_header(header: &[u8], id: u64) -> Result<(), FormatError> {
    if header[..6] != SEGMENT_MAGIC {
        return Err(corrupt(0, "not a QuorumKV log segment (bad magic)".to_string()));
    }
    let version = u16::from_le_bytes([header[6], header[7]]);
    if version != FORMAT_VERSION {
        return Err(FormatError::UnsupportedVersion { found: version });
    }
    let stored = u32::from_le_bytes([header[16], header[17], header[18], header[19]]);
    if crc32c::crc32c(&header[..16]) != stored {
        return Err(corrupt(0, "segment header checksum mismatch".to_string()));
    }
    let mut id_bytes = [0u8; 8];
    id_bytes.copy_from_slice(&header[8..16]);
    let found = u64::from_le_bytes(id_bytes);
    if found != id {
        return Err(corrupt(8, format!("header names segment {found}, file name says {id}")));
    }
    Ok(())
}

/// Decodes the frame starting at `offset`: the record and the offset just past it. Checks the
/// length and the checksum; never panics, whatever the bytes.
pub(crate) fn decode_frame<C: KvTypeConfig>(bytes: &[u8], offset: usize) -> Result<(Record<C>, usize), String> {
    let rest = &bytes[offset..];
    if rest.len() < RECORD_HEADER_LEN {
        return Err(format!(
            "incomplete record header ({} of {RECORD_HEADER_LEN} bytes)",
            rest.len()
        ));
    }
    let len_bytes = [rest[0], rest[1], rest[2], rest[3]];
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len == 0 || len > MAX_RECORD_LEN {
        return Err(format!("record length {len} out of range 1..={MAX_RECORD_LEN}"));
    }
    let Some(payload) = rest.get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + len) else {
        return Err(format!(
            "incomplete record: {len} payload bytes announced, {} present",
            rest.len() - RECORD_HEADER_LEN
        ));
    };
    let stored = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    if frame_crc(len_bytes, payload) != stored {
        return Err("record checksum mismatch".to_string());
    }
    match postcard::take_from_bytes::<Record<C>>(payload) {
        Ok((record, [])) => Ok((record, offset + RECORD_HEADER_LEN + len)),
        Ok((_, trailing)) => Err(format!("record has {} trailing bytes", trailing.len())),
        Err(e) => Err(format!("record does not decode: {e}")),
    }
}

/// Encodes a snapshot file: header, postcard-encoded `meta`, then `data` as is.
pub fn encode_snapshot<C: KvTypeConfig>(meta: &SnapshotMetaOf<C>, data: &[u8]) -> Vec<u8> {
    // Serializing openraft's snapshot meta into a Vec cannot fail.
    let meta_bytes = postcard::to_allocvec(meta).expect("postcard encoding into a Vec cannot fail");
    let mut out = Vec::with_capacity(SNAPSHOT_HEADER_LEN + meta_bytes.len() + data.len());
    out.extend_from_slice(&SNAPSHOT_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(meta_bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c_append(crc32c::crc32c(&out), &meta_bytes), data);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&meta_bytes);
    out.extend_from_slice(data);
    out
}

/// Decodes a snapshot file made by [`encode_snapshot`]: its meta and its data.
pub fn decode_snapshot<C: KvTypeConfig>(bytes: &[u8]) -> Result<(SnapshotMetaOf<C>, &[u8]), FormatError> {
    if bytes.len() < SNAPSHOT_HEADER_LEN {
        return Err(corrupt(
            0,
            format!(
                "snapshot header is {} bytes, expected {SNAPSHOT_HEADER_LEN}",
                bytes.len()
            ),
        ));
    }
    if bytes[..6] != SNAPSHOT_MAGIC {
        return Err(corrupt(0, "not a QuorumKV snapshot (bad magic)".to_string()));
    }
    let version = u16::from_le_bytes([bytes[6], bytes[7]]);
    if version != FORMAT_VERSION {
        return Err(FormatError::UnsupportedVersion { found: version });
    }
    let meta_len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as u64;
    let mut data_len = [0u8; 8];
    data_len.copy_from_slice(&bytes[12..20]);
    let data_len = u64::from_le_bytes(data_len);
    let body = &bytes[SNAPSHOT_HEADER_LEN..];
    if Some(body.len() as u64) != meta_len.checked_add(data_len) {
        return Err(corrupt(
            SNAPSHOT_HEADER_LEN as u64,
            format!(
                "header announces {meta_len} + {data_len} bytes, file holds {}",
                body.len()
            ),
        ));
    }
    let stored = u32::from_le_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
    if crc32c::crc32c_append(crc32c::crc32c(&bytes[..20]), body) != stored {
        return Err(corrupt(0, "snapshot checksum mismatch".to_string()));
    }
    let (meta_bytes, data) = body.split_at(meta_len as usize);
    let meta = postcard::from_bytes(meta_bytes).map_err(|e| {
        corrupt(
            SNAPSHOT_HEADER_LEN as u64,
            format!("snapshot meta does not decode: {e}"),
        )
    })?;
    Ok((meta, data))
}

fn corrupt(offset: impl TryInto<u64>, reason: String) -> FormatError {
    FormatError::Corrupt {
        offset: offset.try_into().unwrap_or(u64::MAX),
        reason,
    }
}

/// Runs the decoders over arbitrary bytes and checks what they promise: no panic, a torn tail
/// that ends exactly at the end of the input, record offsets inside the input and increasing.
/// The first byte says whether the segment counts as the newest; the rest is the file.
///
/// This is the body of the fuzz target `segment` (`kv-node/fuzz`), and a test replays the
/// committed fuzz corpus through it.
pub fn check_decoders<C: KvTypeConfig>(input: &[u8]) {
    let Some((&mode, file)) = input.split_first() else {
        return;
    };
    let newest = mode & 1 == 1;
    if let Ok(scan) = decode_segment::<C>(file, u64::from(mode >> 1), newest) {
        let mut previous = None;
        for (offset, _) in &scan.records {
            assert!(*offset >= SEGMENT_HEADER_LEN as u64 && *offset < file.len() as u64);
            assert!(previous < Some(*offset), "record offsets must increase");
            previous = Some(*offset);
        }
        if let Some(torn) = scan.torn {
            assert!(newest, "only the newest segment may have a torn tail");
            assert_eq!(torn.offset + torn.len, file.len() as u64, "a torn tail runs to the end");
            assert!(previous < Some(torn.offset) || torn.in_header());
        }
    }
    if let Ok((_, data)) = decode_snapshot::<C>(file) {
        assert!(data.len() <= file.len());
    }
}
