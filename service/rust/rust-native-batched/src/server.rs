//! The queue's two ends: [`QueueBackend`], what the HTTP handlers await (tokenize, enqueue
//! without blocking, then wait for the answer on a oneshot channel, holding no thread), and
//! [`InferenceThread`], the one OS thread that owns the [`BatchEngine`], chooses each run
//! ([`plan::next_run`]) and answers it.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use servekit::{Backend, BatchInfo, PredictError, Prediction, RunCounts};
use tokenizers::{Encoding, Tokenizer};
use tokio::sync::oneshot;

use crate::config::{BatchPolicy, Schedule};
use crate::counters::RunCounters;
use crate::engine::{self, BatchEngine, Encoded, Stopper};
use crate::error::BatchedError;
use crate::plan::{self, Limits, Waiting};
use crate::queue::{PushError, Queue};

type Reply = Result<Prediction, PredictError>;

/// One queued request, tokenized.
pub struct Job {
    encoded: Encoded,
    queued: Instant,
    reply: oneshot::Sender<Reply>,
}

/// The routes' [`Backend`]: tokenize the text, queue it, await its row's answer.
pub struct QueueBackend {
    queue: Arc<Queue<Job>>,
    tokenizer: Arc<Tokenizer>,
    max_queue: usize,
    counters: Arc<RunCounters>,
}

impl Backend for QueueBackend {
    /// Queued requests are answered after SIGTERM for up to 4 s; then [`InferenceThread::finish`]
    /// ends the run in progress, so the process exits within the contract's 5 s even when the
    /// queue holds more work than that (a full 8192-token run takes about 2.5 s on one core).
    const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(4);

    fn predict(&self, text: String) -> impl Future<Output = Reply> {
        let (reply, answer) = oneshot::channel();
        // Step 1 on the handler's thread: the scheduler needs every waiting text's length.
        let pushed = engine::encode(&self.tokenizer, &text)
            .map(|encoded| self.queue.push(Job { encoded, queued: Instant::now(), reply }));
        let max_queue = self.max_queue;
        async move {
            match pushed? {
                Ok(()) => answer.await.unwrap_or_else(|_| Err(stopped())),
                Err(PushError::Full) => Err(PredictError::QueueFull { max_queue }),
                Err(PushError::Closed) => Err(stopped()),
            }
        }
    }

