//! Reading frames ([`kv_core::wire::frame`]) from a stream.

use tokio::io::AsyncRead;
use tokio::io::AsyncReadExt;

use kv_core::wire::frame::FrameError;
use kv_core::wire::frame::HEADER_LEN;
use kv_core::wire::frame::check_header;
use kv_core::wire::frame::decode_payload;
use serde::de::DeserializeOwned;

/// Reads one frame from `reader`. Returns `Ok(None)` on a clean end of stream before a frame.
/// The payload buffer is allocated only after the header passed [`check_header`].
pub async fn read<T, R>(reader: &mut R, max: u32) -> Result<Option<T>, FrameError>
where
    T: DeserializeOwned,
    R: AsyncRead + Unpin,
{
    let mut header = [0u8; HEADER_LEN];
    let first = reader.read(&mut header).await?;
    if first == 0 {
        return Ok(None);
    }
    reader.read_exact(&mut header[first..]).await?;
    let len = check_header(&header, max)?;
    let mut payload = vec![0u8; len as usize];
    reader.read_exact(&mut payload).await?;
    decode_payload(&payload).map(Some)
}

#[cfg(test)]
mod tests {
    use kv_core::wire::frame::DEFAULT_MAX_FRAME;
    use kv_core::wire::frame::MAGIC;
    use kv_core::wire::frame::PROTOCOL_VERSION;

    use super::*;

    #[tokio::test]
    async fn oversized_header_is_refused_before_allocation() {
        let mut header = Vec::from(MAGIC);
        header.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        header.extend_from_slice(&u32::MAX.to_le_bytes());
        let mut reader = &header[..];
        let err = read::<u64, _>(&mut reader, DEFAULT_MAX_FRAME).await.unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len: u32::MAX, .. }));
    }

    #[tokio::test]
    async fn a_clean_end_of_stream_is_no_frame() {
        let mut reader: &[u8] = &[];
        assert!(read::<u64, _>(&mut reader, DEFAULT_MAX_FRAME).await.unwrap().is_none());
    }
}
