//! The batching flags of `CONTRACT.md` "Batched services", each with its environment
//! fallback, and their range checks. Their defaults are `service/batching_policy.json`'s,
//! compiled in (the Python batched service and the study's configuration read the same file).
//!
//! Integers are parsed as `i64` (negative numbers allowed) so that an out-of-range value,
//! `-1` included, reaches [`BatchArgs::policy`] and gets its one-line message naming the
//! flag, instead of a clap parse error about a stray argument.

use std::sync::OnceLock;
use std::time::Duration;

use serde::Deserialize;

use crate::plan::Limits;

/// The batching policy's defaults: the one place they are written, shared with the Python side.
const POLICY_FILE: &str = include_str!("../../../batching_policy.json");

/// `defaults` of `service/batching_policy.json`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDefaults {
    pub max_batch_size: i64,
    pub max_batch_tokens: i64,
    pub max_batch_delay_us: i64,
    pub max_queue: i64,
    pub max_padding: f64,
    pub max_wait_ms: i64,
    pub schedule: Schedule,
}

/// Which requests a run is chosen from (`CONTRACT.md` "Which requests run next").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// The oldest max-batch-size waiting requests are taken together, and their runs made
    /// shortest first before any newer request is looked at.
    Batch,
    /// Every run is chosen from everything waiting: shortest first, with aging.
    Continuous,
}

/// The defaults compiled in from `service/batching_policy.json` (parsed once; the tests check
/// the file parses, so a broken file fails `cargo test`, not a start-up).
pub fn defaults() -> &'static PolicyDefaults {
    static DEFAULTS: OnceLock<PolicyDefaults> = OnceLock::new();
    DEFAULTS.get_or_init(|| {
        #[derive(Deserialize)]
        struct File {
            defaults: PolicyDefaults,
        }
        serde_json::from_str::<File>(POLICY_FILE)
            .expect("service/batching_policy.json has valid defaults")
            .defaults
    })
}

#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct BatchArgs {
    /// Most requests in one ONNX Runtime run (≥ 1).
    #[arg(
        long,
        env = "MAX_BATCH_SIZE",
        default_value_t = defaults().max_batch_size,
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub max_batch_size: i64,

    /// Most padded positions (rows × longest) one run may get (≥ the model's max_length).
    #[arg(
        long,
        env = "MAX_BATCH_TOKENS",
        default_value_t = defaults().max_batch_tokens,
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub max_batch_tokens: i64,

    /// When a request comes to an idle inference thread, wait up to this long for
    /// max-batch-size requests (0: greedy).
    #[arg(
        long,
        env = "MAX_BATCH_DELAY_US",
        default_value_t = defaults().max_batch_delay_us,
        value_name = "US",
        allow_negative_numbers = true
    )]
    pub max_batch_delay_us: i64,

    /// Most requests waiting to run (≥ 1); one more is refused with 503.
    #[arg(long, env = "MAX_QUEUE", default_value_t = defaults().max_queue, value_name = "N", allow_negative_numbers = true)]
    pub max_queue: i64,

    /// Largest share of a run's positions that may be padding (0 ≤ F < 1).
    #[arg(
        long,
        env = "MAX_PADDING",
        default_value_t = defaults().max_padding,
        value_name = "F",
        allow_negative_numbers = true
    )]
    pub max_padding: f64,

    /// Continuous schedule: a request that has waited longer than this runs next (≥ 0).
    #[arg(
        long,
        env = "MAX_WAIT_MS",
        default_value_t = defaults().max_wait_ms,
        value_name = "MS",
        allow_negative_numbers = true
    )]
    pub max_wait_ms: i64,

    /// Which requests a run is chosen from.
    #[arg(long, env = "SCHEDULE", value_enum, default_value_t = defaults().schedule)]
    pub schedule: Schedule,
}

/// A batching flag out of its range; printed as one line after `error: `.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("--{flag} ({env}) must be {rule}, not {value}")]
pub struct ConfigError {
    pub flag: &'static str,
    pub env: &'static str,
    pub rule: String,
    pub value: String,
}

/// The checked batching parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchPolicy {
    pub schedule: Schedule,
    pub max_batch_delay: Duration,
    pub max_queue: usize,
    /// What the scheduler needs (`max-batch-size`, `max-batch-tokens`, `max-padding`, `max-wait-ms`).
    pub limits: Limits,
}

impl BatchArgs {
    /// Every check that needs no model; [`BatchPolicy::check_max_length`] does the last.
    pub fn policy(&self) -> Result<BatchPolicy, ConfigError> {
        let at_least = |flag, env, value: i64, min: i64| {
            usize::try_from(value).ok().filter(|_| value >= min).ok_or_else(|| ConfigError {
                flag,
                env,
                rule: format!("at least {min}"),
                value: value.to_string(),
            })
        };
        let max_batch_size = at_least("max-batch-size", "MAX_BATCH_SIZE", self.max_batch_size, 1)?;
        let max_tokens = at_least("max-batch-tokens", "MAX_BATCH_TOKENS", self.max_batch_tokens, 1)?;
        let delay_us = at_least("max-batch-delay-us", "MAX_BATCH_DELAY_US", self.max_batch_delay_us, 0)?;
        let max_queue = at_least("max-queue", "MAX_QUEUE", self.max_queue, 1)?;
        let max_wait_ms = at_least("max-wait-ms", "MAX_WAIT_MS", self.max_wait_ms, 0)?;
        // Written so that NaN fails too.
        if !(0.0..1.0).contains(&self.max_padding) {
            return Err(ConfigError {
                flag: "max-padding",
                env: "MAX_PADDING",
                rule: "at least 0 and below 1".into(),
                value: self.max_padding.to_string(),
            });
        }
        Ok(BatchPolicy {
            schedule: self.schedule,
            max_batch_delay: Duration::from_micros(delay_us as u64),
            max_queue,
            limits: Limits {
                max_batch_size,
                max_tokens,
                max_padding: self.max_padding,
                max_wait: Duration::from_millis(max_wait_ms as u64),
            },
        })
    }
}

