//! The queue's two ends: [`QueueBackend`], what the HTTP handlers await (enqueue without
//! blocking, then wait for the answer on a oneshot channel, holding no thread), and
//! [`InferenceThread`], the one OS thread that owns the [`BatchEngine`] and answers batches.

use std::future::Future;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use servekit::{Backend, BatchInfo, PredictError, Prediction};
use tokio::sync::oneshot;

use crate::config::BatchPolicy;
use crate::engine::{BatchEngine, Stopper};
use crate::error::BatchedError;
use crate::queue::{PushError, Queue};

type Reply = Result<Prediction, PredictError>;

/// One queued request.
pub struct Job {
    text: String,
    queued: Instant,
    reply: oneshot::Sender<Reply>,
}

/// The routes' [`Backend`]: queue the text, await its row's answer.
pub struct QueueBackend {
    queue: Arc<Queue<Job>>,
    max_queue: usize,
}

impl Backend for QueueBackend {
    /// Queued requests are answered after SIGTERM for up to 4 s; then [`InferenceThread::finish`]
    /// ends the run in progress, so the process exits within the contract's 5 s even when the
    /// queue holds more work than that (a full 8192-token run takes about 2.5 s on one core).
    const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(4);

    fn predict(&self, text: String) -> impl Future<Output = Reply> {
        let (reply, answer) = oneshot::channel();
        let pushed = self.queue.push(Job { text, queued: Instant::now(), reply });
        let max_queue = self.max_queue;
        async move {
            match pushed {
                Ok(()) => answer.await.unwrap_or_else(|_| Err(stopped())),
                Err(PushError::Full) => Err(PredictError::QueueFull { max_queue }),
                Err(PushError::Closed) => Err(stopped()),
            }
        }
    }
}

/// The answer of a request the inference thread dropped (it panicked): a 500, not a hang.
fn stopped() -> PredictError {
    PredictError::Backend("the inference thread stopped".into())
}

/// The thread owning the session, and the queue it drains.
pub struct InferenceThread {
    queue: Arc<Queue<Job>>,
    stopper: Stopper,
    handle: JoinHandle<()>,
}

impl InferenceThread {
    /// Starts the thread; the backend is the queue's other end, for the routes.
    pub fn spawn(engine: BatchEngine, policy: &BatchPolicy) -> Result<(Self, QueueBackend), BatchedError> {
        let queue = Arc::new(Queue::new(policy.max_queue));
        let backend = QueueBackend { queue: queue.clone(), max_queue: policy.max_queue };
        let (thread_queue, max, delay) = (queue.clone(), policy.max_batch_size, policy.max_batch_delay);
        let stopper = engine.stopper();
        let handle = std::thread::Builder::new()
            .name("inference".into())
            .spawn(move || answer_batches(engine, &thread_queue, max, delay))
            .map_err(BatchedError::Thread)?;
        Ok((Self { queue, stopper, handle }, backend))
    }

    /// Call once the HTTP server has stopped: every handler has been answered or dropped, so
    /// nobody waits for what is still queued or running. Ends the run in progress, lets the
    /// thread skip the rest, and waits for it.
    pub fn finish(self) -> Result<(), BatchedError> {
        self.queue.close();
        if let Err(error) = self.stopper.stop() {
            eprintln!("error: cannot stop the run in progress: {error}");
        }
        self.handle.join().map_err(|_| BatchedError::ThreadPanicked)
    }
}

/// Drops every queued request if the thread ends for any reason, a panic included, so that
/// no handler waits forever and later requests are refused at once.
struct AbandonOnExit<'q>(&'q Queue<Job>);

impl Drop for AbandonOnExit<'_> {
    fn drop(&mut self) {
        self.0.abandon();
    }
}

/// The inference thread's loop: steps 1–2 in [`Queue::take`], 3–6 in [`BatchEngine`].
fn answer_batches(mut engine: BatchEngine, queue: &Queue<Job>, max_batch_size: usize, delay: Duration) {
    let _abandon = AbandonOnExit(queue);
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch_size);
    while queue.take(max_batch_size, delay, &mut batch) {
        let taken = Instant::now();
        // A client that went away (disconnected, or its handler dropped after the shutdown
        // timeout) needs no answer: skipping it lets a stopping service drain a long queue fast.
        batch.retain(|job| !job.reply.is_closed());
        if !batch.is_empty() {
            answer_batch(&mut engine, &mut batch, taken);
        }
        batch.clear();
    }
}

