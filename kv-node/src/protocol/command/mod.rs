//! The command table: client arguments to an [`Action`], and store responses to replies.

use std::ops::Bound;

use kv_core::command::Command;
use kv_core::command::CommandError as StoreError;
use kv_core::command::Expiry;
use kv_core::command::Key;
use kv_core::command::Query;
use kv_core::command::Response;
use kv_core::command::SetCondition;
use kv_core::command::TtlState;
use kv_core::raft::KvNode;

use super::glob::Glob;
use super::reply::Reply;
use kv_core::wire::Op;
use kv_core::wire::ReadMode;

/// Default `COUNT` of `SCAN`.
const SCAN_COUNT: usize = 10;
/// Largest `COUNT` of `SCAN`.
const MAX_SCAN_COUNT: usize = 100_000;

/// What a client command asks for.
#[derive(Debug)]
pub enum Action {
    /// Answered at once, no state involved.
    Reply(Reply),
    /// A read or write down the request path, its response rendered by `shape`.
    Data {
        /// The operation.
        op: Op,
        /// How to render the response.
        shape: Shape,
    },
    /// A cluster change run on the leader (`RAFT ADD-LEARNER|PROMOTE|REMOVE|TRANSFER-LEADER`).
    Admin(Op),
    /// `AUTH [user] password`.
    Auth(Vec<u8>),
    /// `HELLO [protover [AUTH user pass] [SETNAME name]]`.
    Hello {
        /// Requested protocol version.
        protover: Option<i64>,
        /// Password given with `AUTH`.
        password: Option<Vec<u8>>,
        /// Name given with `SETNAME`.
        name: Option<Vec<u8>>,
    },
    /// `READONLY` / `READWRITE`.
    SetReadMode(ReadMode),
    /// `CLIENT SETNAME`.
    SetName(Vec<u8>),
    /// `CLIENT GETNAME`.
    GetName,
    /// `CLIENT ID`.
    ClientId,
    /// `QUIT`: answer `+OK` and close.
    Quit,
    /// `INFO [section ...]`.
    Info(Vec<String>),
    /// `RAFT STATUS`.
    RaftStatus,
    /// `RAFT LEADER`.
    RaftLeader,
    /// `RAFT SNAPSHOT`.
    Snapshot,
}

/// How a store response becomes a reply.
#[derive(Debug)]
pub enum Shape {
    /// A value as a bulk string or nil (GET, GETDEL).
    Value,
    /// SET: `+OK` / nil, or the previous value with `GET`.
    Set {
        /// `GET` was given.
        get: bool,
    },
    /// `+OK` (MSET, FLUSHDB).
    Ok,
    /// A count as an integer (DEL, APPEND, EXPIRE, PERSIST, DBSIZE).
    Count,
    /// An integer result (INCR and friends).
    Integer,
    /// EXISTS: how many of the values are present.
    Exists,
    /// STRLEN: the value's length.
    Strlen,
    /// MGET: an array of bulk strings or nils.
    Values,
    /// TTL / PTTL.
    Ttl {
        /// In seconds (TTL) rather than milliseconds (PTTL).
        seconds: bool,
    },
    /// SCAN: a next cursor and the matching keys.
    Scan {
        /// The MATCH pattern.
        glob: Glob,
        /// Entries asked for; fewer means the scan is complete.
        count: usize,
    },
    /// CAS: `[1|0, previous value or nil]`.
    Cas,
    /// KEYS: the matching keys.
    Keys {
        /// The pattern.
        glob: Glob,
    },
}

/// A command that cannot run as given. Rendered as `-ERR <text>`, as Redis words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// No such command.
    #[error("unknown command '{name}', with args beginning with: {args}")]
    Unknown {
        /// The command name as sent.
        name: String,
        /// Its first arguments, quoted.
        args: String,
    },
    /// No such subcommand.
    #[error("unknown subcommand '{sub}'. Try {command} HELP.")]
    UnknownSubcommand {
        /// The command.
        command: String,
        /// The subcommand as sent.
        sub: String,
    },
    /// Too few or too many arguments.
    #[error("wrong number of arguments for '{0}' command")]
    Arity(String),
    /// Options that do not fit together or are unknown.
    #[error("syntax error")]
    Syntax,
    /// An argument that must be an integer is not one.
    #[error("value is not an integer or out of range")]
    NotAnInteger,
    /// A non-positive or overflowing expire time.
    #[error("invalid expire time in '{0}' command")]
    InvalidExpire(String),
    /// SELECT of a database other than 0.
    #[error("DB index is out of range")]
    DbIndex,
    /// A SCAN cursor this node did not hand out (or forgot).
    #[error("invalid cursor")]
    InvalidCursor,
    /// Anything else, with its own words.
    #[error("{0}")]
    Invalid(String),
}

