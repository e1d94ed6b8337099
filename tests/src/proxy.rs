//! Fault proxies: one TCP forwarder per directed Raft link, which the nemesis controls.
//!
//! Node A reaches node B's Raft port only through the proxy of link (A, B) (`--raft-route` on
//! A names the proxy). That connection carries A's requests to B (AppendEntries, votes,
//! snapshot chunks, forwarded client operations) and B's replies to A, one request at a time.
//!
//! The proxy passes the handshake through untouched and then reads whole frames
//! (`kv_core::wire::frame`: magic, version, length, postcard payload), so its faults act on
//! messages, not on arbitrary bytes:
//!
//! | fault | what happens |
//! |---|---|
//! | `cut` | new connections are closed at once and open ones are dropped: A cannot reach B |
//! | `drop_requests` | A's requests vanish; the connection goes silent (a black hole) until A gives up on it |
//! | `drop_replies` | B's requests reach A and A acts on them, but the replies vanish (black hole) |
//! | `loss` | each request is lost with this probability (then the connection is a black hole, as a lost TCP segment that is never retransmitted would leave it) |
//! | `delay_ms`, `jitter_ms` | each request is held this long (plus up to the jitter), order kept |
//! | `duplicate` | an AppendEntries, Vote or PreVote request is delivered twice; the proxy swallows the second reply so A's stream stays in step |
//!
//! A one-way cut "A's messages do not reach B" is `drop_requests` on (A, B) plus
//! `drop_replies` on (B, A). Duplication is restricted to openraft's own RPCs, which Raft must
//! tolerate delivered twice; TCP never duplicates a message, so duplicating a snapshot chunk
//! or a forwarded client write would test a fault no real network produces (the forward has
//! no request id: a duplicate would be a second, different request).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;

use kv_core::wire::frame::HEADER_LEN;
use kv_core::wire::frame::MAGIC;
use kv_core::wire::handshake;
use serde::Serialize;
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::rng::SeededRng;

/// Postcard variant positions of `RaftRequest` that may be duplicated: AppendEntries, Vote,
/// PreVote.
const DUPLICABLE: [u8; 3] = [0, 1, 2];
/// Largest frame payload the proxy forwards (the node's own bound is 16 MiB; snapshots are
/// chunked below it).
const MAX_PAYLOAD: usize = 64 << 20;

/// The faults of one directed link. The default is a healthy link.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LinkFaults {
    /// Refuse and drop every connection.
    pub cut: bool,
    /// Lose every request.
    pub drop_requests: bool,
    /// Lose every reply.
    pub drop_replies: bool,
    /// Probability of losing a request.
    pub loss: f64,
    /// Delay of each request, in milliseconds.
    pub delay_ms: u64,
    /// Extra random delay, up to this many milliseconds.
    pub jitter_ms: u64,
    /// Probability of delivering a duplicable request twice.
    pub duplicate: f64,
}

/// What a proxy did, for the campaign's summary.
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Frames forwarded (requests and replies).
    pub forwarded: AtomicU64,
    /// Requests or replies lost on purpose.
    pub lost: AtomicU64,
    /// Requests delivered twice.
    pub duplicated: AtomicU64,
    /// Requests held back by a delay.
    pub delayed: AtomicU64,
    /// Connections refused or dropped by a cut.
    pub cut: AtomicU64,
}

/// One directed link's proxy.
pub struct Proxy {
    /// Where the source node connects.
    pub addr: String,
    faults: watch::Sender<LinkFaults>,
    /// Counters shared with the connections.
    pub stats: Arc<ProxyStats>,
}

impl Proxy {
    /// Starts forwarding connections accepted on `listener` to `target`; `seed` drives the
    /// random loss, jitter and duplication of this link.
    pub fn start(listener: TcpListener, target: String, seed: u64) -> Proxy {
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address")
            .to_string();
        let (faults, watch) = watch::channel(LinkFaults::default());
        let stats = Arc::new(ProxyStats::default());
        let rng = Arc::new(Mutex::new(SeededRng::new(seed)));
        let shared = stats.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if watch.borrow().cut {
                    shared.cut.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let link = Link {
                    faults: watch.clone(),
                    stats: shared.clone(),
                    rng: rng.clone(),
                };
                tokio::spawn(link.serve(inbound, target.clone()));
            }
        });
        Proxy { addr, faults, stats }
    }

    /// Sets this link's faults (connections already open see the change at their next frame;
    /// a cut drops them at once).
    pub fn set(&self, faults: LinkFaults) {
        self.faults.send_replace(faults);
    }

    /// This link's faults now.
    pub fn faults(&self) -> LinkFaults {
        self.faults.borrow().clone()
    }
}

