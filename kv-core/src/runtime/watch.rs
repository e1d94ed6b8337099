//! A deterministic watch channel.
//!
//! tokio's `watch` spreads receivers over eight `Notify` slots chosen at random whenever tokio's
//! `rt` feature is compiled in (as it is in any build that also contains kv-node), which makes
//! the order in which receivers wake differ from process to process. This channel wakes waiting
//! receivers in the order they started waiting, so a seed replays the same run everywhere.

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::MutexGuard;
use std::sync::RwLock;
use std::sync::RwLockReadGuard;
use std::task::Poll;
use std::task::Waker;

use openraft_rt::OptionalSend;
use openraft_rt::OptionalSync;
use openraft_rt::watch;

/// Watch channels: one latest value, observed by many receivers.
pub struct SimWatch;

struct State {
    version: u64,
    senders: usize,
    receivers: usize,
    /// Wakers of receivers waiting in `changed`, in the order they began waiting.
    waiting: Vec<Waker>,
}

struct Shared<T> {
    value: RwLock<T>,
    state: Mutex<State>,
}

impl<T> Shared<T> {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("watch state lock poisoned")
    }

    fn read(&self) -> RwLockReadGuard<'_, T> {
        self.value.read().expect("watch value lock poisoned")
    }

    /// Bumps the version and wakes every waiting receiver, oldest first.
    fn notify(&self) {
        let waiting = {
            let mut state = self.state();
            state.version += 1;
            std::mem::take(&mut state.waiting)
        };
        waiting.into_iter().for_each(Waker::wake);
    }
}

/// Sending half of a [`SimWatch`] channel.
pub struct SimWatchSender<T>(Arc<Shared<T>>);

/// Receiving half of a [`SimWatch`] channel.
pub struct SimWatchReceiver<T> {
    shared: Arc<Shared<T>>,
    seen: u64,
}

impl<T> Clone for SimWatchSender<T> {
    fn clone(&self) -> Self {
        self.0.state().senders += 1;
        SimWatchSender(self.0.clone())
    }
}

impl<T> Drop for SimWatchSender<T> {
    fn drop(&mut self) {
        let waiting = {
            let mut state = self.0.state();
            state.senders -= 1;
            if state.senders > 0 {
                return;
            }
            std::mem::take(&mut state.waiting)
        };
        // The last sender is gone: waiting receivers learn that the channel closed.
        waiting.into_iter().for_each(Waker::wake);
    }
}

impl<T> Clone for SimWatchReceiver<T> {
    fn clone(&self) -> Self {
        self.shared.state().receivers += 1;
        SimWatchReceiver {
            shared: self.shared.clone(),
            seen: self.seen,
        }
    }
}

impl<T> Drop for SimWatchReceiver<T> {
    fn drop(&mut self) {
        self.shared.state().receivers -= 1;
    }
}

impl watch::Watch for SimWatch {
    type Sender<T: OptionalSend + OptionalSync> = SimWatchSender<T>;
    type Receiver<T: OptionalSend + OptionalSync> = SimWatchReceiver<T>;
    type Ref<'a, T: OptionalSend + 'a> = RwLockReadGuard<'a, T>;

    fn channel<T: OptionalSend + OptionalSync>(init: T) -> (SimWatchSender<T>, SimWatchReceiver<T>) {
        let shared = Arc::new(Shared {
            value: RwLock::new(init),
            state: Mutex::new(State {
                version: 0,
                senders: 1,
                receivers: 1,
                waiting: Vec::new(),
            }),
        });
        (SimWatchSender(shared.clone()), SimWatchReceiver { shared, seen: 0 })
    }
}

impl<T: OptionalSend + OptionalSync> watch::WatchSender<SimWatch, T> for SimWatchSender<T> {
    fn send(&self, value: T) -> Result<(), watch::SendError<T>> {
        if self.0.state().receivers == 0 {
            return Err(watch::SendError(value));
        }
        *self.0.value.write().expect("watch value lock poisoned") = value;
        self.0.notify();
        Ok(())
    }

    fn send_if_modified<F>(&self, modify: F) -> bool
    where
        F: FnOnce(&mut T) -> bool,
    {
        let modified = modify(&mut self.0.value.write().expect("watch value lock poisoned"));
        if modified {
            self.0.notify();
        }
        modified
    }

    fn borrow_watched(&self) -> RwLockReadGuard<'_, T> {
        self.0.read()
    }

    fn subscribe(&self) -> SimWatchReceiver<T> {
        let mut state = self.0.state();
        state.receivers += 1;
        SimWatchReceiver {
            shared: self.0.clone(),
            seen: state.version,
        }
    }
}

impl<T: OptionalSend + OptionalSync> watch::WatchReceiver<SimWatch, T> for SimWatchReceiver<T> {
    async fn changed(&mut self) -> Result<(), watch::RecvError> {
        poll_fn(|cx| {
            let mut state = self.shared.state();
            if state.version != self.seen {
                self.seen = state.version;
                Poll::Ready(Ok(()))
            } else if state.senders == 0 {
                Poll::Ready(Err(watch::RecvError(())))
            } else {
                if !state.waiting.iter().any(|w| w.will_wake(cx.waker())) {
                    state.waiting.push(cx.waker().clone());
                }
                Poll::Pending
            }
        })
        .await
    }

    fn borrow_watched(&self) -> RwLockReadGuard<'_, T> {
        self.shared.read()
    }

    fn borrow_and_update(&mut self) -> RwLockReadGuard<'_, T> {
        self.seen = self.shared.state().version;
        self.shared.read()
    }
}
