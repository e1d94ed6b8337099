//! Parsers of the data commands: reads and writes down the request path.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::hash::Hasher;
use std::ops::Bound;

use kv_core::command::Command;
use kv_core::command::Expiry;
use kv_core::command::ExpiryChange;
use kv_core::command::ExpiryCondition;
use kv_core::command::ExpiryTime;
use kv_core::command::Key;
use kv_core::command::Query;
use kv_core::command::SetCondition;
use kv_core::wire::Op;

use super::action::Action;
use super::action::CommandError;
use super::action::CursorLookup;
use super::action::integer;
use crate::clock;
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

/// The `NX | XX | GT | LT` options of EXPIRE and friends, with Redis's errors.
fn expiry_condition(args: &Args) -> Result<ExpiryCondition, CommandError> {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for option in &args[3..] {
        match option.to_ascii_uppercase().as_slice() {
            b"NX" => nx = true,
            b"XX" => xx = true,
            b"GT" => gt = true,
            b"LT" => lt = true,
            _ => {
                return Err(CommandError::Invalid(format!(
                    "Unsupported option {}",
                    String::from_utf8_lossy(option)
                )));
            }
        }
    }
    if nx && (xx || gt || lt) {
        return Err(CommandError::Invalid(
            "NX and XX, GT or LT options at the same time are not compatible".to_string(),
        ));
    }
    if gt && lt {
        return Err(CommandError::Invalid(
            "GT and LT options at the same time are not compatible".to_string(),
        ));
    }
    // GT already fails on a key without expiry, so XX adds nothing to it; it does to LT.
    Ok(match (nx, xx, gt, lt) {
        (true, ..) => ExpiryCondition::NoExpiry,
        (_, _, true, _) => ExpiryCondition::Later,
        (_, true, _, true) => ExpiryCondition::HasExpiryEarlier,
        (_, _, _, true) => ExpiryCondition::Earlier,
        (_, true, ..) => ExpiryCondition::HasExpiry,
        _ => ExpiryCondition::Always,
    })
}

/// `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT key time [NX | XX | GT | LT]`, checked as
/// Redis's `expireGenericCommand` does: the options first, then the integer, then whether the
/// time in milliseconds (plus the clock, for a relative one) fits an i64. A time in the past
/// removes the key.
fn expire_generic(args: &Args, seconds: bool, absolute: bool) -> Result<Action, CommandError> {
    let condition = expiry_condition(args)?;
    let invalid = || CommandError::InvalidExpire(name(args));
    let mut when = integer(&args[2])?;
    if seconds {
        when = when.checked_mul(1000).ok_or_else(invalid)?;
    }
    let base = if absolute {
        0
    } else {
        i64::try_from(clock::now_ms()).unwrap_or(i64::MAX)
    };
    if when > i64::MAX - base {
        return Err(invalid());
    }
    // A negative time is as past as zero.
    let ms = u64::try_from(when).unwrap_or(0);
    let at = if absolute {
        ExpiryTime::At(ms)
    } else {
        ExpiryTime::In(ms)
    };
    let key = args[1].clone();
    let op = match (condition, at) {
        (ExpiryCondition::Always, ExpiryTime::In(ms)) => Op::Write {
            command: Command::SetExpiry { key, at_ms: None },
            ttl_ms: Some(ms),
        },
        (ExpiryCondition::Always, ExpiryTime::At(t)) => Op::Write {
            command: Command::SetExpiry { key, at_ms: Some(t) },
            ttl_ms: None,
        },
        (condition, at) => Op::Write {
            command: Command::ExpireIf { key, at, condition },
            ttl_ms: None,
        },
    };
    Ok(Action::Data {
        op,
        shape: Shape::Count,
    })
}

pub(super) fn expire(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    expire_generic(args, true, false)
}

pub(super) fn pexpire(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    expire_generic(args, false, false)
}

pub(super) fn expireat(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    expire_generic(args, true, true)
}

pub(super) fn pexpireat(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    expire_generic(args, false, true)
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

/// Which expiry option of SET or GETEX was given.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ExpiryOption {
    /// `EX seconds`.
    Ex,
    /// `PX milliseconds`.
    Px,
    /// `EXAT unix-seconds`.
    ExAt,
    /// `PXAT unix-milliseconds`.
    PxAt,
}

/// The options of SET (from the fourth argument) or GETEX (from the third), read as Redis's
/// `parseExtendedStringArgumentsOrReply` reads them: an option may repeat (the last expiry
/// wins), but not combine with one it excludes.
#[derive(Default)]
struct StringOptions<'a> {
    condition: SetCondition,
    get: bool,
    keep_ttl: bool,
    persist: bool,
    expiry: Option<(ExpiryOption, &'a [u8])>,
}

