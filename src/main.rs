//! The `iam-conformance` command: parse, build a run (or one per target of a
//! matrix), execute, write the reports, map to an exit code.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use iam_conformance::matrix::exit_meaning;
use iam_conformance::profile::{self, Env, Signing};
use iam_conformance::regression::Regression;
use iam_conformance::runner::{CaseOutcome, SNAPSHOT_SEED, Session, run_case_in};
use iam_conformance::snapshot::Recorded;
use iam_conformance::wire::Client;
use iam_conformance::{
    Baseline, Faults, Ledger, Level, Matrix, Plan, Policy, Run, RunError, RunId, Server,
    ServerConfig, Target, TargetKind, TargetRun, catalogue, exit, junit, markdown, record,
    regression, select,
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
    /// Run the suite against several targets and write the conformance matrix.
    Matrix(MatrixArgs),
    /// Serve the embedded reference server on 127.0.0.1.
    Serve(ServeArgs),
    /// List the case classes with their operation, level and provenance.
    List,
    /// Delete what runs left behind on a target (users under /iam-conformance/
    /// named iamc-…, found with ListUsers and in this machine's ledgers), and nothing else.
    Clean(CleanArgs),
    /// Record each class's simplest case from real AWS into corpus/recordings/
    /// (provenance live, the date, the region), for the snapshot trials of
    /// `cargo test` and `cargo insta review`.
    Record(RecordArgs),
    /// Re-run a saved reproducer (a file of corpus/regressions/): its fixtures
    /// and request, or its whole sequence, re-signed, with every check's verdict.
    Replay(ReplayArgs),
}

#[derive(Args)]
struct ReplayArgs {
    /// The saved reproducer (JSON).
    file: PathBuf,
    /// The IAM endpoint (else AWS_ENDPOINT_URL_IAM, then AWS_ENDPOINT_URL;
    /// none: the embedded reference server).
    #[arg(long)]
    endpoint: Option<String>,
    /// What kind of target the endpoint is.
    #[arg(long, value_enum)]
    target_kind: Option<TargetKind>,
    /// The signing region (else AWS_REGION, AWS_DEFAULT_REGION, the profile's
    /// region, us-east-1).
    #[arg(long)]
    region: Option<String>,
    /// Permit a replay against real AWS (amazonaws.com, any AWS partition).
    #[arg(long)]
    allow_aws: bool,
    /// Where the ledger of the users the replay creates goes (default: ~/.local/state/iam-conformance/ledgers).
    #[arg(long, value_name = "DIR")]
    ledger_dir: Option<PathBuf>,
    /// Wait at most this many seconds for writes to show in reads (eventual
    /// consistency; default: 10 against AWS, 0 otherwise).
    #[arg(long, value_parser = seconds, allow_negative_numbers = true)]
    consistency_wait: Option<Duration>,
    #[command(flatten)]
    policy: PolicyArgs,
}

#[derive(Args)]
struct RunArgs {
    /// The IAM endpoint (else AWS_ENDPOINT_URL_IAM, then AWS_ENDPOINT_URL;
    /// none: the embedded reference server).
    #[arg(long)]
    endpoint: Option<String>,
    /// What kind of target the endpoint is.
    #[arg(long, value_enum)]
    target_kind: Option<TargetKind>,
    #[command(flatten)]
    settings: SettingsArgs,
    /// Known divergences of this target (TOML); they do not fail the run.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Write a baseline of this run's divergences here (to start a new target's baseline).
    #[arg(long)]
    write_baseline: Option<PathBuf>,
    #[command(flatten)]
    sinks: SinkArgs,
}

#[derive(Args)]
struct CleanArgs {
    /// The IAM endpoint to clean (also AWS_ENDPOINT_URL_IAM, then AWS_ENDPOINT_URL).
    #[arg(long)]
    endpoint: Option<String>,
    /// The signing region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's, us-east-1).
    #[arg(long)]
    region: Option<String>,
    /// Only the users of this run (its id, as in /iam-conformance/<run-id>/).
    #[arg(long)]
    run_id: Option<String>,
    /// The ledgers to read and tidy (default: ~/.local/state/iam-conformance/ledgers).
    #[arg(long, value_name = "DIR")]
    ledger_dir: Option<PathBuf>,
    /// List what would be deleted, delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Permit cleaning real AWS (amazonaws.com, any AWS partition).
    #[arg(long)]
    allow_aws: bool,
}