/// One proxied connection's shared state.
#[derive(Clone)]
struct Link {
    faults: watch::Receiver<LinkFaults>,
    stats: Arc<ProxyStats>,
    rng: Arc<Mutex<SeededRng>>,
}

/// A request on its way to the target: when to deliver it, its bytes, and whether twice.
struct Delivery {
    at: Instant,
    frame: Vec<u8>,
    twice: bool,
}

impl Link {
    async fn serve(self, inbound: TcpStream, target: String) {
        let Ok(outbound) = TcpStream::connect(&target).await else {
            return;
        };
        let _ = inbound.set_nodelay(true);
        let _ = outbound.set_nodelay(true);
        let (ri, wi) = inbound.into_split();
        let (ro, wo) = outbound.into_split();
        // For each request sent on: whether its reply is the echo of a duplicate (swallowed).
        let replies: Arc<Mutex<VecDeque<bool>>> = Arc::default();
        let mut watch = self.faults.clone();
        tokio::select! {
            _ = self.clone().requests(ri, wo, replies.clone()) => {}
            _ = self.clone().replies(ro, wi, replies) => {}
            _ = async {
                loop {
                    if watch.borrow_and_update().cut {
                        return;
                    }
                    if watch.changed().await.is_err() {
                        return;
                    }
                }
            } => { self.stats.cut.fetch_add(1, Ordering::Relaxed); }
        }
    }

    /// Source to target: the handshake's two client messages, then request frames.
    async fn requests(self, mut from: OwnedReadHalf, to: OwnedWriteHalf, replies: Arc<Mutex<VecDeque<bool>>>) {
        let (tx, rx) = mpsc::unbounded_channel::<Delivery>();
        let writer = deliver(rx, to);
        let reader = async move {
            // The hello, then (after the challenge came back) the proof.
            for len in [handshake::HELLO_LEN, handshake::PROOF_LEN] {
                let mut bytes = vec![0u8; len];
                if from.read_exact(&mut bytes).await.is_err() {
                    return;
                }
                let _ = tx.send(Delivery {
                    at: Instant::now(),
                    frame: bytes,
                    twice: false,
                });
            }
            loop {
                let Some(frame) = read_frame(&mut from).await else {
                    return;
                };
                let faults = self.faults.borrow().clone();
                let (lost, twice, delay) = {
                    let mut rng = self.rng.lock().expect("proxy rng lock");
                    let lost = faults.drop_requests || (faults.loss > 0.0 && rng.chance(faults.loss));
                    let duplicable = frame.get(HEADER_LEN).is_some_and(|v| DUPLICABLE.contains(v));
                    let twice = duplicable && faults.duplicate > 0.0 && rng.chance(faults.duplicate);
                    let jitter = if faults.jitter_ms > 0 {
                        rng.below(faults.jitter_ms + 1)
                    } else {
                        0
                    };
                    (lost, twice, faults.delay_ms + jitter)
                };
                if lost {
                    self.stats.lost.fetch_add(1, Ordering::Relaxed);
                    black_hole(&mut from).await;
                    return;
                }
                {
                    let mut replies = replies.lock().expect("proxy replies lock");
                    replies.push_back(false);
                    if twice {
                        replies.push_back(true);
                    }
                }
                if twice {
                    self.stats.duplicated.fetch_add(1, Ordering::Relaxed);
                }
                if delay > 0 {
                    self.stats.delayed.fetch_add(1, Ordering::Relaxed);
                }
                self.stats.forwarded.fetch_add(1, Ordering::Relaxed);
                let at = Instant::now() + Duration::from_millis(delay);
                if tx.send(Delivery { at, frame, twice }).is_err() {
                    return;
                }
            }
        };
        tokio::join!(reader, writer);
    }