/// Resolves a SCAN cursor to the key the previous page ended with (`None` for the start).
pub type CursorLookup<'a> = dyn Fn(&[u8]) -> Result<Option<Key>, CommandError> + 'a;

/// Turns arguments (the command name first) into an action. `cursor_key` resolves a SCAN
/// cursor to the last key the previous call returned.
pub fn parse(args: &[Vec<u8>], cursor_key: &CursorLookup) -> Result<Action, CommandError> {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    let argc = args.len();
    let arity = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(CommandError::Arity(name.clone()))
        }
    };
    let key = |i: usize| args[i].clone();
    let write = |command: Command, shape: Shape| Action::Data {
        op: Op::Write { command, ttl_ms: None },
        shape,
    };
    let read = |query: Query, shape: Shape| Action::Data {
        op: Op::Read(query),
        shape,
    };
    let action = match name.as_str() {
        "ping" => {
            arity(argc <= 2)?;
            Action::Reply(match args.get(1) {
                Some(message) => Reply::Bulk(message.clone()),
                None => Reply::Simple("PONG".to_string()),
            })
        }
        "echo" => {
            arity(argc == 2)?;
            Action::Reply(Reply::Bulk(key(1)))
        }
        "quit" => Action::Quit,
        "select" => {
            arity(argc == 2)?;
            match integer(&args[1])? {
                0 => Action::Reply(Reply::ok()),
                _ => return Err(CommandError::DbIndex),
            }
        }
        "auth" => {
            arity(argc == 2 || argc == 3)?;
            Action::Auth(args[argc - 1].clone())
        }
        "hello" => parse_hello(args)?,
        "readonly" => {
            arity(argc == 1)?;
            Action::SetReadMode(ReadMode::Stale)
        }
        "readwrite" => {
            arity(argc == 1)?;
            Action::SetReadMode(ReadMode::Linearizable)
        }
        "client" => parse_client(args)?,
        "command" => parse_command(args)?,
        "config" => parse_config(args)?,
        "info" => Action::Info(
            args[1..]
                .iter()
                .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase())
                .collect(),
        ),
        "get" => {
            arity(argc == 2)?;
            read(Query::Get { key: key(1) }, Shape::Value)
        }
        "set" => parse_set(args)?,
        "getdel" => {
            arity(argc == 2)?;
            write(Command::GetDelete { key: key(1) }, Shape::Value)
        }
        "del" | "unlink" => {
            arity(argc >= 2)?;
            write(
                Command::Delete {
                    keys: args[1..].to_vec(),
                },
                Shape::Count,
            )
        }
        "exists" => {
            arity(argc >= 2)?;
            read(
                Query::MultiGet {
                    keys: args[1..].to_vec(),
                },
                Shape::Exists,
            )
        }
        "mget" => {
            arity(argc >= 2)?;
            read(
                Query::MultiGet {
                    keys: args[1..].to_vec(),
                },
                Shape::Values,
            )
        }
        "mset" => {
            arity(argc >= 3 && argc % 2 == 1)?;
            let pairs = args[1..].chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect();
            write(Command::MultiSet { pairs }, Shape::Ok)
        }
        "incr" | "decr" => {
            arity(argc == 2)?;
            let delta = if name == "incr" { 1 } else { -1 };
            write(Command::Increment { key: key(1), delta }, Shape::Integer)
        }
        "incrby" | "decrby" => {
            arity(argc == 3)?;
            let by = integer(&args[2])?;
            let delta = if name == "incrby" {
                by
            } else {
                by.checked_neg()
                    .ok_or_else(|| CommandError::Invalid("decrement would overflow".to_string()))?
            };
            write(Command::Increment { key: key(1), delta }, Shape::Integer)
        }
        "append" => {
            arity(argc == 3)?;
            write(
                Command::Append {
                    key: key(1),
                    suffix: key(2),
                },
                Shape::Count,
            )
        }
        "strlen" => {
            arity(argc == 2)?;
            read(Query::Get { key: key(1) }, Shape::Strlen)
        }
        "expire" | "pexpire" => {
            arity(argc == 3)?;
            let amount = integer(&args[2])?;
            let unit = if name == "expire" { 1000 } else { 1 };
            let ms = amount
                .checked_mul(unit)
                .ok_or_else(|| CommandError::InvalidExpire(name.clone()))?;
            Action::Data {
                op: Op::Write {
                    command: Command::SetExpiry {
                        key: key(1),
                        at_ms: None,
                    },
                    ttl_ms: Some(u64::try_from(ms).unwrap_or(0)),
                },
                shape: Shape::Count,
            }
        }
        "persist" => {
            arity(argc == 2)?;
            write(
                Command::SetExpiry {
                    key: key(1),
                    at_ms: None,
                },
                Shape::Count,
            )
        }
        "ttl" | "pttl" => {
            arity(argc == 2)?;
            read(Query::Ttl { key: key(1) }, Shape::Ttl { seconds: name == "ttl" })
        }
        "dbsize" => {
            arity(argc == 1)?;
            read(Query::Count, Shape::Count)
        }
        "flushdb" | "flushall" => {
            arity(argc <= 2)?;
            write(Command::Clear, Shape::Ok)
        }
        "keys" => {
            arity(argc == 2)?;
            let glob = Glob::new(&args[1]);
            let (start, end) = prefix_range(&glob.literal_prefix(), None);
            read(
                Query::Range {
                    start,
                    end,
                    limit: usize::MAX,
                },
                Shape::Keys { glob },
            )
        }
        "scan" => parse_scan(args, cursor_key)?,
        "cas" => parse_cas(args)?,
        "raft" => parse_raft(args)?,
        _ => {
            return Err(CommandError::Unknown {
                name: String::from_utf8_lossy(&args[0]).into_owned(),
                args: args[1..]
                    .iter()
                    .take(8)
                    .map(|a| format!("'{}' ", String::from_utf8_lossy(a)))
                    .collect(),
            });
        }
    };
    Ok(action)
}

