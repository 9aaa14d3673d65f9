//! `rust-native`: the contract served with tokenizers + ONNX Runtime, no Python.
//!
//! - `rust-native [--model-dir D] [--ort-lib L] ...`: the HTTP service.
//! - `rust-native bench ...`: in-process timings as CSV on stdout.
//! - `rust-native tokenize --model-dir D < text`: the encoding as JSON (parity checks).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use servekit::{ModelDir, ServiceArgs};

use rust_native::bench::BenchArgs;
use rust_native::engine::NativePredictor;
use rust_native::error::NativeError;
use rust_native::{bench, runtime, tokenize};

/// `rust-native [flags]`: the HTTP service.
#[derive(Parser)]
#[command(
    name = "rust-native",
    version,
    about = "The HTTP contract served with tokenizers + ONNX Runtime (no Python).",
    after_help = "Tools: `rust-native bench --help`, `rust-native tokenize --help`."
)]
struct ServeCli {
    #[command(flatten)]
    serve: ServeArgs,
}

/// `rust-native bench|tokenize ...`: the in-process tools.
#[derive(Parser)]
#[command(name = "rust-native", version)]
struct ToolCli {
    #[command(subcommand)]
    command: Command,
}

const TOOLS: [&str; 2] = ["bench", "tokenize"];

#[derive(Subcommand)]
enum Command {
    /// Time tokenize + inference in-process; prints CSV to stdout.
    Bench(BenchArgs),
    /// Print the encoding of standard input as JSON (input_ids, attention_mask, token_type_ids).
    Tokenize {
        #[arg(long, env = "MODEL_DIR", value_name = "DIR")]
        model_dir: PathBuf,
    },
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    service: ServiceArgs,
    /// Absolute path of libonnxruntime.so.* (the venv's onnxruntime/capi/).
    #[arg(long, env = "ORT_DYLIB_PATH", value_name = "PATH")]
    ort_lib: Option<PathBuf>,
}

fn main() -> ExitCode {
    let tool = std::env::args_os().nth(1).is_some_and(|first| TOOLS.iter().any(|t| first == *t));
    let result = if tool {
        match ToolCli::parse().command {
            Command::Bench(args) => bench(args),
            Command::Tokenize { model_dir } => tokenize(&model_dir),
        }
    } else {
        serve(ServeCli::parse().serve)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> Result<(), NativeError> {
    ModelDir::open(&args.service.model_dir)?;
    runtime::init(args.ort_lib.as_deref())?;
    let listeners = servekit::bind(&args.service)?;
    let predictor = NativePredictor::load(&args.service.model_dir, args.service.threads.get())?;
    eprintln!(
        "rust-native: model {} (inputs {}; max length {}; threads {})",
        predictor.model().path.display(),
        predictor.model().info.inputs.join(", "),
        predictor.model().info.max_length,
        args.service.threads
    );
    servekit::serve(&args.service, listeners, predictor)?;
    Ok(())
}

fn bench(args: BenchArgs) -> Result<(), NativeError> {
    let text = bench::payload_text(&args.payload_file)?;
    runtime::init(args.ort_lib.as_deref())?;
    let predictor = NativePredictor::load(&args.model_dir, args.threads.get())?;
    let mut out = std::io::stdout().lock();
    if args.serve {
        return bench::serve(&predictor, &text, args.warmup, std::io::stdin().lock(), &mut out);
    }
    bench::run(&predictor, &text, args.iterations, args.warmup, &mut out)
}

fn tokenize(model_dir: &std::path::Path) -> Result<(), NativeError> {
    let model = ModelDir::open(model_dir)?;
    let tokenizer = tokenize::load(&model.tokenizer_path(), model.info.max_length)?;
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).map_err(NativeError::Stdin)?;
    let encoding = tokenize::encode(&tokenizer, &text)
        .map_err(|e| servekit::PredictError::Tokenization(e.to_string()))?;
    let json = serde_json::json!({
        "input_ids": encoding.get_ids(),
        "attention_mask": encoding.get_attention_mask(),
        "token_type_ids": encoding.get_type_ids(),
    });
    println!("{json}");
    Ok(())
}