#[derive(Args)]
struct ServeArgs {
    /// The port (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Answer this fraction of requests (0 to 1) with 400 Throttling, as IAM
    /// does over its request rate, before touching any state.
    #[arg(long, default_value_t = 0.0, value_parser = rate, value_name = "RATE")]
    throttle_rate: f64,
    /// Answer this fraction of requests (0 to 1) with 500 ServiceFailure,
    /// before touching any state.
    #[arg(long, default_value_t = 0.0, value_parser = rate, value_name = "RATE")]
    failure_rate: f64,
    /// Eventual consistency: answer reads from the state as it was this many
    /// seconds ago (writes apply at once).
    #[arg(long, value_parser = seconds, value_name = "SECS")]
    consistency_delay: Option<Duration>,
    /// Crash after answering the Nth request: exit 5 at once.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    crash_after: Option<u64>,
    /// Seeds which requests are throttled or failed.
    #[arg(long, default_value_t = 0, value_name = "SEED")]
    fault_seed: u64,
}

/// A fraction from 0 to 1.
fn rate(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|r| (0.0..=1.0).contains(r))
        .ok_or_else(|| "must be a number from 0 to 1".into())
}

/// A non-negative number of seconds.
fn seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| "must be a non-negative number of seconds".into())
}

/// A request rate: a non-negative number of requests per second.
fn requests_per_second(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r >= 0.0)
        .ok_or_else(|| "must be a number of requests per second (0: no limit)".into())
}

/// A positive number of seconds.
fn positive_seconds(text: &str) -> Result<Duration, String> {
    seconds(text)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| "must be a positive number of seconds".into())
}

#[derive(Args)]
struct MatrixArgs {
    /// A target: NAME=URL[,KIND[,VERSION]] (repeatable). NAME names its baseline
    /// (DIR/NAME.toml) and its regressions; KIND defaults to the kind named NAME,
    /// if there is one, else generic.
    #[arg(
        long = "target",
        required = true,
        value_name = "NAME=URL[,KIND[,VERSION]]"
    )]
    targets: Vec<String>,
    #[command(flatten)]
    settings: SettingsArgs,
    /// Where the baselines are: DIR/NAME.toml for target NAME (none: no baseline).
    #[arg(long, default_value = "corpus/baselines")]
    baseline_dir: PathBuf,
    #[command(flatten)]
    sinks: SinkArgs,
    /// Put the Markdown matrix into this file between its matrix markers.
    #[arg(long)]
    readme: Option<PathBuf>,
}

#[derive(Args)]
struct RecordArgs {
    /// The IAM endpoint (else AWS_ENDPOINT_URL_IAM, then AWS_ENDPOINT_URL;
    /// none: https://iam.amazonaws.com/).
    #[arg(long)]
    endpoint: Option<String>,
    /// The signing region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's, us-east-1).
    #[arg(long)]
    region: Option<String>,
    /// Only case classes whose id matches this glob (repeatable).
    #[arg(long)]
    only: Vec<String>,
    /// The seed each class's simplest case is shrunk from (the snapshot trials' own by default).
    #[arg(long, default_value_t = SNAPSHOT_SEED)]
    seed: u64,
    /// Permit recording from real AWS (amazonaws.com, any AWS partition).
    #[arg(long)]
    allow_aws: bool,
    /// Where the recordings go, one <class>.json per class.
    #[arg(long, value_name = "DIR", default_value = record::DIR)]
    out: PathBuf,
    /// Where the ledger of what the recording creates goes (default: ~/.local/state/iam-conformance/ledgers).
    #[arg(long, value_name = "DIR")]
    ledger_dir: Option<PathBuf>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value = "10", value_parser = positive_seconds, allow_negative_numbers = true)]
    timeout: Duration,
    #[command(flatten)]
    policy: PolicyArgs,
}

