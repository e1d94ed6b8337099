//! The wall clock, read in one place.

use std::time::SystemTime;

/// The wall clock in milliseconds since the Unix epoch (0 before it, saturating far after).
pub fn now_ms() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}