fn string_options(args: &Args, set: bool) -> Result<StringOptions<'_>, CommandError> {
    let mut options = StringOptions::default();
    let mut i = if set { 3 } else { 2 };
    while i < args.len() {
        let option = args[i].to_ascii_uppercase();
        let next = args.get(i + 1).map(Vec::as_slice);
        let expiry = options.expiry.map(|(kind, _)| kind);
        let other_expiry = |kind: ExpiryOption| expiry.is_some_and(|e| e != kind);
        let free_for = |kind| !options.keep_ttl && !options.persist && !other_expiry(kind);
        match (option.as_slice(), next) {
            (b"NX", _) if set && options.condition != SetCondition::IfPresent => {
                options.condition = SetCondition::IfAbsent;
            }
            (b"XX", _) if set && options.condition != SetCondition::IfAbsent => {
                options.condition = SetCondition::IfPresent;
            }
            (b"GET", _) if set => options.get = true,
            (b"KEEPTTL", _) if set && expiry.is_none() => options.keep_ttl = true,
            (b"PERSIST", _) if !set && expiry.is_none() => options.persist = true,
            (b"EX", Some(value)) if free_for(ExpiryOption::Ex) => {
                options.expiry = Some((ExpiryOption::Ex, value));
                i += 1;
            }
            (b"PX", Some(value)) if free_for(ExpiryOption::Px) => {
                options.expiry = Some((ExpiryOption::Px, value));
                i += 1;
            }
            (b"EXAT", Some(value)) if free_for(ExpiryOption::ExAt) => {
                options.expiry = Some((ExpiryOption::ExAt, value));
                i += 1;
            }
            (b"PXAT", Some(value)) if free_for(ExpiryOption::PxAt) => {
                options.expiry = Some((ExpiryOption::PxAt, value));
                i += 1;
            }
            _ => return Err(CommandError::Syntax),
        }
        i += 1;
    }
    Ok(options)
}

/// The command's name for its errors (`invalid expire time in 'set' command`).
fn name(args: &Args) -> String {
    String::from_utf8_lossy(&args[0]).to_ascii_lowercase()
}

/// An expiry argument of SET, SETEX, PSETEX or GETEX, checked as Redis does: a positive
/// integer whose time in milliseconds, added to the clock for a relative one, stays within an
/// i64. (The node's own clock decides the overflow; the leader resolves the time.)
fn expiry_time(command: &str, option: ExpiryOption, arg: &[u8]) -> Result<ExpiryTime, CommandError> {
    let invalid = || CommandError::InvalidExpire(command.to_string());
    let amount = integer(arg)?;
    let seconds = matches!(option, ExpiryOption::Ex | ExpiryOption::ExAt);
    if amount <= 0 || (seconds && amount > i64::MAX / 1000) {
        return Err(invalid());
    }
    let ms = if seconds { amount * 1000 } else { amount };
    let ms = u64::try_from(ms).map_err(|_| invalid())?;
    match option {
        ExpiryOption::Ex | ExpiryOption::Px => {
            if ms > i64::MAX.unsigned_abs() - clock::now_ms() {
                return Err(invalid());
            }
            Ok(ExpiryTime::In(ms))
        }
        ExpiryOption::ExAt | ExpiryOption::PxAt => Ok(ExpiryTime::At(ms)),
    }
}

/// A SET of `value` with the given condition and expiry, rendered by `shape`.
fn set_with(args: &Args, value: &[u8], condition: SetCondition, expiry: Option<ExpiryTime>, shape: Shape) -> Action {
    let (expiry, ttl_ms) = match expiry {
        None => (Expiry::Never, None),
        Some(ExpiryTime::In(ms)) => (Expiry::Never, Some(ms)),
        Some(ExpiryTime::At(t)) => (Expiry::At(t), None),
    };
    let (key, value) = (args[1].clone(), value.to_vec());
    // Only a reply that shows the old value needs it back from the write.
    let command = if matches!(shape, Shape::Set { get: true }) {
        Command::Set {
            key,
            value,
            condition,
            expiry,
        }
    } else {
        Command::SetQuiet {
            key,
            value,
            condition,
            expiry,
        }
    };
    Action::Data {
        op: Op::Write { command, ttl_ms },
        shape,
    }
}

pub(super) fn set(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    let options = string_options(args, true)?;
    let expiry = options
        .expiry
        .map(|(option, arg)| expiry_time("set", option, arg))
        .transpose()?;
    let mut action = set_with(
        args,
        &args[2],
        options.condition,
        expiry,
        Shape::Set { get: options.get },
    );
    if options.keep_ttl
        && let Action::Data {
            op:
                Op::Write {
                    command: Command::Set { expiry, .. } | Command::SetQuiet { expiry, .. },
                    ..
                },
            ..
        } = &mut action
    {
        *expiry = Expiry::Keep;
    }
    Ok(action)
}

