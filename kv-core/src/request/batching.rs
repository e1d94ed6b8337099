//! Forwards of many connections share messages to the leader.
//!
//! Each client connection's pipeline run would otherwise go to the leader as a message of its
//! own: fifty clients sending one write each cost fifty messages, fifty reads of a socket and
//! fifty tasks on the leader. Here at most [`MAX_SENDING`] messages are on their way at once;
//! runs that arrive meanwhile wait in a queue, and when a message comes back, whatever has
//! queued (up to [`MAX_COMBINED`] operations) leaves as the next one, its results split back
//! to the runs in order. Nothing waits for a timer: an idle node sends a run at once.
//!
//! The send is driven by a client's own task. When it is done it hands the queue to the first
//! waiting run, which sends the next message with its own run first ([`Answer::Drive`]); a
//! task that is cancelled hands over the same way (its [`Slot`] is dropped), and the runs it
//! carried learn that their answers are lost.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::oneshot;

use super::Results;
use crate::raft::KvNode;
use crate::wire::Op;

/// Most messages on their way to the leader at once.
const MAX_SENDING: usize = 2;
/// Most operations combined into one message (a longer run still goes whole, alone).
const MAX_COMBINED: usize = 4096;

/// The queue of runs waiting to be forwarded.
#[derive(Debug, Default)]
pub(super) struct ForwardQueue {
    state: Mutex<QueueState>,
}

#[derive(Debug, Default)]
struct QueueState {
    /// Messages on their way (each held by a [`Slot`]).
    sending: usize,
    waiting: VecDeque<Part>,
}

/// One run of a message.
#[derive(Debug)]
pub(super) struct Part {
    /// The leader it was meant for.
    pub(super) leader: u64,
    /// Where that leader is reached.
    pub(super) node: KvNode,
    /// The run.
    pub(super) ops: Vec<Op>,
    /// Where its results go; `None` for the run of the task that sends.
    answer: Option<oneshot::Sender<Answer>>,
}

/// What a waiting run is told.
#[derive(Debug)]
pub(super) enum Answer {
    /// Its results.
    Results(Results),
    /// Send these runs as the next message, this waiter's own first.
    Drive(Vec<Part>),
}

/// How a run goes.
pub(super) enum Entry<'a> {
    /// Send it now, holding a slot.
    Send(Slot<'a>, Vec<Part>),
    /// Wait for its results, or for its turn to send.
    Wait(oneshot::Receiver<Answer>),
}

/// A message slot, handed to the next waiting run when dropped.
pub(super) struct Slot<'a>(&'a ForwardQueue);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

impl ForwardQueue {
    fn state(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().expect("forward queue lock poisoned")
    }

    /// Enters a run meant for `leader`.
    pub(super) fn enter(&self, leader: u64, node: KvNode, ops: Vec<Op>) -> Entry<'_> {
        let mut state = self.state();
        let part = |answer| Part {
            leader,
            node,
            ops,
            answer,
        };
        if state.sending < MAX_SENDING {
            state.sending += 1;
            return Entry::Send(Slot(self), vec![part(None)]);
        }
        let (tx, rx) = oneshot::channel();
        state.waiting.push_back(part(Some(tx)));
        Entry::Wait(rx)
    }

    /// Takes the slot of a waiter told to drive (its slot was handed over, not freed).
    pub(super) fn inherit(&self) -> Slot<'_> {
        Slot(self)
    }

    /// Hands a freed slot to the first waiting run still waiting, with what has queued.
    fn release(&self) {
        let mut state = self.state();
        loop {
            let Some(mut first) = state.waiting.pop_front() else {
                state.sending -= 1;
                return;
            };
            let Some(answer) = first.answer.take() else {
                unreachable!("queued runs have an answer channel")
            };
            let mut total = first.ops.len();
            let mut parts = vec![first];
            while let Some(next) = state.waiting.front()
                && total + next.ops.len() <= MAX_COMBINED
            {
                total += next.ops.len();
                parts.extend(state.waiting.pop_front());
            }
            match answer.send(Answer::Drive(parts)) {
                Ok(()) => return,
                // That run's task is gone (its client gave up): its run is dropped unsent, and
                // the rest go back to the front of the queue for the next waiter.
                Err(Answer::Drive(mut parts)) => {
                    parts.remove(0);
                    for part in parts.into_iter().rev() {
                        state.waiting.push_front(part);
                    }
                }
                Err(Answer::Results(_)) => unreachable!("a drive was sent"),
            }
        }
    }
}

