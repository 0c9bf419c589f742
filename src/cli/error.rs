//! What can stop a command, and the exit code each means: 2 when the input is wrong (the
//! pipeline, an argument, an input file, a run that would not fit), 1 when running failed.

use std::process::ExitCode;

use synthcohort::engine::EngineError;
use synthcohort::pipeline::PipelineError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Lab(synthcohort::lab::LabError),
    #[error("{0}")]
    Usage(String),
}

impl CliError {
    pub fn exit_code(&self) -> ExitCode {
        let invalid = match self {
            CliError::Pipeline(_) | CliError::Usage(_) => true,
            CliError::Engine(e) => matches!(
                e,
                EngineError::EmptySelection { .. }
                    | EngineError::Resources(_)
                    | EngineError::Source(_)
            ),
            CliError::Lab(e) => e.is_input(),
        };
        ExitCode::from(if invalid { 2 } else { 1 })
    }

    /// Prints the error on stderr. A pipeline's problems already carry their `error:` lines.
    pub fn report(&self) {
        match self {
            CliError::Pipeline(e) => eprintln!("{e}"),
            e => eprintln!("error: {e}"),
        }
    }
}
