//! `INCRBYFLOAT`'s arithmetic, as Redis does it, in integers.
//!
//! Redis reads both numbers with `strtold`, adds them as C `long double` (on x86-64 the x87
//! extended format: a 64-bit significand, exponents down to 2^-16445 for denormals and below
//! 2^16384), and writes the sum with `%.17Lf`, cutting trailing zeros and the point (`"-0"`
//! becomes `"0"`). An `f64` sum would answer `0.30000000000000004` where Redis answers `0.3`,
//! and `1e30` has other digits in 64 bits than in 53.
//!
//! Every step here is exact big-integer arithmetic followed by one round-half-to-even to that
//! format, which is what the FPU does in its default rounding mode, and the printing is exact
//! as glibc's is. No platform float is involved: every replica, and the wasm build, computes the
//! same bytes. Tested against values Redis 7.0 printed (see the tests below and
//! `kv-node/tests/redis_strings.rs`, which runs a real `redis-server` side by side).
//!
//! What is read is what `strtold` reads in full and Redis accepts: an optional sign, then
//! decimal digits with an optional point and `e` exponent, or `0x` hexadecimal digits with an
//! optional point and `p` exponent, or `inf` / `infinity` (any case). `nan`, leading or trailing
//! spaces, an empty text, a text of 5120 bytes or more, and a number that overflows to infinity
//! or underflows to zero are not numbers.

use num_bigint::BigUint;

/// Bits of the x87 extended significand.
const SIGNIFICAND_BITS: u64 = 64;
/// Exponent of the least significant bit of the smallest denormal, 2^-16445.
const MIN_LSB_EXPONENT: i64 = -16445;
/// Every finite value is below 2^16384.
const TOP_EXPONENT: i64 = 16384;
/// Longest text Redis reads as a number (its buffer is `MAX_LONG_DOUBLE_CHARS`, 5 KiB).
const MAX_TEXT: usize = 5 * 1024 - 1;
/// Decimal places `%.17Lf` prints.
const DECIMALS: u32 = 17;
/// An exponent past this (in either base) over- or underflows whatever the digits.
const EXPONENT_CLAMP: i64 = 1_000_000;

/// A value of the x87 extended format (NaN excepted: it is never stored or accepted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum LongDouble {
    /// `(-1)^negative * significand * 2^exponent`, with `significand < 2^64`.
    Finite {
        /// The sign (zero has one too).
        negative: bool,
        /// At most 64 bits.
        significand: BigUint,
        /// Power of two of its least significant bit.
        exponent: i64,
    },
    /// An infinity.
    Infinite {
        /// Its sign.
        negative: bool,
    },
}

impl LongDouble {
    /// Positive zero.
    pub(super) fn zero() -> LongDouble {
        LongDouble::Finite {
            negative: false,
            significand: BigUint::ZERO,
            exponent: 0,
        }
    }

    /// Reads a number as Redis does (see the module docs); `None` if it is not one.
    pub(super) fn parse(text: &[u8]) -> Option<LongDouble> {
        if text.is_empty() || text.len() > MAX_TEXT {
            return None;
        }
        let (negative, body) = match text[0] {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
            return Some(LongDouble::Infinite { negative });
        }
        let (digits, exponent) = match body {
            [b'0', b'x' | b'X', hex @ ..] => hexadecimal(hex)?,
            _ => decimal(body)?,
        };
        if digits == BigUint::ZERO {
            return Some(LongDouble::Finite {
                negative,
                significand: digits,
                exponent: 0,
            });
        }
        // strtold's ERANGE: an overflow to infinity or an underflow to zero is refused.
        match exponent.to_value(negative, digits) {
            value @ LongDouble::Finite { .. } if !value.is_zero() => Some(value),
            _ => None,
        }
    }

    /// Whether this is a zero of either sign.
    fn is_zero(&self) -> bool {
        matches!(self, LongDouble::Finite { significand, .. } if *significand == BigUint::ZERO)
    }

