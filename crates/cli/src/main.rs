//! `feedloop`: the embedded demo, one-off analysis, local processing and quality eval.

mod commands;
mod demo;
mod local;
mod report;
mod target;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use feedloop_core::eval::Split;
use feedloop_core::sentiment::Mode;

#[derive(Parser)]
#[command(
    name = "feedloop",
    version,
    about = "Customer feedback -> sentiment, NPS drivers, customer profiles"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
pub struct AnalysisOpts {
    /// Sentiment mode: `feedloop` (default, tuned for feedback) or `reference` (VADER 3.3.2).
    #[arg(long, default_value = "feedloop")]
    mode: Mode,
    /// Theme taxonomy: `small-business` (default), `restaurants`, or a TOML file.
    #[arg(long, default_value = "small-business")]
    taxonomy: String,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bundled sample feedback through the whole pipeline, in memory (no AWS).
    Demo {
        #[command(flatten)]
        opts: AnalysisOpts,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
        /// Write the demo envelopes as JSON Lines to this file instead of running them.
        #[arg(long, value_name = "FILE")]
        export: Option<PathBuf>,
    },
    /// Analyse one text (or, with `-`, one text per line from stdin, as JSON Lines).
    Analyze {
        #[command(flatten)]
        opts: AnalysisOpts,
        #[arg(long)]
        json: bool,
        text: String,
    },
    /// Process your own envelopes (JSON Lines) in memory and report; bad lines are
    /// reported with their line number and reason and do not stop the run.
    Process {
        #[command(flatten)]
        opts: AnalysisOpts,
        #[arg(long)]
        json: bool,
        /// Half-life of the time-decayed sentiment, in days.
        #[arg(long, default_value_t = 30.0)]
        half_life_days: f64,
        file: PathBuf,
    },
    /// Measure quality on a labelled JSONL file (`{"id","text","gold":{...}}`).
    Eval {
        #[command(flatten)]
        opts: AnalysisOpts,
        /// Accepted for symmetry with the other commands; the report is always JSON.
        #[arg(long)]
        json: bool,
        /// Which records to use: all, train (70%) or test (30%, by a hash of the id).
        /// Files named *_train / *_test are used whole.
        #[arg(long, default_value = "all")]
        split: Split,
        file: PathBuf,
    },
    /// Reports from the deployed table (real AWS or a local endpoint).
    Report {
        #[command(subcommand)]
        report: ReportCommand,
    },
    /// The real functions against a local AWS endpoint (moto): see `make local-up`.
    Local {
        #[command(subcommand)]
        command: LocalCommand,
    },
}

#[derive(Subcommand)]
enum ReportCommand {
    /// A/B results per playbook and template variant: sent, responded (next feedback
    /// within 30 days), mean NPS and sentiment change.
    Followups {
        #[command(flatten)]
        target: target::AwsTarget,
        #[arg(long)]
        json: bool,
    },
}

/// Where the local stack is: endpoint and resource-name prefix.
#[derive(clap::Args)]
struct LocalTarget {
    #[arg(
        long,
        env = "AWS_ENDPOINT_URL",
        default_value = "http://127.0.0.1:4566"
    )]
    endpoint_url: String,
    #[arg(long, default_value = "feedloop-local")]
    prefix: String,
}

#[derive(Subcommand)]
enum LocalCommand {
    /// Create the table and queues (as samplesam.yaml defines them) and write the
    /// function's environment file.
    Up {
        #[command(flatten)]
        target: LocalTarget,
        #[arg(long, default_value = ".local/ingest.env")]
        env_file: PathBuf,
    },
    /// Send the demo feedback to the local queue, drive the function under
    /// `cargo lambda watch` with real SQS batches, print the resulting profiles.
    Run {
        #[command(flatten)]
        target: LocalTarget,
        /// The function name `cargo lambda watch` serves.
        #[arg(long, default_value = "ingest")]
        function: String,
        /// `cargo lambda watch` invoke port.
        #[arg(long, default_value_t = 9000)]
        invoke_port: u16,
        #[arg(long, default_value = ".local")]
        work_dir: PathBuf,
    },
    /// Print the profiles in the local table.
    Profiles {
        #[command(flatten)]
        target: LocalTarget,
    },
}

fn local(cmd: LocalCommand) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        match cmd {
            LocalCommand::Up { target, env_file } => {
                local::up(&target.endpoint_url, &target.prefix, &env_file).await
            }
            LocalCommand::Run {
                target,
                function,
                invoke_port,
                work_dir,
            } => {
                local::run(
                    &target.endpoint_url,
                    &target.prefix,
                    &function,
                    invoke_port,
                    &work_dir,
                )
                .await
            }
            LocalCommand::Profiles { target } => {
                let sdk =
                    feedloop_aws::setup::sdk_config(Some(&target.endpoint_url), Some("us-east-1"))
                        .await;
                local::print_profiles(&sdk, &local::names(&target.prefix).table).await
            }
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    // Behave like other Unix tools when piped into `head`: exit quietly on a closed pipe
    // instead of panicking on the next write.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of one signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { opts, json, export } => commands::demo(&opts, json, export.as_deref()),
        Command::Analyze { opts, json, text } => commands::analyze(&opts, json, &text),
        Command::Process {
            opts,
            json,
            half_life_days,
            file,
        } => commands::process(&opts, json, half_life_days, &file),
        Command::Eval {
            opts, split, file, ..
        } => commands::eval(&opts, split, &file),
        Command::Local { command } => local(command),
        Command::Report { report } => match report {
            ReportCommand::Followups { target, json } => tokio::runtime::Runtime::new()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(commands::report_followups(&target, json))),
        },
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("feedloop: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