pub(super) fn setnx(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(set_with(args, &args[2], SetCondition::IfAbsent, None, Shape::Written))
}

pub(super) fn getset(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(set_with(
        args,
        &args[2],
        SetCondition::Always,
        None,
        Shape::Set { get: true },
    ))
}

pub(super) fn setex(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    let expiry = expiry_time("setex", ExpiryOption::Ex, &args[2])?;
    Ok(set_with(args, &args[3], SetCondition::Always, Some(expiry), Shape::Ok))
}

pub(super) fn psetex(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    let expiry = expiry_time("psetex", ExpiryOption::Px, &args[2])?;
    Ok(set_with(args, &args[3], SetCondition::Always, Some(expiry), Shape::Ok))
}

/// `GETEX key [EX s | PX ms | EXAT t | PXAT t | PERSIST]`. As in Redis, a bad expiry is
/// reported only if the key exists (a missing key answers nil): it becomes a read whose reply
/// is that error or nil.
pub(super) fn getex(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    let options = string_options(args, false)?;
    let change = match options.expiry {
        Some((option, arg)) => match expiry_time("getex", option, arg) {
            Ok(time) => ExpiryChange::Set(time),
            Err(error) => {
                return Ok(read(
                    Query::Get { key: args[1].clone() },
                    Shape::ErrorIfPresent(format!("ERR {error}")),
                ));
            }
        },
        None if options.persist => ExpiryChange::Persist,
        None => ExpiryChange::Keep,
    };
    Ok(write(
        Command::GetAndExpire {
            key: args[1].clone(),
            change,
        },
        Shape::Value,
    ))
}

pub(super) fn msetnx(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    if args.len().is_multiple_of(2) {
        return Err(CommandError::Arity("msetnx".to_string()));
    }
    let pairs = args[1..].chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect();
    Ok(write(Command::MultiSetIfAbsent { pairs }, Shape::Count))
}

pub(super) fn getrange(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    let start = integer(&args[2])?;
    let end = integer(&args[3])?;
    Ok(read(Query::Get { key: args[1].clone() }, Shape::Range { start, end }))
}

pub(super) fn setrange(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    let offset =
        u64::try_from(integer(&args[2])?).map_err(|_| CommandError::Invalid("offset is out of range".to_string()))?;
    Ok(write(
        Command::SetRange {
            key: args[1].clone(),
            offset,
            value: args[3].clone(),
        },
        Shape::Count,
    ))
}

pub(super) fn incrbyfloat(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(write(
        Command::IncrementFloat {
            key: args[1].clone(),
            delta: args[2].clone(),
        },
        Shape::Value,
    ))
}

pub(super) fn key_type(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(read(Query::Ttl { key: args[1].clone() }, Shape::Type))
}

fn rename_to(args: &Args, if_absent: bool) -> Action {
    write(
        Command::Rename {
            source: args[1].clone(),
            destination: args[2].clone(),
            if_absent,
        },
        if if_absent { Shape::Count } else { Shape::Ok },
    )
}

pub(super) fn rename(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(rename_to(args, false))
}

pub(super) fn renamenx(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(rename_to(args, true))
}

/// `COPY source destination [DB 0] [REPLACE]`: there is one database, 0.
pub(super) fn copy(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        match args[i].to_ascii_uppercase().as_slice() {
            b"REPLACE" => replace = true,
            b"DB" if i + 1 < args.len() => {
                if integer(&args[i + 1])? != 0 {
                    return Err(CommandError::DbIndex);
                }
                i += 1;
            }
            _ => return Err(CommandError::Syntax),
        }
        i += 1;
    }
    if args[1] == args[2] {
        return Err(CommandError::Invalid(
            "source and destination objects are the same".to_string(),
        ));
    }
    Ok(write(
        Command::Copy {
            source: args[1].clone(),
            destination: args[2].clone(),
            replace,
        },
        Shape::Count,
    ))
}

pub(super) fn randomkey(_: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    // A fresh hasher key per call: randomness without a generator to carry around.
    let seed = RandomState::new().build_hasher().finish();
    Ok(read(Query::RandomKey { seed }, Shape::Value))
}

pub(super) fn expiretime(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(read(
        Query::ExpireTime { key: args[1].clone() },
        Shape::ExpireTime { seconds: true },
    ))
}

pub(super) fn pexpiretime(args: &Args, _: &CursorLookup) -> Result<Action, CommandError> {
    Ok(read(
        Query::ExpireTime { key: args[1].clone() },
        Shape::ExpireTime { seconds: false },
    ))
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