/// Parses a Redis integer argument.
fn integer(arg: &[u8]) -> Result<i64, CommandError> {
    std::str::from_utf8(arg)
        .ok()
        .filter(|s| !s.starts_with('+'))
        .and_then(|s| s.parse().ok())
        .ok_or(CommandError::NotAnInteger)
}

fn parse_set(args: &[Vec<u8>]) -> Result<Action, CommandError> {
    if args.len() < 3 {
        return Err(CommandError::Arity("set".to_string()));
    }
    let mut condition = SetCondition::Always;
    let mut expiry = Expiry::Never;
    let mut ttl_ms = None;
    let mut get = false;
    let mut expiry_given = false;
    let mut i = 3;
    while i < args.len() {
        let option = args[i].to_ascii_uppercase();
        match option.as_slice() {
            b"NX" | b"XX" if condition == SetCondition::Always => {
                condition = if option == b"NX" {
                    SetCondition::IfAbsent
                } else {
                    SetCondition::IfPresent
                };
            }
            b"GET" if !get => get = true,
            b"KEEPTTL" if !expiry_given => {
                expiry_given = true;
                expiry = Expiry::Keep;
            }
            b"EX" | b"PX" | b"EXAT" | b"PXAT" if !expiry_given => {
                expiry_given = true;
                let amount = integer(args.get(i + 1).ok_or(CommandError::Syntax)?)?;
                i += 1;
                let invalid = || CommandError::InvalidExpire("set".to_string());
                if amount <= 0 {
                    return Err(invalid());
                }
                let unit = if option == b"EX" || option == b"EXAT" { 1000 } else { 1 };
                let ms = u64::try_from(amount.checked_mul(unit).ok_or_else(invalid)?).map_err(|_| invalid())?;
                if option.ends_with(b"AT") {
                    expiry = Expiry::At(ms);
                } else {
                    ttl_ms = Some(ms);
                }
            }
            _ => return Err(CommandError::Syntax),
        }
        i += 1;
    }
    Ok(Action::Data {
        op: Op::Write {
            command: Command::Set {
                key: args[1].clone(),
                value: args[2].clone(),
                condition,
                expiry,
            },
            ttl_ms,
        },
        shape: Shape::Set { get },
    })
}

