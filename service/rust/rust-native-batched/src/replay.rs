//! `rust-native-batched replay`: a workload's texts through the service's own queue and
//! inference thread, in process (no HTTP), so its HTTP results can be held against what its
//! batching allows. The Python twin is `servekit.replay`; both follow its description.
//!
//! A pass: `clients` closed-loop clients (tasks on one current-thread runtime, as the
//! service's handlers run on one actix worker) each queue their next text of the list as soon
//! as their previous answer is in, through [`QueueBackend`], until every text has been answered
//! once. One client gives every text alone (the batch-1 limit); the load test's concurrency
//! gives the queue the service would see but for HTTP. With `--serve` it answers "C K" per
//! stdin line (K timed passes at C clients; "C K N": over the first N texts), as `bench
//! --serve` does.

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rust_native::bench::{answer, serve_request};
use servekit::Backend;
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

use crate::config::BatchPolicy;
use crate::error::{BatchedError, ReplayError};
use crate::server::QueueBackend;

pub const CSV_HEADER: &str = "clients,iteration,texts,total_us";

/// The texts file: a non-empty JSON list of non-empty strings, in sending order.
pub fn read_texts(path: &Path) -> Result<Vec<String>, ReplayError> {
    let error = |reason: String| ReplayError::Texts { path: path.to_path_buf(), reason };
    let bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    let texts: Vec<String> = serde_json::from_slice(&bytes).map_err(|e| error(e.to_string()))?;
    if texts.is_empty() || texts.iter().any(|text| text.trim().is_empty()) {
        return Err(error("not a non-empty list of non-empty strings".into()));
    }
    Ok(texts)
}

/// The clients' side: the backend the handlers would hold, the texts, a runtime to run on.
pub struct Replay {
    backend: Arc<QueueBackend>,
    texts: Arc<Vec<String>>,
    runtime: Runtime,
    max_queue: usize,
}

impl Replay {
    pub fn new(backend: QueueBackend, texts: Vec<String>, policy: &BatchPolicy) -> Result<Self, ReplayError> {
        let runtime = tokio::runtime::Builder::new_current_thread().build().map_err(ReplayError::Runtime)?;
        Ok(Self { backend: Arc::new(backend), texts: Arc::new(texts), runtime, max_queue: policy.max_queue })
    }

    /// One pass over the first `count` texts at `clients`; its wall time in µs. A refused or
    /// failed request fails the pass: a limit is only one if every text was answered.
    pub fn pass(&self, clients: usize, count: usize) -> Result<u128, BatchedError> {
        if clients > self.max_queue {
            return Err(ReplayError::Clients { clients, max_queue: self.max_queue }.into());
        }
        let count = count.min(self.texts.len());
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        self.runtime.block_on(async {
            let mut tasks = JoinSet::new();
            for _ in 0..clients.min(count) {
                let (backend, texts, next) = (self.backend.clone(), self.texts.clone(), next.clone());
                tasks.spawn(async move {
                    loop {
                        // The next text not yet sent, as the load generator's workers take it.
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= count {
                            return Ok::<(), servekit::PredictError>(());
                        }
                        backend.predict(texts[index].clone()).await?;
                    }
                });
            }
            while let Some(joined) = tasks.join_next().await {
                joined.map_err(|e| ReplayError::Task(e.to_string()))??;
            }
            Ok::<(), BatchedError>(())
        })?;
        Ok(started.elapsed().as_micros())
    }

    /// `passes` timed passes over the first `count` texts at `clients`, as CSV rows without
    /// the header.
    pub fn timed(&self, clients: usize, passes: usize, count: usize) -> Result<Vec<String>, BatchedError> {
        let count = count.min(self.texts.len());
        (0..passes)
            .map(|iteration| {
                let total_us = self.pass(clients, count)?;
                Ok(format!("{clients},{iteration},{count},{total_us}"))
            })
            .collect()
    }
}

/// The warm-up (one untimed pass over the first `warmup` texts at each client count), then
/// `iterations` timed passes per count with [`CSV_HEADER`], or with `input` (`--serve`) the
/// passes each "C K" line asks for.
pub fn run(
    replay: &Replay,
    clients: &[usize],
    warmup: usize,
    iterations: usize,
    input: Option<impl BufRead>,
    out: &mut impl Write,
) -> Result<(), BatchedError> {
    for &count in clients {
        replay.pass(count, warmup.max(1))?;
    }
    let Some(input) = input else {
        let mut rows = Vec::new();
        for &count in clients {
            rows.extend(replay.timed(count, iterations, usize::MAX)?);
        }
        return Ok(answer(out, Some(CSV_HEADER), &rows, false)?);
    };
    for line in input.lines() {
        let line = line.map_err(rust_native::error::NativeError::Stdin)?;
        // "C K", or "C K N" for passes over the first N texts (the harness's untimed ones).
        let fields = if line.split_whitespace().count() == 3 { 3 } else { 2 };
        let request = serve_request(&line, fields)?;
        let count = request.get(2).copied().unwrap_or(usize::MAX);
        answer(out, None, &replay.timed(request[0], request[1], count)?, true)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts_file(name: &str, content: &str) -> Result<Vec<String>, ReplayError> {
        let path = std::env::temp_dir().join(format!("replay-{}-{name}", std::process::id()));
        std::fs::write(&path, content).unwrap();
        let texts = read_texts(&path);
        std::fs::remove_file(&path).unwrap();
        texts
    }

    #[test]
    fn a_texts_file_is_a_list_of_texts() {
        assert_eq!(texts_file("ok", r#"["a b", "c"]"#).unwrap(), ["a b", "c"]);
        for bad in ["[]", r#"["a", " "]"#, r#"{"inputs": "a"}"#, "[1]", "not json"] {
            assert!(matches!(texts_file("bad", bad), Err(ReplayError::Texts { .. })), "{bad}");
        }
    }
}
