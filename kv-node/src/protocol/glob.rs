//! Redis-style glob patterns (`KEYS`, `SCAN MATCH`): `*`, `?`, `[abc]`, `[^a-z]`, `\x`.
//!
//! The pattern is compiled into tokens and matched with single-star backtracking, so matching
//! takes at most O(pattern × key) steps whatever the pattern.

/// One compiled element of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// Exactly this byte.
    Byte(u8),
    /// Any one byte.
    Any,
    /// Any run of bytes, empty included.
    Star,
    /// One byte in (or, negated, not in) these inclusive ranges.
    Class {
        /// `[^...]`.
        negated: bool,
        /// Inclusive byte ranges.
        ranges: Vec<(u8, u8)>,
    },
}

/// A compiled glob pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
}

impl Glob {
    /// Compiles `pattern`. Every byte string is a valid pattern (an unterminated class
    /// extends to the end, as in Redis).
    pub fn new(pattern: &[u8]) -> Glob {
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < pattern.len() {
            match pattern[i] {
                b'*' => {
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                }
                b'?' => tokens.push(Token::Any),
                b'\\' if i + 1 < pattern.len() => {
                    i += 1;
                    tokens.push(Token::Byte(pattern[i]));
                }
                b'[' => {
                    i += 1;
                    let negated = pattern.get(i) == Some(&b'^');
                    if negated {
                        i += 1;
                    }
                    let mut ranges = Vec::new();
                    while i < pattern.len() && pattern[i] != b']' {
                        let mut low = pattern[i];
                        if low == b'\\' && i + 1 < pattern.len() {
                            i += 1;
                            low = pattern[i];
                        }
                        if pattern.get(i + 1) == Some(&b'-') && i + 2 < pattern.len() && pattern[i + 2] != b']' {
                            let high = pattern[i + 2];
                            ranges.push((low.min(high), low.max(high)));
                            i += 3;
                        } else {
                            ranges.push((low, low));
                            i += 1;
                        }
                    }
                    tokens.push(Token::Class { negated, ranges });
                }
                byte => tokens.push(Token::Byte(byte)),
            }
            i += 1;
        }
        Glob { tokens }
    }

    /// The bytes every match starts with (for narrowing a scan).
    pub fn literal_prefix(&self) -> Vec<u8> {
        self.tokens
            .iter()
            .map_while(|t| match t {
                Token::Byte(b) => Some(*b),
                _ => None,
            })
            .collect()
    }

    /// Whether the pattern matches everything.
    pub fn matches_all(&self) -> bool {
        self.tokens == [Token::Star]
    }

    /// Whether `key` matches.
    pub fn matches(&self, key: &[u8]) -> bool {
        let (mut t, mut k) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while k < key.len() {
            match self.tokens.get(t) {
                Some(Token::Star) => {
                    star = Some((t, k));
                    t += 1;
                }
                Some(token) if single(token, key[k]) => {
                    t += 1;
                    k += 1;
                }
                _ => match star {
                    Some((st, sk)) => {
                        t = st + 1;
                        k = sk + 1;
                        star = Some((st, sk + 1));
                    }
                    None => return false,
                },
            }
        }
        self.tokens[t..].iter().all(|token| *token == Token::Star)
    }
}

fn single(token: &Token, byte: u8) -> bool {
    match token {
        Token::Byte(b) => *b == byte,
        Token::Any => true,
        Token::Star => false,
        Token::Class { negated, ranges } => ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&byte)) != *negated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_like_redis() {
        let m = |p: &str, k: &str| Glob::new(p.as_bytes()).matches(k.as_bytes());
        assert!(m("*", ""));
        assert!(m("user:*", "user:42"));
        assert!(!m("user:*", "users"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!m("*a*b*c*", "xxaxxcxxbxx"));
        assert!(!m("k[", "k"));
        assert!(m("k[a", "ka"));
        assert_eq!(Glob::new(b"user:*:x").literal_prefix(), b"user:");
        // Pathological patterns stay fast.
        let key = "a".repeat(2000);
        assert!(!m(&format!("{}b", "*a".repeat(200)), &key));
    }
}
