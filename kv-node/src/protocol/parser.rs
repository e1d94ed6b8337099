//! An incremental RESP2 parser: requests (arrays of bulk strings, or inline commands) for the
//! server, and replies of any type for the client. Both return `Ok(None)` until the buffer
//! holds a whole message, never allocate more than the bytes actually received, and reject
//! anything malformed or over the limits with a [`ProtocolError`].

use super::reply::Reply;

/// Bounds on what a peer may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Longest bulk string.
    pub max_bulk_len: usize,
    /// Most elements in one array.
    pub max_array_len: usize,
    /// Longest inline command or header line.
    pub max_inline_len: usize,
    /// Deepest nesting of arrays (replies only).
    pub max_depth: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_bulk_len: 8 << 20,
            max_array_len: 1 << 20,
            max_inline_len: 64 << 10,
            max_depth: 8,
        }
    }
}

/// Malformed or oversized input. The text is what Redis says after `Protocol error: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// An array length that is not a number or exceeds the limit.
    #[error("invalid multibulk length")]
    MultibulkLength,
    /// A bulk length that is not a number or exceeds the limit.
    #[error("invalid bulk length")]
    BulkLength,
    /// An element of a request array is not a bulk string.
    #[error("expected '$', got '{}'", char::from(*.0))]
    ExpectedBulk(u8),
    /// A line (inline command, length header) is longer than allowed.
    #[error("too big inline request")]
    LineTooLong,
    /// An inline command with an unterminated quote.
    #[error("unbalanced quotes in request")]
    UnbalancedQuotes,
    /// A bulk string not followed by CRLF.
    #[error("bulk string not terminated by CRLF")]
    MissingCrlf,
    /// A reply of an unknown type, or an integer reply that is not a number.
    #[error("invalid reply: {0}")]
    BadReply(String),
    /// Arrays nested deeper than allowed.
    #[error("replies nested too deeply")]
    TooDeep,
}

/// A parsed request (its arguments) and the bytes it used; `None` until it is complete.
pub type Parsed = Option<(Vec<Vec<u8>>, usize)>;

/// The position after the CRLF that ends the line starting at `from`, and the line's end.
fn line(buf: &[u8], from: usize, max: usize) -> Result<Option<(usize, usize)>, ProtocolError> {
    let window = &buf[from..buf.len().min(from.saturating_add(max).saturating_add(2))];
    match window.windows(2).position(|w| w == b"\r\n") {
        Some(end) => Ok(Some((from + end, from + end + 2))),
        None if window.len() >= max + 2 => Err(ProtocolError::LineTooLong),
        None => Ok(None),
    }
}

