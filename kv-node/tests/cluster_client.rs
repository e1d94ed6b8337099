//! `ClusterClient` against scripted fake nodes: leader discovery, failover, backoff, the
//! request timeout, the split between "not applied" and "outcome unknown", and session retries
//! that resend the same `(id, seq)`, transactions (an `EXEC` whose answer is lost is never
//! resent) and watches (resumed in the middle of an entry's changes, exactly once); and
//! against a real 3-node cluster whose leader is killed twice while clients `INCR` through
//! sessions (the "done when").

mod cluster_support;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

use kv_node::client::Change;
use kv_node::client::ClusterClient;
use kv_node::client::ClusterError;
use kv_node::client::ClusterOptions;
use kv_node::client::Failure;
use kv_node::client::Watch;
use kv_node::client::WatchError;
use kv_node::protocol::ParseLimits;
use kv_node::protocol::Reply;
use kv_node::protocol::parser;
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// What a fake node does with one command.
enum Answer {
    Reply(Reply),
    /// Close the connection without answering (the command "reached" the node).
    Drop,
    /// Never answer.
    Hang,
    /// Several replies (a reply and the pushes after it), then close the connection.
    Stream(Vec<Reply>),
}

type Calls = Arc<Mutex<Vec<Vec<String>>>>;

/// A RESP server on loopback answering each command with `handler(command)`.
struct FakeNode {
    address: String,
    calls: Calls,
}

impl FakeNode {
    async fn start(handler: impl Fn(&[String]) -> Answer + Send + Sync + 'static) -> FakeNode {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let calls: Calls = Arc::default();
        let handler = Arc::new(handler);
        let seen = calls.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (handler, seen) = (handler.clone(), seen.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        while let Ok(Some((args, used))) = parser::parse_request(&buf, &ParseLimits::default()) {
                            buf.drain(..used);
                            let args: Vec<String> =
                                args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
                            seen.lock().unwrap().push(args.clone());
                            match handler(&args) {
                                Answer::Reply(reply) => {
                                    let mut out = Vec::new();
                                    reply.encode(&mut out);
                                    if stream.write_all(&out).await.is_err() {
                                        return;
                                    }
                                }
                                Answer::Drop => return,
                                Answer::Hang => std::future::pending::<()>().await,
                                Answer::Stream(replies) => {
                                    let mut out = Vec::new();
                                    for reply in replies {
                                        reply.encode(&mut out);
                                    }
                                    let _ = stream.write_all(&out).await;
                                    return;
                                }
                            }
                        }
                        let mut chunk = [0u8; 4096];
                        match stream.read(&mut chunk).await {
                            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                            _ => return,
                        }
                    }
                });
            }
        });
        FakeNode { address, calls }
    }

    /// The commands it received whose name (or `SESSION RUN`'s wrapped name) is `name`.
    fn count(&self, name: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c[0].eq_ignore_ascii_case(name) || (c.len() > 5 && c[1] == "RUN" && c[5] == name))
            .count()
    }

    fn calls(&self) -> Vec<Vec<String>> {
        self.calls.lock().unwrap().clone()
    }
}

fn dead_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

fn error_reply(text: &str) -> Answer {
    Answer::Reply(Reply::Error(text.to_string()))
}

const NO_LEADER: &str = "TRYAGAIN no leader is known (election in progress or no quorum reachable)";

fn options() -> ClusterOptions {
    ClusterOptions {
        retry_for: Duration::from_secs(5),
        request_timeout: Duration::from_secs(1),
        ..ClusterOptions::default()
    }
}

fn without_sessions() -> ClusterOptions {
    ClusterOptions {
        sessions: false,
        ..options()
    }
}

/// Answers `SESSION NEW` with `id`, and `SESSION RUN ...`'s wrapped command with `inner`.
fn with_sessions(
    id: i64,
    inner: impl Fn(&[String]) -> Answer + Send + Sync + 'static,
) -> impl Fn(&[String]) -> Answer + Send + Sync + 'static {
    move |args: &[String]| match (args[0].as_str(), args.get(1).map(String::as_str)) {
        ("SESSION", Some("NEW")) => Answer::Reply(Reply::Integer(id)),
        ("SESSION", Some("RUN")) => inner(&args[5..]),
        _ => inner(args),
    }
}