    /// The rounded sum, or `None` for NaN (infinities of opposite signs).
    pub(super) fn add(&self, other: &LongDouble) -> Option<LongDouble> {
        match (self, other) {
            (LongDouble::Infinite { negative: a }, LongDouble::Infinite { negative: b }) => {
                (a == b).then_some(LongDouble::Infinite { negative: *a })
            }
            (LongDouble::Infinite { .. }, _) => Some(self.clone()),
            (_, LongDouble::Infinite { .. }) => Some(other.clone()),
            (
                LongDouble::Finite {
                    negative: sa,
                    significand: ma,
                    exponent: ea,
                },
                LongDouble::Finite {
                    negative: sb,
                    significand: mb,
                    exponent: eb,
                },
            ) => {
                let exponent = (*ea).min(*eb);
                let a = ma << shift(*ea - exponent);
                let b = mb << shift(*eb - exponent);
                if sa == sb {
                    return Some(round(*sa, a + b, exponent, false));
                }
                // Round to nearest: x + (-x) is +0.
                Some(match a.cmp(&b) {
                    std::cmp::Ordering::Greater => round(*sa, a - b, exponent, false),
                    std::cmp::Ordering::Less => round(*sb, b - a, exponent, false),
                    std::cmp::Ordering::Equal => LongDouble::zero(),
                })
            }
        }
    }

    /// Whether this is neither infinite (nor NaN, which is never held).
    pub(super) fn is_finite(&self) -> bool {
        matches!(self, LongDouble::Finite { .. })
    }

    /// The text Redis stores: `%.17Lf`, trailing zeros and point cut, `-0` as `0`. `None` for
    /// an infinity.
    pub(super) fn to_text(&self) -> Option<Vec<u8>> {
        let LongDouble::Finite {
            negative,
            significand,
            exponent,
        } = self
        else {
            return None;
        };
        let scaled = significand * BigUint::from(10u32).pow(DECIMALS);
        let units = if *exponent >= 0 {
            scaled << shift(*exponent)
        } else {
            round_shift(scaled, shift(-*exponent), false)
        };
        let mut digits = units.to_str_radix(10);
        let width = DECIMALS as usize + 1;
        if digits.len() < width {
            digits.insert_str(0, &"0".repeat(width - digits.len()));
        }
        let point = digits.len() - DECIMALS as usize;
        let mut text = String::with_capacity(digits.len() + 2);
        if *negative {
            text.push('-');
        }
        text.push_str(&digits[..point]);
        text.push('.');
        text.push_str(&digits[point..]);
        let text = text.trim_end_matches('0').trim_end_matches('.');
        Some(if text == "-0" { "0" } else { text }.as_bytes().to_vec())
    }
}

/// A shift amount (the exponents involved stay within a few hundred thousand).
fn shift(bits: i64) -> u64 {
    u64::try_from(bits).expect("a shift is not negative")
}

/// `value >> bits`, rounded half to even; `sticky` says something nonzero lies below `value`.
fn round_shift(value: BigUint, bits: u64, sticky: bool) -> BigUint {
    if bits == 0 {
        return value;
    }
    let kept = &value >> bits;
    let rest = value - (&kept << bits);
    let half = BigUint::from(1u8) << (bits - 1);
    let up = rest > half || (rest == half && (sticky || kept.bit(0)));
    if up { kept + 1u8 } else { kept }
}

/// Rounds `(-1)^negative * value * 2^exponent` (plus something below 2^exponent if `sticky`)
/// to the extended format: 64 significant bits, no finer than the smallest denormal, an
/// infinity past the largest finite value.
fn round(negative: bool, value: BigUint, exponent: i64, sticky: bool) -> LongDouble {
    let bits = i64::try_from(value.bits()).unwrap_or(i64::MAX);
    let lsb = (exponent + bits - SIGNIFICAND_BITS as i64).max(MIN_LSB_EXPONENT);
    let (mut significand, mut exponent) = if lsb > exponent {
        (round_shift(value, shift(lsb - exponent), sticky), lsb)
    } else {
        // Representable as it is; callers with a sticky remainder pass more bits than kept.
        debug_assert!(!sticky, "an inexact value carries more than 64 bits");
        (value, exponent)
    };
    if significand.bits() > SIGNIFICAND_BITS {
        // Rounding carried into a 65th bit.
        significand >>= 1u8;
        exponent += 1;
    }
    if significand == BigUint::ZERO {
        return LongDouble::Finite {
            negative,
            significand,
            exponent: 0,
        };
    }
    if exponent + i64::try_from(significand.bits()).unwrap_or(i64::MAX) > TOP_EXPONENT {
        return LongDouble::Infinite { negative };
    }
    LongDouble::Finite {
        negative,
        significand,
        exponent,
    }
}

