//! The `iam-conformance` command: parse, build a run, execute, map to an exit code.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use iam_conformance::{
    Baseline, Level, Run, RunError, Server, ServerConfig, Target, TargetKind, catalogue, exit,
};

/// A property-based conformance harness for the AWS IAM SSH-public-key API.
#[derive(Parser)]
#[command(name = "iam-conformance", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the suite against a target (default: the embedded reference server).
    Run(RunArgs),
    /// Serve the embedded reference server on 127.0.0.1.
    Serve {
        /// The port (0: any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// List the case classes with their operation, level and provenance.
    List,
}

#[derive(Args)]
struct RunArgs {
    /// The IAM endpoint (also AWS_ENDPOINT_URL_IAM, then AWS_ENDPOINT_URL).
    #[arg(long, env = "AWS_ENDPOINT_URL_IAM")]
    endpoint: Option<String>,
    /// What kind of target the endpoint is.
    #[arg(long, value_enum)]
    target_kind: Option<TargetKind>,
    /// The signing region.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// How deep to check.
    #[arg(long, value_enum, default_value_t = Level::Messages)]
    level: Level,
    /// Count divergences from inferred expectations as failures.
    #[arg(long)]
    strict: bool,
    /// Only case classes whose id matches this glob (repeatable).
    #[arg(long)]
    only: Vec<String>,
    /// Cases generated per class.
    #[arg(long, default_value_t = 100)]
    cases: u32,
    /// The seed; the same seed generates the same cases (default: random, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Cases in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1024))]
    jobs: u16,
    /// Known divergences of this target (TOML); they do not fail the run.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write a baseline of this run's divergences here (to start a new target's baseline).
    #[arg(long)]
    write_baseline: Option<PathBuf>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 10.0, allow_negative_numbers = true)]
    timeout: f64,
    /// Stop sending this many seconds after the run starts; unfinished cases
    /// are reported as not run and the run exits 3 (default: no deadline).
    #[arg(long, allow_negative_numbers = true)]
    deadline: Option<f64>,
    /// Permit a run against real AWS (amazonaws.com).
    #[arg(long)]
    allow_aws: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return ExitCode::from(exit::TRANSPORT);
        }
    };
    let code = match cli.command {
        Command::Run(args) => runtime.block_on(run(args)),
        Command::Serve { port } => runtime.block_on(serve(port)),
        Command::List => list(),
    };
    ExitCode::from(code)
}

async fn run(args: RunArgs) -> u8 {
    match plan(&args) {
        Ok(plan) => execute(plan, &args).await,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

/// Validates the arguments and builds the run.
fn plan(args: &RunArgs) -> Result<Run, RunError> {
    let endpoint = args
        .endpoint
        .clone()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
        .filter(|e| !e.is_empty());
    for (flag, secs) in [
        ("--timeout", Some(args.timeout)),
        ("--deadline", args.deadline),
    ] {
        if let Some(secs) = secs
            && (!secs.is_finite() || secs <= 0.0 || Duration::try_from_secs_f64(secs).is_err())
        {
            return Err(RunError::Usage(format!(
                "{flag} must be a positive number of seconds"
            )));
        }
    }
    let mut run = match endpoint {
        None => Run::embedded(),
        Some(e) => {
            let url: url::Url = e
                .parse()
                .map_err(|err| RunError::Usage(format!("--endpoint {e:?} is not a URL: {err}")))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(RunError::Usage(format!(
                    "--endpoint {e:?} must be http or https"
                )));
            }
            let mut target = Target::new(url, TargetKind::Generic);
            target.kind = args.target_kind.unwrap_or(if target.is_aws() {
                TargetKind::Aws
            } else {
                TargetKind::Generic
            });
            target.region = args.region.clone();
            Run::against(target)
        }
    };
    let baseline = match &args.baseline {
        Some(path) => Baseline::load(path).map_err(RunError::Usage)?,
        None => Baseline::default(),
    };
    let seed = args
        .seed
        .unwrap_or_else(|| u64::from(std::process::id()) << 32 ^ now_nanos());
    run = run
        .cases(args.cases)
        .seed(seed)
        .jobs(usize::from(args.jobs))
        .level(args.level)
        .strict(args.strict)
        .only(args.only.clone())
        .baseline(baseline)
        .timeout(Duration::from_secs_f64(args.timeout))
        .allow_aws(args.allow_aws)
        .progress(true);
    if let Some(secs) = args.deadline {
        run = run.deadline(Duration::from_secs_f64(secs));
    }
    Ok(run)
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

async fn execute(run: Run, args: &RunArgs) -> u8 {
    let classes = match run.validate() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return e.exit_code();
        }
    };
    let target = run.target().map_or_else(
        || "the embedded reference server".to_string(),
        |t| format!("{} ({:?})", t.endpoint, t.kind),
    );
    eprintln!(
        "iam-conformance: {} classes x {} cases against {target}, seed {}",
        classes.len(),
        run.settings().cases,
        run.settings().seed
    );
    let report = match run.execute().await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return e.exit_code();
        }
    };
    print!("{}", report.render_console());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).expect("reports serialise");
        if let Err(e) = std::fs::write(path, json) {
            eprintln!("error: failed to write {}: {e}", path.display());
            return exit::USAGE;
        }
    }
    if let Some(path) = &args.write_baseline {
        let baseline = Baseline::from_divergences(&report.target.endpoint, &report.divergences);
        let text = toml::to_string_pretty(&baseline).expect("baselines serialise");
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("error: failed to write {}: {e}", path.display());
            return exit::USAGE;
        }
    }
    let code = report.exit_code();
    let why = match code {
        exit::CONFORMANT => "conformant: nothing beyond the baseline",
        exit::DIVERGENT => "divergences found (or stale baseline entries)",
        exit::TRANSPORT if report.summary.not_run > 0 => {
            "the deadline passed: some cases were not run"
        }
        exit::TRANSPORT => "transport trouble: some cases could not be judged",
        exit::NOTHING_RAN => "no case ran",
        _ => "",
    };
    eprintln!("exit {code}: {why}");
    code
}

async fn serve(port: u16) -> u8 {
    let server = match Server::start(port, ServerConfig::default()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: failed to start the embedded server on 127.0.0.1:{port}: {e}");
            return exit::USAGE;
        }
    };
    println!("serving the embedded reference server at {}", server.url());
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("served {} requests", server.requests());
    exit::CONFORMANT
}

fn list() -> u8 {
    let width = catalogue().iter().map(|c| c.id.len()).max().unwrap_or(5);
    println!(
        "{:<width$}  {:<20}  {:<8}  {:<16}  summary",
        "class", "operation", "level", "provenance"
    );
    for c in catalogue() {
        let provenance = format!("{}/{}", c.codes.as_str(), c.message.as_str());
        println!(
            "{:<width$}  {:<20}  {:<8}  {:<16}  {}",
            c.id,
            c.operation.name(),
            c.level.as_str(),
            provenance,
            c.summary
        );
    }
    exit::CONFORMANT
}