#[tokio::test]
async fn follows_raft_leader_past_a_dead_node() {
    let leader = FakeNode::start(|args| match args[0].as_str() {
        "GET" => Answer::Reply(Reply::text("v")),
        _ => error_reply("ERR unexpected"),
    })
    .await;
    let leader_address = leader.address.clone();
    let follower = FakeNode::start(move |args| match args[0].as_str() {
        "RAFT" => Answer::Reply(Reply::Array(vec![
            Reply::Integer(3),
            Reply::text("raft-addr"),
            Reply::text(leader_address.clone()),
        ])),
        _ => Answer::Reply(Reply::Nil),
    })
    .await;
    let mut client = ClusterClient::new([dead_address(), follower.address.clone()], options()).unwrap();
    assert_eq!(client.call(&["GET", "k"]).await, Ok(Reply::text("v")));
    assert_eq!((follower.count("RAFT"), follower.count("GET")), (1, 0));
    assert_eq!(leader.count("GET"), 1);
    assert_eq!(client.current_address(), leader.address);
    assert!(client.addresses().contains(&leader.address));
}

#[tokio::test]
async fn tryagain_is_retried_with_backoff_and_moved_is_followed() {
    let answers = Arc::new(Mutex::new(vec![error_reply(NO_LEADER), error_reply(NO_LEADER)]));
    let flaky = FakeNode::start(move |args| match args[0].as_str() {
        "RAFT" => error_reply(NO_LEADER),
        _ => answers
            .lock()
            .unwrap()
            .pop()
            .unwrap_or(Answer::Reply(Reply::Integer(1))),
    })
    .await;
    let flaky_address = flaky.address.clone();
    let mover = FakeNode::start(move |args| match args[0].as_str() {
        "RAFT" => error_reply(NO_LEADER),
        _ => error_reply(&format!("MOVED 0 {flaky_address}")),
    })
    .await;
    let mut client = ClusterClient::new([mover.address.clone()], without_sessions()).unwrap();
    let started = Instant::now();
    assert_eq!(client.call(&["DEL", "k"]).await, Ok(Reply::Integer(1)));
    // Each -TRYAGAIN sends the client on to the next node (the mover, which redirects at
    // once), after a pause: 20 ms, then 40 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(60),
        "{:?}",
        started.elapsed()
    );
    assert_eq!((mover.count("DEL"), flaky.count("DEL")), (3, 3));
}

#[tokio::test]
async fn not_the_leader_for_too_long_is_no_leader_not_applied() {
    let node = FakeNode::start(|args| match args[0].as_str() {
        "RAFT" => Answer::Reply(Reply::Array(vec![
            Reply::Integer(3),
            Reply::text("raft-addr"),
            Reply::text(""),
        ])),
        _ => error_reply("TRYAGAIN node 2 is not the leader (leader: 3)"),
    })
    .await;
    let options = ClusterOptions {
        retry_for: Duration::from_millis(300),
        ..without_sessions()
    };
    let mut client = ClusterClient::new([node.address.clone()], options).unwrap();
    let error = client.call(&["SET", "k", "v"]).await.unwrap_err();
    assert!(
        matches!(
            error,
            ClusterError::NotApplied(Failure::NoLeader { leader: Some(3), .. })
        ),
        "{error:?}"
    );
    assert!(!error.may_have_taken_effect());
    assert!(node.count("SET") >= 3, "retried with backoff: {}", node.count("SET"));
}

#[tokio::test]
async fn nothing_reachable_is_unreachable_not_applied() {
    let options = ClusterOptions {
        retry_for: Duration::from_millis(300),
        ..options()
    };
    let mut client = ClusterClient::new([dead_address(), dead_address()], options).unwrap();
    let error = client.call(&["INCR", "k"]).await.unwrap_err();
    assert!(
        matches!(&error, ClusterError::NotApplied(Failure::Unreachable { last, .. }) if last.contains("refused")),
        "{error:?}"
    );
    assert!(ClusterClient::new(Vec::<String>::new(), ClusterOptions::default()).is_err());
}

#[tokio::test]
async fn error_replies_are_final_and_not_applied() {
    let node = FakeNode::start(with_sessions(7, |args| match args[0].as_str() {
        "RAFT" => error_reply(NO_LEADER),
        _ => error_reply("ERR value is not an integer or out of range"),
    }))
    .await;
    let mut client = ClusterClient::new([node.address.clone()], options()).unwrap();
    let error = client.call(&["INCR", "k"]).await.unwrap_err();
    assert_eq!(
        error,
        ClusterError::NotApplied(Failure::Reply("ERR value is not an integer or out of range".into()))
    );
    assert_eq!(node.count("INCR"), 1);
}