    /// Target to source: the handshake's two server messages, then reply frames.
    async fn replies(self, mut from: OwnedReadHalf, mut to: OwnedWriteHalf, replies: Arc<Mutex<VecDeque<bool>>>) {
        // The challenge, then the acceptance.
        for len in [handshake::CHALLENGE_LEN, 1] {
            let mut bytes = vec![0u8; len];
            if from.read_exact(&mut bytes).await.is_err() || to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        loop {
            let Some(frame) = read_frame(&mut from).await else {
                return;
            };
            let echo = replies.lock().expect("proxy replies lock").pop_front().unwrap_or(false);
            if echo {
                continue;
            }
            if self.faults.borrow().drop_replies {
                self.stats.lost.fetch_add(1, Ordering::Relaxed);
                black_hole(&mut from).await;
                return;
            }
            self.stats.forwarded.fetch_add(1, Ordering::Relaxed);
            if to.write_all(&frame).await.is_err() {
                return;
            }
        }
    }
}

/// Writes each delivery at its time, in order.
async fn deliver(mut rx: mpsc::UnboundedReceiver<Delivery>, mut to: OwnedWriteHalf) {
    while let Some(delivery) = rx.recv().await {
        tokio::time::sleep_until(delivery.at).await;
        if to.write_all(&delivery.frame).await.is_err() {
            return;
        }
        if delivery.twice && to.write_all(&delivery.frame).await.is_err() {
            return;
        }
    }
    let _ = to.shutdown().await;
}

/// Reads and discards everything until the peer closes: the connection is silent from now on.
async fn black_hole(from: &mut OwnedReadHalf) {
    let mut sink = vec![0u8; 16 << 10];
    while matches!(from.read(&mut sink).await, Ok(n) if n > 0) {}
}

/// Reads one whole frame (header and payload); `None` at the end of the stream, on an error,
/// or on bytes that are not a frame.
async fn read_frame(from: &mut OwnedReadHalf) -> Option<Vec<u8>> {
    let mut frame = vec![0u8; HEADER_LEN];
    from.read_exact(&mut frame).await.ok()?;
    if frame[..4] != MAGIC {
        return None;
    }
    let len = u32::from_le_bytes(frame[6..10].try_into().expect("4 bytes")) as usize;
    if len > MAX_PAYLOAD {
        return None;
    }
    frame.resize(HEADER_LEN + len, 0);
    from.read_exact(&mut frame[HEADER_LEN..]).await.ok()?;
    Some(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame whose payload starts with `variant` (postcard's variant position) and then `n`.
    fn frame(variant: u8, n: u8) -> Vec<u8> {
        let mut frame = MAGIC.to_vec();
        frame.extend_from_slice(&kv_core::wire::frame::PROTOCOL_VERSION.to_le_bytes());
        frame.extend_from_slice(&2u32.to_le_bytes());
        frame.extend_from_slice(&[variant, n]);
        frame
    }

    /// A peer that does the handshake's byte exchange and answers each request frame with a
    /// reply frame carrying the same byte `n`; it counts the requests it saw.
    async fn server() -> (String, Arc<AtomicU64>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(AtomicU64::new(0));
        let count = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let count = count.clone();
                tokio::spawn(async move {
                    let (mut r, mut w) = stream.into_split();
                    let mut hello = vec![0u8; handshake::HELLO_LEN];
                    r.read_exact(&mut hello).await.unwrap();
                    w.write_all(&[7u8; handshake::CHALLENGE_LEN]).await.unwrap();
                    let mut proof = vec![0u8; handshake::PROOF_LEN];
                    r.read_exact(&mut proof).await.unwrap();
                    w.write_all(&[handshake::ACCEPTED]).await.unwrap();
                    while let Some(request) = read_frame(&mut r).await {
                        count.fetch_add(1, Ordering::Relaxed);
                        if w.write_all(&frame(9, request[HEADER_LEN + 1])).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, seen)
    }

    /// Connects through the proxy and does the client's side of the handshake.
    async fn client(proxy: &Proxy) -> (OwnedReadHalf, OwnedWriteHalf) {
        let (mut r, mut w) = TcpStream::connect(&proxy.addr).await.unwrap().into_split();
        w.write_all(&[1u8; handshake::HELLO_LEN]).await.unwrap();
        let mut challenge = vec![0u8; handshake::CHALLENGE_LEN];
        r.read_exact(&mut challenge).await.unwrap();
        w.write_all(&[2u8; handshake::PROOF_LEN]).await.unwrap();
        let mut accepted = [0u8; 1];
        r.read_exact(&mut accepted).await.unwrap();
        (r, w)
    }

    async fn call(r: &mut OwnedReadHalf, w: &mut OwnedWriteHalf, variant: u8, n: u8) -> Option<u8> {
        w.write_all(&frame(variant, n)).await.ok()?;
        let reply = tokio::time::timeout(Duration::from_millis(300), read_frame(r))
            .await
            .ok()??;
        Some(reply[HEADER_LEN + 1])
    }

    async fn proxy_to(target: String) -> Proxy {
        Proxy::start(TcpListener::bind("127.0.0.1:0").await.unwrap(), target, 1)
    }

    #[tokio::test]
    async fn frames_pass_and_duplicates_reach_the_target_twice_while_the_stream_stays_in_step() {
        let (target, seen) = server().await;
        let proxy = proxy_to(target).await;
        let (mut r, mut w) = client(&proxy).await;
        assert_eq!(call(&mut r, &mut w, 0, 1).await, Some(1));
        proxy.set(LinkFaults {
            duplicate: 1.0,
            ..LinkFaults::default()
        });
        // AppendEntries (variant 0) goes twice; its second reply is swallowed.
        assert_eq!(call(&mut r, &mut w, 0, 2).await, Some(2));
        assert_eq!(call(&mut r, &mut w, 0, 3).await, Some(3));
        // A forward (variant 5) never goes twice.
        assert_eq!(call(&mut r, &mut w, 5, 4).await, Some(4));
        assert_eq!(seen.load(Ordering::Relaxed), 6);
        assert_eq!(proxy.stats.duplicated.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn lost_requests_and_replies_leave_the_connection_silent_and_a_cut_refuses() {
        let (target, seen) = server().await;
        let proxy = proxy_to(target).await;
        let (mut r, mut w) = client(&proxy).await;
        proxy.set(LinkFaults {
            drop_requests: true,
            ..LinkFaults::default()
        });
        assert_eq!(call(&mut r, &mut w, 0, 1).await, None);
        assert_eq!(seen.load(Ordering::Relaxed), 0, "the request never arrived");

        proxy.set(LinkFaults {
            drop_replies: true,
            ..LinkFaults::default()
        });
        let (mut r, mut w) = client(&proxy).await;
        assert_eq!(call(&mut r, &mut w, 0, 2).await, None);
        assert_eq!(
            seen.load(Ordering::Relaxed),
            1,
            "the request arrived, its reply did not"
        );

        proxy.set(LinkFaults {
            cut: true,
            ..LinkFaults::default()
        });
        let mut stream = TcpStream::connect(&proxy.addr).await.unwrap();
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut byte)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "a cut link closes connections: {read:?}"
        );

        proxy.set(LinkFaults::default());
        let (mut r, mut w) = client(&proxy).await;
        assert_eq!(call(&mut r, &mut w, 0, 3).await, Some(3));
    }

    #[tokio::test]
    async fn delay_holds_requests_in_order() {
        let (target, _) = server().await;
        let proxy = proxy_to(target).await;
        let (mut r, mut w) = client(&proxy).await;
        proxy.set(LinkFaults {
            delay_ms: 100,
            ..LinkFaults::default()
        });
        let started = Instant::now();
        w.write_all(&frame(0, 1)).await.unwrap();
        w.write_all(&frame(0, 2)).await.unwrap();
        let first = read_frame(&mut r).await.unwrap();
        let second = read_frame(&mut r).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert_eq!((first[HEADER_LEN + 1], second[HEADER_LEN + 1]), (1, 2));
    }
}
