//! Virtual time on the current executor's clock: `SimInstant::now`, sleeps and timeouts.

use std::future::Future;
use std::pin::Pin;
use std::task::Context;
use std::task::Poll;

use super::executor;
use super::executor::TimerKey;
use super::instant::SimInstant;

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
