//! `synthcohort` binary: see `synthcohort --help`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
