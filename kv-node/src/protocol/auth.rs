//! `AUTH` and `HELLO ... AUTH`: checking a password so that neither timing nor guessing gives
//! it away.
//!
//! - The comparison takes the same time whatever the bytes ([`constant_time_eq`]): the time
//!   depends on the lengths only, and the length of the password is not the secret.
//! - The only user is Redis's `default`: `AUTH pass`, `AUTH default pass` and
//!   `HELLO 3 AUTH default pass` work; any other user name is `WRONGPASS`, exactly as a
//!   Redis server without ACL users answers.
//! - A connection's failures are counted ([`Attempts`]): each failure after the first is
//!   answered only after a pause that doubles (100 ms, 200 ms, ... up to [`MAX_PAUSE`]), and
//!   the [`MAX_FAILURES`]th closes the connection. At that rate one connection tries fewer
//!   than a password a second; the connection limit of the client port bounds how many try
//!   at once.
//!
//! Forwarded operations on the Raft port cannot side-step this: that port serves only
//! members that proved the cluster secret or a member certificate (`transport::handshake`).

use std::time::Duration;

/// Failures after which a connection is closed.
pub const MAX_FAILURES: u32 = 5;
/// Longest pause before answering a failed attempt.
pub const MAX_PAUSE: Duration = Duration::from_secs(2);
/// The only user name: Redis's default user.
pub const DEFAULT_USER: &[u8] = b"default";

/// Compares two byte strings in time that depends on their lengths only.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    // The optimizer may not turn the loop into an early exit: the result is read through a
    // black box.
    std::hint::black_box(diff) == 0
}

/// The outcome of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Right user and password.
    Accepted,
    /// Wrong; answer `WRONGPASS` after `pause`.
    Refused {
        /// How long to wait before answering.
        pause: Duration,
        /// This was the last attempt the connection gets: close it after answering.
        close: bool,
    },
}

/// A connection's authentication attempts.
#[derive(Debug, Default)]
pub struct Attempts {
    failures: u32,
}

impl Attempts {
    /// Checks `given` (for `user`, `None` meaning the default user) against `password`.
    pub fn check(&mut self, password: &str, user: Option<&[u8]>, given: &[u8]) -> Verdict {
        let user_ok = user.is_none_or(|u| constant_time_eq(u, DEFAULT_USER));
        // Both comparisons run, whichever fails.
        let password_ok = constant_time_eq(password.as_bytes(), given);
        if user_ok && password_ok {
            return Verdict::Accepted;
        }
        self.failures = self.failures.saturating_add(1);
        let pause = match self.failures {
            1 => Duration::ZERO,
            n => (Duration::from_millis(100) * 2u32.saturating_pow(n - 2)).min(MAX_PAUSE),
        };
        Verdict::Refused {
            pause,
            close: self.failures >= MAX_FAILURES,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equality_is_exact() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret\0"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn failures_slow_down_then_close() {
        let mut attempts = Attempts::default();
        let pauses: Vec<_> = (0..MAX_FAILURES).map(|_| attempts.check("pw", None, b"nope")).collect();
        assert_eq!(
            pauses,
            [0, 100, 200, 400, 800]
                .iter()
                .enumerate()
                .map(|(i, ms)| Verdict::Refused {
                    pause: Duration::from_millis(*ms),
                    close: i + 1 == MAX_FAILURES as usize,
                })
                .collect::<Vec<_>>()
        );
        assert_eq!(attempts.check("pw", Some(b"default"), b"pw"), Verdict::Accepted);
        assert!(matches!(
            Attempts::default().check("pw", Some(b"admin"), b"pw"),
            Verdict::Refused { .. }
        ));
    }
}
