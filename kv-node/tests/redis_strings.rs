//! The string and keyspace commands against a real `redis-server`, side by side: each command
//! goes to a fresh `redis-server` and to a 1-node QuorumKV, and the raw reply bytes must be
//! equal (for replies that depend on the clock or on the node, their RESP shape must be).
//! Then: commands of the other data types answer Redis's own `unknown command` error, byte for
//! byte, and the connection goes on.
//!
//! Skipped with a note when `redis-server` is not installed (`scripts/install-deps.sh`
//! installs it). The Redis it was written against is 7.0.

mod cluster_support;

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use cluster_support::Cluster;
use cluster_support::ClusterOptions;
use cluster_support::RedisServer;
use kv_node::protocol::ParseLimits;
use kv_node::protocol::Reply;
use kv_node::protocol::parser::parse_reply;

/// A connection that returns replies as the raw bytes the server sent.
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn connect(addr: &str) -> Raw {
        Raw {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, args: &[Vec<u8>]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&out).await.unwrap();
    }

    /// The next reply: its bytes and its value.
    async fn reply(&mut self) -> (Vec<u8>, Reply) {
        let limits = ParseLimits::default();
        loop {
            if let Some((reply, used)) = parse_reply(&self.buf, &limits).unwrap() {
                let bytes = self.buf.drain(..used).collect();
                return (bytes, reply);
            }
            let mut chunk = [0u8; 65536];
            let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk))
                .await
                .expect("a reply within 10 s (no hang)")
                .unwrap();
            assert!(n > 0, "the server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn call(&mut self, args: &[Vec<u8>]) -> (Vec<u8>, Reply) {
        self.send(args).await;
        self.reply().await
    }
}

/// Splits a command line on spaces; `""` is an empty argument.
fn args(line: &str) -> Vec<Vec<u8>> {
    line.split(' ')
        .map(|a| if a == "\"\"" { Vec::new() } else { a.as_bytes().to_vec() })
        .collect()
}

/// How much of a reply must agree.
#[derive(Clone, Copy)]
enum Compare {
    /// Every byte.
    Bytes,
    /// The RESP type, and the length of an array.
    Shape,
}

use Compare::Bytes;
use Compare::Shape;

fn shape(reply: &Reply) -> String {
    match reply {
        Reply::Simple(_) => "simple".into(),
        Reply::Error(_) => "error".into(),
        Reply::Integer(_) => "integer".into(),
        Reply::Bulk(_) => "bulk".into(),
        Reply::Nil | Reply::NilArray => "nil".into(),
        Reply::Array(items) => format!("array of {}", items.len()),
        Reply::Push(items) => format!("push of {}", items.len()),
        Reply::Map(pairs) => format!("map of {}", pairs.len()),
    }
}

/// Runs `cases` in order on both servers, comparing each reply.
async fn compare(redis: &mut Raw, ours: &mut Raw, cases: &[(&str, Compare)]) -> usize {
    let mut compared = 0;
    for &(line, how) in cases {
        let call = args(line);
        let (theirs_bytes, theirs) = redis.call(&call).await;
        let (ours_bytes, ours_reply) = ours.call(&call).await;
        match how {
            Bytes => assert_eq!(
                String::from_utf8_lossy(&ours_bytes),
                String::from_utf8_lossy(&theirs_bytes),
                "{line}"
            ),
            Shape => assert_eq!(
                shape(&ours_reply),
                shape(&theirs),
                "{line}: {ours_reply:?} vs {theirs:?}"
            ),
        }
        compared += 1;
    }
    compared
}

