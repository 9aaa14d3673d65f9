//! The bounded queue between the HTTP handlers (many producers, never blocking) and the
//! inference thread (the one consumer, blocking), with step 2 of `CONTRACT.md`
//! "How requests are served".
//!
//! A mutex + condvar rather than a channel: the contract counts "requests waiting" exactly
//! (the 503 threshold), the delayed wait needs "`max-batch-size` are queued", and the scheduler
//! chooses from everything waiting, not from the front; the lock is held only to push or to
//! choose, never during inference.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("queue full")]
    Full,
    /// The inference thread is gone; nothing would answer.
    #[error("queue closed")]
    Closed,
}

pub struct Queue<T> {
    state: Mutex<State<T>>,
    /// Signalled on every push and on close; only the inference thread waits on it.
    changed: Condvar,
    capacity: usize,
}

struct State<T> {
    items: VecDeque<T>,
    closed: bool,
}

impl<T> Queue<T> {
    /// At most `capacity` (≥ 1) items wait at once.
    pub fn new(capacity: usize) -> Self {
        let state = State { items: VecDeque::with_capacity(capacity), closed: false };
        Self { state: Mutex::new(state), changed: Condvar::new(), capacity }
    }

    /// Queues `item` at once, or refuses it when `capacity` items are already waiting.
    pub fn push(&self, item: T) -> Result<(), PushError> {
        let mut state = self.lock();
        if state.closed {
            return Err(PushError::Closed);
        }
        if state.items.len() >= self.capacity {
            return Err(PushError::Full);
        }
        state.items.push_back(item);
        drop(state);
        self.changed.notify_one();
        Ok(())
    }

    /// Step 2: waits for a first item; with `delay` > 0, then until `delay` has passed or
    /// `fill` items are queued; then `choose` moves what runs next from the waiting items
    /// (arrival order; it may also drop some) into `batch` (which the caller reuses), under
    /// the lock. Returns false, taking nothing, once the queue is closed and empty.
    pub fn take(
        &self,
        fill: usize,
        delay: Duration,
        batch: &mut Vec<T>,
        choose: impl FnOnce(&mut VecDeque<T>, &mut Vec<T>),
    ) -> bool {
        let mut state = self.lock();
        while state.items.is_empty() {
            if state.closed {
                return false;
            }
            state = self.changed.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        if !delay.is_zero() {
            let deadline = Instant::now() + delay;
            // After close no more items can come: take what is there at once.
            while state.items.len() < fill && !state.closed {
                let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())
                else {
                    break;
                };
                state = self.changed.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0;
            }
        }
        choose(&mut state.items, batch);
        true
    }

    /// Refuses further pushes and wakes the consumer; queued items can still be taken.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// Closes and drops everything still queued (the inference thread is gone: dropping a
    /// request's reply channel answers it with an error instead of leaving it waiting).
    pub fn abandon(&self) {
        let items = {
            let mut state = self.lock();
            state.closed = true;
            std::mem::take(&mut state.items)
        };
        drop(items);
    }

    /// A panic while holding the lock cannot leave the deque inconsistent (push/drain only).
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Takes up to `max` items, oldest first (the scheduler's choice is plan.rs's).
    fn take(queue: &Queue<u32>, max: usize, delay: Duration) -> Option<Vec<u32>> {
        let mut batch = Vec::new();
        let oldest = |items: &mut VecDeque<u32>, batch: &mut Vec<u32>| {
            let count = items.len().min(max);
            batch.extend(items.drain(..count));
        };
        queue.take(max, delay, &mut batch, oldest).then_some(batch)
    }

    #[test]
    fn a_full_queue_refuses_one_more_until_a_batch_is_taken() {
        let queue = Queue::new(2);
        assert_eq!((queue.push(1), queue.push(2)), (Ok(()), Ok(())));
        assert_eq!(queue.push(3), Err(PushError::Full));
        assert_eq!(take(&queue, 1, Duration::ZERO), Some(vec![1]));
        assert_eq!(queue.push(3), Ok(()));
    }

    #[test]
    fn greedy_take_is_oldest_first_up_to_the_maximum() {
        let queue = Queue::new(10);
        for i in 0..5 {
            queue.push(i).unwrap();
        }
        assert_eq!(take(&queue, 3, Duration::ZERO), Some(vec![0, 1, 2]));
        assert_eq!(take(&queue, 3, Duration::ZERO), Some(vec![3, 4]));
    }

    #[test]
    fn a_closed_queue_is_drained_then_ends() {
        let queue = Queue::new(10);
        queue.push(1).unwrap();
        queue.close();
        assert_eq!(queue.push(2), Err(PushError::Closed));
        assert_eq!(take(&queue, 8, Duration::from_secs(10)), Some(vec![1]), "no delay once closed");
        assert_eq!(take(&queue, 8, Duration::ZERO), None);
    }

    #[test]
    fn abandon_drops_what_is_queued() {
        let queue = Queue::new(10);
        queue.push(1).unwrap();
        queue.abandon();
        assert_eq!((queue.push(2), take(&queue, 8, Duration::ZERO)), (Err(PushError::Closed), None));
    }

    #[test]
    fn take_waits_for_the_first_item() {
        let queue = Arc::new(Queue::new(10));
        let producer = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                queue.push(7).unwrap();
            })
        };
        assert_eq!(take(&queue, 8, Duration::ZERO), Some(vec![7]));
        producer.join().unwrap();
    }

    #[test]
    fn a_delay_waits_for_a_full_batch_but_no_longer() {
        let queue = Arc::new(Queue::new(10));
        queue.push(1).unwrap();
        let producer = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                for i in 2..=3 {
                    std::thread::sleep(Duration::from_millis(10));
                    queue.push(i).unwrap();
                }
            })
        };
        let started = Instant::now();
        assert_eq!(take(&queue, 3, Duration::from_secs(10)), Some(vec![1, 2, 3]));
        assert!(started.elapsed() < Duration::from_secs(5), "returned as soon as the batch was full");
        producer.join().unwrap();

        queue.push(4).unwrap();
        let started = Instant::now();
        assert_eq!(take(&queue, 3, Duration::from_millis(30)), Some(vec![4]));
        assert!(started.elapsed() >= Duration::from_millis(30), "waited out the delay");
    }
}