/// How requests are sent: the target's default policy, with these overrides.
#[derive(Args)]
struct PolicyArgs {
    /// Retries after a throttled or 5xx answer, with backoff and jitter
    /// (default: 5 against AWS, 3 otherwise).
    #[arg(long)]
    retries: Option<u32>,
    /// Requests per second at most, 0 for no limit (default: 5 against AWS, no limit otherwise).
    #[arg(long, value_parser = requests_per_second, allow_negative_numbers = true)]
    rate: Option<f64>,
    /// Send at most this many requests (cleanup is exempt); what is beyond is in error (exit 3).
    #[arg(long)]
    max_requests: Option<u64>,
}

impl PolicyArgs {
    fn apply(&self, policy: Policy) -> Policy {
        policy.overridden(self.retries, self.rate, self.max_requests)
    }
}

/// How every target is run.
#[derive(Args)]
struct SettingsArgs {
    /// The signing region (else AWS_REGION, AWS_DEFAULT_REGION, the profile's
    /// region, us-east-1).
    #[arg(long)]
    region: Option<String>,
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
    /// Per-request timeout in seconds.
    #[arg(long, default_value = "10", value_parser = positive_seconds, allow_negative_numbers = true)]
    timeout: Duration,
    /// Stop sending this many seconds after the run starts; unfinished cases
    /// are reported as not run and the run exits 3 (default: no deadline).
    #[arg(long, value_parser = positive_seconds, allow_negative_numbers = true)]
    deadline: Option<Duration>,
    /// Permit a run against real AWS (amazonaws.com, any AWS partition).
    #[arg(long)]
    allow_aws: bool,
    #[command(flatten)]
    policy: PolicyArgs,
    /// Wait at most this many seconds for writes to show in reads (eventual
    /// consistency; default: 10 against AWS, 0 otherwise).
    #[arg(long, value_parser = seconds, allow_negative_numbers = true)]
    consistency_wait: Option<Duration>,
    /// Where the run writes its ledger of what it creates (default: ~/.local/state/iam-conformance/ledgers).
    #[arg(long, value_name = "DIR")]
    ledger_dir: Option<PathBuf>,
}

/// Where the reports go.
#[derive(Args)]
struct SinkArgs {
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write a JUnit XML report here (one test case per target and case class).
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write the Markdown report (the conformance matrix) here.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Save the shrunk case of every divergence under DIR/<target>/.
    #[arg(long, value_name = "DIR")]
    regressions: Option<PathBuf>,
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
        Command::Matrix(args) => runtime.block_on(matrix(args)),
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Clean(args) => runtime.block_on(clean(args)),
        Command::List => list(),
        Command::Record(args) => runtime.block_on(record(args)),
        Command::Replay(args) => runtime.block_on(replay(args)),
    };
    ExitCode::from(code)
}

/// Prints a startup or usage error and returns its exit code.
fn fail(e: &RunError) -> u8 {
    eprintln!("error: {e}");
    e.exit_code()
}

async fn run(args: RunArgs) -> u8 {
    let seed = seed(&args.settings);
    let run = match plan(&args, &Env::process()).and_then(|r| configure(r, &args.settings, seed)) {
        Ok(run) => run,
        Err(e) => return fail(&e),
    };
    let name = run.target().map_or(TargetKind::Embedded, |t| t.kind).name();
    if run.target().is_some_and(Target::is_aws) {
        match run.plan() {
            Ok(plan) => eprintln!("{}", plan.describe()),
            Err(e) => return fail(&e),
        }
    }
    let target = match execute(run, name, None).await {
        Ok(t) => t,
        Err(code) => return code,
    };
    print!("{}", target.report.render_console());
    let json = serde_json::to_string_pretty(&target.report).expect("reports serialise");
    if let Some(path) = &args.write_baseline {
        let baseline =
            Baseline::from_divergences(&target.report.target.endpoint, &target.report.divergences);
        let text = toml::to_string_pretty(&baseline).expect("baselines serialise");
        if let Err(code) = write(path, &text) {
            return code;
        }
    }
    let code = target.report.exit_code();
    let stopped = (target.report.summary.not_run > 0).then(|| {
        let why = target.report.run.stopped.as_deref();
        format!(
            "{}: some cases were not run",
            why.unwrap_or(iam_conformance::runner::DEADLINE_PASSED)
        )
    });
    let matrix = matrix_of(&args.settings, seed, vec![target]);
    if let Err(code) = write_sinks(&args.sinks, &matrix, &json) {
        return code;
    }
    let why = match &stopped {
        Some(why) if code == exit::TRANSPORT => why.as_str(),
        _ => exit_meaning(code),
    };
    eprintln!("exit {code}: {why}");
    code
}