#[tokio::test]
async fn a_write_without_a_session_is_never_resent_once_it_may_have_applied() {
    let first = FakeNode::start(|args| match args[0].as_str() {
        "RAFT" => error_reply(NO_LEADER),
        _ => Answer::Drop,
    })
    .await;
    let second = FakeNode::start(|_| Answer::Reply(Reply::Integer(1))).await;
    let mut client = ClusterClient::new([first.address.clone(), second.address.clone()], without_sessions()).unwrap();
    let error = client.call(&["INCR", "k"]).await.unwrap_err();
    assert!(matches!(error, ClusterError::OutcomeUnknown(_)), "{error:?}");
    assert_eq!((first.count("INCR"), second.count("INCR")), (1, 0));

    // The node's own "outcome unknown" (its forward lost) counts the same.
    let forwarder = FakeNode::start(|args| match args[0].as_str() {
        "RAFT" => error_reply(NO_LEADER),
        _ => error_reply(
            "TRYAGAIN outcome unknown: leader 1 answered out of protocol; the write may or may not have taken effect",
        ),
    })
    .await;
    let mut client = ClusterClient::new([forwarder.address.clone()], without_sessions()).unwrap();
    assert!(
        client
            .call(&["APPEND", "k", "x"])
            .await
            .unwrap_err()
            .may_have_taken_effect()
    );
    assert_eq!(forwarder.count("APPEND"), 1);

    // A read whose answer was lost is simply asked again, elsewhere.
    let mut client = ClusterClient::new([first.address.clone(), second.address.clone()], without_sessions()).unwrap();
    assert_eq!(client.call(&["EXISTS", "k"]).await, Ok(Reply::Integer(1)));
}

