//! From a store response to a reply: each data command names the [`Shape`] of its reply.

use kv_core::command::CommandError as StoreError;
use kv_core::command::Response;
use kv_core::command::TtlState;

use super::glob::Glob;
use super::reply;
use super::reply::Reply;

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
    /// SESSION NEW: the new session's id as an integer.
    SessionId,
    /// SETNX: whether the SET was written, as 1 or 0.
    Written,
    /// GETRANGE: the bytes from `start` to `end` (inclusive; negative counts from the end),
    /// as Redis 7.0 clamps them; an empty string for a missing key.
    Range {
        /// First byte.
        start: i64,
        /// Last byte.
        end: i64,
    },
    /// TYPE: `+string` or `+none`, from a TTL query.
    Type,
    /// EXPIRETIME / PEXPIRETIME: the absolute expiry (in seconds rounded to the nearest, as
    /// Redis does), -1 without one, -2 without the key.
    ExpireTime {
        /// In seconds (EXPIRETIME) rather than milliseconds.
        seconds: bool,
    },
    /// A read whose reply is this error if the key exists and nil if not (GETEX with a bad
    /// expiry: Redis looks the key up before it checks the time).
    ErrorIfPresent(String),
    /// GETREV: `[value or nil, mod revision, current revision]`.
    Revisioned,
}

/// The reply for a store-level command failure.
pub fn store_error(error: &StoreError) -> Reply {
    Reply::Error(match error {
        StoreError::NotAnInteger => "ERR value is not an integer or out of range".to_string(),
        StoreError::Overflow => "ERR increment or decrement would overflow".to_string(),
        StoreError::ValueTooLong { .. } => "ERR string exceeds maximum allowed size".to_string(),
        StoreError::ReplyTooLarge { .. } | StoreError::NotAFloat | StoreError::NotFinite | StoreError::NoSuchKey => {
            format!("ERR {error}")
        }
        StoreError::SessionExpired { .. } => format!("SESSIONEXPIRED {error}"),
        StoreError::SessionStale { .. } => format!("SESSIONSTALE {error}"),
    })
}

/// Steps of glob matching one KEYS or SCAN may take (about 0.1 s of CPU).
pub const MATCH_BUDGET: u64 = 100_000_000;

/// The keys that match `glob`, or `None` once matching took [`MATCH_BUDGET`] steps.
fn matching(glob: &Glob, keys: Vec<Vec<u8>>) -> Option<Vec<Reply>> {
    if glob.matches_all() {
        return Some(keys.into_iter().map(Reply::Bulk).collect());
    }
    let mut budget = MATCH_BUDGET;
    let mut out = Vec::new();
    for key in keys {
        if glob.matches_within(&key, &mut budget)? {
            out.push(Reply::Bulk(key));
        }
    }
    Some(out)
}

fn pattern_too_complex() -> Reply {
    Reply::Error(format!(
        "ERR pattern too complex: matching it took more than {MATCH_BUDGET} steps; use a shorter pattern or SCAN with a smaller COUNT"
    ))
}