/// Validates the run's target arguments and builds the run; a remote target
/// is signed as the AWS tools would sign (see [`profile::resolve`]).
fn plan(args: &RunArgs, env: &Env) -> Result<Run, RunError> {
    let mut run = match profile::endpoint(env, args.endpoint.as_deref()) {
        None => Run::embedded(),
        Some(e) => {
            let signing = profile::resolve(env, args.settings.region.as_deref())?;
            let target = target(&e, args.target_kind, &signing)
                .map_err(|e| RunError::Usage(format!("--endpoint {e}")))?;
            Run::against(target)
        }
    };
    if let Some(path) = &args.baseline {
        run = run.baseline(Baseline::load(path).map_err(RunError::Usage)?);
    }
    Ok(run)
}

/// A target at an http(s) endpoint, signed with `signing`; without a kind,
/// `aws` or `generic` by its host.
fn target(endpoint: &str, kind: Option<TargetKind>, signing: &Signing) -> Result<Target, RunError> {
    let url: url::Url = endpoint
        .parse()
        .map_err(|err| RunError::Usage(format!("{endpoint:?} is not a URL: {err}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(RunError::Usage(format!(
            "{endpoint:?} must be http or https"
        )));
    }
    let mut target = Target::new(url, TargetKind::Generic);
    target.region.clone_from(&signing.region);
    target.credentials = signing.credentials.clone();
    target.kind = kind.unwrap_or(if target.is_aws() {
        TargetKind::Aws
    } else {
        TargetKind::Generic
    });
    Ok(target)
}

fn seed(args: &SettingsArgs) -> u64 {
    args.seed
        .unwrap_or_else(|| u64::from(std::process::id()) << 32 ^ now_nanos())
}

/// Applies the shared settings to a run and validates it.
fn configure(run: Run, args: &SettingsArgs, seed: u64) -> Result<Run, RunError> {
    let mut run = run
        .cases(args.cases)
        .seed(seed)
        .jobs(usize::from(args.jobs))
        .level(args.level)
        .strict(args.strict)
        .only(args.only.clone())
        .timeout(args.timeout)
        .allow_aws(args.allow_aws)
        .progress(true)
        .stop_on_ctrl_c(true)
        .ledger_dir(
            args.ledger_dir
                .clone()
                .unwrap_or_else(iam_conformance::ledger::default_dir),
        );
    if let Some(deadline) = args.deadline {
        run = run.deadline(deadline);
    }
    if let Some(wait) = args.consistency_wait {
        run = run.consistency_wait(wait);
    }
    if let Some(n) = args.policy.retries {
        run = run.retries(n);
    }
    if let Some(rate) = args.policy.rate {
        run = run.rate(rate);
    }
    if let Some(n) = args.policy.max_requests {
        run = run.max_requests(n);
    }
    run.validate()?;
    Ok(run)
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Runs one target, timed; a run that cannot start gives its exit code.
async fn execute(run: Run, name: String, version: Option<String>) -> Result<TargetRun, u8> {
    let target = run.target().map_or_else(
        || "the embedded reference server".to_string(),
        |t| {
            format!(
                "{} ({}) in {} with {}",
                t.endpoint,
                t.kind.name(),
                t.region,
                t.credentials.source()
            )
        },
    );
    eprintln!(
        "iam-conformance: {} classes x {} cases against {target}, seed {}",
        run.classes().map_or(0, |c| c.len()),
        run.settings().cases,
        run.settings().seed
    );
    let start = Instant::now();
    let report = run.execute().await.map_err(|e| fail(&e))?;
    Ok(TargetRun {
        name,
        version,
        seconds: start.elapsed().as_secs_f64(),
        report,
    })
}

fn matrix_of(args: &SettingsArgs, seed: u64, targets: Vec<TargetRun>) -> Matrix {
    Matrix {
        date: time::OffsetDateTime::now_utc().date().to_string(),
        seed,
        cases: args.cases,
        level: args.level,
        targets,
    }
}

/// One target of a matrix: NAME=URL[,KIND[,VERSION]].
struct TargetSpec {
    name: String,
    version: Option<String>,
    target: Target,
}

fn parse_target(spec: &str, signing: &Signing) -> Result<TargetSpec, RunError> {
    let usage = |why: &str| RunError::Usage(format!("--target {spec:?}: {why}"));
    let (name, rest) = spec
        .split_once('=')
        .ok_or_else(|| usage("expected NAME=URL[,KIND[,VERSION]]"))?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(usage("NAME must be lower-case letters, digits and '-'"));
    }
    let mut parts = rest.split(',');
    let url = parts.next().unwrap_or_default();
    let kind = parts
        .next()
        .map(|k| {
            <TargetKind as clap::ValueEnum>::from_str(k, true)
                .map_err(|_| usage(&format!("{k:?} is not a target kind")))
        })
        .transpose()?;
    let version = parts.next().filter(|v| !v.is_empty()).map(str::to_string);
    if parts.next().is_some() {
        return Err(usage("expected NAME=URL[,KIND[,VERSION]]"));
    }
    let named = <TargetKind as clap::ValueEnum>::from_str(name, false).ok();
    let target = target(url, kind.or(named), signing).map_err(|e| usage(&e.to_string()))?;
    Ok(TargetSpec {
        name: name.to_string(),
        version,
        target,
    })
}