/// `CAS key (IFEQ expected | IFABSENT) (SET new | DEL)`: QuorumKV's compare-and-swap.
fn parse_cas(args: &[Vec<u8>]) -> Result<Action, CommandError> {
    let arity = || CommandError::Arity("cas".to_string());
    let mut i = 2;
    let option = |i: usize| args.get(i).map(|a| a.to_ascii_uppercase());
    let expected = match option(i).as_deref() {
        Some(b"IFEQ") => {
            i += 2;
            Some(args.get(i - 1).ok_or_else(arity)?.clone())
        }
        Some(b"IFABSENT") => {
            i += 1;
            None
        }
        Some(_) => return Err(CommandError::Syntax),
        None => return Err(arity()),
    };
    let new = match option(i).as_deref() {
        Some(b"SET") => {
            i += 2;
            Some(args.get(i - 1).ok_or_else(arity)?.clone())
        }
        Some(b"DEL") => {
            i += 1;
            None
        }
        Some(_) => return Err(CommandError::Syntax),
        None => return Err(arity()),
    };
    if i != args.len() {
        return Err(CommandError::Syntax);
    }
    Ok(Action::Data {
        op: Op::Write {
            command: Command::CompareAndSwap {
                key: args[1].clone(),
                expected,
                new,
            },
            ttl_ms: None,
        },
        shape: Shape::Cas,
    })
}

fn parse_hello(args: &[Vec<u8>]) -> Result<Action, CommandError> {
    let protover = args.get(1).map(|v| integer(v)).transpose()?;
    let mut password = None;
    let mut name = None;
    let mut i = 2;
    while i < args.len() {
        match args[i].to_ascii_uppercase().as_slice() {
            b"AUTH" if i + 2 < args.len() => {
                password = Some(args[i + 2].clone());
                i += 3;
            }
            b"SETNAME" if i + 1 < args.len() => {
                name = Some(args[i + 1].clone());
                i += 2;
            }
            _ => return Err(CommandError::Syntax),
        }
    }
    Ok(Action::Hello {
        protover,
        password,
        name,
    })
}

fn subcommand(args: &[Vec<u8>]) -> String {
    args.get(1)
        .map(|s| String::from_utf8_lossy(s).to_ascii_uppercase())
        .unwrap_or_default()
}

fn unknown_subcommand(args: &[Vec<u8>]) -> CommandError {
    CommandError::UnknownSubcommand {
        command: String::from_utf8_lossy(&args[0]).to_ascii_uppercase(),
        sub: args
            .get(1)
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .unwrap_or_default(),
    }
}

fn parse_client(args: &[Vec<u8>]) -> Result<Action, CommandError> {
    let arity = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(CommandError::Arity(format!(
                "client|{}",
                subcommand(args).to_lowercase()
            )))
        }
    };
    match subcommand(args).as_str() {
        "SETNAME" => {
            arity(args.len() == 3)?;
            if args[2].iter().any(|&b| b <= b' ' || b > b'~') {
                return Err(CommandError::Invalid(
                    "Client names cannot contain spaces, newlines or special characters.".to_string(),
                ));
            }
            Ok(Action::SetName(args[2].clone()))
        }
        "GETNAME" => {
            arity(args.len() == 2)?;
            Ok(Action::GetName)
        }
        "ID" => {
            arity(args.len() == 2)?;
            Ok(Action::ClientId)
        }
        "SETINFO" => {
            arity(args.len() == 4)?;
            Ok(Action::Reply(Reply::ok()))
        }
        _ => Err(unknown_subcommand(args)),
    }
}

