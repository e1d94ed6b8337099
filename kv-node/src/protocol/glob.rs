//! Redis-style glob patterns (`KEYS`, `SCAN MATCH`): `*`, `?`, `[abc]`, `[^a-z]`, `\x`.
//!
//! The pattern is compiled into tokens (a class into a 256-bit set, so each byte costs one
//! step) and matched with single-star backtracking, so matching takes at most
//! O(pattern × key) steps whatever the pattern. Even that is a lot for a long pattern over
//! many long keys, so [`Glob::matches_within`] counts steps against a budget that a command
//! shares over all the keys it filters.

/// One compiled element of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// Exactly this byte.
    Byte(u8),
    /// Any one byte.
    Any,
    /// Any run of bytes, empty included.
    Star,
    /// One byte of this set (a `[...]` class, negation already applied), bit `b` for byte `b`.
    Class([u64; 4]),
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
                    let mut set = [0u64; 4];
                    for byte in 0..=255u8 {
                        let listed = ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&byte));
                        if listed != negated {
                            set[usize::from(byte >> 6)] |= 1 << (byte & 63);
                        }
                    }
                    tokens.push(Token::Class(set));
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
        let mut unlimited = u64::MAX;
        self.matches_within(key, &mut unlimited)
            .expect("an unlimited budget is never exhausted")
    }

    /// Whether `key` matches, taking steps from `budget`; `None` once the budget is spent.
    pub fn matches_within(&self, key: &[u8], budget: &mut u64) -> Option<bool> {
        let (mut t, mut k) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while k < key.len() {
            *budget = budget.checked_sub(1)?;
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
                    None => return Some(false),
                },
            }
        }
        Some(self.tokens[t..].iter().all(|token| *token == Token::Star))
    }
}

fn single(token: &Token, byte: u8) -> bool {
    match token {
        Token::Byte(b) => *b == byte,
        Token::Any => true,
        Token::Star => false,
        Token::Class(set) => set[usize::from(byte >> 6)] & (1 << (byte & 63)) != 0,
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
        // A budget bounds the work whatever the pattern.
        let long = Glob::new(format!("*{}b", "a".repeat(4000)).as_bytes());
        let mut budget = 1_000_000;
        assert_eq!(long.matches_within("a".repeat(16_384).as_bytes(), &mut budget), None);
        let mut budget = 1_000_000;
        assert_eq!(Glob::new(b"a*").matches_within(b"abc", &mut budget), Some(true));
        assert!(budget > 999_990);
    }
}