/// Appends the reply to `response`, as `shape` says, to `out` (in RESP3 if `resp3`); returns
/// whether it is an error. The replies of the common commands (`+OK`, nil, a value, an
/// integer) are encoded straight into `out`, with no [`Reply`] in between; the others go
/// through [`render`].
pub fn encode(
    shape: Shape,
    response: Response,
    next_cursor: &dyn Fn(&[u8]) -> String,
    out: &mut Vec<u8>,
    resp3: bool,
) -> bool {
    match (&shape, &response) {
        (Shape::Set { get: false }, Response::Set { written: true, .. }) => reply::encode_ok(out),
        (Shape::Set { get: false }, Response::Set { written: false, .. })
        | (Shape::Set { get: true }, Response::Set { previous: None, .. })
        | (Shape::Value, Response::Value(None)) => reply::encode_nil(out, resp3),
        (
            Shape::Set { get: true },
            Response::Set {
                previous: Some(value), ..
            },
        )
        | (Shape::Value, Response::Value(Some(value))) => reply::encode_bulk(out, value),
        (Shape::Ok, response) if !matches!(response, Response::Error(_)) => reply::encode_ok(out),
        (Shape::Integer, Response::Integer(n)) => reply::encode_integer(out, *n),
        (Shape::Count, Response::Count(n)) => reply::encode_integer(out, i64::try_from(*n).unwrap_or(i64::MAX)),
        _ => {
            let reply = render(shape, response, next_cursor);
            reply.encode_as(out, resp3);
            return reply.is_error();
        }
    }
    false
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
            TtlState::ExpiresAt(_) => return mismatch(&Shape::Ttl { seconds }, &Response::Ttl(ttl)),
        }),
        (Shape::Scan { glob, count }, Response::Keys(keys)) => {
            let cursor = match keys.last() {
                Some(last) if keys.len() >= count => next_cursor(last),
                _ => "0".to_string(),
            };
            match matching(&glob, keys) {
                Some(keys) => Reply::Array(vec![Reply::text(cursor), Reply::Array(keys)]),
                None => pattern_too_complex(),
            }
        }
        (Shape::Cas, Response::Cas { swapped, previous }) => {
            Reply::Array(vec![Reply::Integer(i64::from(swapped)), Reply::bulk_or_nil(previous)])
        }
        (Shape::SessionId, Response::Session(id)) => Reply::Integer(i64::try_from(id).unwrap_or(i64::MAX)),
        (Shape::Keys { glob }, Response::Keys(keys)) => match matching(&glob, keys) {
            Some(keys) => Reply::Array(keys),
            None => pattern_too_complex(),
        },
        (Shape::Written, Response::Set { written, .. }) => Reply::Integer(i64::from(written)),
        (Shape::Range { start, end }, Response::Value(value)) => {
            Reply::Bulk(range(&value.unwrap_or_default(), start, end))
        }
        (Shape::Type, Response::Ttl(ttl)) => {
            Reply::Simple(if ttl == TtlState::Missing { "none" } else { "string" }.to_string())
        }
        (Shape::ExpireTime { seconds }, Response::Ttl(ttl)) => match ttl {
            TtlState::Missing => Reply::Integer(-2),
            TtlState::Persistent => Reply::Integer(-1),
            TtlState::ExpiresAt(ms) => {
                let at = if seconds { ms.saturating_add(500) / 1000 } else { ms };
                Reply::Integer(i64::try_from(at).unwrap_or(i64::MAX))
            }
            TtlState::Remaining(_) => mismatch(&Shape::ExpireTime { seconds }, &Response::Ttl(ttl)),
        },
        (Shape::ErrorIfPresent(error), Response::Value(value)) => match value {
            Some(_) => Reply::Error(error),
            None => Reply::Nil,
        },
        (
            Shape::Revisioned,
            Response::Revisioned {
                value,
                mod_revision,
                revision,
            },
        ) => Reply::Array(vec![
            Reply::bulk_or_nil(value),
            Reply::Integer(i64::try_from(mod_revision).unwrap_or(i64::MAX)),
            Reply::Integer(i64::try_from(revision).unwrap_or(i64::MAX)),
        ]),
        (shape, response) => mismatch(&shape, &response),
    }
}

fn mismatch(shape: &Shape, response: &Response) -> Reply {
    Reply::Error(format!("ERR internal: {response:?} does not render as {shape:?}"))
}

/// GETRANGE's bytes, clamped as Redis 7.0's `getrangeCommand` clamps them.
fn range(value: &[u8], start: i64, end: i64) -> Vec<u8> {
    let len = i64::try_from(value.len()).unwrap_or(i64::MAX);
    if start < 0 && end < 0 && start > end {
        return Vec::new();
    }
    let start = if start < 0 { len + start } else { start }.max(0);
    let end = if end < 0 { len + end } else { end }.max(0).min(len - 1);
    if start > end || len == 0 {
        return Vec::new();
    }
    // 0 <= start <= end < len here.
    value[start as usize..=end as usize].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The in-place encoding writes exactly what rendering a [`Reply`] and encoding it does.
    #[test]
    fn encode_matches_render() {
        let cases = || {
            vec![
                (
                    Shape::Set { get: false },
                    Response::Set {
                        written: true,
                        previous: None,
                    },
                ),
                (
                    Shape::Set { get: false },
                    Response::Set {
                        written: false,
                        previous: Some(b"p".to_vec()),
                    },
                ),
                (
                    Shape::Set { get: true },
                    Response::Set {
                        written: true,
                        previous: Some(b"p".to_vec()),
                    },
                ),
                (
                    Shape::Set { get: true },
                    Response::Set {
                        written: true,
                        previous: None,
                    },
                ),
                (Shape::Value, Response::Value(Some(b"v\r\n".to_vec()))),
                (Shape::Value, Response::Value(Some(Vec::new()))),
                (Shape::Value, Response::Value(None)),
                (Shape::Integer, Response::Integer(-42)),
                (Shape::Count, Response::Count(7)),
                (Shape::Ok, Response::Ok),
                (Shape::Ok, Response::Error(StoreError::NotAnInteger)),
                (Shape::Value, Response::Error(StoreError::Overflow)),
                (Shape::Value, Response::Count(1)),
                (Shape::Strlen, Response::Value(Some(b"abc".to_vec()))),
            ]
        };
        let cursor = |_: &[u8]| "0".to_string();
        for resp3 in [false, true] {
            for ((shape, response), (shape2, response2)) in cases().into_iter().zip(cases()) {
                let mut fast = Vec::new();
                let error = encode(shape, response, &cursor, &mut fast, resp3);
                let reply = render(shape2, response2, &cursor);
                let mut slow = Vec::new();
                reply.encode_as(&mut slow, resp3);
                assert_eq!(String::from_utf8_lossy(&fast), String::from_utf8_lossy(&slow));
                assert_eq!(error, reply.is_error());
            }
        }
    }
}
