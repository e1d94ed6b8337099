//! [`SimInstant`], a point in virtual time, and its arithmetic.
//!
//! A plain value that imports no sibling module: the executor keeps its clock and timer
//! deadlines in it, and the `time` module (sleeps, timeouts, `Instant::now`) reads that clock
//! through the executor (see the module layering in the `runtime` docs).

use std::fmt;
use std::ops::Add;
use std::ops::AddAssign;
use std::ops::Sub;
use std::ops::SubAssign;
use std::time::Duration;

/// A point in virtual time: nanoseconds since the simulation started.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimInstant(u64);

impl fmt::Debug for SimInstant {
    /// Shows the time since the start, e.g. `SimInstant(1.5s)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SimInstant").field(&self.since_start()).finish()
    }
}

impl SimInstant {
    /// The start of the simulation.
    pub const ZERO: SimInstant = SimInstant(0);
    /// The last representable instant (about 584 years in).
    pub const MAX: SimInstant = SimInstant(u64::MAX);

    /// The instant `nanos` nanoseconds after the start.
    pub const fn from_nanos(nanos: u64) -> Self {
        SimInstant(nanos)
    }

    /// Nanoseconds since the start.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time since the start.
    pub const fn since_start(self) -> Duration {
        Duration::from_nanos(self.0)
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Add<Duration> for SimInstant {
    type Output = SimInstant;

    /// Saturates at [`SimInstant::MAX`], which then means "never".
    fn add(self, d: Duration) -> SimInstant {
        SimInstant(self.0.saturating_add(nanos(d)))
    }
}

impl AddAssign<Duration> for SimInstant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Duration> for SimInstant {
    type Output = SimInstant;

    /// Saturates at [`SimInstant::ZERO`]: the clock starts at zero, so `now - lease` early in
    /// a run must not panic.
    fn sub(self, d: Duration) -> SimInstant {
        SimInstant(self.0.saturating_sub(nanos(d)))
    }
}

impl SubAssign<Duration> for SimInstant {
    fn sub_assign(&mut self, d: Duration) {
        *self = *self - d;
    }
}

impl Sub<SimInstant> for SimInstant {
    type Output = Duration;

    /// Saturates at zero, like `std::time::Instant`.
    fn sub(self, earlier: SimInstant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}
