//! The `coxswain` command. Each subcommand's handler lives in `src/cli/<command>.rs`;
//! this file only parses the command line, runs the handler and prints errors.

mod cli;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_logging(&args);
    match cli::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line: the message and its causes, `a: b: c`, each cause bounded (they
            // may quote hostile input).
            let causes: Vec<String> = err
                .chain()
                .map(|cause| {
                    coxswain::bounded::bounded(&cause.to_string(), coxswain::bounded::MAX_CAUSE)
                })
                .collect();
            eprintln!("error: {}", causes.join(": "));
            ExitCode::FAILURE
        }
    }
}