async fn matrix(args: MatrixArgs) -> u8 {
    let seed = seed(&args.settings);
    let signing = match profile::resolve(&Env::process(), args.settings.region.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let mut runs = Vec::new();
    for spec in &args.targets {
        let planned = parse_target(spec, &signing).and_then(|spec| {
            if runs
                .iter()
                .any(|(s, _): &(TargetSpec, Run)| s.name == spec.name)
            {
                return Err(RunError::Usage(format!(
                    "--target {}: the name is given twice",
                    spec.name
                )));
            }
            let path = args.baseline_dir.join(format!("{}.toml", spec.name));
            let baseline = if path.exists() {
                Baseline::load(&path).map_err(RunError::Usage)?
            } else {
                eprintln!(
                    "iam-conformance: no baseline for {} ({})",
                    spec.name,
                    path.display()
                );
                Baseline::default()
            };
            let run = Run::against(spec.target.clone()).baseline(baseline);
            Ok((spec, configure(run, &args.settings, seed)?))
        });
        match planned {
            Ok(r) => runs.push(r),
            Err(e) => return fail(&e),
        }
    }
    let mut targets = Vec::new();
    for (spec, run) in runs {
        let target = match execute(run, spec.name, spec.version).await {
            Ok(t) => t,
            Err(code) => return code,
        };
        println!(
            "\n== {}\n{}",
            target.label(),
            target.report.render_console()
        );
        targets.push(target);
    }
    let matrix = matrix_of(&args.settings, seed, targets);
    let json = serde_json::to_string_pretty(&matrix).expect("matrices serialise");
    if let Err(code) = write_sinks(&args.sinks, &matrix, &json) {
        return code;
    }
    if let Some(path) = &args.readme {
        let spliced = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|doc| markdown::splice(&doc, &markdown::render(&matrix)));
        match spliced {
            Ok(text) => {
                if let Err(code) = write(path, &text) {
                    return code;
                }
            }
            Err(e) => {
                eprintln!("error: failed to update {}: {e}", path.display());
                return exit::USAGE;
            }
        }
    }
    for t in &matrix.targets {
        let code = t.report.exit_code();
        eprintln!(
            "{}: exit {code} ({}), {} cases in {:.1} s ({:.0} cases/s)",
            t.label(),
            exit_meaning(code),
            t.report.summary.cases,
            t.seconds,
            t.rate()
        );
    }
    let code = matrix.exit_code();
    eprintln!("exit {code}: {}", exit_meaning(code));
    code
}