/// Parses a decimal length; `None` if it is not a plain integer.
fn number(bytes: &[u8]) -> Option<i64> {
    if bytes.first() == Some(&b'+') {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// Parses one request from the front of `buf`: its arguments and the bytes it used. An empty
/// argument list means an empty inline line or `*0`, which a server ignores.
pub fn parse_request(buf: &[u8], limits: &ParseLimits) -> Result<Parsed, ProtocolError> {
    RequestParser::default().parse(buf, limits)
}

/// A request parser that resumes where it stopped: a request that arrives in pieces is not
/// parsed again from its start each time bytes come in (which made a trickled request cost
/// quadratic time), and nothing is looked at until the bytes it waits for are there.
#[derive(Debug, Default)]
pub struct RequestParser {
    partial: Option<Partial>,
}

/// An array request parsed up to `pos`, relative to the request's first byte.
#[derive(Debug)]
struct Partial {
    count: usize,
    pos: usize,
    args: Vec<Vec<u8>>,
    /// The buffer must hold at least this many bytes before parsing can go on.
    need: usize,
}

impl RequestParser {
    /// Parses one request from the front of `buf`, which starts with the same bytes as on
    /// the previous call if that one returned `Ok(None)` (more may have arrived since).
    pub fn parse(&mut self, buf: &[u8], limits: &ParseLimits) -> Result<Parsed, ProtocolError> {
        if self.partial.as_ref().is_some_and(|p| buf.len() < p.need) {
            return Ok(None);
        }
        let (count, mut pos, mut args) = match self.partial.take() {
            Some(p) => (p.count, p.pos, p.args),
            None => {
                if buf.is_empty() {
                    return Ok(None);
                }
                if buf[0] != b'*' {
                    return parse_inline(buf, limits);
                }
                let Some((end, pos)) = line(buf, 1, limits.max_inline_len)? else {
                    return Ok(None);
                };
                let count = number(&buf[1..end]).ok_or(ProtocolError::MultibulkLength)?;
                if count > limits.max_array_len as i64 {
                    return Err(ProtocolError::MultibulkLength);
                }
                let count = usize::try_from(count).unwrap_or(0);
                (count, pos, Vec::with_capacity(count.min(64)))
            }
        };
        while args.len() < count {
            let Some(&kind) = buf.get(pos) else {
                self.partial = Some(Partial {
                    count,
                    pos,
                    args,
                    need: pos + 1,
                });
                return Ok(None);
            };
            if kind != b'$' {
                return Err(ProtocolError::ExpectedBulk(kind));
            }
            match bulk(buf, pos, limits)? {
                Bulk::Done(bytes, next) => {
                    args.push(bytes.ok_or(ProtocolError::BulkLength)?.to_vec());
                    pos = next;
                }
                Bulk::Need(need) => {
                    self.partial = Some(Partial { count, pos, args, need });
                    return Ok(None);
                }
            }
        }
        Ok(Some((args, pos)))
    }
}

/// A bulk string, or how many bytes the buffer must hold before it can be complete.
enum Bulk<'a> {
    /// Its bytes (`None` for the nil bulk) and the position after it.
    Done(Option<&'a [u8]>, usize),
    /// Not complete until the buffer holds this many bytes.
    Need(usize),
}

/// A bulk string starting at `pos` (at the `$`).
fn bulk<'a>(buf: &'a [u8], pos: usize, limits: &ParseLimits) -> Result<Bulk<'a>, ProtocolError> {
    let Some((end, start)) = line(buf, pos + 1, limits.max_inline_len)? else {
        return Ok(Bulk::Need(buf.len() + 1));
    };
    let len = number(&buf[pos + 1..end]).ok_or(ProtocolError::BulkLength)?;
    if len == -1 {
        return Ok(Bulk::Done(None, start));
    }
    let len = usize::try_from(len).map_err(|_| ProtocolError::BulkLength)?;
    if len > limits.max_bulk_len {
        return Err(ProtocolError::BulkLength);
    }
    if buf.len() < start + len + 2 {
        return Ok(Bulk::Need(start + len + 2));
    }
    if &buf[start + len..start + len + 2] != b"\r\n" {
        return Err(ProtocolError::MissingCrlf);
    }
    Ok(Bulk::Done(Some(&buf[start..start + len]), start + len + 2))
}

fn parse_inline(buf: &[u8], limits: &ParseLimits) -> Result<Parsed, ProtocolError> {
    // A line of `max_inline_len` bytes may still be followed by CRLF.
    let window = &buf[..buf.len().min(limits.max_inline_len + 2)];
    let Some(newline) = window.iter().position(|&b| b == b'\n') else {
        return if window.len() > limits.max_inline_len + 1 {
            Err(ProtocolError::LineTooLong)
        } else {
            Ok(None)
        };
    };
    let mut text = &buf[..newline];
    if text.last() == Some(&b'\r') {
        text = &text[..text.len() - 1];
    }
    if text.len() > limits.max_inline_len {
        return Err(ProtocolError::LineTooLong);
    }
    Ok(Some((split_args(text)?, newline + 1)))
}