/// The exponent part of a parsed number: a power of ten or of two.
enum Scale {
    Ten(i64),
    Two(i64),
}

impl Scale {
    /// `(-1)^negative * digits * base^exponent`, rounded; `digits` is not zero.
    fn to_value(&self, negative: bool, digits: BigUint) -> LongDouble {
        let bits = i64::try_from(digits.bits()).unwrap_or(i64::MAX);
        match *self {
            Scale::Two(e) => {
                if e + bits > TOP_EXPONENT {
                    LongDouble::Infinite { negative }
                } else if e + bits < MIN_LSB_EXPONENT - 1 {
                    LongDouble::zero()
                } else {
                    round(negative, digits, e, false)
                }
            }
            Scale::Ten(e) => {
                // The value lies between 2^(bits - 1 + 3.32e) and 2^(bits + 3.33e): settle clear
                // over- and underflows before building huge powers of ten.
                if bits - 1 + 3 * e > TOP_EXPONENT {
                    return LongDouble::Infinite { negative };
                }
                if bits + 3 * e < MIN_LSB_EXPONENT - 2 {
                    return LongDouble::zero();
                }
                let power = BigUint::from(10u32).pow(u32::try_from(e.unsigned_abs()).expect("clamped exponent"));
                if e >= 0 {
                    return round(negative, digits * power, 0, false);
                }
                // digits / 10^-e with at least 66 significant bits in the quotient, the rest
                // kept as a sticky bit.
                let extra = (i64::try_from(power.bits()).unwrap_or(i64::MAX) + 66 - bits).max(0) + 1;
                let numerator = digits << shift(extra);
                let quotient = &numerator / &power;
                let inexact = numerator != &quotient * &power;
                round(negative, quotient, -extra, inexact)
            }
        }
    }
}

/// Decimal digits with an optional point and `e` exponent.
fn decimal(text: &[u8]) -> Option<(BigUint, Scale)> {
    let mantissa_end = text.iter().position(|&b| b == b'e' || b == b'E').unwrap_or(text.len());
    let (mantissa, exponent) = text.split_at(mantissa_end);
    let (whole, fraction) = match mantissa.iter().position(|&b| b == b'.') {
        Some(point) => (&mantissa[..point], &mantissa[point + 1..]),
        None => (mantissa, &mantissa[mantissa.len()..]),
    };
    if whole.len() + fraction.len() == 0 || !whole.iter().chain(fraction).all(u8::is_ascii_digit) {
        return None;
    }
    let mut scale = match exponent {
        [] => 0,
        [_, rest @ ..] => signed_exponent(rest)?,
    };
    scale -= i64::try_from(fraction.len()).ok()?;
    let all: Vec<u8> = whole.iter().chain(fraction).copied().collect();
    let digits = BigUint::parse_bytes(&all, 10)?;
    Some((digits, Scale::Ten(scale)))
}

