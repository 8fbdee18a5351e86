//! `feedloop`: the embedded demo, one-off analysis, local processing and quality eval.

mod commands;
mod dashboard;
mod demo;
mod local;
mod ops;
mod report;
mod target;
mod train;

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
    /// Fit the neural and hybrid heads on the shared/eval train data (settings chosen on
    /// sst5_dev), report every mode on the test splits, write the heads file.
    Train {
        #[command(flatten)]
        opts: train::TrainOpts,
    },
    /// Send feedback (JSON Lines, or CSV with a column mapping) to the ingest queue.
    Send {
        #[command(flatten)]
        target: target::AwsTarget,
        /// The file; `.csv` files are read as CSV.
        file: PathBuf,
        /// Read the file as CSV even without a .csv extension.
        #[arg(long)]
        csv: bool,
        /// CSV: which column holds a field, e.g. `--column customer_id=Customer`
        /// (fields without a mapping are read from a column of their own name).
        #[arg(long = "column", value_name = "FIELD=HEADER")]
        columns: Vec<String>,
        /// CSV: the kind of every row, when there is no `kind` column.
        #[arg(long)]
        kind: Option<String>,
        /// Batches in flight at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        #[arg(long)]
        json: bool,
    },
    /// One customer: profile, recent feedback, follow-ups.
    Profile {
        #[command(flatten)]
        target: target::AwsTarget,
        customer_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Customers in a segment (new, active, promoter, passive, detractor, at_risk,
    /// champion), highest churn risk first.
    Segment {
        #[command(flatten)]
        target: target::AwsTarget,
        name: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Reports from the deployed table (real AWS or a local endpoint).
    Report {
        #[command(subcommand)]
        report: ReportCommand,
    },
    /// GDPR erasure: delete everything about a customer, keep a suppression entry.
    Erase {
        #[command(flatten)]
        target: target::AwsTarget,
        customer_id: String,
        /// Confirm: erasure cannot be undone.
        #[arg(long)]
        yes: bool,
        #[arg(long)]
        json: bool,
    },
    /// Record a customer's consent as staff heard it (stays until the next explicit change).
    Consent {
        #[command(flatten)]
        target: target::AwsTarget,
        customer_id: String,
        #[arg(long, value_enum)]
        email: Option<ops::Switch>,
        #[arg(long, value_enum)]
        sms: Option<ops::Switch>,
        #[arg(long, value_enum)]
        phone: Option<ops::Switch>,
        /// Who or where the statement came from (recorded with it).
        #[arg(long, default_value = "staff")]
        source: String,
        #[arg(long)]
        json: bool,
    },
    /// The ingest dead-letter queue.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// The dashboard page on http://127.0.0.1:PORT/ (or --output FILE).
    Dashboard {
        #[command(flatten)]
        target: target::AwsTarget,
        /// Show the embedded demo data instead of a table.
        #[arg(long)]
        demo: bool,
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Write the page to this file and exit.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// The real functions against a local AWS endpoint (moto): see `make local-up`.
    Local {
        #[command(subcommand)]
        command: LocalCommand,
    },
}

#[derive(Subcommand)]
enum DlqCommand {
    /// Show what is in the dead-letter queue (nothing is removed).
    List {
        #[command(flatten)]
        target: target::AwsTarget,
        #[arg(long, default_value_t = 50)]
        max: usize,
        #[arg(long)]
        json: bool,
    },
    /// Move messages back to the ingest queue.
    Redrive {
        #[command(flatten)]
        target: target::AwsTarget,
        #[arg(long, default_value_t = 10_000)]
        max: usize,
        /// Only count what would be moved.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ReportCommand {
    /// NPS per day or week, from the daily aggregates.
    Nps {
        #[command(flatten)]
        target: target::AwsTarget,
        /// First day, YYYY-MM-DD (default: 29 days before --to).
        #[arg(long)]
        from: Option<String>,
        /// Last day, YYYY-MM-DD (default: today, UTC).
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value = "day")]
        granularity: String,
        #[arg(long)]
        json: bool,
    },
    /// NPS drivers: each theme's impact on the score over a date range.
    Drivers {
        #[command(flatten)]
        target: target::AwsTarget,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        json: bool,
    },
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
    /// Run the ingest and follow-up handlers in process over the local queues until
    /// they are empty (no cargo lambda needed; follow-ups in dry-run).
    Drain {
        #[command(flatten)]
        target: LocalTarget,
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
            LocalCommand::Drain { target } => {
                local::drain(&target.endpoint_url, &target.prefix).await
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

fn block_on<F: std::future::Future<Output = anyhow::Result<ExitCode>>>(
    f: F,
) -> anyhow::Result<ExitCode> {
    tokio::runtime::Runtime::new()?.block_on(f)
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
        Command::Train { opts } => train::train(&opts),
        Command::Dashboard {
            target,
            demo,
            port,
            output,
        } => block_on(async move {
            let page = || async {
                if demo {
                    dashboard::demo_page()
                } else {
                    dashboard::table_page(&target.resolve().await?).await
                }
            };
            match output {
                Some(path) => dashboard::write(&path, &page().await?),
                None => dashboard::serve(port, page).await,
            }
        }),
        Command::Send {
            target,
            file,
            csv,
            columns,
            kind,
            concurrency,
            json,
        } => block_on(async move {
            let is_csv = csv
                || file
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
            let mapping = if is_csv {
                let columns = columns
                    .iter()
                    .map(|c| {
                        c.split_once('=')
                            .map(|(f, h)| (f.trim().to_owned(), h.trim().to_owned()))
                            .ok_or_else(|| anyhow::anyhow!("--column {c:?} is not FIELD=HEADER"))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                Some(ops::CsvMapping { columns, kind })
            } else {
                None
            };
            ops::send(&target.resolve().await?, &file, mapping, concurrency, json).await
        }),
        Command::Profile {
            target,
            customer_id,
            json,
        } => block_on(
            async move { ops::profile(&target.resolve().await?, &customer_id, json).await },
        ),
        Command::Segment {
            target,
            name,
            limit,
            json,
        } => block_on(
            async move { ops::segment(&target.resolve().await?, &name, limit, json).await },
        ),
        Command::Erase {
            target,
            customer_id,
            yes,
            json,
        } => {
            block_on(
                async move { ops::erase(&target.resolve().await?, &customer_id, yes, json).await },
            )
        }
        Command::Consent {
            target,
            customer_id,
            email,
            sms,
            phone,
            source,
            json,
        } => block_on(async move {
            let switches = ops::ConsentSwitches { email, sms, phone };
            ops::consent(
                &target.resolve().await?,
                &customer_id,
                &switches,
                &source,
                json,
            )
            .await
        }),
        Command::Dlq { command } => block_on(async move {
            match command {
                DlqCommand::List { target, max, json } => {
                    ops::dlq_list(&target.resolve().await?, max, json).await
                }
                DlqCommand::Redrive {
                    target,
                    max,
                    dry_run,
                    json,
                } => ops::dlq_redrive(&target.resolve().await?, max, dry_run, json).await,
            }
        }),
        Command::Report { report } => block_on(async move {
            match report {
                ReportCommand::Followups { target, json } => {
                    commands::report_followups(&target, json).await
                }
                ReportCommand::Nps {
                    target,
                    from,
                    to,
                    granularity,
                    json,
                } => {
                    ops::report_nps(&target.resolve().await?, &from, &to, &granularity, json).await
                }
                ReportCommand::Drivers {
                    target,
                    from,
                    to,
                    json,
                } => ops::report_drivers(&target.resolve().await?, &from, &to, json).await,
            }
        }),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("feedloop: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
