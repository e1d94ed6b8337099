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
}

/// The reply for a store-level command failure.
pub fn store_error(error: &StoreError) -> Reply {
    Reply::Error(match error {
        StoreError::NotAnInteger => "ERR value is not an integer or out of range".to_string(),
        StoreError::Overflow => "ERR increment or decrement would overflow".to_string(),
        StoreError::ValueTooLong { .. } => "ERR string exceeds maximum allowed size".to_string(),
        StoreError::ReplyTooLarge { .. } => format!("ERR {error}"),
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
        (Shape::Keys { glob }, Response::Keys(keys)) => match matching(&glob, keys) {
            Some(keys) => Reply::Array(keys),
            None => pattern_too_complex(),
        },
        (shape, response) => Reply::Error(format!("ERR internal: {response:?} does not render as {shape:?}")),
    }
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