impl BatchPolicy {
    /// A text of `max_length` tokens must fit in one run, or the token budget means nothing.
    pub fn check_max_length(&self, max_length: usize) -> Result<(), ConfigError> {
        if self.limits.max_tokens >= max_length {
            return Ok(());
        }
        Err(ConfigError {
            flag: "max-batch-tokens",
            env: "MAX_BATCH_TOKENS",
            rule: format!("at least the model's max_length {max_length}"),
            value: self.limits.max_tokens.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        batch: BatchArgs,
    }

    // None of MAX_BATCH_SIZE/MAX_BATCH_TOKENS/MAX_BATCH_DELAY_US/MAX_QUEUE/MAX_PADDING/MAX_WAIT_MS/SCHEDULE is set by
    // `cargo test`; these tests only pass flags.
    fn policy(flags: &[&str]) -> Result<BatchPolicy, ConfigError> {
        let args = std::iter::once("svc").chain(flags.iter().copied());
        Cli::try_parse_from(args).expect("flags parse").batch.policy()
    }

    #[test]
    fn defaults_are_the_policy_files() {
        let file = defaults();
        let policy = policy(&[]).unwrap();
        assert_eq!(policy.max_batch_delay, Duration::from_micros(file.max_batch_delay_us as u64));
        assert_eq!(policy.max_queue as i64, file.max_queue);
        assert_eq!(policy.schedule, file.schedule);
        assert_eq!(
            policy.limits,
            Limits {
                max_batch_size: file.max_batch_size as usize,
                max_tokens: file.max_batch_tokens as usize,
                max_padding: file.max_padding,
                max_wait: Duration::from_millis(file.max_wait_ms as u64),
            }
        );
        // The defaults must pass their own checks, a full-length text included.
        assert!(policy.check_max_length(512).is_ok());
    }

    #[test]
    fn flags_override_defaults() {
        let policy = policy(&[
            "--max-batch-size",
            "8",
            "--max-batch-tokens",
            "512",
            "--max-batch-delay-us",
            "2000",
            "--max-queue",
            "1",
            "--max-padding",
            "0",
            "--max-wait-ms",
            "0",
            "--schedule",
            "continuous",
        ])
        .unwrap();
        assert_eq!((policy.max_queue, policy.schedule), (1, Schedule::Continuous));
        assert_eq!(policy.max_batch_delay, Duration::from_micros(2000));
        let limits =
            Limits { max_batch_size: 8, max_tokens: 512, max_padding: 0.0, max_wait: Duration::ZERO };
        assert_eq!(policy.limits, limits);
    }

    #[test]
    fn out_of_range_values_name_their_flag() {
        for (flags, message) in [
            (["--max-batch-size", "0"], "--max-batch-size (MAX_BATCH_SIZE) must be at least 1, not 0"),
            (["--max-batch-size", "-1"], "--max-batch-size (MAX_BATCH_SIZE) must be at least 1, not -1"),
            (["--max-batch-tokens", "0"], "--max-batch-tokens (MAX_BATCH_TOKENS) must be at least 1, not 0"),
            (
                ["--max-batch-delay-us", "-5"],
                "--max-batch-delay-us (MAX_BATCH_DELAY_US) must be at least 0, not -5",
            ),
            (["--max-queue", "0"], "--max-queue (MAX_QUEUE) must be at least 1, not 0"),
            (["--max-wait-ms", "-1"], "--max-wait-ms (MAX_WAIT_MS) must be at least 0, not -1"),
            (["--max-padding", "1"], "--max-padding (MAX_PADDING) must be at least 0 and below 1, not 1"),
            (
                ["--max-padding", "-0.1"],
                "--max-padding (MAX_PADDING) must be at least 0 and below 1, not -0.1",
            ),
            (["--max-padding", "NaN"], "--max-padding (MAX_PADDING) must be at least 0 and below 1, not NaN"),
        ] {
            assert_eq!(policy(&flags).unwrap_err().to_string(), message);
        }
    }

    #[test]
    fn the_token_budget_must_hold_one_full_length_text() {
        let policy = policy(&["--max-batch-tokens", "256"]).unwrap();
        assert_eq!(
            policy.check_max_length(512).unwrap_err().to_string(),
            "--max-batch-tokens (MAX_BATCH_TOKENS) must be at least the model's max_length 512, not 256"
        );
        assert!(policy.check_max_length(256).is_ok());
    }
}
