//! The model directory as the services see it: `serving.json` and the files it lists.
//!
//! The exporter (`src/servebench/models/serving_info.py`) derives every fact of
//! `serving.json` (labels, maximum length, graph inputs and output, file names); the
//! services read them and derive nothing, so each rule exists once.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Written by the exporter into every model directory (`CONTRACT.md`, "Model directory").
pub const SERVING_FILE: &str = "serving.json";

/// Every problem with the directory's files has the same remedy.
const RE_EXPORT: &str = "re-export the model with `make model` (or notebooks/01_export_model.ipynb)";

/// The file roles the Rust services load.
const ROLES: [&str; 2] = ["onnx", "tokenizer"];

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model directory {0} does not exist; run notebooks/01_export_model.ipynb (make model) first")]
    Missing(PathBuf),
    #[error("model directory {0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("model directory {0} has no {file}; {remedy}", file = SERVING_FILE, remedy = RE_EXPORT)]
    NoServingInfo(PathBuf),
    #[error("{path} is not valid: {reason}; {remedy}", remedy = RE_EXPORT)]
    Invalid { path: PathBuf, reason: String },
    #[error(
        "model directory {dir} lacks {} (listed in {file}); {remedy}",
        .files.join(", "), file = SERVING_FILE, remedy = RE_EXPORT
    )]
    MissingFiles { dir: PathBuf, files: Vec<String> },
}

/// The content of `serving.json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ServingInfo {
    /// Indexed by class id.
    pub labels: Vec<String>,
    /// Maximum sequence length, special tokens included; longer inputs are truncated.
    pub max_length: usize,
    /// The graph's inputs, in its order: exactly these are fed.
    pub inputs: Vec<String>,
    /// The graph output holding the logits.
    pub output: String,
    /// Role (`onnx`, `tokenizer`, ...) -> file name in the directory.
    pub files: BTreeMap<String, String>,
}

impl ServingInfo {
    fn check(&self) -> Result<(), String> {
        if self.labels.is_empty() || self.labels.iter().any(String::is_empty) {
            return Err("'labels' is empty or holds an empty label".into());
        }
        if self.max_length == 0 {
            return Err("'max_length' is 0".into());
        }
        if self.inputs.is_empty() || self.output.is_empty() {
            return Err("'inputs' or 'output' is empty".into());
        }
        match ROLES.into_iter().find(|role| !self.files.contains_key(*role)) {
            Some(role) => Err(format!("'files' names no '{role}' file")),
            None => Ok(()),
        }
    }
}

/// A checked model directory: `serving.json` is valid and every file it lists exists.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelDir {
    pub path: PathBuf,
    pub info: ServingInfo,
}

impl ModelDir {
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ModelError> {
        let path = path.as_ref().to_path_buf();
        if !path.exists() {
            return Err(ModelError::Missing(path));
        }
        if !path.is_dir() {
            return Err(ModelError::NotADirectory(path));
        }
        let file = path.join(SERVING_FILE);
        if !file.is_file() {
            return Err(ModelError::NoServingInfo(path));
        }
        let invalid = |reason: String| ModelError::Invalid { path: file.clone(), reason };
        let text = fs::read_to_string(&file).map_err(|e| invalid(e.to_string()))?;
        let info: ServingInfo = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        info.check().map_err(invalid)?;
        let files: Vec<String> =
            info.files.values().filter(|name| !path.join(name).is_file()).cloned().collect();
        if !files.is_empty() {
            return Err(ModelError::MissingFiles { dir: path, files });
        }
        Ok(Self { path, info })
    }

    pub fn onnx_path(&self) -> PathBuf {
        self.path.join(&self.info.files["onnx"])
    }

    pub fn tokenizer_path(&self) -> PathBuf {
        self.path.join(&self.info.files["tokenizer"])
    }

    /// The label of class `index`, if the model declares one.
    pub fn label(&self, index: usize) -> Option<&str> {
        self.info.labels.get(index).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVING: &str = r#"{
        "labels": ["NEGATIVE", "POSITIVE"], "max_length": 512,
        "inputs": ["input_ids", "attention_mask"], "output": "logits",
        "files": {"onnx": "model.onnx", "tokenizer": "tokenizer.json", "config": "config.json"}
    }"#;

    /// A fresh directory holding `files` (name, content).
    fn directory(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("servekit-test-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        for (file, content) in files {
            fs::write(dir.join(file), content).unwrap();
        }
        dir
    }

    fn open_error(name: &str, files: &[(&str, &str)]) -> (PathBuf, ModelError) {
        let dir = directory(name, files);
        let error = ModelDir::open(&dir).unwrap_err();
        fs::remove_dir_all(&dir).unwrap();
        (dir, error)
    }

    #[test]
    fn open_reads_serving_info() {
        let files =
            [(SERVING_FILE, SERVING), ("model.onnx", ""), ("tokenizer.json", "{}"), ("config.json", "{}")];
        let dir = directory("full", &files);
        let model = ModelDir::open(&dir).unwrap();
        assert_eq!(model.info.labels, vec!["NEGATIVE", "POSITIVE"]);
        assert_eq!(model.info.max_length, 512);
        assert_eq!(model.info.inputs, vec!["input_ids", "attention_mask"]);
        assert_eq!(model.info.output, "logits");
        assert_eq!(model.onnx_path(), dir.join("model.onnx"));
        assert_eq!(model.tokenizer_path(), dir.join("tokenizer.json"));
        assert_eq!((model.label(1), model.label(2)), (Some("POSITIVE"), None));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_directory_is_named() {
        let missing = std::env::temp_dir().join("servekit-test-does-not-exist");
        let error = ModelDir::open(&missing).unwrap_err();
        assert!(matches!(error, ModelError::Missing(_)));
        assert!(error.to_string().contains("does not exist"));
    }

    #[test]
    fn a_directory_without_serving_info_says_how_to_fix_it() {
        let (dir, error) = open_error("empty", &[("model.onnx", "")]);
        assert_eq!(
            error.to_string(),
            format!("model directory {} has no serving.json; {RE_EXPORT}", dir.display())
        );
    }

    #[test]
    fn missing_listed_files_are_named() {
        let (dir, error) = open_error("partial", &[(SERVING_FILE, SERVING), ("tokenizer.json", "{}")]);
        assert_eq!(
            error.to_string(),
            format!(
                "model directory {} lacks config.json, model.onnx (listed in serving.json); {RE_EXPORT}",
                dir.display()
            )
        );
    }

    #[test]
    fn corrupt_or_incomplete_serving_info_is_invalid() {
        let no_tokenizer = SERVING.replace(r#""tokenizer": "tokenizer.json", "#, "");
        for (name, content, reason) in [
            ("truncated", "{", "EOF"),
            ("empty", "", "EOF"),
            ("no-labels", r#"{"max_length": 1}"#, "missing field `labels`"),
            ("zero-length", &SERVING.replace("512", "0"), "'max_length' is 0"),
            ("no-labels-listed", &SERVING.replace(r#""NEGATIVE", "POSITIVE""#, ""), "'labels' is empty"),
            ("no-tokenizer", &no_tokenizer, "names no 'tokenizer' file"),
        ] {
            let (dir, error) = open_error(name, &[(SERVING_FILE, content)]);
            let message = error.to_string();
            assert!(matches!(error, ModelError::Invalid { .. }), "{name}: {message}");
            assert!(message.starts_with(&format!("{} is not valid: ", dir.join(SERVING_FILE).display())));
            assert!(message.contains(reason) && message.ends_with(RE_EXPORT), "{name}: {message}");
        }
    }
}
