//! The commands that talk to a deployed stack (real AWS, or a local endpoint such as
//! moto). Behind the `aws` feature: the embedded demo builds without the AWS SDK.
//!
//! Long because it is the one declarative list of the AWS commands and their checked
//! options (clap derives); the work is in `query.rs`, `ops.rs`, `local.rs`.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::Subcommand;

/// The days a report covers.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct DateRange {
    /// First day, YYYY-MM-DD (default: 29 days before --to).
    #[arg(long)]
    pub from: Option<NaiveDate>,
    /// Last day, YYYY-MM-DD (default: today, UTC).
    #[arg(long)]
    pub to: Option<NaiveDate>,
}

/// The NPS report's periods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Granularity {
    Day,
    Week,
}

impl From<Granularity> for feedloop_core::reports::Granularity {
    fn from(g: Granularity) -> Self {
        match g {
            Granularity::Day => feedloop_core::reports::Granularity::Day,
            Granularity::Week => feedloop_core::reports::Granularity::Week,
        }
    }
}

use crate::{dashboard, local, ops, query, target};

#[derive(Subcommand)]
pub enum AwsCommand {
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
    },
    /// One customer: profile, recent feedback, follow-ups.
    Profile {
        #[command(flatten)]
        target: target::AwsTarget,
        customer_id: String,
    },
    /// Customers in a segment (new, active, promoter, passive, detractor, at_risk,
    /// champion), highest churn risk first.
    Segment {
        #[command(flatten)]
        target: target::AwsTarget,
        name: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
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
    },
    /// Record a customer's consent as staff heard it (stays until the next explicit change).
    Consent {
        #[command(flatten)]
        target: target::AwsTarget,
        customer_id: String,
        #[arg(long, value_enum)]
        email: Option<query::Switch>,
        #[arg(long, value_enum)]
        sms: Option<query::Switch>,
        #[arg(long, value_enum)]
        phone: Option<query::Switch>,
        /// Who or where the statement came from (recorded with it).
        #[arg(long, default_value = "staff")]
        source: String,
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
pub enum DlqCommand {
    /// Show what is in the dead-letter queue (nothing is removed).
    List {
        #[command(flatten)]
        target: target::AwsTarget,
        #[arg(long, default_value_t = 50)]
        max: usize,
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
    },
}

#[derive(Subcommand)]
pub enum ReportCommand {
    /// NPS per day or week, from the daily aggregates.
    Nps {
        #[command(flatten)]
        target: target::AwsTarget,
        #[command(flatten)]
        range: DateRange,
        #[arg(long, value_enum, default_value_t = Granularity::Day)]
        granularity: Granularity,
    },
    /// NPS drivers: each theme's impact on the score over a date range.
    Drivers {
        #[command(flatten)]
        target: target::AwsTarget,
        #[command(flatten)]
        range: DateRange,
    },
    /// A/B results per playbook and template variant: sent, responded (next feedback
    /// within 30 days), mean NPS and sentiment change.
    Followups {
        #[command(flatten)]
        target: target::AwsTarget,
    },
}

/// Where the local stack is: endpoint and resource-name prefix.
#[derive(clap::Args)]
pub struct LocalTarget {
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
pub enum LocalCommand {
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

pub fn run(command: AwsCommand, json: bool) -> anyhow::Result<ExitCode> {
    match command {
        AwsCommand::Local { command } => local(command),
        AwsCommand::Dashboard {
            target,
            demo,
            port,
            output,
        } => block_on(async move {
            let page = || async {
                if demo {
                    dashboard::demo_page().await
                } else {
                    dashboard::table_page(&target.resolve().await?).await
                }
            };
            match output {
                Some(path) => dashboard::write(&path, &page().await?),
                None => dashboard::serve(port, page).await,
            }
        }),
        AwsCommand::Send {
            target,
            file,
            csv,
            columns,
            kind,
            concurrency,
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
        AwsCommand::Profile {
            target,
            customer_id,
        } => block_on(
            async move { query::profile(&target.resolve().await?, &customer_id, json).await },
        ),
        AwsCommand::Segment {
            target,
            name,
            limit,
        } => block_on(
            async move { query::segment(&target.resolve().await?, &name, limit, json).await },
        ),
        AwsCommand::Erase {
            target,
            customer_id,
            yes,
        } => block_on(async move {
            query::erase(&target.resolve().await?, &customer_id, yes, json).await
        }),
        AwsCommand::Consent {
            target,
            customer_id,
            email,
            sms,
            phone,
            source,
        } => block_on(async move {
            let switches = query::ConsentSwitches { email, sms, phone };
            query::consent(
                &target.resolve().await?,
                &customer_id,
                &switches,
                &source,
                json,
            )
            .await
        }),
        AwsCommand::Dlq { command } => block_on(async move {
            match command {
                DlqCommand::List { target, max } => {
                    ops::dlq_list(&target.resolve().await?, max, json).await
                }
                DlqCommand::Redrive {
                    target,
                    max,
                    dry_run,
                } => ops::dlq_redrive(&target.resolve().await?, max, dry_run, json).await,
            }
        }),
        AwsCommand::Report { report } => block_on(async move {
            match report {
                ReportCommand::Followups { target } => {
                    query::report_followups(&target.resolve().await?, json).await
                }
                ReportCommand::Nps {
                    target,
                    range,
                    granularity,
                } => {
                    query::report_nps(&target.resolve().await?, range, granularity.into(), json)
                        .await
                }
                ReportCommand::Drivers { target, range } => {
                    query::report_drivers(&target.resolve().await?, range, json).await
                }
            }
        }),
    }
}