/// Answers every job of `batch`, each sub-batch's as soon as it ran.
fn answer_batch(engine: &mut BatchEngine, batch: &mut Vec<Job>, taken: Instant) {
    let texts: Vec<&str> = batch.iter().map(|job| job.text.as_str()).collect();
    let tokenized = engine.tokenize(&texts);
    let mut jobs: Vec<Option<Job>> = batch.drain(..).map(Some).collect();
    let tokenized = match tokenized {
        Ok(tokenized) => tokenized,
        Err(error) => {
            jobs.into_iter().flatten().for_each(|job| drop(job.reply.send(Err(error.clone()))));
            return;
        }
    };
    for group in &tokenized.sub_batches {
        // Everyone gone (the server gave up waiting at shutdown): no run for nobody.
        if group.iter().all(|&i| jobs[i].as_ref().is_none_or(|job| job.reply.is_closed())) {
            continue;
        }
        let answers = engine.run_sub_batch(&tokenized, group);
        for (row, &i) in group.iter().enumerate() {
            let Some(job) = jobs[i].take() else { continue };
            let answer = match &answers {
                Ok(answers) => Ok(Prediction {
                    label: answers.rows[row].label.clone(),
                    score: answers.rows[row].score,
                    tokenization_us: tokenized.tokenization_us,
                    inference_us: answers.inference_us,
                    batch: Some(BatchInfo {
                        batch_size: group.len(),
                        queue_us: taken.saturating_duration_since(job.queued).as_micros() as u64,
                    }),
                }),
                Err(error) => Err(error.clone()),
            };
            // The client may have gone since it was taken: nobody to tell.
            drop(job.reply.send(answer));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    fn backend(capacity: usize) -> QueueBackend {
        QueueBackend { queue: Arc::new(Queue::new(capacity)), max_queue: capacity }
    }

    /// Polls once: the answers under test are ready without any runtime.
    fn poll_once(future: impl Future<Output = Reply>) -> Poll<Reply> {
        pin!(future).as_mut().poll(&mut Context::from_waker(Waker::noop()))
    }

    fn taken(backend: &QueueBackend) -> Job {
        let mut batch = Vec::new();
        assert!(backend.queue.take(1, Duration::ZERO, &mut batch));
        batch.pop().unwrap()
    }

    #[test]
    fn a_full_queue_refuses_at_once() {
        let backend = backend(1);
        let first = backend.predict("first".into());
        let Poll::Ready(Err(error)) = poll_once(backend.predict("second".into())) else {
            panic!("not refused")
        };
        assert!(matches!(error, PredictError::QueueFull { max_queue: 1 }), "{error:?}");
        drop(first);
    }

    #[test]
    fn a_queued_request_gets_the_answer_sent_for_it() {
        let backend = backend(4);
        let mut pending = pin!(backend.predict("text".into()));
        assert!(pending.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending());
        let job = taken(&backend);
        assert_eq!(job.text, "text");
        let answer = Prediction {
            label: "POSITIVE".into(),
            score: 0.9,
            tokenization_us: 1,
            inference_us: 2,
            batch: Some(BatchInfo { batch_size: 3, queue_us: 4 }),
        };
        job.reply.send(Ok(answer.clone())).unwrap();
        let Poll::Ready(Ok(got)) = pending.as_mut().poll(&mut Context::from_waker(Waker::noop())) else {
            panic!("no answer")
        };
        assert_eq!(got, answer);
    }

    #[test]
    fn a_dropped_request_or_a_closed_queue_is_an_error_not_a_hang() {
        let backend = backend(4);
        let mut pending = pin!(backend.predict("text".into()));
        assert!(pending.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending());
        backend.queue.abandon();
        let Poll::Ready(Err(PredictError::Backend(_))) =
            pending.as_mut().poll(&mut Context::from_waker(Waker::noop()))
        else {
            panic!("not an error")
        };
        assert!(matches!(
            poll_once(backend.predict("later".into())),
            Poll::Ready(Err(PredictError::Backend(_)))
        ));
    }
}
