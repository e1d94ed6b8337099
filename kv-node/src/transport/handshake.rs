//! The Raft port's handshake on a socket: both ends prove the cluster secret before the first
//! frame ([`kv_core::wire::handshake`] draws the bytes). [`connect`] is the sending side's,
//! [`accept`] the receiving side's; nonces come from the operating system.

use std::time::Duration;

use tokio::io::AsyncRead;
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWrite;
use tokio::io::AsyncWriteExt;

use kv_core::wire::handshake;
use kv_core::wire::handshake::CHALLENGE_LEN;
use kv_core::wire::handshake::ClusterKey;
use kv_core::wire::handshake::HELLO_LEN;
use kv_core::wire::handshake::HandshakeError;
use kv_core::wire::handshake::Nonce;
use kv_core::wire::handshake::PROOF_LEN;

/// How long the receiving side waits for a peer to complete the handshake.
pub const ACCEPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a handshake did not complete.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The peer is not a member (or not QuorumKV).
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// The connection failed or closed.
    #[error("connection error during the handshake: {0}")]
    Io(#[from] std::io::Error),
    /// The peer took longer than [`ACCEPT_TIMEOUT`].
    #[error("handshake not completed within {ACCEPT_TIMEOUT:?}")]
    Timeout,
}

fn nonce() -> std::io::Result<Nonce> {
    let mut nonce = [0; 32];
    getrandom::fill(&mut nonce).map_err(std::io::Error::other)?;
    Ok(nonce)
}

/// The connecting member's side: proves the key and checks that the listener holds it too.
pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, key: &ClusterKey) -> Result<(), Refusal> {
    let nonce_c = nonce()?;
    stream.write_all(&handshake::hello(&nonce_c)).await?;
    let mut challenge = [0; CHALLENGE_LEN];
    stream.read_exact(&mut challenge).await?;
    let proof = handshake::answer(key, &nonce_c, &challenge)?;
    stream.write_all(&proof).await?;
    let mut accepted = [0; 1];
    match stream.read_exact(&mut accepted).await {
        Ok(_) if accepted[0] == handshake::ACCEPTED => Ok(()),
        Ok(_) => Err(HandshakeError::Refused.into()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(HandshakeError::Refused.into()),
        Err(e) => Err(e.into()),
    }
}

/// The listening member's side: the peer must prove the key within [`ACCEPT_TIMEOUT`]. On
/// `Err` the caller closes the connection without reading anything more.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, key: &ClusterKey) -> Result<(), Refusal> {
    let exchange = async {
        let mut hello = [0; HELLO_LEN];
        stream.read_exact(&mut hello).await?;
        let nonce_c = handshake::read_hello(&hello)?;
        let nonce_s = nonce()?;
        stream.write_all(&handshake::challenge(key, &nonce_c, &nonce_s)).await?;
        let mut proof = [0; PROOF_LEN];
        stream.read_exact(&mut proof).await?;
        handshake::check_answer(key, &nonce_c, &nonce_s, &proof)?;
        stream.write_all(&[handshake::ACCEPTED]).await?;
        Ok(())
    };
    tokio::time::timeout(ACCEPT_TIMEOUT, exchange)
        .await
        .unwrap_or(Err(Refusal::Timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn same_key_accepted_wrong_key_refused() {
        for (theirs, ok) in [(b"secret".as_slice(), true), (b"other".as_slice(), false)] {
            let (mut a, mut b) = tokio::io::duplex(1024);
            let key = ClusterKey::new(b"secret");
            let their_key = ClusterKey::new(theirs);
            let server = tokio::spawn(async move { accept(&mut b, &key).await.is_ok() });
            let client = connect(&mut a, &their_key).await;
            drop(a);
            assert_eq!(client.is_ok(), ok);
            assert_eq!(server.await.unwrap(), ok);
        }
    }
}