#[tokio::test]
async fn the_request_timeout_bounds_each_wait() {
    let node = FakeNode::start(|args| match args[0].as_str() {
        "RAFT" => error_reply(NO_LEADER),
        _ => Answer::Hang,
    })
    .await;
    let options = ClusterOptions {
        request_timeout: Duration::from_millis(200),
        ..without_sessions()
    };
    let mut client = ClusterClient::new([node.address.clone()], options).unwrap();
    let started = Instant::now();
    let error = client.call(&["SET", "k", "v"]).await.unwrap_err();
    assert!(matches!(error, ClusterError::OutcomeUnknown(_)), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_session_write_is_resent_with_the_same_id_and_seq_until_answered() {
    let dropper = FakeNode::start(with_sessions(41, |args| match args[0].as_str() {
        "RAFT" => error_reply(NO_LEADER),
        _ => Answer::Drop,
    }))
    .await;
    let answerer = FakeNode::start(with_sessions(99, |args| match args[0].as_str() {
        "RAFT" => error_reply(NO_LEADER),
        _ => Answer::Reply(Reply::Integer(5)),
    }))
    .await;
    let mut client = ClusterClient::new([dropper.address.clone(), answerer.address.clone()], options()).unwrap();
    assert_eq!(client.call(&["INCR", "k"]).await, Ok(Reply::Integer(5)));
    assert_eq!(client.session_id(), Some(41));
    let runs = |node: &FakeNode| -> Vec<Vec<String>> {
        node.calls()
            .into_iter()
            .filter(|c| c[0] == "SESSION" && c[1] == "RUN")
            .map(|c| c[2..].to_vec())
            .collect()
    };
    let expected = vec!["41", "1", "0", "INCR", "k"];
    assert_eq!(runs(&dropper), vec![expected.clone()]);
    assert_eq!(runs(&answerer), vec![expected]);
    // The next write takes the next seq and acknowledges the first.
    assert_eq!(client.call(&["INCR", "k"]).await, Ok(Reply::Integer(5)));
    assert_eq!(runs(&answerer).last().unwrap()[..3], ["41", "2", "1"]);
    // Reads are not wrapped.
    assert_eq!(client.call(&["GET", "k"]).await, Ok(Reply::Integer(5)));
    assert_eq!(answerer.count("GET"), 1);
    client.close().await;
    let ended = |node: &FakeNode| {
        node.calls()
            .iter()
            .filter(|c| c[0] == "SESSION" && c[1] == "END")
            .count()
    };
    assert_eq!(ended(&dropper) + ended(&answerer), 1);
}

#[tokio::test]
async fn an_expired_session_is_renewed_for_a_fresh_write_and_unknown_for_a_retried_one() {
    // Session 1 has expired; session 2 works.
    let node = FakeNode::start({
        let next = Mutex::new(0);
        move |args: &[String]| match (args[0].as_str(), args.get(1).map(String::as_str)) {
            ("SESSION", Some("NEW")) => {
                let mut next = next.lock().unwrap();
                *next += 1;
                Answer::Reply(Reply::Integer(*next))
            }
            ("SESSION", Some("RUN")) if args[2] == "1" => error_reply("SESSIONEXPIRED session 1 is unknown or expired"),
            ("SESSION", Some("RUN")) => Answer::Reply(Reply::Integer(1)),
            _ => error_reply(NO_LEADER),
        }
    })
    .await;
    let mut client = ClusterClient::new([node.address.clone()], options()).unwrap();
    assert_eq!(client.call(&["INCR", "k"]).await, Ok(Reply::Integer(1)));
    assert_eq!(client.session_id(), Some(2));

    // The first send is lost, and the retry finds the session expired: the first send may
    // have applied, so the outcome is unknown.
    let lost = FakeNode::start(|args| match args[0].as_str() {
        "SESSION" if args[1] == "NEW" => Answer::Reply(Reply::Integer(1)),
        "SESSION" => Answer::Drop,
        _ => error_reply(NO_LEADER),
    })
    .await;
    let expired = FakeNode::start(|args| match args[0].as_str() {
        "SESSION" => error_reply("SESSIONEXPIRED session 1 is unknown or expired"),
        _ => error_reply(NO_LEADER),
    })
    .await;
    let mut client = ClusterClient::new([lost.address.clone(), expired.address.clone()], options()).unwrap();
    let error = client.call(&["INCR", "k"]).await.unwrap_err();
    assert!(matches!(error, ClusterError::OutcomeUnknown(_)), "{error:?}");
    assert_eq!(client.session_id(), None);
}

/// Four clients `INCR` one counter through sessions while the leader is killed with SIGKILL
/// twice (restarted in between). Every increment whose answer was lost is resent with the
/// same `(id, seq)`: the final value equals the acknowledged increments, none applied twice,
/// and no call ends with an unknown outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn session_increments_apply_exactly_once_across_leader_kills() {
    let mut cluster = cluster_support::Cluster::start(cluster_support::ClusterOptions::default()).await;
    let seeds: Vec<String> = cluster.nodes.iter().map(|n| n.client_addr.clone()).collect();
    let options = ClusterOptions {
        retry_for: Duration::from_secs(30),
        ..ClusterOptions::default()
    };
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let mut client = ClusterClient::new(&seeds, options.clone()).unwrap();
        let (acked, stop) = (acked.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                client.call(&["INCR", "counter"]).await?;
                acked.fetch_add(1, Ordering::Relaxed);
            }
            client.close().await;
            Ok::<_, ClusterError>(())
        }));
    }
    cluster_support::wait_for_progress(&acked, 100).await;
    for _ in 0..2 {
        let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
        cluster.node_mut(leader).kill();
        cluster_support::wait_for_progress(&acked, 100).await;
        cluster.node_mut(leader).spawn();
        cluster.wait_for_leader(Duration::from_secs(30)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap().expect("no increment fails or ends unknown");
    }
    let mut client = ClusterClient::new(&seeds, options).unwrap();
    let Reply::Bulk(value) = client.call(&["GET", "counter"]).await.unwrap() else {
        panic!("the counter is a string");
    };
    let value: u64 = String::from_utf8(value).unwrap().parse().unwrap();
    assert_eq!(
        value,
        acked.load(Ordering::Relaxed),
        "increments applied != acknowledged"
    );
}

/// A fake node's `RAFT LEADER`: itself, without a client address (so nobody is redirected).
fn leader_itself() -> Answer {
    Answer::Reply(Reply::Array(vec![
        Reply::Integer(1),
        Reply::text("raft"),
        Reply::text(""),
    ]))
}