/// Writes the reports the arguments ask for; `json` is the run's or the matrix's.
fn write_sinks(sinks: &SinkArgs, matrix: &Matrix, json: &str) -> Result<(), u8> {
    if let Some(path) = &sinks.json {
        write(path, json)?;
    }
    if let Some(path) = &sinks.markdown {
        write(path, &markdown::render(matrix))?;
    }
    if let Some(path) = &sinks.junit {
        write(path, &junit::render(matrix))?;
    }
    if let Some(dir) = &sinks.regressions {
        for t in &matrix.targets {
            match regression::save(dir, &t.name, &t.label(), &t.report.divergences) {
                Ok(n) => eprintln!(
                    "{}: {n} regression file(s) written under {}",
                    t.label(),
                    dir.join(&t.name).display()
                ),
                Err(e) => {
                    eprintln!("error: failed to save regressions: {e}");
                    return Err(exit::USAGE);
                }
            }
        }
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), u8> {
    std::fs::write(path, text).map_err(|e| {
        eprintln!("error: failed to write {}: {e}", path.display());
        exit::USAGE
    })
}

/// Replays one saved reproducer and prints each check's verdict: exit 0 when
/// the target answers as AWS does, 1 when it diverges, 3 on transport trouble.
async fn replay(args: ReplayArgs) -> u8 {
    let regression = match Regression::load(&args.file) {
        Ok(r) => r,
        Err(e) => return fail(&RunError::Usage(e)),
    };
    let server;
    let env = Env::process();
    let (target, ledger_dir) = match profile::endpoint(&env, args.endpoint.as_deref()) {
        Some(e) => {
            let target = profile::resolve(&env, args.region.as_deref())
                .and_then(|signing| target(&e, args.target_kind, &signing))
                .and_then(|t| t.guard(args.allow_aws).map(|()| t));
            match target {
                Ok(t) => (
                    t,
                    Some(
                        args.ledger_dir
                            .unwrap_or_else(iam_conformance::ledger::default_dir),
                    ),
                ),
                Err(e) => return fail(&e),
            }
        }
        None => {
            server = match Server::start(0, ServerConfig::default()).await {
                Ok(s) => s,
                Err(e) => return fail(&RunError::Start(format!("embedded server: {e}"))),
            };
            // Its users die with it: no ledger on disk.
            (Target::new(server.url(), TargetKind::Embedded), None)
        }
    };
    let careful = match Careful::new(
        target,
        Duration::from_secs(10),
        ledger_dir,
        &args.policy,
        |plan| {
            plan.classes = 1;
            plan.add(&regression.case);
        },
    ) {
        Ok(c) => c.consistency_wait(args.consistency_wait),
        Err(e) => return fail(&e),
    };
    let target = careful.client.target();
    println!(
        "replaying {} ({} {}, found on {}) against {} in {} with {}",
        args.file.display(),
        regression.class,
        regression.check,
        regression.found_on,
        target.endpoint,
        target.region,
        target.credentials.source()
    );
    let session = careful.session();
    let work = run_case_in(&careful.client, &regression.case, Level::Messages, &session);
    let run = match careful.guard(work).await {
        Ok(run) => run,
        Err(e) => return fail(&e),
    };
    for request in run.exchange.setup.iter().chain(&run.exchange.request) {
        println!("  sent {}", request.form());
    }
    match run.outcome {
        CaseOutcome::Checked(checks) => {
            for c in &checks {
                let verdict = c.verdict(false).as_str();
                match &c.mismatch {
                    None => println!("{verdict:>10}  {}", c.check),
                    Some(m) => println!(
                        "{verdict:>10}  {} [{}]\n            expected: {}\n            actual:   {}",
                        c.check,
                        c.provenance.as_str(),
                        m.expected,
                        m.actual
                    ),
                }
            }
            if checks.iter().any(|c| c.mismatch.is_some()) {
                exit::DIVERGENT
            } else {
                exit::CONFORMANT
            }
        }
        CaseOutcome::Unsupported(detail) => {
            println!("unsupported: {detail}");
            exit::CONFORMANT
        }
        CaseOutcome::Error(e) => {
            eprintln!("error: {e}");
            exit::TRANSPORT
        }
    }
}

/// Deletes the harness's leftovers on a target: exit 0 when none remain, 3
/// when some could not be deleted or the target could not be reached.
async fn clean(args: CleanArgs) -> u8 {
    let env = Env::process();
    let Some(endpoint) = profile::endpoint(&env, args.endpoint.as_deref()) else {
        return fail(&RunError::Usage(
            "clean needs the target: --endpoint URL (or AWS_ENDPOINT_URL_IAM)".into(),
        ));
    };
    let target = profile::resolve(&env, args.region.as_deref())
        .and_then(|signing| target(&endpoint, None, &signing))
        .and_then(|t| t.guard(args.allow_aws).map(|()| t));
    let target = match target {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    let only = match args.run_id.as_deref().map(|id| {
        iam_conformance::RunId::parse(id)
            .ok_or_else(|| RunError::Usage(format!("--run-id {id:?} is not a run id")))
    }) {
        Some(Err(e)) => return fail(&e),
        Some(Ok(id)) => Some(id),
        None => None,
    };
    let client = match Client::new(target.clone(), Duration::from_secs(10)) {
        Ok(c) => c.with_policy(iam_conformance::Policy::for_target(&target)),
        Err(e) => return fail(&RunError::Start(e.to_string())),
    };
    let ledgers = args
        .ledger_dir
        .clone()
        .unwrap_or_else(iam_conformance::ledger::default_dir);
    let cleaned =
        match iam_conformance::clean::clean(&client, Some(&ledgers), only.as_ref(), args.dry_run)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::TRANSPORT;
            }
        };
    if let Some(why) = &cleaned.listing {
        eprintln!("note: {why}; only this machine's ledgers were read");
    }
    let verb = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    for user in &cleaned.removed {
        println!("{verb} {user}");
    }
    for user in &cleaned.failed {
        println!("could not delete {user}");
    }
    eprintln!(
        "clean: {} user(s) {verb}, {} could not be deleted, {} ledger(s) removed",
        cleaned.removed.len(),
        cleaned.failed.len(),
        cleaned.ledgers_removed
    );
    if cleaned.failed.is_empty() {
        exit::CONFORMANT
    } else {
        exit::TRANSPORT
    }
}

