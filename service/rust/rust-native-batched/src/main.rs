//! `rust-native-batched`: the contract served with tokenizers + ONNX Runtime, batching
//! requests dynamically (`CONTRACT.md` "Batched services").
//!
//! - `rust-native-batched [--model-dir D] [--ort-lib L] [--max-batch-size N] ...`: the service.
//! - `rust-native-batched bench ... --batch-sizes 1,2,4`: the batch path's timings as CSV.
//! - `rust-native-batched replay ... --texts-file F --clients 1,50`: a workload through the
//!   queue and inference thread in process, its passes' timings as CSV.
//!
//! Modules: [`config`] (batching flags), [`queue`] (step 2), [`plan`] (step 3: which requests
//! run next), [`engine`] (steps 1, 4–5), [`server`] (the handlers' backend and the inference thread),
//! [`counters`] (what the runs held, `GET /stats`), [`bench`], [`replay`] (the in-process
//! tools), [`error`].

mod bench;
mod config;
mod counters;
mod engine;
mod error;
mod plan;
mod queue;
mod replay;
mod server;

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{Args, Parser, Subcommand};
use rust_native::load::LoadedModel;
use rust_native::runtime;
use servekit::{ModelDir, ServiceArgs};

use crate::config::BatchArgs;
use crate::engine::BatchEngine;
use crate::error::BatchedError;
use crate::server::InferenceThread;

/// `rust-native-batched [flags]`: the HTTP service.
#[derive(Parser)]
#[command(
    name = "rust-native-batched",
    version,
    about = "The HTTP contract served with tokenizers + ONNX Runtime, batching requests dynamically.",
    after_help = "Tool: `rust-native-batched bench --help`."
)]
struct ServeCli {
    #[command(flatten)]
    service: ServiceArgs,
    /// Absolute path of libonnxruntime.so.* (the venv's onnxruntime/capi/).
    #[arg(long, env = "ORT_DYLIB_PATH", value_name = "PATH")]
    ort_lib: Option<PathBuf>,
    #[command(flatten)]
    batch: BatchArgs,
}

/// `rust-native-batched bench ...`: the in-process tool.
#[derive(Parser)]
#[command(name = "rust-native-batched", version)]
struct ToolCli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Time the batch path (tokenize b texts, pad, one run, softmax per row); CSV on stdout.
    Bench(BatchBenchArgs),
    /// Time passes of a workload's texts through the queue and inference thread; CSV on stdout.
    Replay(ReplayArgs),
}

#[derive(Args)]
struct ReplayArgs {
    #[arg(long, env = "MODEL_DIR", value_name = "DIR")]
    model_dir: PathBuf,
    #[arg(long, env = "ORT_DYLIB_PATH", value_name = "PATH")]
    ort_lib: Option<PathBuf>,
    #[arg(long, env = "ORT_THREADS", default_value = "1", value_name = "N")]
    threads: NonZeroUsize,
    /// A JSON list of the texts, in sending order.
    #[arg(long, value_name = "FILE")]
    texts_file: PathBuf,
    /// Closed-loop clients of each timed pass, in turn.
    #[arg(long, value_delimiter = ',', default_value = "1,50", value_name = "C,...")]
    clients: Vec<NonZeroUsize>,
    /// Texts of the untimed pass at each client count.
    #[arg(long, default_value_t = 50, value_name = "W")]
    warmup: usize,
    /// Timed passes per client count.
    #[arg(long, default_value_t = 3, value_name = "K")]
    iterations: usize,
    /// Stay up: read "C K" per stdin line, not --iterations.
    #[arg(long)]
    serve: bool,
    #[command(flatten)]
    batch: BatchArgs,
}

#[derive(Args)]
struct BatchBenchArgs {
    #[command(flatten)]
    common: rust_native::bench::BenchArgs,
    /// Batch sizes, each timed in turn: b copies of the payload text per call.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16,32", value_name = "B,...")]
    batch_sizes: Vec<NonZeroUsize>,
}