fn parse_command(args: &[Vec<u8>]) -> Result<Action, CommandError> {
    match subcommand(args).as_str() {
        // No command metadata is published: clients fall back to their defaults.
        "" | "INFO" => Ok(Action::Reply(Reply::Array(Vec::new()))),
        "DOCS" => Ok(Action::Reply(Reply::Map(Vec::new()))),
        "COUNT" => Ok(Action::Reply(Reply::Integer(COMMAND_NAMES.len() as i64))),
        _ => Err(unknown_subcommand(args)),
    }
}

/// Every command name this table knows.
pub const COMMAND_NAMES: &[&str] = &[
    "ping",
    "echo",
    "quit",
    "select",
    "auth",
    "hello",
    "readonly",
    "readwrite",
    "client",
    "command",
    "config",
    "info",
    "get",
    "set",
    "getdel",
    "del",
    "unlink",
    "exists",
    "mget",
    "mset",
    "incr",
    "decr",
    "incrby",
    "decrby",
    "append",
    "strlen",
    "expire",
    "pexpire",
    "persist",
    "ttl",
    "pttl",
    "dbsize",
    "flushdb",
    "flushall",
    "keys",
    "scan",
    "cas",
    "raft",
];

fn parse_config(args: &[Vec<u8>]) -> Result<Action, CommandError> {
    match subcommand(args).as_str() {
        "GET" if args.len() == 3 => {
            // redis-benchmark asks these on start; the answers describe QuorumKV's behaviour.
            let param = String::from_utf8_lossy(&args[2]).to_ascii_lowercase();
            let value = match param.as_str() {
                "save" => Some(""),
                "appendonly" => Some("no"),
                "databases" => Some("1"),
                _ => None,
            };
            Ok(Action::Reply(Reply::Map(match value {
                Some(value) => vec![(Reply::text(param), Reply::text(value))],
                None => Vec::new(),
            })))
        }
        "GET" => Err(CommandError::Arity("config|get".to_string())),
        _ => Err(unknown_subcommand(args)),
    }
}

/// The key range holding every key that starts with `prefix`, after `after` if given.
fn prefix_range(prefix: &[u8], after: Option<Key>) -> (Bound<Key>, Bound<Key>) {
    let start = match after {
        Some(key) if key.as_slice() >= prefix => Bound::Excluded(key),
        _ if prefix.is_empty() => Bound::Unbounded,
        _ => Bound::Included(prefix.to_vec()),
    };
    // The first key past the prefix: the prefix with its last non-0xff byte incremented.
    let mut end = prefix.to_vec();
    while end.last() == Some(&0xff) {
        end.pop();
    }
    let end = match end.last_mut() {
        Some(last) => {
            *last += 1;
            Bound::Excluded(end)
        }
        None => Bound::Unbounded,
    };
    (start, end)
}

fn parse_scan(args: &[Vec<u8>], cursor_key: &CursorLookup) -> Result<Action, CommandError> {
    if args.len() < 2 {
        return Err(CommandError::Arity("scan".to_string()));
    }
    let after = cursor_key(&args[1])?;
    let mut glob = Glob::new(b"*");
    let mut count = SCAN_COUNT;
    let mut i = 2;
    while i < args.len() {
        let value = args.get(i + 1).ok_or(CommandError::Syntax)?;
        match args[i].to_ascii_uppercase().as_slice() {
            b"MATCH" => glob = Glob::new(value),
            b"COUNT" => {
                let n = integer(value)?;
                if n < 1 {
                    return Err(CommandError::Syntax);
                }
                count = usize::try_from(n).unwrap_or(MAX_SCAN_COUNT).min(MAX_SCAN_COUNT);
            }
            b"TYPE" if value.eq_ignore_ascii_case(b"string") => {}
            b"TYPE" => count = 0,
            _ => return Err(CommandError::Syntax),
        }
        i += 2;
    }
    let (start, end) = prefix_range(&glob.literal_prefix(), after);
    Ok(Action::Data {
        op: Op::Read(Query::Range {
            start,
            end,
            limit: count,
        }),
        shape: Shape::Scan { glob, count },
    })
}