/// How work outside a run (record, replay) sends: as carefully as a run,
/// with the target's policy (retries, and a rate limit against AWS), its wait
/// for consistency, a ledger of the users it creates, and its clean-up swept
/// at the end, on Ctrl-C and after a panic.
struct Careful {
    client: Client,
    ledger: Ledger,
    wait: Duration,
}

impl Careful {
    /// Against AWS the plan (filled in by `plan`) is printed first. The
    /// ledger goes to `ledger_dir`, else it is kept in memory; the policy is
    /// the target's with the command line's overrides.
    fn new(
        target: Target,
        timeout: Duration,
        ledger_dir: Option<PathBuf>,
        overrides: &PolicyArgs,
        plan: impl FnOnce(&mut Plan),
    ) -> Result<Careful, RunError> {
        let policy = overrides.apply(Policy::for_target(&target));
        let run_id = RunId::new();
        if target.is_aws() {
            let mut p = Plan::new(&run_id, policy.clone());
            plan(&mut p);
            eprintln!("{}", p.describe());
        }
        let ledger = match ledger_dir {
            Some(dir) => Ledger::on_disk(&dir, run_id, target.endpoint.as_str())
                .map_err(|e| RunError::Start(format!("ledger in {}: {e}", dir.display())))?,
            None => Ledger::in_memory(run_id),
        };
        let wait = Session::default_wait(&target);
        let client = Client::new(target, timeout)
            .map_err(|e| RunError::Start(e.to_string()))?
            .with_policy(policy);
        Ok(Careful {
            client,
            ledger,
            wait,
        })
    }

    /// Another wait for consistency than the target's default.
    fn consistency_wait(mut self, wait: Option<Duration>) -> Careful {
        if let Some(wait) = wait {
            self.wait = wait;
        }
        self
    }

    fn session(&self) -> Session<'_> {
        Session {
            ledger: &self.ledger,
            consistency_wait: self.wait,
        }
    }

    /// Does the work under [`iam_conformance::guarded`]: its output, or
    /// [`RunError::Interrupted`] after Ctrl-C.
    async fn guard<T>(&self, work: impl Future<Output = T>) -> Result<T, RunError> {
        let guarded = iam_conformance::guarded(&self.client, &self.ledger, true, work).await;
        let Some(output) = guarded.output else {
            return Err(RunError::Interrupted {
                left_behind: guarded.left_behind,
                ledger: guarded.ledger,
            });
        };
        if !guarded.left_behind.is_empty() {
            eprintln!(
                "warning: {} user(s) could not be deleted; run `iam-conformance clean`",
                guarded.left_behind.len()
            );
        }
        Ok(output)
    }
}