const STRINGS: &[(&str, Compare)] = &[
    ("FLUSHALL", Bytes),
    // SETNX, GETSET
    ("SETNX a 1", Bytes),
    ("SETNX a 2", Bytes),
    ("GETSET a 3", Bytes),
    ("GETSET nope 1", Bytes),
    ("GET nope", Bytes),
    ("SETNX a", Bytes),
    ("GETSET a", Bytes),
    // SETEX, PSETEX and their expire-time checks
    ("SETEX b 0 v", Bytes),
    ("SETEX b -1 v", Bytes),
    ("SETEX b x v", Bytes),
    ("SETEX b 9223372036854775 v", Bytes),
    ("SETEX b 9223370399119966 v", Bytes),
    ("PSETEX b 0 v", Bytes),
    ("PSETEX b 9223372036854775807 v", Bytes),
    ("SETEX b 100 v", Bytes),
    ("TTL b", Bytes),
    ("PSETEX c 100000 v", Bytes),
    ("PTTL c", Shape),
    ("SETEX b 100", Bytes),
    // SET's expiry options, the same checks
    ("SET k v EX 9223370399119966", Bytes),
    ("SET k v PX 9223372036854775807", Bytes),
    ("SET k v EXAT 9223372036854776", Bytes),
    ("SET k v PXAT 9223372036854775807", Bytes),
    ("SET k v EX 10 EX 20", Bytes),
    ("TTL k", Bytes),
    ("SET k v NX NX", Bytes),
    ("SET k v GET GET", Bytes),
    ("SET k v EX 10 PX 100", Bytes),
    ("SET k v KEEPTTL KEEPTTL", Bytes),
    ("SET k v KEEPTTL EX 10", Bytes),
    ("SET k v EX 0", Bytes),
    // GETEX
    ("GETEX b", Bytes),
    ("GETEX b PERSIST", Bytes),
    ("TTL b", Bytes),
    ("GETEX b EX 0", Bytes),
    ("GETEX b EX x", Bytes),
    ("GETEX b EX 9223370399119966", Bytes),
    ("GETEX b EX 10 PX 10", Bytes),
    ("GETEX b foo", Bytes),
    ("GETEX b PERSIST EX 1", Bytes),
    ("GETEX b EX", Bytes),
    ("GETEX nope EX 10", Bytes),
    ("GETEX nope EX 0", Bytes),
    ("GETEX nope EX abc", Bytes),
    ("GETEX nope foo", Bytes),
    ("GETEX b EX 10 EX 20", Bytes),
    ("TTL b", Bytes),
    ("GETEX b PX 5000", Bytes),
    ("PTTL b", Shape),
    ("GETEX b PERSIST PERSIST", Bytes),
    ("GETEX b EXAT 4000000000", Bytes),
    ("EXPIRETIME b", Bytes),
    ("GETEX b PXAT 4000000000123", Bytes),
    ("PEXPIRETIME b", Bytes),
    ("GETEX b EXAT 1", Bytes),
    ("EXISTS b", Bytes),
    ("GETEX", Bytes),
    // MSETNX
    ("MSETNX x 1 y 2", Bytes),
    ("MSETNX x 1 z 2", Bytes),
    ("GET z", Bytes),
    ("MSETNX x 1 y", Bytes),
    ("MSETNX", Bytes),
    // GETRANGE (Redis 7.0's clamping)
    ("SET s Hello", Bytes),
    ("GETRANGE s 1 3", Bytes),
    ("GETRANGE s -3 -1", Bytes),
    ("GETRANGE s 5 10", Bytes),
    ("GETRANGE s 10 2", Bytes),
    ("GETRANGE s -100 100", Bytes),
    ("GETRANGE s 0 -100", Bytes),
    ("GETRANGE s 3 1", Bytes),
    ("GETRANGE s -1 -5", Bytes),
    ("GETRANGE s 0 9223372036854775807", Bytes),
    ("GETRANGE nope 0 1", Bytes),
    ("GETRANGE s a 1", Bytes),
    ("GETRANGE s 0", Bytes),
    // SETRANGE
    ("SETRANGE s 6 World", Bytes),
    ("GET s", Bytes),
    ("SETRANGE s -1 x", Bytes),
    ("SETRANGE s x x", Bytes),
    ("SETRANGE n2 0 \"\"", Bytes),
    ("EXISTS n2", Bytes),
    ("SETRANGE s 3 \"\"", Bytes),
    ("SETRANGE n3 3 x", Bytes),
    ("GET n3", Bytes),
    ("SETRANGE s 0", Bytes),
    // INCRBYFLOAT: x87 extended precision, %.17Lf
    ("SET f 10.5", Bytes),
    ("INCRBYFLOAT f 0.1", Bytes),
    ("INCRBYFLOAT f 1e30", Bytes),
    ("SET g 0.1", Bytes),
    ("INCRBYFLOAT g 0.2", Bytes),
    ("INCRBYFLOAT h 5.0e3", Bytes),
    ("INCRBYFLOAT h 0x10", Bytes),
    ("INCRBYFLOAT h abc", Bytes),
    ("INCRBYFLOAT h inf", Bytes),
    ("INCRBYFLOAT h nan", Bytes),
    ("INCRBYFLOAT h 1e5000", Bytes),
    ("INCRBYFLOAT h 1e", Bytes),
    ("INCRBYFLOAT h \"\"", Bytes),
    ("INCRBYFLOAT h -1e-20", Bytes),
    ("INCRBYFLOAT h2 1e400", Bytes),
    ("INCRBYFLOAT h3 1e-30", Bytes),
    ("INCRBYFLOAT h4 -0", Bytes),
    ("INCRBYFLOAT h5 123456789012345678901234567890", Bytes),
    ("INCRBYFLOAT h6 0.1", Bytes),
    ("INCRBYFLOAT h6 0.7", Bytes),
    ("INCRBYFLOAT h6 +1.5", Bytes),
    ("INCRBYFLOAT h6 1.", Bytes),
    ("INCRBYFLOAT h6 .5", Bytes),
    ("INCRBYFLOAT h6 1E2", Bytes),
    ("INCRBYFLOAT h6 0x1.8p1", Bytes),
    ("INCRBYFLOAT h6 -3.3333333333333333333", Bytes),
    ("SET s2 abc", Bytes),
    ("INCRBYFLOAT s2 1", Bytes),
    ("SET ff inf", Bytes),
    ("INCRBYFLOAT ff 1", Bytes),
    ("SET e 7", Bytes),
    ("PEXPIRE e 100000", Bytes),
    ("INCRBYFLOAT e 1.5", Bytes),
    ("PTTL e", Shape),
    ("INCRBYFLOAT e", Bytes),
    // TYPE
    ("TYPE s", Bytes),
    ("TYPE nope", Bytes),
    ("TYPE", Bytes),
];