fn parse_raft(args: &[Vec<u8>]) -> Result<Action, CommandError> {
    let sub = subcommand(args);
    let arity = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(CommandError::Arity(format!("raft|{}", sub.to_lowercase())))
        }
    };
    let id = |i: usize| -> Result<u64, CommandError> {
        u64::try_from(integer(&args[i])?)
            .ok()
            .filter(|&id| id > 0)
            .ok_or(CommandError::NotAnInteger)
    };
    match sub.as_str() {
        "STATUS" => {
            arity(2)?;
            Ok(Action::RaftStatus)
        }
        "LEADER" => {
            arity(2)?;
            Ok(Action::RaftLeader)
        }
        "SNAPSHOT" => {
            arity(2)?;
            Ok(Action::Snapshot)
        }
        "ADD-LEARNER" => {
            if args.len() != 4 && args.len() != 5 {
                return Err(CommandError::Arity("raft|add-learner".to_string()));
            }
            let addr = |i: usize| -> Result<String, CommandError> {
                let text = String::from_utf8_lossy(&args[i]).into_owned();
                match text.rsplit_once(':') {
                    Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(text),
                    _ => Err(CommandError::Invalid(format!(
                        "invalid address '{text}', expected host:port"
                    ))),
                }
            };
            let node = KvNode {
                raft_addr: addr(3)?,
                client_addr: if args.len() == 5 { addr(4)? } else { String::new() },
            };
            Ok(Action::Admin(Op::AddLearner { id: id(2)?, node }))
        }
        "PROMOTE" => {
            arity(3)?;
            Ok(Action::Admin(Op::Promote { id: id(2)? }))
        }
        "REMOVE" => {
            arity(3)?;
            Ok(Action::Admin(Op::Remove { id: id(2)? }))
        }
        "TRANSFER-LEADER" => {
            arity(3)?;
            Ok(Action::Admin(Op::TransferLeader { to: id(2)? }))
        }
        _ => Err(unknown_subcommand(args)),
    }
}

/// The reply for a store-level command failure.
pub fn store_error(error: &StoreError) -> Reply {
    Reply::Error(match error {
        StoreError::NotAnInteger => "ERR value is not an integer or out of range".to_string(),
        StoreError::Overflow => "ERR increment or decrement would overflow".to_string(),
        StoreError::ValueTooLong { .. } => "ERR string exceeds maximum allowed size".to_string(),
    })
}