/// Where `record` sends when no endpoint is given: IAM's global endpoint.
const AWS_IAM_ENDPOINT: &str = "https://iam.amazonaws.com/";

/// Records each selected class into `--out`: exit 0 when all were recorded, 3
/// when some could not be, 4 when none is selected, 2 on a usage error
/// (nothing sent).
async fn record(args: RecordArgs) -> u8 {
    let planned =
        recording_target(&args).and_then(|target| Ok((target, args.timeout, select(&args.only)?)));
    let (target, timeout, classes) = match planned {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    if classes.is_empty() {
        eprintln!(
            "error: no case class matches --only {}",
            args.only.join(" --only ")
        );
        return exit::NOTHING_RAN;
    }
    let is_aws = target.is_aws();
    if !is_aws {
        eprintln!(
            "warning: {} is not AWS: a recording from it is not golden (the snapshot trials \
             refuse one in {})",
            target.endpoint,
            record::DIR
        );
    }
    let recorded = Recorded::today(&target, args.seed);
    let ledgers = args
        .ledger_dir
        .clone()
        .unwrap_or_else(iam_conformance::ledger::default_dir);
    let careful = match Careful::new(target, timeout, Some(ledgers), &args.policy, |plan| {
        for class in &classes {
            plan.classes += 1;
            plan.add(&iam_conformance::runner::minimal_case(class, args.seed));
        }
    }) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let client = &careful.client;
    eprintln!(
        "iam-conformance: recording {} classes from {} in {} with {} into {}",
        classes.len(),
        client.target().endpoint,
        recorded.region,
        client.target().credentials.source(),
        args.out.display()
    );
    let session = careful.session();
    let work = record::record_into(
        &args.out,
        client,
        &session,
        &classes,
        &recorded,
        &|class, what| eprintln!("{what:>12}  {class}"),
    );
    let summary = match careful.guard(work).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            eprintln!("error: failed to {e}");
            return exit::USAGE;
        }
        Err(e) => return fail(&e),
    };
    print!("{summary}");
    if is_aws && summary.new.len() + summary.changed.len() > 0 {
        if args.out != Path::new(record::DIR) {
            println!("next: copy them into {}/", record::DIR);
        }
        println!(
            "next: cargo test --test conformance snapshot:: (it writes a .snap.new where a \
             recording changes a snapshot), then cargo insta review"
        );
    }
    let code = summary.exit_code();
    eprintln!("exit {code}");
    code
}

/// The target a recording is made from: the endpoint (`--endpoint`, the
/// environment's, else AWS's), signed as the AWS tools would sign (see
/// [`profile::resolve`]); real AWS only with `--allow-aws` and credentials.
fn recording_target(args: &RecordArgs) -> Result<Target, RunError> {
    let env = Env::process();
    let endpoint = profile::endpoint(&env, args.endpoint.as_deref())
        .unwrap_or_else(|| AWS_IAM_ENDPOINT.to_string());
    let signing = profile::resolve(&env, args.region.as_deref())?;
    let target = target(&endpoint, None, &signing)
        .map_err(|e| RunError::Usage(format!("--endpoint {e}")))?;
    target.guard(args.allow_aws)?;
    Ok(target)
}

async fn serve(args: ServeArgs) -> u8 {
    let faults = Faults {
        throttle_rate: args.throttle_rate,
        failure_rate: args.failure_rate,
        consistency_delay: args.consistency_delay.unwrap_or_default(),
        crash_after: args.crash_after,
        seed: args.fault_seed,
    };
    if let Err(e) = faults.validate() {
        return fail(&RunError::Usage(e));
    }
    let config = ServerConfig {
        faults,
        ..ServerConfig::default()
    };
    let port = args.port;
    let server = match Server::start(port, config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: failed to start the embedded server on 127.0.0.1:{port}: {e}");
            return exit::USAGE;
        }
    };
    println!("serving the embedded reference server at {}", server.url());
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {
            eprintln!("served {} requests", server.requests());
            exit::CONFORMANT
        }
        () = server.crashed() => {
            let answers = args.crash_after.unwrap_or_default();
            eprintln!("crashed on purpose after {answers} answers (--crash-after)");
            exit::CRASHED
        }
    }
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