const KEYSPACE: &[(&str, Compare)] = &[
    ("FLUSHALL", Bytes),
    ("RANDOMKEY", Bytes),
    // RENAME, RENAMENX
    ("SET a 1", Bytes),
    ("RANDOMKEY", Bytes),
    ("RENAME a b", Bytes),
    ("GET b", Bytes),
    ("RENAME a b", Bytes),
    ("RENAME b b", Bytes),
    ("RENAMENX b b", Bytes),
    ("SET c 2", Bytes),
    ("RENAMENX b c", Bytes),
    ("RENAMENX b d", Bytes),
    ("RENAME nope nope", Bytes),
    ("RENAMENX nope x", Bytes),
    ("PEXPIRE d 100000", Bytes),
    ("RENAME d e", Bytes),
    ("PTTL e", Shape),
    ("RENAME e", Bytes),
    // COPY
    ("COPY e f", Bytes),
    ("PTTL f", Shape),
    ("COPY e f", Bytes),
    ("COPY e f REPLACE", Bytes),
    ("COPY e f DB 0", Bytes),
    ("COPY e f DB 0 REPLACE", Bytes),
    ("COPY e f REPLACE REPLACE", Bytes),
    ("COPY e f DB x", Bytes),
    ("COPY e f DB -1", Bytes),
    ("COPY e f DB", Bytes),
    ("COPY e f foo", Bytes),
    ("COPY e e", Bytes),
    ("COPY nope nope", Bytes),
    ("COPY nope x", Bytes),
    ("COPY e", Bytes),
    // TOUCH
    ("TOUCH e f nope e", Bytes),
    ("TOUCH", Bytes),
    // EXPIREAT, PEXPIREAT, the overflow, EXPIRETIME
    ("EXPIREAT e 1", Bytes),
    ("EXISTS e", Bytes),
    ("EXPIREAT f 9223372036854775", Bytes),
    ("EXPIREAT f 9223372036854776", Bytes),
    ("EXPIREAT f 9223372036854775807", Bytes),
    ("PEXPIREAT f 9223372036854775807", Bytes),
    ("EXPIRE f 9223370399119966", Bytes),
    ("EXPIRE f 9223372036854775807", Bytes),
    ("EXPIRE f -9223372036854775808", Bytes),
    ("PEXPIRE f 9223372036854775807", Bytes),
    ("EXPIRE f x", Bytes),
    ("EXPIREAT f 4000000000", Bytes),
    ("EXPIRETIME f", Bytes),
    ("PEXPIRETIME f", Bytes),
    ("PEXPIREAT f 4000000000999", Bytes),
    ("EXPIRETIME f", Bytes),
    ("PEXPIRETIME f", Bytes),
    ("PEXPIRETIME nope", Bytes),
    ("SET p 1", Bytes),
    ("EXPIRETIME p", Bytes),
    ("EXPIRETIME", Bytes),
    // EXPIRE's NX, XX, GT, LT
    ("PERSIST f", Bytes),
    ("EXPIRE f 100 XX", Bytes),
    ("EXPIRE f 100 GT", Bytes),
    ("EXPIRE f 100 XX LT", Bytes),
    ("EXPIRE f 100 NX", Bytes),
    ("EXPIRE f 100 NX", Bytes),
    ("EXPIRE f 100 XX", Bytes),
    ("EXPIRE f 50 GT", Bytes),
    ("EXPIRE f 50 LT", Bytes),
    ("EXPIRE f 200 GT", Bytes),
    ("TTL f", Bytes),
    ("EXPIRE f 100 XX GT", Bytes),
    ("EXPIRE f 100 XX LT", Bytes),
    ("TTL f", Bytes),
    ("EXPIRE f 100 NX XX", Bytes),
    ("EXPIRE f 100 GT LT", Bytes),
    ("EXPIRE f 100 NX GT", Bytes),
    ("EXPIRE f 100 foo", Bytes),
    ("EXPIRE f 1 2 3", Bytes),
    ("EXPIRE f x foo", Bytes),
    ("PERSIST f", Bytes),
    ("PEXPIRE f 100000 LT", Bytes),
    ("PTTL f", Shape),
    ("EXPIREAT f 4100000000 GT", Bytes),
    ("EXPIRETIME f", Bytes),
    ("PEXPIREAT f 1 LT", Bytes),
    ("EXISTS f", Bytes),
    ("EXPIRE nope 100", Bytes),
    ("EXPIRE nope 100 XX", Bytes),
    ("EXPIRE p -1", Bytes),
    ("EXISTS p", Bytes),
    ("EXPIRE f", Bytes),
    // Server and connection
    ("TIME", Shape),
    ("TIME x", Bytes),
    ("ROLE", Shape),
    ("WAIT 0 0", Bytes),
    ("WAIT 1 10", Bytes),
    ("WAIT x 0", Bytes),
    ("WAIT x x", Bytes),
    ("WAIT 0 x", Bytes),
    ("WAIT 0 -1", Bytes),
    ("WAIT 0", Bytes),
    ("CLIENT NO-EVICT on", Bytes),
    ("CLIENT NO-EVICT off", Bytes),
    ("CLIENT NO-EVICT foo", Bytes),
    ("CLIENT INFO", Shape),
    ("CLIENT LIST", Shape),
    ("CLIENT LIST TYPE normal", Shape),
    ("CLIENT LIST TYPE pubsub", Bytes),
    ("CLIENT LIST TYPE foo", Bytes),
    ("CLIENT LIST ID x", Bytes),
    ("CLIENT KILL 1.2.3.4:5", Bytes),
    ("CLIENT KILL ID 999", Bytes),
    ("CLIENT KILL ID x", Bytes),
    ("CLIENT KILL foo bar", Bytes),
    ("CLIENT KILL ID 1 SKIPME maybe", Bytes),
    ("CLIENT KILL ID", Bytes),
    ("CLIENT KILL", Bytes),
];