/// A node that runs transactions: `MULTI`, `+QUEUED` for each command, and `exec` for `EXEC`.
fn transactions(
    exec: impl Fn() -> Answer + Send + Sync + 'static,
) -> impl Fn(&[String]) -> Answer + Send + Sync + 'static {
    move |args: &[String]| match args[0].as_str() {
        "RAFT" => leader_itself(),
        "MULTI" => Answer::Reply(Reply::ok()),
        "EXEC" => exec(),
        _ => Answer::Reply(Reply::Simple("QUEUED".to_string())),
    }
}

#[tokio::test]
async fn an_exec_whose_answer_is_lost_is_outcome_unknown_and_never_resent() {
    let lost = FakeNode::start(transactions(|| Answer::Drop)).await;
    let other = FakeNode::start(transactions(|| Answer::Reply(Reply::Array(vec![Reply::ok()])))).await;
    let mut client = ClusterClient::new([lost.address.clone(), other.address.clone()], options()).unwrap();
    let error = client.transact(&[vec!["SET", "k", "v"]]).await.unwrap_err();
    assert!(matches!(error, ClusterError::OutcomeUnknown(_)), "{error:?}");
    assert_eq!((lost.count("EXEC"), other.count("EXEC")), (1, 0));
    // MULTI went alone, before the queued command and EXEC.
    let names: Vec<String> = lost.calls().into_iter().map(|c| c[0].clone()).collect();
    assert_eq!(names[names.len() - 3..], ["MULTI", "SET", "EXEC"]);

    // A transaction of reads only has no effect to lose: interrupted, not unknown.
    let mut pinned = client.transaction().await.unwrap();
    assert_eq!(pinned.address(), lost.address);
    let error = pinned.exec(&[vec!["GET", "k"]]).await.unwrap_err();
    assert!(
        matches!(error, ClusterError::NotApplied(Failure::Interrupted(_))),
        "{error:?}"
    );
    assert!(!pinned.is_open());
}

#[tokio::test]
async fn a_transaction_refused_before_it_applied_starts_over_on_the_next_node() {
    let refusing = FakeNode::start(transactions(|| error_reply(NO_LEADER))).await;
    let working = FakeNode::start(transactions(|| {
        Answer::Reply(Reply::Array(vec![Reply::ok(), Reply::Integer(2)]))
    }))
    .await;
    let mut client = ClusterClient::new([refusing.address.clone(), working.address.clone()], options()).unwrap();
    let replies = client
        .transact(&[vec!["SET", "k", "1"], vec!["INCR", "k"]])
        .await
        .unwrap();
    assert_eq!(replies, [Reply::ok(), Reply::Integer(2)]);
    assert_eq!((refusing.count("EXEC"), working.count("EXEC")), (1, 1));

    // Nil: a watched key changed. EXECABORT carries the refusal that caused it.
    let aborting = FakeNode::start(|args| match args[0].as_str() {
        "RAFT" => leader_itself(),
        "MULTI" | "WATCH" => Answer::Reply(Reply::ok()),
        "NOSUCH" => error_reply("ERR unknown command 'NOSUCH'"),
        "EXEC" if args.len() == 1 => error_reply("EXECABORT Transaction discarded because of previous errors."),
        _ => Answer::Reply(Reply::Simple("QUEUED".to_string())),
    })
    .await;
    let mut pinned = ClusterClient::new([aborting.address.clone()], options())
        .unwrap()
        .transaction()
        .await
        .unwrap();
    pinned.watch(&["k"]).await.unwrap();
    let error = pinned.exec(&[vec!["SET", "k", "v"], vec!["NOSUCH"]]).await.unwrap_err();
    assert_eq!(
        error,
        ClusterError::NotApplied(Failure::Reply(
            "EXECABORT Transaction discarded because of previous errors. (ERR unknown command 'NOSUCH')".to_string()
        ))
    );
    let watched = FakeNode::start(transactions(|| Answer::Reply(Reply::Nil))).await;
    let mut pinned = ClusterClient::new([watched.address.clone()], options())
        .unwrap()
        .transaction()
        .await
        .unwrap();
    assert_eq!(pinned.exec(&[vec!["SET", "k", "v"]]).await, Ok(None));
}

fn change(revision: i64, key: &str) -> Reply {
    Reply::Array(vec![
        Reply::text("change"),
        Reply::text("p"),
        Reply::Integer(revision),
        Reply::text(key),
        Reply::text("set"),
        Reply::text("v"),
    ])
}