/// Hexadecimal digits (after `0x`) with an optional point and `p` exponent.
fn hexadecimal(text: &[u8]) -> Option<(BigUint, Scale)> {
    let mantissa_end = text.iter().position(|&b| b == b'p' || b == b'P').unwrap_or(text.len());
    let (mantissa, exponent) = text.split_at(mantissa_end);
    let (whole, fraction) = match mantissa.iter().position(|&b| b == b'.') {
        Some(point) => (&mantissa[..point], &mantissa[point + 1..]),
        None => (mantissa, &mantissa[mantissa.len()..]),
    };
    if whole.len() + fraction.len() == 0 || !whole.iter().chain(fraction).all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut scale = match exponent {
        [] => 0,
        [_, rest @ ..] => signed_exponent(rest)?,
    };
    scale -= 4 * i64::try_from(fraction.len()).ok()?;
    let all: Vec<u8> = whole.iter().chain(fraction).copied().collect();
    let digits = BigUint::parse_bytes(&all, 16)?;
    Some((digits, Scale::Two(scale)))
}

/// An exponent: optional sign, at least one decimal digit; clamped (it only decides over- or
/// underflow beyond the clamp).
fn signed_exponent(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = digits
        .iter()
        .fold(0i64, |n, d| (n * 10 + i64::from(d - b'0')).min(EXPONENT_CLAMP));
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `INCRBYFLOAT` of `delta` on a key holding `start`, as text.
    fn incr(start: &str, delta: &str) -> Option<String> {
        let sum = LongDouble::parse(start.as_bytes())?.add(&LongDouble::parse(delta.as_bytes())?)?;
        Some(String::from_utf8(sum.to_text()?).unwrap())
    }

    /// Answers recorded from Redis 7.0.15 (`SET k start`, `INCRBYFLOAT k delta`).
    #[test]
    fn sums_are_the_ones_redis_prints() {
        for (start, delta, redis) in [
            ("10.5", "0.1", "10.6"),
            ("0.1", "0.2", "0.3"),
            ("10.6", "1e30", "1000000000000000000024696061952"),
            ("0", "5.0e3", "5000"),
            ("5000", "0x10", "5016"),
            ("0", "-0", "0"),
            ("0", "1e-30", "0"),
            ("0", "123456789012345678901234567890", "123456789012345678899921813504"),
            ("0.1", "0.7", "0.8"),
            ("0", "+1.5", "1.5"),
            ("0", "1.", "1"),
            ("0", ".5", "0.5"),
            ("0", "1E2", "100"),
            ("0", "1.0000000000000000001", "1"),
            ("3.0e3", "2", "3002"),
            ("-1", "0.5", "-0.5"),
            ("1", "-1e-20", "1"),
            ("0", "-1e-10", "-0.0000000001"),
            ("2.5", "-2.5", "0"),
            ("-0", "-0", "0"),
        ] {
            assert_eq!(incr(start, delta).as_deref(), Some(redis), "{start} + {delta}");
        }
    }

    #[test]
    fn what_is_not_a_number() {
        for text in [
            "", " 1", "1 ", "abc", "nan", "NaN", "1e", "1e+", ".", "-", "0x", "0x1p", "1e5000", "1e-5000", "1..2",
            "--1", "0xg",
        ] {
            assert_eq!(LongDouble::parse(text.as_bytes()), None, "{text:?}");
        }
        assert!(LongDouble::parse("9".repeat(MAX_TEXT + 1).as_bytes()).is_none());
        for text in ["inf", "-Infinity", "1e400", "0x1.8p1", "-0", "1e-4940"] {
            assert!(LongDouble::parse(text.as_bytes()).is_some(), "{text:?}");
        }
    }

    #[test]
    fn infinities_and_nan_are_not_results() {
        assert_eq!(incr("inf", "1"), None);
        let inf = LongDouble::parse(b"inf").unwrap();
        let minus_inf = LongDouble::parse(b"-inf").unwrap();
        assert_eq!(inf.add(&minus_inf), None);
        // The largest finite value doubled overflows.
        let big = LongDouble::parse(b"1e4932").unwrap();
        assert!(big.is_finite());
        assert!(!big.add(&big).unwrap().is_finite());
    }

    #[test]
    fn big_numbers_print_every_digit() {
        let text = incr("0", "1e400").unwrap();
        assert_eq!(text.len(), 401);
        assert!(text.starts_with("100000000000000000002818806839475865145864534336290520386259106935"));
        assert!(text.ends_with("734806343732497430221946880"));
    }
}