/// Commands of Redis's other data types, which QuorumKV does not have.
const OTHER_TYPES: &[&str] = &[
    "LPUSH l a b",
    "RPUSH l a",
    "LRANGE l 0 -1",
    "HSET h f v",
    "HGETALL h",
    "SADD s m",
    "SMEMBERS s",
    "ZADD z 1 m",
    "ZRANGE z 0 -1",
    "XADD x * f v",
    "XRANGE x - +",
    "PFADD p a",
    "GEOADD g 13.361389 38.115556 palermo",
    "SETBIT b 7 1",
    "BITCOUNT b",
    "OBJECT ENCODING k",
    "DUMP k",
];

async fn start() -> Option<(RedisServer, Cluster)> {
    let redis = RedisServer::start().await?;
    let cluster = Cluster::start(ClusterOptions {
        nodes: 1,
        ..ClusterOptions::default()
    })
    .await;
    cluster.wait_for_leader(Duration::from_secs(10)).await;
    Some((redis, cluster))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn string_and_keyspace_commands_answer_as_redis_does() {
    let Some((redis, cluster)) = start().await else {
        return;
    };
    let mut theirs = Raw::connect(&redis.addr).await;
    let mut ours = Raw::connect(&cluster.node(1).client_addr).await;
    let mut compared = compare(&mut theirs, &mut ours, STRINGS).await;
    compared += compare(&mut theirs, &mut ours, KEYSPACE).await;
    eprintln!("{compared} replies compared with redis-server");

    // Where QuorumKV differs on purpose: one database only.
    let (_, reply) = ours.call(&args("COPY p q DB 1")).await;
    assert_eq!(reply, Reply::Error("ERR DB index is out of range".into()));
    // CLIENT NO-TOUCH (Redis 7.2) is accepted; there are no access times to keep.
    assert_eq!(ours.call(&args("CLIENT NO-TOUCH on")).await.1, Reply::ok());
    // CLIENT INFO names this connection, CLIENT LIST every open one.
    let Reply::Bulk(info) = ours.call(&args("CLIENT INFO")).await.1 else {
        panic!("CLIENT INFO is a bulk string");
    };
    let info = String::from_utf8(info).unwrap();
    assert!(info.starts_with("id=") && info.ends_with(" resp=2\n"), "{info}");
    // `cmd=` names the last command before this one, without its subcommand (Redis: `client|no-touch`).
    assert!(info.contains(" cmd=client "), "{info}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_kill_closes_the_other_connection() {
    let cluster = Cluster::start(ClusterOptions {
        nodes: 1,
        ..ClusterOptions::default()
    })
    .await;
    cluster.wait_for_leader(Duration::from_secs(10)).await;
    let addr = &cluster.node(1).client_addr;
    let mut victim = Raw::connect(addr).await;
    let mut killer = Raw::connect(addr).await;
    victim.call(&args("CLIENT SETNAME victim")).await;
    let Reply::Integer(id) = victim.call(&args("CLIENT ID")).await.1 else {
        panic!("CLIENT ID is an integer");
    };
    let Reply::Bulk(list) = killer.call(&args("CLIENT LIST")).await.1 else {
        panic!("CLIENT LIST is a bulk string");
    };
    let list = String::from_utf8(list).unwrap();
    assert!(
        list.contains(&format!("id={id} ")) && list.contains(" name=victim "),
        "{list}"
    );
    assert_eq!(
        killer.call(&args(&format!("CLIENT KILL ID {id}"))).await.1,
        Reply::Integer(1)
    );
    // The victim's connection is closed: a read returns end of file.
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), victim.stream.read(&mut byte))
        .await
        .expect("closed within 5 s");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let Reply::Bulk(list) = killer.call(&args("CLIENT LIST")).await.1 else {
        panic!("CLIENT LIST is a bulk string");
    };
    assert!(!String::from_utf8(list).unwrap().contains("name=victim"));
    // SKIPME is the default: killing everyone spares the caller.
    assert_eq!(
        killer.call(&args("CLIENT KILL USER default")).await.1,
        Reply::Integer(0)
    );
    assert_eq!(killer.call(&args("PING")).await.1, Reply::Simple("PONG".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_of_other_data_types_are_unknown_as_redis_words_it() {
    let Some((redis, cluster)) = start().await else {
        return;
    };
    let mut theirs = Raw::connect(&redis.addr).await;
    let mut ours = Raw::connect(&cluster.node(1).client_addr).await;
    // Redis's own words for a command it does not know, long names and arguments included
    // (it cuts both at 128 bytes).
    let long = "y".repeat(200);
    let unknown = [
        "NOSUCHCOMMAND a b".to_string(),
        "NOSUCHCOMMAND".to_string(),
        format!("NOSUCHCOMMAND {long} b"),
        format!("{long} a"),
        format!("NOSUCHCOMMAND {}", "ab ".repeat(60).trim_end()),
    ];
    for line in &unknown {
        let (expected, _) = theirs.call(&args(line)).await;
        let (actual, _) = ours.call(&args(line)).await;
        assert_eq!(
            String::from_utf8_lossy(&actual),
            String::from_utf8_lossy(&expected),
            "{line}"
        );
    }
    // Every command of another type: that same error, and the connection goes on. All of them
    // pipelined at once, then one by one.
    for line in OTHER_TYPES {
        ours.send(&args(line)).await;
    }
    ours.send(&args("PING")).await;
    for line in OTHER_TYPES {
        let call = args(line);
        let quoted: String = call[1..]
            .iter()
            .map(|a| format!("'{}' ", String::from_utf8_lossy(a)))
            .collect();
        let expected = format!(
            "ERR unknown command '{}', with args beginning with: {quoted}",
            line.split(' ').next().unwrap()
        );
        assert_eq!(ours.reply().await.1, Reply::Error(expected), "{line}");
    }
    assert_eq!(ours.reply().await.1, Reply::Simple("PONG".into()));
    for line in OTHER_TYPES {
        let (_, reply) = ours.call(&args(line)).await;
        assert!(
            matches!(&reply, Reply::Error(e) if e.starts_with("ERR unknown command")),
            "{line}: {reply:?}"
        );
    }
    assert_eq!(ours.call(&args("PING")).await.1, Reply::Simple("PONG".into()));
}
