//! `feedloop`: the embedded demo, one-off analysis, local processing and quality eval.

#[cfg(feature = "aws")]
mod cloud;
mod commands;
#[cfg(feature = "aws")]
mod dashboard;
mod demo;
#[cfg(feature = "aws")]
mod local;
#[cfg(feature = "aws")]
mod ops;
#[cfg(feature = "aws")]
mod query;
mod replay;
mod report;
#[cfg(feature = "aws")]
mod target;
#[cfg(feature = "train")]
mod train;
#[cfg(feature = "train")]
mod train_multilingual;

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
    /// Print JSON instead of tables: one object, or JSON Lines where a command streams
    /// (analyze -, process). Accepted before or after the command.
    #[arg(long, global = true)]
    json: bool,
}

/// Where themes come from in the neural modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ThemeSourceOpt {
    /// The taxonomy's phrases, plus similarity to its examples in the neural modes.
    Taxonomy,
    /// The trained restaurant-category head (with `--taxonomy restaurants`).
    Head,
}

#[derive(clap::Args, Clone)]
pub struct AnalysisOpts {
    /// Sentiment mode: `hybrid` (encoder + lexicon scores, the default when the model
    /// is installed), `neural` (encoder only), `lexicon` (alias `feedloop`, the default
    /// without the model) or `reference` (VADER 3.3.2 exactly).
    #[arg(long)]
    mode: Option<Mode>,
    /// Theme taxonomy: `small-business` (default), `restaurants`, or a TOML file.
    #[arg(long, default_value = "small-business")]
    taxonomy: String,
    /// Folder of the sentence encoder in the Hugging Face layout (default: what `make
    /// model` installs, models/all-MiniLM-L6-v2).
    #[arg(long, env = "FEEDLOOP_MODEL_DIR", value_name = "DIR")]
    model_dir: Option<PathBuf>,
    /// Folder of the multilingual encoder (e5-small-q4.bin) that scores German, French,
    /// Spanish, Italian, Portuguese... (default: models/multilingual-e5-small; without
    /// it only English is scored).
    #[arg(long, env = "FEEDLOOP_MULTILINGUAL_MODEL_DIR", value_name = "DIR")]
    multilingual_model_dir: Option<PathBuf>,
    /// Where themes come from in the neural modes.
    #[arg(long, value_enum, default_value = "taxonomy")]
    themes: ThemeSourceOpt,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bundled sample feedback through the whole pipeline, in memory (no AWS).
    Demo {
        #[command(flatten)]
        opts: AnalysisOpts,
        /// Write the demo envelopes as JSON Lines to this file instead of running them.
        #[arg(long, value_name = "FILE")]
        export: Option<PathBuf>,
    },
    /// Analyse one text (or, with `-`, one text per line from stdin, as JSON Lines).
    Analyze {
        #[command(flatten)]
        opts: AnalysisOpts,
        text: String,
    },
    /// Process your own envelopes (JSON Lines) in memory and report; bad lines are
    /// reported with their line number and reason and do not stop the run.
    Process {
        #[command(flatten)]
        opts: AnalysisOpts,
        /// Half-life of the time-decayed sentiment, in days.
        #[arg(long, default_value_t = 30.0)]
        half_life_days: f64,
        file: PathBuf,
    },
    /// Measure quality on a labelled JSONL file (`{"id","text","gold":{...}}`).
    Eval {
        #[command(flatten)]
        opts: AnalysisOpts,
        /// Which records to use: all, train (70%) or test (30%, by a hash of the id).
        /// Files named *_train / *_test are used whole.
        #[arg(long, default_value = "all")]
        split: Split,
        file: PathBuf,
    },
    /// Fit the neural and hybrid heads on the shared/eval train data (settings chosen on
    /// sst5_dev), report every mode on the test splits, write the heads file.
    #[cfg(feature = "train")]
    Train {
        #[command(flatten)]
        opts: train::TrainOpts,
    },
    /// The deployed stack (real AWS or a local endpoint): send, query, erase, DLQ.
    #[cfg(feature = "aws")]
    #[command(flatten)]
    Aws(cloud::AwsCommand),
}
fn main() -> ExitCode {
    // Behave like other Unix tools when piped into `head`: exit quietly on a closed pipe
    // instead of panicking on the next write.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of one signal before any thread starts.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let json = cli.json;
    let result = match cli.command {
        Command::Demo { opts, export } => commands::demo(&opts, json, export.as_deref()),
        Command::Analyze { opts, text } => commands::analyze(&opts, json, &text),
        Command::Process {
            opts,
            half_life_days,
            file,
        } => commands::process(&opts, json, half_life_days, &file),
        Command::Eval { opts, split, file } => commands::eval(&opts, json, split, &file),
        #[cfg(feature = "train")]
        Command::Train { opts } => train::train(&opts),
        #[cfg(feature = "aws")]
        Command::Aws(command) => cloud::run(command, json),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("feedloop: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