/// Splits an inline command like Redis's `sdssplitargs`: whitespace-separated words, with
/// double quotes (escapes `\n \r \t \b \a \\ \" \xHH`) and single quotes (escape `\'`).
pub fn split_args(text: &[u8]) -> Result<Vec<Vec<u8>>, ProtocolError> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < text.len() && text[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == text.len() {
            return Ok(args);
        }
        let mut arg = Vec::new();
        let quote = match text[i] {
            q @ (b'"' | b'\'') => {
                i += 1;
                Some(q)
            }
            _ => None,
        };
        loop {
            let Some(&c) = text.get(i) else {
                if quote.is_some() {
                    return Err(ProtocolError::UnbalancedQuotes);
                }
                break;
            };
            match quote {
                None if c.is_ascii_whitespace() => break,
                None => arg.push(c),
                Some(q) if c == q => {
                    // A closing quote must be followed by a space or the end.
                    if text.get(i + 1).is_some_and(|n| !n.is_ascii_whitespace()) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    i += 1;
                    break;
                }
                Some(b'"') if c == b'\\' && i + 1 < text.len() => {
                    i += 1;
                    let hex = |b: u8| char::from(b).to_digit(16);
                    match text[i] {
                        b'x' if i + 2 < text.len() && hex(text[i + 1]).is_some() && hex(text[i + 2]).is_some() => {
                            let value = hex(text[i + 1]).unwrap_or(0) * 16 + hex(text[i + 2]).unwrap_or(0);
                            arg.push(value as u8);
                            i += 2;
                        }
                        b'n' => arg.push(b'\n'),
                        b'r' => arg.push(b'\r'),
                        b't' => arg.push(b'\t'),
                        b'b' => arg.push(8),
                        b'a' => arg.push(7),
                        other => arg.push(other),
                    }
                }
                Some(b'\'') if c == b'\\' && text.get(i + 1) == Some(&b'\'') => {
                    i += 1;
                    arg.push(b'\'');
                }
                Some(_) => arg.push(c),
            }
            i += 1;
        }
        args.push(arg);
    }
}

/// Parses one reply of any RESP2 type from the front of `buf`, and the bytes it used.
pub fn parse_reply(buf: &[u8], limits: &ParseLimits) -> Result<Option<(Reply, usize)>, ProtocolError> {
    reply_at(buf, 0, limits, 0)
}