/// Renders `response` as `shape` says. `next_cursor` turns the last key of a full SCAN page
/// into a cursor.
pub fn render(shape: Shape, response: Response, next_cursor: &dyn Fn(&[u8]) -> String) -> Reply {
    match (shape, response) {
        (_, Response::Error(e)) => store_error(&e),
        (Shape::Value, Response::Value(v)) => Reply::bulk_or_nil(v),
        (Shape::Set { get: true }, Response::Set { previous, .. }) => Reply::bulk_or_nil(previous),
        (Shape::Set { get: false }, Response::Set { written, .. }) => {
            if written {
                Reply::ok()
            } else {
                Reply::Nil
            }
        }
        (Shape::Ok, _) => Reply::ok(),
        (Shape::Count, Response::Count(n)) => Reply::Integer(i64::try_from(n).unwrap_or(i64::MAX)),
        (Shape::Integer, Response::Integer(n)) => Reply::Integer(n),
        (Shape::Exists, Response::Values(values)) => Reply::Integer(values.iter().flatten().count() as i64),
        (Shape::Strlen, Response::Value(v)) => Reply::Integer(v.map_or(0, |v| v.len() as i64)),
        (Shape::Values, Response::Values(values)) => Reply::Array(values.into_iter().map(Reply::bulk_or_nil).collect()),
        (Shape::Ttl { seconds }, Response::Ttl(ttl)) => Reply::Integer(match ttl {
            TtlState::Missing => -2,
            TtlState::Persistent => -1,
            TtlState::Remaining(ms) if seconds => i64::try_from(ms.saturating_add(500) / 1000).unwrap_or(i64::MAX),
            TtlState::Remaining(ms) => i64::try_from(ms).unwrap_or(i64::MAX),
        }),
        (Shape::Scan { glob, count }, Response::Entries(entries)) => {
            let cursor = match entries.last() {
                Some((last, _)) if entries.len() >= count => next_cursor(last),
                _ => "0".to_string(),
            };
            let keys = entries
                .into_iter()
                .filter(|(k, _)| glob.matches(k))
                .map(|(k, _)| Reply::Bulk(k))
                .collect();
            Reply::Array(vec![Reply::text(cursor), Reply::Array(keys)])
        }
        (Shape::Cas, Response::Cas { swapped, previous }) => {
            Reply::Array(vec![Reply::Integer(i64::from(swapped)), Reply::bulk_or_nil(previous)])
        }
        (Shape::Keys { glob }, Response::Entries(entries)) => Reply::Array(
            entries
                .into_iter()
                .filter(|(k, _)| glob.matches_all() || glob.matches(k))
                .map(|(k, _)| Reply::Bulk(k))
                .collect(),
        ),
        (shape, response) => Reply::Error(format!("ERR internal: {response:?} does not render as {shape:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<Vec<u8>> {
        text.split(' ').map(|s| s.as_bytes().to_vec()).collect()
    }

    fn no_cursor(_: &[u8]) -> Result<Option<Key>, CommandError> {
        Ok(None)
    }

    fn error(text: &str) -> String {
        parse(&args(text), &no_cursor).unwrap_err().to_string()
    }

    #[test]
    fn redis_style_errors() {
        assert_eq!(
            error("FOO a b"),
            "unknown command 'FOO', with args beginning with: 'a' 'b' "
        );
        assert_eq!(error("GET"), "wrong number of arguments for 'get' command");
        assert_eq!(error("SET k v NX XX"), "syntax error");
        assert_eq!(error("SET k v EX 0"), "invalid expire time in 'set' command");
        assert_eq!(error("SET k v EX x"), "value is not an integer or out of range");
        assert_eq!(error("SET k v EX 1 KEEPTTL"), "syntax error");
        assert_eq!(error("SELECT 1"), "DB index is out of range");
        assert_eq!(error("INCRBY k +1"), "value is not an integer or out of range");
        assert_eq!(error("RAFT NOPE"), "unknown subcommand 'NOPE'. Try RAFT HELP.");
        assert_eq!(error("MSET a 1 b"), "wrong number of arguments for 'mset' command");
    }

    #[test]
    fn set_options() {
        let Action::Data {
            op: Op::Write { command, ttl_ms },
            shape: Shape::Set { get: true },
        } = parse(&args("set k v nx get px 1500"), &no_cursor).unwrap()
        else {
            panic!("not a set");
        };
        assert_eq!(ttl_ms, Some(1500));
        assert!(matches!(
            command,
            Command::Set {
                condition: SetCondition::IfAbsent,
                ..
            }
        ));
    }

    #[test]
    fn cas_forms() {
        let cas = |text: &str| match parse(&args(text), &no_cursor) {
            Ok(Action::Data {
                op:
                    Op::Write {
                        command: Command::CompareAndSwap { expected, new, .. },
                        ..
                    },
                ..
            }) => Ok((expected, new)),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
        assert_eq!(
            cas("CAS k IFEQ a SET b"),
            Ok((Some(b"a".to_vec()), Some(b"b".to_vec())))
        );
        assert_eq!(cas("CAS k IFABSENT DEL"), Ok((None, None)));
        assert_eq!(cas("CAS k IFEQ a"), Err(CommandError::Arity("cas".to_string())));
        assert_eq!(cas("CAS k IFABSENT DEL x"), Err(CommandError::Syntax));
    }

    #[test]
    fn prefix_ranges() {
        assert_eq!(
            prefix_range(b"ab", None),
            (Bound::Included(b"ab".to_vec()), Bound::Excluded(b"ac".to_vec()))
        );
        assert_eq!(
            prefix_range(b"a\xff", Some(b"a\xff1".to_vec())),
            (Bound::Excluded(b"a\xff1".to_vec()), Bound::Excluded(b"b".to_vec()))
        );
        assert_eq!(prefix_range(b"", None), (Bound::Unbounded, Bound::Unbounded));
        assert_eq!(
            prefix_range(b"b", Some(b"a".to_vec())).0,
            Bound::Included(b"b".to_vec())
        );
    }
}
