//! Command-line flags shared by every Rust service, each with its environment fallback.

use std::num::NonZeroUsize;
use std::path::PathBuf;

/// Flags of `CONTRACT.md` ("Command line"). Flatten into a binary's own `clap::Parser`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ServiceArgs {
    /// Model directory written by the exporter (serving.json and the files it lists).
    #[arg(long, env = "MODEL_DIR", value_name = "DIR")]
    pub model_dir: PathBuf,

    /// Bind address.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// TCP port.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// ONNX Runtime intra-op threads (inter-op is always 1, sequential execution).
    #[arg(long, env = "ORT_THREADS", default_value = "1", value_name = "N")]
    pub threads: NonZeroUsize,

    /// HTTP worker threads (actix workers).
    #[arg(long, env = "WORKERS", default_value = "1", value_name = "N")]
    pub workers: NonZeroUsize,
}

impl ServiceArgs {
    /// `host:port` as written in messages.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        service: ServiceArgs,
    }

    // Environment fallbacks are read by clap at parse time; these tests only pass flags, and
    // none of MODEL_DIR/HOST/PORT/ORT_THREADS/WORKERS is set by `cargo test`.
    #[test]
    fn defaults_follow_the_contract() {
        let cli = Cli::try_parse_from(["svc", "--model-dir", "/m"]).unwrap();
        let s = cli.service;
        assert_eq!(s.model_dir, PathBuf::from("/m"));
        assert_eq!(s.host, "127.0.0.1");
        assert_eq!(s.port, 8080);
        assert_eq!(s.threads.get(), 1);
        assert_eq!(s.workers.get(), 1);
        assert_eq!(s.address(), "127.0.0.1:8080");
    }

    #[test]
    fn flags_override_defaults() {
        let cli = Cli::try_parse_from([
            "svc",
            "--model-dir",
            "/m",
            "--host",
            "::1",
            "--port",
            "9001",
            "--threads",
            "4",
            "--workers",
            "2",
        ])
        .unwrap();
        assert_eq!(cli.service.port, 9001);
        assert_eq!(cli.service.threads.get(), 4);
        assert_eq!(cli.service.workers.get(), 2);
        assert_eq!(cli.service.address(), "[::1]:9001");
    }

    #[test]
    fn zero_threads_is_rejected() {
        assert!(Cli::try_parse_from(["svc", "--model-dir", "/m", "--threads", "0"]).is_err());
        assert!(Cli::try_parse_from(["svc", "--model-dir", "/m", "--workers", "0"]).is_err());
    }
}
