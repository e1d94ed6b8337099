//! **The Raft port's handshake**: before the first [`frame`](super::frame), both ends prove
//! that they hold the cluster secret, without sending it. A connection that fails it is
//! closed before a single frame is decoded.
//!
//! ```text
//! connecting member (C)                                         listening member (S)
//!   hello:     "QKVH" | version u16 LE | nonce_c (32)       ->
//!                                                           <-  challenge: "QKVH" | version u16 LE
//!                                                                  | nonce_s (32) | proof_s (32)
//!   (C checks proof_s: S is a member)
//!   proof_c (32)                                            ->
//!                                                           <-  accepted: 0x01   (or the close)
//!
//! proof_s = HMAC-SHA256(key, "quorumkv raft server v1" | nonce_c | nonce_s)
//! proof_c = HMAC-SHA256(key, "quorumkv raft client v1" | nonce_s | nonce_c)
//! key     = SHA-256("quorumkv cluster key v1" | secret)
//! ```
//!
//! Why this design: each side answers a fresh challenge of the other's, so a recorded
//! handshake is worthless for a new connection; the two proofs carry different labels, so a
//! stranger cannot get a member to compute the proof it would need (a member computes a
//! client proof only for a server that already proved itself); the secret itself never
//! travels, so the Raft port needs no encryption for the secret to stay secret (TLS, when on,
//! encrypts what follows). HMAC-SHA256 is the standard keyed MAC; the alternatives, a
//! password-authenticated key exchange or TLS-PSK, would need more machinery than a cluster
//! of peers sharing a long random secret needs.
//!
//! The handshake has its own magic and [`VERSION`]: a peer of an older build, which sends a
//! frame first, fails on the magic. A cluster without a secret still runs the handshake with
//! the key of the empty secret ([`ClusterKey::open`]), which anyone can compute: that cluster
//! is open to whoever reaches its Raft port, and kv-node says so when it starts.
//!
//! Pure functions: the caller supplies the nonces (kv-node draws them from the OS). Pinned by
//! kv-node's `tests/golden_wire.rs` and tested below.

use hmac::Hmac;
use hmac::Mac;
use sha2::Digest;
use sha2::Sha256;

/// First bytes of a hello and a challenge.
pub const MAGIC: [u8; 4] = *b"QKVH";
/// Version of the handshake.
pub const VERSION: u16 = 1;
/// Bytes of a nonce.
pub const NONCE_LEN: usize = 32;
/// Bytes of a proof.
pub const PROOF_LEN: usize = 32;
/// Bytes of the hello.
pub const HELLO_LEN: usize = 4 + 2 + NONCE_LEN;
/// Bytes of the challenge.
pub const CHALLENGE_LEN: usize = HELLO_LEN + PROOF_LEN;
/// The byte that tells the connecting member it was accepted.
pub const ACCEPTED: u8 = 1;

const SERVER_LABEL: &[u8] = b"quorumkv raft server v1";
const CLIENT_LABEL: &[u8] = b"quorumkv raft client v1";
const KEY_LABEL: &[u8] = b"quorumkv cluster key v1";

/// A nonce.
pub type Nonce = [u8; NONCE_LEN];
/// A proof of the key.
pub type Proof = [u8; PROOF_LEN];

/// Why a handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The peer does not speak the handshake (an older build, or not QuorumKV at all).
    #[error("not a QuorumKV handshake (magic {0:02x?})")]
    BadMagic([u8; 4]),
    /// Another version of the handshake.
    #[error("unsupported handshake version {0} (this build speaks {VERSION})")]
    UnsupportedVersion(u16),
    /// The peer does not hold the cluster secret.
    #[error("wrong proof: the peer does not hold the cluster secret")]
    WrongProof,
    /// The listening member closed the connection instead of accepting it.
    #[error("the peer refused the handshake")]
    Refused,
}

/// The key both ends derive from the cluster secret.
#[derive(Clone)]
pub struct ClusterKey([u8; 32]);

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterKey(..)")
    }
}

impl ClusterKey {
    /// The key of `secret`.
    pub fn new(secret: &[u8]) -> Self {
        let mut hash = Sha256::new();
        hash.update(KEY_LABEL);
        hash.update(secret);
        ClusterKey(hash.finalize().into())
    }

    /// The key of the empty secret: anyone can compute it (an open cluster).
    pub fn open() -> Self {
        ClusterKey::new(b"")
    }

    fn mac(&self, label: &[u8], first: &Nonce, second: &Nonce) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(label);
        mac.update(first);
        mac.update(second);
        mac
    }

    fn prove(&self, label: &[u8], first: &Nonce, second: &Nonce) -> Proof {
        self.mac(label, first, second).finalize().into_bytes().into()
    }

    /// Checks in constant time.
    fn verify(&self, label: &[u8], first: &Nonce, second: &Nonce, proof: &[u8]) -> Result<(), HandshakeError> {
        self.mac(label, first, second)
            .verify_slice(proof)
            .map_err(|_| HandshakeError::WrongProof)
    }
}