fn reply_at(
    buf: &[u8],
    pos: usize,
    limits: &ParseLimits,
    depth: usize,
) -> Result<Option<(Reply, usize)>, ProtocolError> {
    let Some(&kind) = buf.get(pos) else {
        return Ok(None);
    };
    if kind == b'$' {
        return Ok(match bulk(buf, pos, limits)? {
            Bulk::Done(bytes, next) => Some((bytes.map_or(Reply::Nil, |b| Reply::Bulk(b.to_vec())), next)),
            Bulk::Need(_) => None,
        });
    }
    let Some((end, next)) = line(buf, pos + 1, limits.max_inline_len)? else {
        return Ok(None);
    };
    let text = &buf[pos + 1..end];
    let bad = || ProtocolError::BadReply(String::from_utf8_lossy(&buf[pos..end]).into_owned());
    match kind {
        b'+' => Ok(Some((Reply::Simple(String::from_utf8_lossy(text).into_owned()), next))),
        b'-' => Ok(Some((Reply::Error(String::from_utf8_lossy(text).into_owned()), next))),
        b':' => Ok(Some((Reply::Integer(number(text).ok_or_else(bad)?), next))),
        b'*' => {
            if depth >= limits.max_depth {
                return Err(ProtocolError::TooDeep);
            }
            let count = number(text).ok_or(ProtocolError::MultibulkLength)?;
            if count == -1 {
                return Ok(Some((Reply::Nil, next)));
            }
            let count = usize::try_from(count).map_err(|_| ProtocolError::MultibulkLength)?;
            if count > limits.max_array_len {
                return Err(ProtocolError::MultibulkLength);
            }
            let mut items = Vec::with_capacity(count.min(64));
            let mut at = next;
            for _ in 0..count {
                let Some((item, after)) = reply_at(buf, at, limits, depth + 1)? else {
                    return Ok(None);
                };
                items.push(item);
                at = after;
            }
            Ok(Some((Reply::Array(items), at)))
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ParseLimits {
        ParseLimits {
            max_bulk_len: 16,
            max_array_len: 4,
            max_inline_len: 32,
            max_depth: 2,
        }
    }

    #[test]
    fn requests_arrive_in_pieces_and_pipelined() {
        let input = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n";
        for cut in 0..20 {
            assert_eq!(parse_request(&input[..cut], &limits()), Ok(None), "cut at {cut}");
        }
        let (args, used) = parse_request(input, &limits()).unwrap().unwrap();
        assert_eq!(args, vec![b"GET".to_vec(), b"k".to_vec()]);
        assert_eq!(used, 20);
        let (args, _) = parse_request(&input[used..], &limits()).unwrap().unwrap();
        assert_eq!(args, vec![b"PING".to_vec()]);
    }

    #[test]
    fn inline_commands_split_like_redis() {
        let (args, used) = parse_request(b"SET k \"a b\\x41\" 'c\\'d'\r\nrest", &limits())
            .unwrap()
            .unwrap();
        assert_eq!(
            args,
            vec![b"SET".to_vec(), b"k".to_vec(), b"a bA".to_vec(), b"c'd".to_vec()]
        );
        assert_eq!(used, 24);
        assert_eq!(parse_request(b"\r\n", &limits()), Ok(Some((vec![], 2))));
        assert_eq!(
            parse_request(b"GET \"k\n", &limits()),
            Err(ProtocolError::UnbalancedQuotes)
        );
    }

    #[test]
    fn oversized_and_malformed_input_is_refused() {
        let l = limits();
        assert_eq!(parse_request(b"*5\r\n", &l), Err(ProtocolError::MultibulkLength));
        assert_eq!(parse_request(b"*x\r\n", &l), Err(ProtocolError::MultibulkLength));
        // The announced length is refused before any of it arrives.
        assert_eq!(parse_request(b"*1\r\n$17\r\n", &l), Err(ProtocolError::BulkLength));
        assert_eq!(
            parse_request(b"*1\r\n$99999999999999999999\r\n", &l),
            Err(ProtocolError::BulkLength)
        );
        assert_eq!(parse_request(b"*1\r\n$-1\r\n", &l), Err(ProtocolError::BulkLength));
        assert_eq!(
            parse_request(b"*1\r\n:1\r\n", &l),
            Err(ProtocolError::ExpectedBulk(b':'))
        );
        assert_eq!(
            parse_request(b"*1\r\n$1\r\nab\r\n", &l),
            Err(ProtocolError::MissingCrlf)
        );
        assert_eq!(parse_request(&[b'a'; 40], &l), Err(ProtocolError::LineTooLong));
        assert_eq!(parse_request(&[b'*'; 40], &l), Err(ProtocolError::LineTooLong));
    }

    #[test]
    fn replies_of_every_type() {
        let input = b"*3\r\n+OK\r\n$-1\r\n*2\r\n:-7\r\n$2\r\nhi\r\n";
        let (reply, used) = parse_reply(input, &limits()).unwrap().unwrap();
        assert_eq!(used, input.len());
        assert_eq!(
            reply,
            Reply::Array(vec![
                Reply::Simple("OK".into()),
                Reply::Nil,
                Reply::Array(vec![Reply::Integer(-7), Reply::Bulk(b"hi".to_vec())]),
            ])
        );
        for cut in 0..input.len() {
            assert_eq!(parse_reply(&input[..cut], &limits()), Ok(None));
        }
        assert_eq!(
            parse_reply(b"*1\r\n*1\r\n*1\r\n", &limits()),
            Err(ProtocolError::TooDeep)
        );
        assert!(parse_reply(b"?\r\n", &limits()).is_err());
    }

    #[test]
    fn a_request_parsed_in_pieces_resumes_where_it_stopped() {
        let limits = ParseLimits::default();
        let mut whole = Vec::new();
        for request in [
            &b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n"[..],
            b"PING\r\n",
            b"*0\r\n",
        ] {
            whole.extend_from_slice(request);
        }
        let mut parser = RequestParser::default();
        let (mut buf, mut got) = (Vec::new(), Vec::new());
        for &byte in &whole {
            buf.push(byte);
            while let Some((args, used)) = parser.parse(&buf, &limits).unwrap() {
                got.push(args);
                buf.drain(..used);
            }
        }
        assert!(buf.is_empty());
        let expected: Vec<Vec<Vec<u8>>> = vec![
            vec![b"SET".to_vec(), b"k".to_vec(), b"hello".to_vec()],
            vec![b"PING".to_vec()],
            vec![],
        ];
        assert_eq!(got, expected);
    }
}
