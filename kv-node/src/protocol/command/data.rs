//! Parsers of the data commands: reads and writes down the request path.

use std::ops::Bound;

use kv_core::command::Command;
use kv_core::command::Expiry;
use kv_core::command::Key;
use kv_core::command::Query;
use kv_core::command::SetCondition;
use kv_core::wire::Op;

use super::action::Action;
use super::action::CommandError;
use super::action::CursorLookup;
use super::action::integer;
use crate::protocol::glob::Glob;
use crate::protocol::render::Shape;

/// Default `COUNT` of `SCAN`.
const SCAN_COUNT: usize = 10;
/// Largest `COUNT` of `SCAN`.
const MAX_SCAN_COUNT: usize = 100_000;

type Args = [Vec<u8>];

fn write(command: Command, shape: Shape) -> Action {
    Action::Data {
        op: Op::Write { command, ttl_ms: None },
        shape,
    }
}

fn read(query: Query, shape: Shape) -> Action {
    Action::Data {
        op: Op::Read(query),
        shape,
    }
}

fn keys(args: &Args) -> Vec<Key> {
    args[1..].to_vec()
}

pub(super) fn get(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(read(Query::Get { key: args[1].clone() }, Shape::Value))
}

pub(super) fn strlen(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(read(Query::Get { key: args[1].clone() }, Shape::Strlen))
}

pub(super) fn getdel(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(write(Command::GetDelete { key: args[1].clone() }, Shape::Value))
}

pub(super) fn del(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(write(Command::Delete { keys: keys(args) }, Shape::Count))
}

pub(super) fn exists(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(read(Query::MultiGet { keys: keys(args) }, Shape::Exists))
}

pub(super) fn mget(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(read(Query::MultiGet { keys: keys(args) }, Shape::Values))
}

pub(super) fn mset(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    if args.len().is_multiple_of(2) {
        return Err(CommandError::Arity("mset".to_string()));
    }
    let pairs = args[1..].chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect();
    Ok(write(Command::MultiSet { pairs }, Shape::Ok))
}

fn increment(args: &Args, delta: i64) -> Action {
    write(
        Command::Increment {
            key: args[1].clone(),
            delta,
        },
        Shape::Integer,
    )
}

pub(super) fn incr(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(increment(args, 1))
}

pub(super) fn decr(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(increment(args, -1))
}

pub(super) fn incrby(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(increment(args, integer(&args[2])?))
}

pub(super) fn decrby(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    let delta = integer(&args[2])?
        .checked_neg()
        .ok_or_else(|| CommandError::Invalid("decrement would overflow".to_string()))?;
    Ok(increment(args, delta))
}

pub(super) fn append(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(write(
        Command::Append {
            key: args[1].clone(),
            suffix: args[2].clone(),
        },
        Shape::Count,
    ))
}

fn expire_in(args: &Args, unit: i64) -> Result<Action, CommandError> {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    let ms = integer(&args[2])?
        .checked_mul(unit)
        .ok_or(CommandError::InvalidExpire(name))?;
    Ok(Action::Data {
        op: Op::Write {
            command: Command::SetExpiry {
                key: args[1].clone(),
                at_ms: None,
            },
            ttl_ms: Some(u64::try_from(ms).unwrap_or(0)),
        },
        shape: Shape::Count,
    })
}

pub(super) fn expire(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    expire_in(args, 1000)
}

pub(super) fn pexpire(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    expire_in(args, 1)
}

pub(super) fn persist(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(write(
        Command::SetExpiry {
            key: args[1].clone(),
            at_ms: None,
        },
        Shape::Count,
    ))
}

pub(super) fn ttl(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(read(Query::Ttl { key: args[1].clone() }, Shape::Ttl { seconds: true }))
}

pub(super) fn pttl(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(read(Query::Ttl { key: args[1].clone() }, Shape::Ttl { seconds: false }))
}

pub(super) fn dbsize(_: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(read(Query::Count, Shape::Count))
}

/// `FLUSHDB|FLUSHALL [ASYNC|SYNC]`: anything else is a syntax error, as in Redis (a typo must
/// not empty the store).
pub(super) fn flush(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    match args {
        [_] => {}
        [_, mode] if mode.eq_ignore_ascii_case(b"ASYNC") || mode.eq_ignore_ascii_case(b"SYNC") => {}
        _ => return Err(CommandError::Syntax),
    }
    Ok(write(Command::Clear, Shape::Ok))
}

pub(super) fn keys_matching(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    let glob = Glob::new(&args[1]);
    let (start, end) = prefix_range(&glob.literal_prefix(), None);
    Ok(read(
        Query::Keys {
            start,
            end,
            limit: usize::MAX,
        },
        Shape::Keys { glob },
    ))
}

pub(super) fn set(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
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
pub(super) fn cas(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
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
    Ok(write(
        Command::CompareAndSwap {
            key: args[1].clone(),
            expected,
            new,
        },
        Shape::Cas,
    ))
}

/// The key range holding every key that starts with `prefix`, after `after` if given.
pub(super) fn prefix_range(prefix: &[u8], after: Option<Key>) -> (Bound<Key>, Bound<Key>) {
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

pub(super) fn scan(args: &Args, cursor_key: &CursorLookup) -> Result<Action, CommandError> {
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
    Ok(read(
        Query::Keys {
            start,
            end,
            limit: count,
        },
        Shape::Scan { glob, count },
    ))
}