/// Sends `parts` as one message with `send`, to the leader the first run was meant for, then
/// gives each waiting run its results; returns the sender's own (the part without an answer
/// channel). Runs meant for different leaders (leadership moved while they waited) all go to
/// the first one's: a node that no longer leads refuses them before applying anything.
pub(super) async fn send_combined<F, Fut>(parts: Vec<Part>, send: F) -> Results
where
    F: FnOnce(u64, KvNode, Vec<Op>) -> Fut,
    Fut: Future<Output = Results>,
{
    let (leader, node) = (parts[0].leader, parts[0].node.clone());
    let total = parts.iter().map(|p| p.ops.len()).sum();
    let mut ops = Vec::with_capacity(total);
    let mut answers = Vec::with_capacity(parts.len());
    for part in parts {
        answers.push((part.ops.len(), part.answer));
        ops.extend(part.ops);
    }
    let mut results = send(leader, node, ops).await.into_iter();
    let mut own = Vec::new();
    for (len, answer) in answers {
        let part: Results = results.by_ref().take(len).collect();
        match answer {
            None => own = part,
            // A waiter that gave up has no use for its results.
            Some(tx) => drop(tx.send(Answer::Results(part))),
        }
    }
    own
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Response;

    fn op() -> Op {
        Op::ReadIndex
    }

    /// The output of a future that is ready at once.
    fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        match f
            .as_mut()
            .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
        {
            std::task::Poll::Ready(output) => output,
            std::task::Poll::Pending => panic!("the future is not ready"),
        }
    }

    #[test]
    fn runs_past_the_sending_limit_wait_and_leave_together_in_order() {
        let queue = ForwardQueue::default();
        let node = KvNode::default();
        let Entry::Send(first, _) = queue.enter(1, node.clone(), vec![op()]) else {
            panic!("the first run goes at once")
        };
        let Entry::Send(second, _) = queue.enter(1, node.clone(), vec![op()]) else {
            panic!("so does the second")
        };
        let Entry::Wait(mut a) = queue.enter(1, node.clone(), vec![op(), op()]) else {
            panic!("the third waits")
        };
        let Entry::Wait(b) = queue.enter(1, node.clone(), vec![op()]) else {
            panic!("the fourth waits")
        };
        drop(second);
        // The third drives the next message: its own run first, then the fourth's.
        let Ok(Answer::Drive(parts)) = a.try_recv() else {
            panic!("the third is told to drive")
        };
        assert_eq!(parts.iter().map(|p| p.ops.len()).collect::<Vec<_>>(), vec![2, 1]);
        let slot = queue.inherit();
        let mut sent = 0;
        let own = block_on(send_combined(parts, |_, _, ops| {
            sent = ops.len();
            async move { (0..ops.len()).map(|i| Ok(Response::Count(i as u64))).collect() }
        }));
        assert_eq!(sent, 3, "one message for both runs");
        assert_eq!(own, vec![Ok(Response::Count(0)), Ok(Response::Count(1))]);
        let Ok(Answer::Results(theirs)) = block_on(b) else {
            panic!("the fourth gets its results")
        };
        assert_eq!(theirs, vec![Ok(Response::Count(2))]);
        drop(slot);
        drop(first);
        assert_eq!(queue.state().sending, 0, "every slot is free again");
    }

    #[test]
    fn a_waiter_that_gave_up_is_skipped_and_the_next_one_drives() {
        let queue = ForwardQueue::default();
        let node = KvNode::default();
        let slots: Vec<_> = (0..MAX_SENDING)
            .map(|_| match queue.enter(1, node.clone(), vec![op()]) {
                Entry::Send(slot, _) => slot,
                Entry::Wait(_) => panic!("below the limit"),
            })
            .collect();
        let Entry::Wait(gone) = queue.enter(1, node.clone(), vec![op()]) else {
            panic!("waits")
        };
        let Entry::Wait(mut next) = queue.enter(1, node.clone(), vec![op(), op(), op()]) else {
            panic!("waits")
        };
        drop(gone);
        drop(slots);
        let Ok(Answer::Drive(parts)) = next.try_recv() else {
            panic!("the next waiter drives")
        };
        assert_eq!(parts.len(), 1, "the abandoned run is not sent");
        assert_eq!(parts[0].ops.len(), 3);
        assert_eq!(queue.state().sending, 1, "one slot went on to the driver");
        drop(queue.inherit());
        assert_eq!(queue.state().sending, 0);
    }
}