fn started(revision: i64) -> Reply {
    Reply::Array(vec![
        Reply::text("watchkeys"),
        Reply::text("p"),
        Reply::Integer(revision),
    ])
}

#[tokio::test]
async fn a_watch_resumed_in_the_middle_of_an_entry_yields_each_change_once() {
    // The first node dies after two of revision 12's three changes.
    let first =
        FakeNode::start(|_| Answer::Stream(vec![started(10), change(11, "a"), change(12, "b"), change(12, "c")])).await;
    let second = FakeNode::start(|args| {
        if args.len() == 4 && args[3] == "11" {
            Answer::Stream(vec![
                started(11),
                change(12, "b"),
                change(12, "c"),
                change(12, "d"),
                change(13, "e"),
            ])
        } else {
            error_reply("ERR unexpected")
        }
    })
    .await;
    let mut watch = Watch::new([first.address.clone(), second.address.clone()], options(), b"p", None).unwrap();
    let mut keys = Vec::new();
    for _ in 0..5 {
        let Change { revision, key, .. } = watch.next().await.unwrap();
        keys.push((revision, String::from_utf8(key).unwrap()));
    }
    let expected = [(11, "a"), (12, "b"), (12, "c"), (12, "d"), (13, "e")];
    assert_eq!(keys, expected.map(|(r, k)| (r, k.to_string())));
    assert_eq!(first.calls(), [vec!["WATCHKEYS".to_string(), "p".to_string()]]);
    assert_eq!(second.calls()[0], ["WATCHKEYS", "p", "SINCE", "11"]);
    assert_eq!(watch.revision(), Some(13));
}

#[tokio::test]
async fn a_watch_whose_history_is_gone_everywhere_is_compacted() {
    let compacted = |oldest: u64| {
        move |_: &[String]| {
            error_reply(&format!(
                "COMPACTED revision 5 is compacted; the oldest available is {oldest}"
            ))
        }
    };
    let (a, b) = (FakeNode::start(compacted(7)).await, FakeNode::start(compacted(9)).await);
    let mut watch = Watch::new(
        [a.address.clone(), dead_address(), b.address.clone()],
        options(),
        b"p",
        Some(5),
    )
    .unwrap();
    assert_eq!(watch.next().await, Err(WatchError::Compacted { since: 5, oldest: 9 }));
    // Any other error reply is final too.
    let refusing = FakeNode::start(|_| error_reply("ERR syntax error")).await;
    let mut watch = Watch::new([refusing.address.clone()], options(), b"p", Some(5)).unwrap();
    assert_eq!(
        watch.next().await,
        Err(WatchError::Failed(Failure::Reply("ERR syntax error".to_string())))
    );
}

#[tokio::test]
async fn a_silent_watch_is_pinged_and_left_when_the_ping_goes_unanswered() {
    let pong = || Answer::Reply(Reply::Array(vec![Reply::text("pong"), Reply::text("")]));
    let alive = FakeNode::start(move |args| match args[0].as_str() {
        "WATCHKEYS" => Answer::Reply(started(10)),
        "PING" => pong(),
        _ => error_reply("ERR unexpected"),
    })
    .await;
    let quick = ClusterOptions {
        request_timeout: Duration::from_millis(100),
        ..options()
    };
    let mut watch = Watch::new([alive.address.clone()], quick.clone(), b"p", None).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(700);
    assert_eq!(watch.next_until(deadline).await, Ok(None));
    assert!(alive.count("PING") >= 2, "{:?}", alive.calls());
    assert_eq!(alive.count("WATCHKEYS"), 1, "an answered PING keeps the connection");

    let mute = FakeNode::start(|args| match args[0].as_str() {
        "WATCHKEYS" => Answer::Reply(started(10)),
        _ => Answer::Hang,
    })
    .await;
    let mut watch = Watch::new([mute.address.clone()], quick, b"p", None).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(700);
    assert_eq!(watch.next_until(deadline).await, Ok(None));
    assert!(mute.count("WATCHKEYS") >= 2, "an unanswered PING loses the connection");
    let watches: Vec<Vec<String>> = mute.calls().into_iter().filter(|c| c[0] == "WATCHKEYS").collect();
    assert_eq!(watches[1], ["WATCHKEYS", "p", "SINCE", "10"], "resumed where it stood");
}
