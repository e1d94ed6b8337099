//! RESP2 replies and their encoding.

use std::io::Write as _;

/// A RESP2 value, as the server sends it and the client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+text`
    Simple(String),
    /// `-CODE text`
    Error(String),
    /// `:n`
    Integer(i64),
    /// `$len` and bytes.
    Bulk(Vec<u8>),
    /// `$-1` (also what a client reads for `*-1`).
    Nil,
    /// `*n` and the elements.
    Array(Vec<Reply>),
    /// `*-1` (RESP3 `_`): the nil EXEC answers when a watched key changed. A client reads it as
    /// [`Reply::Nil`].
    NilArray,
    /// Key/value pairs: a RESP3 map (`%n`), or in RESP2 a flat array of 2n elements.
    Map(Vec<(Reply, Reply)>),
    /// Out-of-band data (pub/sub messages, watch changes): a RESP3 push (`>n`), or in RESP2
    /// an array.
    Push(Vec<Reply>),
}

impl Reply {
    /// `+OK`.
    pub fn ok() -> Reply {
        Reply::Simple("OK".to_string())
    }

    /// A bulk string from text.
    pub fn text(text: impl Into<String>) -> Reply {
        Reply::Bulk(text.into().into_bytes())
    }

    /// A bulk string, or nil for `None`.
    pub fn bulk_or_nil(value: Option<Vec<u8>>) -> Reply {
        value.map_or(Reply::Nil, Reply::Bulk)
    }

    /// Appends the RESP2 encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.encode_as(out, false);
    }

    /// Appends the encoding to `out`, in RESP3 if `resp3` (which differs from RESP2 only in
    /// nil, `_`, and maps, `%`).
    pub fn encode_as(&self, out: &mut Vec<u8>, resp3: bool) {
        // Writing into a Vec cannot fail.
        match self {
            Reply::Simple(text) => {
                out.push(b'+');
                push_line(out, text.as_bytes());
            }
            Reply::Error(text) => {
                out.push(b'-');
                push_line(out, text.as_bytes());
            }
            Reply::Integer(n) => encode_integer(out, *n),
            Reply::Bulk(bytes) => encode_bulk(out, bytes),
            Reply::Nil => encode_nil(out, resp3),
            Reply::NilArray if resp3 => out.extend_from_slice(b"_\r\n"),
            Reply::NilArray => out.extend_from_slice(b"*-1\r\n"),
            Reply::Array(items) | Reply::Push(items) => {
                let tag = if resp3 && matches!(self, Reply::Push(_)) {
                    '>'
                } else {
                    '*'
                };
                let _ = write!(out, "{tag}{}\r\n", items.len());
                for item in items {
                    item.encode_as(out, resp3);
                }
            }
            Reply::Map(pairs) => {
                if resp3 {
                    let _ = write!(out, "%{}\r\n", pairs.len());
                } else {
                    let _ = write!(out, "*{}\r\n", pairs.len() * 2);
                }
                for (key, value) in pairs {
                    key.encode_as(out, resp3);
                    value.encode_as(out, resp3);
                }
            }
        }
    }

    /// Whether this is an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }
}

/// Appends `+OK`.
pub fn encode_ok(out: &mut Vec<u8>) {
    out.extend_from_slice(b"+OK\r\n");
}

/// Appends nil (`$-1`, or `_` in RESP3).
pub fn encode_nil(out: &mut Vec<u8>, resp3: bool) {
    out.extend_from_slice(if resp3 { b"_\r\n" } else { b"$-1\r\n" });
}

/// Appends an integer reply, `:n`.
pub fn encode_integer(out: &mut Vec<u8>, n: i64) {
    out.push(b':');
    push_decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

/// Appends a bulk string: `$len`, the bytes, CRLF.
pub fn encode_bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 16);
    out.push(b'$');
    push_decimal(out, bytes.len() as i64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal, without going through `fmt`.
fn push_decimal(out: &mut Vec<u8>, n: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends a simple-string or error line; CR and LF inside would break the framing and
/// become spaces.
fn push_line(out: &mut Vec<u8>, text: &[u8]) {
    out.extend(text.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_type() {
        let mut out = Vec::new();
        Reply::Array(vec![
            Reply::ok(),
            Reply::Error("ERR bad\nline".into()),
            Reply::Integer(-3),
            Reply::Bulk(b"a\r\nb".to_vec()),
            Reply::Nil,
            Reply::NilArray,
        ])
        .encode(&mut out);
        assert_eq!(
            out,
            b"*6\r\n+OK\r\n-ERR bad line\r\n:-3\r\n$4\r\na\r\nb\r\n$-1\r\n*-1\r\n"
        );
        let map = Reply::Map(vec![(Reply::text("k"), Reply::Nil)]);
        let mut out = Vec::new();
        map.encode(&mut out);
        assert_eq!(out, b"*2\r\n$1\r\nk\r\n$-1\r\n");
        out.clear();
        map.encode_as(&mut out, true);
        assert_eq!(out, b"%1\r\n$1\r\nk\r\n_\r\n");
    }

    #[test]
    fn integers_encode_as_fmt_does() {
        for n in [0, 7, -7, 10, 99, -100, 1_234_567, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            encode_integer(&mut out, n);
            assert_eq!(out, format!(":{n}\r\n").as_bytes());
        }
    }
}