    fn run_counts(&self) -> Option<RunCounts> {
        Some(self.counters.snapshot())
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
        let counters = Arc::new(RunCounters::default());
        let backend = QueueBackend {
            queue: queue.clone(),
            tokenizer: engine.tokenizer(),
            max_queue: policy.max_queue,
            counters: counters.clone(),
        };
        let (thread_queue, policy) = (queue.clone(), *policy);
        let stopper = engine.stopper();
        let handle = std::thread::Builder::new()
            .name("inference".into())
            .spawn(move || answer_requests(engine, &thread_queue, &policy, &counters))
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

/// The inference thread's loop: step 2 in [`Queue::take`], 3 in [`choose`], 4–5 in [`answer_run`].
fn answer_requests(
    mut engine: BatchEngine,
    queue: &Queue<Job>,
    policy: &BatchPolicy,
    counters: &RunCounters,
) {
    let _abandon = AbandonOnExit(queue);
    let (limits, delay, fill) = (policy.limits, policy.max_batch_delay, policy.limits.max_batch_size);
    let mut run: Vec<Job> = Vec::with_capacity(fill.min(1024));
    // The batch schedule's taken batch, whose runs are made before anything newer is looked at
    // (not counted as waiting: `max-queue`).
    let mut batch: VecDeque<Job> = VecDeque::new();
    let mut taken: Vec<Job> = Vec::new();
    loop {
        let took = match policy.schedule {
            Schedule::Continuous => {
                queue.take(fill, delay, &mut run, |waiting, run| choose(waiting, run, limits, true))
            }
            Schedule::Batch if batch.is_empty() => {
                let took = queue.take(fill, delay, &mut taken, |waiting, taken| oldest(waiting, taken, fill));
                batch.extend(taken.drain(..));
                took
            }
            Schedule::Batch => true,
        };
        if !took {
            return;
        }
        if policy.schedule == Schedule::Batch {
            // The whole batch runs before anything newer: its waits do not matter.
            choose(&mut batch, &mut run, limits, false);
        }
        if !run.is_empty() {
            answer_run(&mut engine, &mut run, Instant::now(), counters);
        }
        run.clear();
    }
}

/// The batch schedule's step 2: the oldest `count` requests whose client is still there.
fn oldest(waiting: &mut VecDeque<Job>, taken: &mut Vec<Job>, count: usize) {
    waiting.retain(|job| !job.reply.is_closed());
    let count = waiting.len().min(count);
    taken.extend(waiting.drain(..count));
}

/// Step 3 (under the queue's lock, or on the taken batch): drops the requests whose client went
/// away (disconnected, or its handler dropped after the shutdown timeout: nobody needs their
/// answer, and skipping them lets a stopping service drain a long queue fast), then moves the
/// next run into `run`, in row order; with `aging`, requests past `max-wait-ms` first.
fn choose(waiting: &mut VecDeque<Job>, run: &mut Vec<Job>, limits: Limits, aging: bool) {
    waiting.retain(|job| !job.reply.is_closed());
    let now = Instant::now();
    let view: Vec<Waiting> = waiting
        .iter()
        .map(|job| Waiting {
            length: job.encoded.encoding.len(),
            waited: if aging { now.saturating_duration_since(job.queued) } else { Duration::ZERO },
        })
        .collect();
    let chosen = plan::next_run(&view, limits);
    // The chosen leave in row order; the rest go back in arrival order.
    let mut slots: Vec<Option<Job>> = waiting.drain(..).map(Some).collect();
    run.extend(chosen.iter().filter_map(|&i| slots[i].take()));
    waiting.extend(slots.into_iter().flatten());
}

/// Steps 4–5: one `run` for `run`'s rows, counted if it succeeded, each request answered at once.
fn answer_run(engine: &mut BatchEngine, run: &mut Vec<Job>, taken: Instant, counters: &RunCounters) {
    let rows: Vec<&Encoding> = run.iter().map(|job| &job.encoded.encoding).collect();
    let answers = engine.run_rows(&rows);
    if answers.is_ok() {
        // Before the answers go out: a client holding them finds their run counted.
        counters.add(RunCounts::of_run(rows.iter().map(|encoding| encoding.len())));
    }
    let size = run.len();
    for (row, job) in run.drain(..).enumerate() {
        let answer = match &answers {
            Ok(answers) => Ok(Prediction {
                label: answers.rows[row].label.clone(),
                score: answers.rows[row].score,
                tokenization_us: job.encoded.tokenization_us,
                inference_us: answers.inference_us,
                batch: Some(BatchInfo {
                    batch_size: size,
                    queue_us: taken.saturating_duration_since(job.queued).as_micros() as u64,
                }),
            }),
            Err(error) => Err(error.clone()),
        };
        // The client may have gone since it was chosen: nobody to tell.
        drop(job.reply.send(answer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use tokenizers::models::wordlevel::WordLevel;
    use tokenizers::pre_tokenizers::whitespace::Whitespace;

    /// A tokenizer whose every word is one token (unknown): a text's length is its word count.
    fn words() -> Arc<Tokenizer> {
        let vocab = [("[UNK]".to_string(), 0)].into_iter().collect();
        let model = WordLevel::builder().vocab(vocab).unk_token("[UNK]".into()).build().unwrap();
        let mut tokenizer = Tokenizer::new(model);
        tokenizer.with_pre_tokenizer(Some(Whitespace {}));
        Arc::new(tokenizer)
    }

    fn backend(capacity: usize) -> QueueBackend {
        QueueBackend {
            queue: Arc::new(Queue::new(capacity)),
            tokenizer: words(),
            max_queue: capacity,
            counters: Arc::default(),
        }
    }

    /// Polls once: the answers under test are ready without any runtime.
    fn poll_once(future: impl Future<Output = Reply>) -> Poll<Reply> {
        pin!(future).as_mut().poll(&mut Context::from_waker(Waker::noop()))
    }

    const LIMITS: Limits = Limits {
        max_batch_size: 32,
        max_tokens: 8192,
        max_padding: 0.25,
        max_wait: Duration::from_millis(100),
    };

    fn taken(backend: &QueueBackend) -> Job {
        let mut batch = Vec::new();
        assert!(
            backend
                .queue
                .take(1, Duration::ZERO, &mut batch, |waiting, run| choose(waiting, run, LIMITS, true))
        );
        batch.pop().unwrap()
    }

    /// A queued job of `words` tokens that has waited `waited`, and its answer's receiver.
    fn job(tokenizer: &Tokenizer, words: usize, waited: Duration) -> (Job, oneshot::Receiver<Reply>) {
        let (reply, answer) = oneshot::channel();
        let encoded = engine::encode(tokenizer, &vec!["w"; words].join(" ")).unwrap();
        (Job { encoded, queued: Instant::now() - waited, reply }, answer)
    }

    fn lengths(jobs: &[Job]) -> Vec<usize> {
        jobs.iter().map(|job| job.encoded.encoding.len()).collect()
    }

    #[test]
    fn choose_runs_the_shortest_in_row_order_and_keeps_the_rest_in_arrival_order() {
        let tokenizer = words();
        let mut waiting = VecDeque::new();
        let mut answers = Vec::new();
        for words in [40, 2, 1, 2, 41] {
            let (job, answer) = job(&tokenizer, words, Duration::ZERO);
            waiting.push_back(job);
            answers.push(answer);
        }
        let mut run = Vec::new();
        choose(&mut waiting, &mut run, LIMITS, true);
        assert_eq!((lengths(&run), lengths(waiting.make_contiguous())), (vec![1, 2, 2], vec![40, 41]));
    }

    #[test]
    fn choose_runs_an_aged_request_first_and_drops_those_whose_client_left() {
        let tokenizer = words();
        let (gone, gone_answer) = job(&tokenizer, 1, Duration::from_secs(1));
        let (aged, _aged_answer) = job(&tokenizer, 30, Duration::from_millis(200));
        let (short, _short_answer) = job(&tokenizer, 2, Duration::ZERO);
        drop(gone_answer);
        let mut waiting = VecDeque::from([gone, aged, short]);
        let mut run = Vec::new();
        choose(&mut waiting, &mut run, LIMITS, true);
        assert_eq!((lengths(&run), lengths(waiting.make_contiguous())), (vec![30], vec![2]));
    }

    #[test]
    fn the_batch_schedule_takes_the_oldest_whose_client_is_there() {
        let tokenizer = words();
        let mut waiting = VecDeque::new();
        let mut answers = Vec::new();
        for words in [5, 1, 9, 2] {
            let (job, answer) = job(&tokenizer, words, Duration::ZERO);
            waiting.push_back(job);
            answers.push(answer);
        }
        drop(answers.remove(1)); // the 1-word request's client left
        let mut taken = Vec::new();
        oldest(&mut waiting, &mut taken, 2);
        assert_eq!((lengths(&taken), lengths(waiting.make_contiguous())), (vec![5, 9], vec![2]));
    }

    #[test]
    fn a_request_is_tokenized_when_queued() {
        let backend = backend(4);
        let pending = backend.predict("three short words".into());
        let job = taken(&backend);
        assert_eq!(job.encoded.encoding.len(), 3);
        drop(pending);
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
        assert_eq!(job.encoded.encoding.len(), 1);
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
