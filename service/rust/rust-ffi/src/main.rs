//! `rust-ffi`: the contract served by actix-web, inference by the Python services' own code
//! (`servekit.inference`, service/python/servekit/inference.py) called through PyO3 (the seed
//! study's design).

mod error;
mod python;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use servekit::{ModelDir, ServiceArgs};

use crate::error::FfiError;
use crate::python::PythonPredictor;

#[derive(Parser)]
#[command(
    name = "rust-ffi",
    version,
    about = "The HTTP contract served by actix-web calling the Python services' servekit.inference through PyO3."
)]
struct Cli {
    #[command(flatten)]
    service: ServiceArgs,

    /// The project virtualenv whose site-packages the embedded interpreter must use.
    /// When given, the interpreter starts as <venv>/bin/python (PYTHONEXECUTABLE) and
    /// start-up fails unless sys.prefix is that venv.
    #[arg(long, env = "VIRTUAL_ENV", value_name = "DIR")]
    venv: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match serve(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn serve(cli: Cli) -> Result<(), FfiError> {
    ModelDir::open(&cli.service.model_dir)?;
    if let Some(venv) = &cli.venv {
        use_venv(venv)?;
    }
    let listeners = servekit::bind(&cli.service)?;

    let interpreter = python::interpreter()?;
    if let Some(venv) = &cli.venv {
        check_prefix(venv, &interpreter.prefix)?;
    }
    eprintln!(
        "rust-ffi: Python {} (prefix {}, executable {})",
        interpreter.version, interpreter.prefix, interpreter.executable
    );
    let predictor = PythonPredictor::load(&cli.service.model_dir, cli.service.threads.get()).map_err(
        |error| match error {
            // The usual cause of a missing module: started outside the venv.
            FfiError::Python(message)
                if cli.venv.is_none() && !Path::new(&interpreter.prefix).join("pyvenv.cfg").exists() =>
            {
                FfiError::Python(format!(
                    "{message} (prefix {} is not a virtualenv: pass --venv DIR or set VIRTUAL_ENV)",
                    interpreter.prefix
                ))
            }
            // In the venv, but the Python services' package is not installed there.
            FfiError::Python(message) if message.contains("'servekit'") => FfiError::Python(format!(
                "{message} (install the Python services' package: make setup, or pip install \
                 --no-deps -e service/python)"
            )),
            other => other,
        },
    )?;
    eprintln!(
        "rust-ffi: {}.Classifier({}, {})",
        python::MODULE,
        cli.service.model_dir.display(),
        cli.service.threads
    );
    servekit::serve(&cli.service, listeners, predictor)?;
    Ok(())
}

/// Python computes `sys.prefix` at start-up from the executable it believes it is: naming the
/// venv's `bin/python` makes it read `pyvenv.cfg` and use the venv's site-packages.
fn use_venv(venv: &Path) -> Result<(), FfiError> {
    let python = venv.join("bin").join("python");
    if !python.exists() {
        return Err(FfiError::NoVenvPython(venv.to_path_buf()));
    }
    // SAFETY: called from `main` before the interpreter, the server or any other thread starts.
    unsafe { std::env::set_var("PYTHONEXECUTABLE", &python) };
    Ok(())
}

fn check_prefix(venv: &Path, prefix: &str) -> Result<(), FfiError> {
    let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    if canonical(venv) == canonical(Path::new(prefix)) {
        Ok(())
    } else {
        Err(FfiError::WrongPrefix { expected: venv.to_path_buf(), actual: prefix.to_string() })
    }
}
