//! Virtual time: instants, sleeps and timeouts on the current executor's clock.

use std::fmt;
use std::future::Future;
use std::ops::Add;
use std::ops::AddAssign;
use std::ops::Sub;
use std::ops::SubAssign;
use std::pin::Pin;
use std::task::Context;
use std::task::Poll;
use std::time::Duration;

use super::executor;
use super::executor::TimerKey;

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

impl openraft_rt::Instant for SimInstant {
    /// The current executor's virtual time.
    ///
    /// # Panics
    ///
    /// Outside of a running [`Executor`](super::Executor).
    #[track_caller]
    fn now() -> Self {
        executor::with_current(|s| s.now())
    }
}

/// Completes once the virtual clock reaches its deadline.
///
/// While pending it holds a timer in the executor that polled it; dropping it cancels the timer.
#[derive(Debug)]
pub struct Sleep {
    deadline: SimInstant,
    /// The executor id and key of the armed timer.
    timer: Option<(u64, TimerKey)>,
}

impl Sleep {
    pub(super) fn until(deadline: SimInstant) -> Self {
        Sleep { deadline, timer: None }
    }

    /// When this sleep completes.
    pub fn deadline(&self) -> SimInstant {
        self.deadline
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        executor::with_current(|s| {
            if s.now() >= this.deadline {
                if let Some((id, key)) = this.timer.take()
                    && id == s.id()
                {
                    s.cancel_timer(key);
                }
                return Poll::Ready(());
            }
            let key = this.timer.filter(|&(id, _)| id == s.id()).map(|(_, key)| key);
            this.timer = Some((s.id(), s.arm_timer(key, this.deadline, cx.waker())));
            Poll::Pending
        })
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some((id, key)) = self.timer.take() {
            executor::with_executor(id, |s| s.cancel_timer(key));
        }
    }
}

/// The error of a [`Timeout`] whose deadline passed first.
#[derive(Debug, thiserror::Error)]
#[error("deadline elapsed")]
pub struct TimeoutError(());

/// Resolves to the inner future's output, or to [`TimeoutError`] if its deadline comes first.
pub struct Timeout<F> {
    future: Pin<Box<F>>,
    sleep: Sleep,
}

impl<F> Timeout<F> {
    pub(super) fn new(sleep: Sleep, future: F) -> Self {
        Timeout {
            future: Box::pin(future),
            sleep,
        }
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, TimeoutError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(output) = self.future.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        Pin::new(&mut self.sleep).poll(cx).map(|()| Err(TimeoutError(())))
    }
}
