//! One request in flight, shared by every caller that asked before it was sent.
//!
//! A linearizable read needs proof, obtained after the read arrived, that the index it is
//! served at is recent: the leader's read-index barrier (a heartbeat round to a quorum) or,
//! on a follower, a read-index request to the leader. Reads arriving while such a request is
//! in flight cannot use it (it may predate a write acknowledged before they arrived), but they
//! can all use the next one: they queue, and when the request in flight comes back, the first
//! of them sends one for the whole queue. Fifty connections reading at once then cost one or
//! two requests instead of fifty.
//!
//! The request is driven by a caller's own task. A caller that gives up while driving (its
//! future is dropped) hands the queue on all the same ([`Driving`]), so a queue never waits on
//! nobody, and the callers it had taken along ask again: one client's cancelled read never
//! fails another's.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Mutex;

use tokio::sync::oneshot;

/// Requests for a result of type `T`, shared as the module docs say.
#[derive(Debug)]
pub(super) struct Share<T> {
    state: Mutex<ShareState<T>>,
}

impl<T> Default for Share<T> {
    fn default() -> Self {
        Share {
            state: Mutex::new(ShareState {
                in_flight: false,
                queue: VecDeque::new(),
            }),
        }
    }
}

#[derive(Debug)]
struct ShareState<T> {
    /// A request is in flight (its driver hands the queue on when it is done).
    in_flight: bool,
    /// Callers waiting for the next request.
    queue: VecDeque<oneshot::Sender<Turn<T>>>,
}

/// What a waiting caller is told.
#[derive(Debug)]
enum Turn<T> {
    /// The result of the request sent for it.
    Done(T),
    /// Send the next request, for everyone queued.
    Drive,
}

impl<T: Clone> Share<T> {
    /// The result of a request (`send`) sent after this call began, shared with every caller
    /// that asked meanwhile. A caller whose request was in the hands of a driver that gave up
    /// asks again: one client's cancelled read never fails another's.
    pub(super) async fn get<F: Future<Output = T>>(&self, send: impl FnOnce() -> F) -> T {
        loop {
            let (tx, rx) = oneshot::channel();
            {
                let mut state = self.state.lock().expect("share lock poisoned");
                if !state.in_flight {
                    state.in_flight = true;
                    break;
                }
                state.queue.push_back(tx);
            }
            match rx.await {
                Ok(Turn::Done(result)) => return result,
                Ok(Turn::Drive) => break,
                // The driver that took this caller along was dropped: ask again.
                Err(_) => continue,
            }
        }
        // This caller sends a request for itself and everyone queued so far.
        let _driving = Driving(self);
        let batch = std::mem::take(&mut self.state.lock().expect("share lock poisoned").queue);
        let result = send().await;
        for waiter in batch {
            let _ = waiter.send(Turn::Done(result.clone()));
        }
        // Dropping `_driving` hands the next request to the first caller queued meanwhile.
        result
    }
}

impl<T> Share<T> {
    /// Passes the next request to the first caller still waiting, or notes that none is in
    /// flight.
    fn hand_off(&self) {
        let mut state = self.state.lock().expect("share lock poisoned");
        loop {
            let Some(next) = state.queue.pop_front() else {
                state.in_flight = false;
                return;
            };
            if next.send(Turn::Drive).is_ok() {
                return;
            }
        }
    }
}

/// Held by the caller that drives a request: hands off when it is done, or dropped (a client
/// that gave up).
struct Driving<'a, T>(&'a Share<T>);

impl<T> Drop for Driving<'_, T> {
    fn drop(&mut self) {
        self.0.hand_off();
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::pin::Pin;
    use std::task::Context;
    use std::task::Poll;
    use std::task::Waker;

    use super::*;

    fn poll<F: Future>(f: &mut Pin<Box<F>>) -> Poll<F::Output> {
        f.as_mut().poll(&mut Context::from_waker(Waker::noop()))
    }

    /// Callers that ask while a request is in flight share the next one; a caller that asked
    /// before a request was sent never gets that request's result.
    #[test]
    fn callers_during_a_request_share_the_next_one() {
        let share = Share::<u32>::default();
        let sent = Cell::new(0);
        let mut releases = Vec::new();
        let mut answers = VecDeque::new();
        for n in 1..=2 {
            let (tx, rx) = oneshot::channel::<u32>();
            releases.push((tx, n));
            answers.push_back(rx);
        }
        let answers = std::cell::RefCell::new(answers);
        let get = || {
            share.get(|| {
                sent.set(sent.get() + 1);
                let answer = answers.borrow_mut().pop_front().expect("two requests at most");
                async move { answer.await.expect("released") }
            })
        };
        let mut first = Box::pin(get());
        assert!(poll(&mut first).is_pending());
        assert_eq!(sent.get(), 1);
        let mut later: Vec<_> = (0..5).map(|_| Box::pin(get())).collect();
        for f in &mut later {
            assert!(poll(f).is_pending());
        }
        assert_eq!(sent.get(), 1, "queued behind the request in flight");
        let mut releases = releases.into_iter();
        let (tx, n) = releases.next().unwrap();
        tx.send(n).unwrap();
        assert_eq!(poll(&mut first), Poll::Ready(1));
        for f in &mut later {
            assert!(poll(f).is_pending());
        }
        assert_eq!(sent.get(), 2, "one more request, for all five");
        let (tx, n) = releases.next().unwrap();
        tx.send(n).unwrap();
        for f in &mut later {
            assert_eq!(poll(f), Poll::Ready(2));
        }
        assert!(!share.state.lock().unwrap().in_flight);
    }

    /// A driver that gives up hands the queue on: the caller queued behind it sends a request
    /// of its own.
    #[test]
    fn a_driver_that_gives_up_hands_the_queue_on() {
        let share = Share::<u32>::default();
        let mut stuck = Box::pin(share.get(std::future::pending::<u32>));
        assert!(poll(&mut stuck).is_pending());
        let mut waiting = Box::pin(share.get(|| async { 7 }));
        assert!(poll(&mut waiting).is_pending());
        drop(stuck);
        assert_eq!(poll(&mut waiting), Poll::Ready(7));
    }

    /// The callers a driver took along when it sent its request ask again when it gives up,
    /// rather than failing with it.
    #[test]
    fn callers_taken_along_by_a_driver_that_gives_up_ask_again() {
        let share = Share::<u32>::default();
        let (release_first, first_answer) = oneshot::channel::<u32>();
        let mut first = Box::pin(share.get(|| async { first_answer.await.unwrap() }));
        assert!(poll(&mut first).is_pending());
        // Queued while the first request is in flight: the second drives the next one...
        let mut second = Box::pin(share.get(std::future::pending::<u32>));
        assert!(poll(&mut second).is_pending());
        let mut third = Box::pin(share.get(|| async { 9 }));
        assert!(poll(&mut third).is_pending());
        release_first.send(1).unwrap();
        assert_eq!(poll(&mut first), Poll::Ready(1));
        // ...for itself and the third, and never finishes.
        assert!(poll(&mut second).is_pending());
        assert!(poll(&mut third).is_pending());
        drop(second);
        assert_eq!(poll(&mut third), Poll::Ready(9), "the third sends its own request");
        assert!(!share.state.lock().unwrap().in_flight);
    }
}
