use clap::Parser;

fn main() -> std::process::ExitCode {
    postmortem::cli::run(postmortem::cli::Cli::parse())
}
