//! Virtual time in milliseconds, the unit the bindings speak, to and from the simulator's
//! whole nanoseconds.
//!
//! Python and JavaScript pass times as float milliseconds; the simulator's clock counts whole
//! nanoseconds, and a trace hash depends on the exact nanosecond every action happens at. This
//! module is the one conversion both bindings use, so a scripted Python run, a web-demo link
//! replayed in the browser, and the native `kv-sim` and `kv-replay` (which reads a link's
//! decimal times exactly, without floats) put every action at the same nanosecond:
//!
//! ```text
//! into the simulator   duration_from_ms(ms)  = round(ms * 1e6) ns, nearest (ties away from 0)
//! out of it            ms_from_nanos(ns)     = ns / 1e6, the f64 nearest the exact value
//! ```
//!
//! # Why this rounding
//!
//! A decimal time is rarely a float exactly: `1.000001 * 1e6` is `1000000.9999999999`, so
//! truncating would land a nanosecond short of the time the user wrote and the link records.
//! Rounding to the nearest lands on it for every time with at most six decimals below 2^50 ns
//! (about 13 days), far beyond any run a link replays, and makes
//! `duration_from_ms(ms_from_nanos(ns))` give back `ns` over that range (both are tested below).
//!
//! Ties go away from zero, as the Python binding always rounded (its scripted runs' trace
//! hashes are pinned by tests). The wasm binding used `Duration::from_secs_f64(ms / 1000.0)`,
//! which rounds the quotient instead of `ms * 1e6`: the two agree on every six-decimal time but
//! not on all floats (about 1 in 40,000 random float times landed a nanosecond apart).
//!
//! # Limits
//!
//! NaN, negative and infinite times, and times of 2^64 ns (about 584 years) or more, are
//! refused with a [`MillisError`]: each binding maps it to its invalid-argument error
//! (`quorumkv.InvalidArgumentError`, a JS `Error`).

use std::time::Duration;

/// 2^64 nanoseconds: the first time the simulator's clock cannot hold.
const END_OF_TIME_NS: f64 = 18_446_744_073_709_551_616.0;

/// A number of milliseconds that is not a time the simulator can run for.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum MillisError {
    /// NaN, or below zero (including negative infinity).
    #[error("time must be a non-negative number of milliseconds, not {0}")]
    NotNonNegative(f64),
    /// 2^64 nanoseconds or more (including infinity).
    #[error("time must be less than 2^64 ns (about 584 years) of virtual time, not {0} ms")]
    TooLarge(f64),
}

/// `ms` milliseconds as a duration, rounded to the nearest nanosecond (see the module docs).
pub fn duration_from_ms(ms: f64) -> Result<Duration, MillisError> {
    if ms.is_nan() || ms < 0.0 {
        return Err(MillisError::NotNonNegative(ms));
    }
    let ns = (ms * 1e6).round();
    if ns >= END_OF_TIME_NS {
        return Err(MillisError::TooLarge(ms));
    }
    // In range and integral: the cast is exact.
    Ok(Duration::from_nanos(ns as u64))
}

/// `ns` nanoseconds in milliseconds: the f64 nearest the exact value.
pub fn ms_from_nanos(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// [`ms_from_nanos`] of `d` (saturating at 2^64 - 1 ns, past the simulator's last instant).
pub fn ms_from_duration(d: Duration) -> f64 {
    ms_from_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use rand::Rng;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    use super::*;

    /// Up to 2^50 ns, the range the module docs promise exact round trips over.
    const PROMISED_NS: u64 = 1 << 50;

    fn ns(ms: f64) -> u64 {
        u64::try_from(duration_from_ms(ms).unwrap().as_nanos()).unwrap()
    }

    #[test]
    fn whole_and_decimal_milliseconds_land_on_the_nanosecond_they_name() {
        let cases = [
            (0.0, 0),
            (-0.0, 0),
            (1.0, 1_000_000),
            (0.000001, 1),
            (0.1, 100_000),
            (1.000001, 1_000_001),
            (37.5, 37_500_000),
            (812.5, 812_500_000),
            (1830.123456, 1_830_123_456),
            (600_000.0, 600_000_000_000),
        ];
        for (ms, want) in cases {
            assert_eq!(ns(ms), want, "{ms} ms");
        }
    }

    #[test]
    fn rounds_to_the_nearest_nanosecond() {
        assert_eq!(ns(0.0000004), 0);
        assert_eq!(ns(0.0000006), 1);
        assert_eq!(ns(2.0000014), 2_000_001);
        assert_eq!(ns(2.0000016), 2_000_002);
    }

    /// The link format writes times as decimals with up to six places, which kv-replay reads
    /// exactly; the bindings read the same text as a float and must reach the same nanosecond.
    #[test]
    fn six_decimal_times_parsed_as_floats_agree_with_exact_decimal_parsing() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        for _ in 0..200_000 {
            let want = rng.next_u64() % PROMISED_NS;
            let text = format!("{}.{:06}", want / 1_000_000, want % 1_000_000);
            let ms: f64 = text.parse().unwrap();
            assert_eq!(ns(ms), want, "{text} ms");
        }
    }

    #[test]
    fn nanoseconds_round_trip_through_milliseconds() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(8);
        let edges = [0, 1, 999_999, 1_000_001, PROMISED_NS - 1];
        let random = (0..200_000).map(|_| rng.next_u64() % PROMISED_NS);
        for want in edges.into_iter().chain(random) {
            assert_eq!(ns(ms_from_nanos(want)), want, "{want} ns");
            assert_eq!(ms_from_duration(Duration::from_nanos(want)), ms_from_nanos(want));
        }
        assert_eq!(ms_from_nanos(1_500_000), 1.5);
        assert_eq!(ms_from_duration(Duration::MAX), ms_from_nanos(u64::MAX));
    }

    #[test]
    fn refuses_what_is_not_a_time_the_simulator_can_reach() {
        for ms in [f64::NAN, -1.0, -0.000001, f64::NEG_INFINITY] {
            assert!(
                matches!(duration_from_ms(ms), Err(MillisError::NotNonNegative(_))),
                "{ms}"
            );
        }
        for ms in [f64::INFINITY, f64::MAX, END_OF_TIME_NS / 1e6] {
            assert!(matches!(duration_from_ms(ms), Err(MillisError::TooLarge(_))), "{ms}");
        }
        assert_eq!(
            ns(18_000_000_000_000.0),
            18_000_000_000_000_000_000,
            "about 570 years is a time"
        );
    }

    #[test]
    fn errors_say_what_was_wrong() {
        let message = |ms: f64| duration_from_ms(ms).unwrap_err().to_string();
        assert_eq!(
            message(-1.5),
            "time must be a non-negative number of milliseconds, not -1.5"
        );
        assert_eq!(
            message(f64::NAN),
            "time must be a non-negative number of milliseconds, not NaN"
        );
        assert_eq!(
            message(f64::INFINITY),
            "time must be less than 2^64 ns (about 584 years) of virtual time, not inf ms"
        );
    }
}