fn header() -> [u8; 6] {
    let mut out = [0; 6];
    out[..4].copy_from_slice(&MAGIC);
    out[4..].copy_from_slice(&VERSION.to_le_bytes());
    out
}

fn check_header(bytes: &[u8]) -> Result<(), HandshakeError> {
    let magic: [u8; 4] = bytes[..4].try_into().expect("4 bytes");
    if magic != MAGIC {
        return Err(HandshakeError::BadMagic(magic));
    }
    let version = u16::from_le_bytes(bytes[4..6].try_into().expect("2 bytes"));
    if version != VERSION {
        return Err(HandshakeError::UnsupportedVersion(version));
    }
    Ok(())
}

/// The connecting member's hello.
pub fn hello(nonce_c: &Nonce) -> [u8; HELLO_LEN] {
    let mut out = [0; HELLO_LEN];
    out[..6].copy_from_slice(&header());
    out[6..].copy_from_slice(nonce_c);
    out
}

/// The listening member reads a hello: the client's nonce.
pub fn read_hello(bytes: &[u8; HELLO_LEN]) -> Result<Nonce, HandshakeError> {
    check_header(bytes)?;
    Ok(bytes[6..].try_into().expect("32 bytes"))
}

/// The listening member's challenge, proving it holds `key`.
pub fn challenge(key: &ClusterKey, nonce_c: &Nonce, nonce_s: &Nonce) -> [u8; CHALLENGE_LEN] {
    let mut out = [0; CHALLENGE_LEN];
    out[..6].copy_from_slice(&header());
    out[6..HELLO_LEN].copy_from_slice(nonce_s);
    out[HELLO_LEN..].copy_from_slice(&key.prove(SERVER_LABEL, nonce_c, nonce_s));
    out
}

/// The connecting member checks a challenge and, if the listener proved the key, answers it.
pub fn answer(key: &ClusterKey, nonce_c: &Nonce, challenge: &[u8; CHALLENGE_LEN]) -> Result<Proof, HandshakeError> {
    check_header(challenge)?;
    let nonce_s: Nonce = challenge[6..HELLO_LEN].try_into().expect("32 bytes");
    key.verify(SERVER_LABEL, nonce_c, &nonce_s, &challenge[HELLO_LEN..])?;
    Ok(key.prove(CLIENT_LABEL, &nonce_s, nonce_c))
}

/// The listening member checks the connecting member's answer.
pub fn check_answer(key: &ClusterKey, nonce_c: &Nonce, nonce_s: &Nonce, proof: &Proof) -> Result<(), HandshakeError> {
    key.verify(CLIENT_LABEL, nonce_s, nonce_c, proof)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_with_the_same_secret_accept_each_other() {
        let key = ClusterKey::new(b"cluster secret");
        let (nonce_c, nonce_s) = ([1; 32], [2; 32]);
        let hello = hello(&nonce_c);
        assert_eq!(read_hello(&hello), Ok(nonce_c));
        let challenge = challenge(&key, &nonce_c, &nonce_s);
        let proof = answer(&key, &nonce_c, &challenge).unwrap();
        assert_eq!(check_answer(&key, &nonce_c, &nonce_s, &proof), Ok(()));
    }

    #[test]
    fn a_wrong_secret_fails_on_either_side() {
        let (key, wrong) = (ClusterKey::new(b"right"), ClusterKey::new(b"wrong"));
        let (nonce_c, nonce_s) = ([1; 32], [2; 32]);
        // A stranger posing as the listener is caught by the connecting member...
        let fake = challenge(&wrong, &nonce_c, &nonce_s);
        assert_eq!(answer(&key, &nonce_c, &fake), Err(HandshakeError::WrongProof));
        // ...and a stranger connecting is caught by the listener.
        let forged = answer(&wrong, &nonce_c, &challenge(&wrong, &nonce_c, &nonce_s)).unwrap();
        assert_eq!(
            check_answer(&key, &nonce_c, &nonce_s, &forged),
            Err(HandshakeError::WrongProof)
        );
        // The listener's own proof, replayed as an answer, is no answer (different label).
        let replayed: Proof = challenge(&key, &nonce_c, &nonce_s)[HELLO_LEN..].try_into().unwrap();
        assert_eq!(
            check_answer(&key, &nonce_c, &nonce_s, &replayed),
            Err(HandshakeError::WrongProof)
        );
        // A frame where a hello belongs is refused on its magic.
        let mut frame = [0u8; HELLO_LEN];
        frame[..4].copy_from_slice(b"QKVR");
        assert_eq!(read_hello(&frame), Err(HandshakeError::BadMagic(*b"QKVR")));
    }
}