fn main() -> ExitCode {
    let tool = std::env::args_os().nth(1).is_some_and(|first| first == "bench" || first == "replay");
    let result = if tool {
        match parse::<ToolCli>().command {
            Command::Bench(args) => bench(args),
            Command::Replay(args) => replay(args),
        }
    } else {
        serve(parse::<ServeCli>())
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Like `Parser::parse`, but a bad flag prints one line (the contract's start-up failures
/// are one line on stderr); help and version print as usual.
fn parse<T: Parser>() -> T {
    T::try_parse().unwrap_or_else(|error| match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => error.exit(),
        _ => {
            eprintln!("{}", one_line(&error.render().to_string()));
            std::process::exit(2)
        }
    })
}

/// clap's message without its usage and hints, on one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more information"))
        .filter(|line| !line.is_empty() && !line.starts_with("tip:"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Flags, model directory, port, model, then serve; on SIGTERM the server stops accepting
/// and waits for the handlers in flight, which the inference thread answers; only then is it
/// told to finish.
fn serve(cli: ServeCli) -> Result<(), BatchedError> {
    let policy = cli.batch.policy()?;
    let model = ModelDir::open(&cli.service.model_dir)?;
    policy.check_max_length(model.info.max_length)?;
    runtime::init(cli.ort_lib.as_deref())?;
    let listeners = servekit::bind(&cli.service)?;
    let threads = cli.service.threads.get();
    let loaded = LoadedModel::load(&cli.service.model_dir, threads)?;
    let engine = BatchEngine::new(loaded).map_err(BatchedError::RunOptions)?;
    eprintln!(
        "rust-native-batched: model {} (inputs {}; max length {}; pad id {}; threads {}); {:?} \
         schedule, runs of at most {} requests, {} tokens, {:.0}% padding, aged after {} ms; delay \
         {} us; queue {}",
        engine.model().path.display(),
        engine.model().info.inputs.join(", "),
        engine.model().info.max_length,
        engine.pad_id(),
        threads,
        policy.schedule,
        policy.limits.max_batch_size,
        policy.limits.max_tokens,
        policy.limits.max_padding * 100.0,
        policy.limits.max_wait.as_millis(),
        policy.max_batch_delay.as_micros(),
        policy.max_queue,
    );
    let (inference, backend) = InferenceThread::spawn(engine, &policy)?;
    let served = servekit::serve_backend(&cli.service, listeners, backend);
    // Finish the thread even if the server failed, so the process does not hang on it.
    inference.finish()?;
    Ok(served?)
}

fn bench(args: BatchBenchArgs) -> Result<(), BatchedError> {
    let BatchBenchArgs { common, batch_sizes } = args;
    let text = rust_native::bench::payload_text(&common.payload_file)?;
    runtime::init(common.ort_lib.as_deref())?;
    let loaded = LoadedModel::load(&common.model_dir, common.threads.get())?;
    let mut engine = BatchEngine::new(loaded).map_err(BatchedError::RunOptions)?;
    let batch_sizes: Vec<usize> = batch_sizes.iter().map(|b| b.get()).collect();
    let mut out = std::io::stdout().lock();
    if common.serve {
        let input = std::io::stdin().lock();
        return bench::serve(&mut engine, &text, &batch_sizes, common.warmup, input, &mut out);
    }
    bench::run(&mut engine, &text, &batch_sizes, common.iterations, common.warmup, &mut out)
}

/// The service's policy, model and inference thread, driven by in-process clients.
fn replay(args: ReplayArgs) -> Result<(), BatchedError> {
    let policy = args.batch.policy()?;
    let texts = replay::read_texts(&args.texts_file)?;
    let model = ModelDir::open(&args.model_dir)?;
    policy.check_max_length(model.info.max_length)?;
    runtime::init(args.ort_lib.as_deref())?;
    let loaded = LoadedModel::load(&args.model_dir, args.threads.get())?;
    let engine = BatchEngine::new(loaded).map_err(BatchedError::RunOptions)?;
    let (inference, backend) = InferenceThread::spawn(engine, &policy)?;
    let clients: Vec<usize> = args.clients.iter().map(|c| c.get()).collect();
    let replayed =
        replay::Replay::new(backend, texts, &policy).map_err(BatchedError::from).and_then(|replay| {
            let input = args.serve.then(|| std::io::stdin().lock());
            replay::run(&replay, &clients, args.warmup, args.iterations, input, &mut std::io::stdout().lock())
        });
    // Finish the thread whatever happened, so the process does not hang on it.
    inference.finish()?;
    replayed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_errors_fold_into_one_line() {
        let error = ServeCli::try_parse_from(["svc"]).err().unwrap();
        assert_eq!(
            one_line(&error.render().to_string()),
            "error: the following required arguments were not provided: --model-dir <DIR>"
        );
        let error = ServeCli::try_parse_from(["svc", "--model-dir", "m", "--max-queue", "x"]).err().unwrap();
        let line = one_line(&error.render().to_string());
        assert!(line.starts_with("error: invalid value 'x' for '--max-queue <N>'"), "{line}");
    }

    #[test]
    fn bench_takes_the_ceiling_flags_and_batch_sizes() {
        let cli = ToolCli::try_parse_from([
            "svc",
            "bench",
            "--model-dir",
            "m",
            "--payload-file",
            "p.json",
            "--batch-sizes",
            "1,2,8",
        ])
        .unwrap();
        let Command::Bench(args) = cli.command else { panic!("not bench") };
        assert_eq!(args.batch_sizes.iter().map(|b| b.get()).collect::<Vec<_>>(), [1, 2, 8]);
        assert_eq!((args.common.iterations, args.common.warmup, args.common.threads.get()), (1000, 20, 1));
        assert!(ToolCli::try_parse_from(["svc", "bench", "--model-dir", "m", "--batch-sizes", "0"]).is_err());
    }

    #[test]
    fn replay_takes_its_texts_clients_and_the_batching_flags() {
        let cli = ToolCli::try_parse_from([
            "svc",
            "replay",
            "--model-dir",
            "m",
            "--texts-file",
            "t.json",
            "--clients",
            "1,50",
            "--schedule",
            "continuous",
        ])
        .unwrap();
        let Command::Replay(args) = cli.command else { panic!("not replay") };
        assert_eq!(args.clients.iter().map(|c| c.get()).collect::<Vec<_>>(), [1, 50]);
        assert_eq!((args.warmup, args.iterations, args.serve), (50, 3, false));
        assert_eq!(args.batch.policy().unwrap().schedule, config::Schedule::Continuous);
        assert!(
            ToolCli::try_parse_from([
                "svc",
                "replay",
                "--model-dir",
                "m",
                "--texts-file",
                "t",
                "--clients",
                "0"
            ])
            .is_err()
        );
    }
}
