//! # iam-conformance
//!
//! A property-based conformance harness for the AWS IAM SSH-public-key API.
//! It generates valid and invalid requests with proptest, sends them over the
//! AWS Query protocol (form-encoded POST, SigV4-signed) to a target, and checks
//! the answers against golden expectations that follow real AWS: status, error
//! code and type, the envelope and its fields, the state a request leaves, and
//! the message text. Every divergence comes with a shrunk, replayable reproducer.
//!
//! ## The pieces
//! - [`spec`]: operations, members and constraints, read from the botocore model.
//! - [`oracle`]: what AWS answers, rule by rule, each with its [`Provenance`].
//! - [`server`]: the oracle served on loopback, the default target, with
//!   [`Deviation`]s from AWS and [`Faults`] (throttling, failures, stale reads, a crash) on demand.
//! - [`suite`] and [`strategies`]: the catalogue of [`CaseClass`]es and their strategies.
//! - [`wire`]: encode, sign, send, classify ([`Response`] or [`TransportError`]).
//! - [`profile`]: credentials, region and endpoint, found as the AWS tools find them.
//! - [`check`]: checks at three [`Level`]s and their [`Verdict`]s.
//! - [`runner`]: fixtures, concurrency, shrinking, reproducers.
//! - [`report`]: the JSON and console reports, [`Baseline`]s, exit codes.
//! - [`matrix`]: several targets side by side, class verdicts per level;
//!   [`markdown`] and [`junit`] render it (a single run is a matrix of one).
//! - [`regression`]: shrunk cases of past divergences, replayed by `cargo test`.
//! - [`snapshot`]: golden views of responses, volatile parts checked then redacted.
//! - [`record`]: each class's golden view recorded from real AWS, for the snapshots.
//! - [`ledger`]: a run's id, the IAM path and name prefix of its users, and the
//!   ledger of what it created; [`clean`] removes leftovers, and nothing else.
//!
//! ## Use from a test of your own
//! ```no_run
//! # async fn demo() -> Result<(), iam_conformance::RunError> {
//! use iam_conformance::{Run, Target, TargetKind};
//! let target = Target::new("http://127.0.0.1:5000/".parse().unwrap(), TargetKind::Moto);
//! let report = Run::against(target).cases(20).seed(7).execute().await?;
//! assert_eq!(report.exit_code(), 0, "{}", report.render_console());
//! # Ok(()) }
//! ```
//! [`Run::embedded`] runs the same suite against the embedded reference server.
//! [`Target::new`] signs with the environment's credentials (or dummy ones);
//! [`profile::resolve`] finds credentials and region as the AWS CLI does, the
//! shared profiles included, as the command line does for a remote target.

pub mod check;
pub mod clean;
pub mod junit;
pub mod keys;
pub mod ledger;
pub mod markdown;
pub mod matrix;
pub mod oracle;
pub mod profile;
pub mod record;
pub mod regression;
pub mod report;
pub mod runner;
pub mod server;
pub mod snapshot;
pub mod spec;
pub mod strategies;
pub mod suite;
pub mod wire;
pub mod xml;

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;

pub use check::{Level, Verdict};
pub use ledger::{Ledger, RunId};
pub use matrix::{Matrix, TargetRun};
pub use oracle::Provenance;
pub use regression::Regression;
pub use report::{Baseline, Report, exit};
pub use runner::{Divergence, Session, Settings};
pub use server::{Deviation, Faults, Server, ServerConfig};
pub use suite::{CaseClass, catalogue};
pub use wire::{Policy, Response, Target, TargetKind, Traffic, TransportError};

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The plan is wrong: exit code 2.
    #[error("{0}")]
    Usage(String),
    /// The embedded server or the HTTP client could not start.
    #[error("failed to start: {0}")]
    Start(String),
    /// Ctrl-C stopped the run (after its cleanup): exit code 130.
    #[error("interrupted; {}", left_behind_note(.left_behind, .ledger.as_deref()))]
    Interrupted {
        left_behind: Vec<String>,
        ledger: Option<String>,
    },
}

fn left_behind_note(left: &[String], ledger: Option<&str>) -> String {
    if left.is_empty() {
        return "everything the run created was deleted".into();
    }
    format!(
        "{} user(s) were not deleted{}: run `iam-conformance clean`",
        left.len(),
        ledger.map(|l| format!(" (ledger {l})")).unwrap_or_default()
    )
}

impl RunError {
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Usage(_) => exit::USAGE,
            RunError::Start(_) => exit::TRANSPORT,
            RunError::Interrupted { .. } => exit::INTERRUPTED,
        }
    }
}

/// Called as each case finishes (a progress hook).
#[derive(Clone)]
struct OnCase(Arc<dyn Fn() + Send + Sync>);

impl fmt::Debug for OnCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OnCase")
    }
}

/// A conformance run, built step by step and then executed.
#[derive(Debug)]
pub struct Run {
    target: Option<Target>,
    server: ServerConfig,
    settings: Settings,
    only: Vec<String>,
    baseline: Baseline,
    timeout: Duration,
    allow_aws: bool,
    progress: bool,
    run_id: RunId,
    retries: Option<u32>,
    rate: Option<f64>,
    max_requests: Option<u64>,
    consistency_wait: Option<Duration>,
    ledger_dir: Option<PathBuf>,
    ctrl_c: bool,
    on_case: Option<OnCase>,
}

impl Run {
    /// A run against the embedded reference server (started on a free loopback port).
    pub fn embedded() -> Run {
        Run {
            target: None,
            server: ServerConfig::default(),
            settings: Settings::default(),
            only: Vec::new(),
            baseline: Baseline::default(),
            timeout: Duration::from_secs(10),
            allow_aws: false,
            progress: false,
            run_id: RunId::new(),
            retries: None,
            rate: None,
            max_requests: None,
            consistency_wait: None,
            ledger_dir: None,
            ctrl_c: false,
            on_case: None,
        }
    }

    /// A run against any endpoint.
    pub fn against(target: Target) -> Run {
        Run {
            target: Some(target),
            ..Run::embedded()
        }
    }

    /// The embedded server with deliberate deviations (to prove checks catch them).
    pub fn embedded_with(server: ServerConfig) -> Run {
        Run {
            server,
            ..Run::embedded()
        }
    }

    /// The signing region of a remote target (default us-east-1).
    pub fn region(mut self, region: &str) -> Run {
        if let Some(t) = &mut self.target {
            t.region = region.to_string();
        }
        self
    }

    /// Cases generated per class (default 100).
    pub fn cases(mut self, n: u32) -> Run {
        self.settings.cases = n;
        self
    }

    pub fn seed(mut self, seed: u64) -> Run {
        self.settings.seed = seed;
        self
    }

    /// Cases in flight at once (default 8).
    pub fn jobs(mut self, jobs: usize) -> Run {
        self.settings.jobs = jobs;
        self
    }

    pub fn level(mut self, level: Level) -> Run {
        self.settings.level = level;
        self
    }

    /// Count `unverified` as `fail`.
    pub fn strict(mut self, strict: bool) -> Run {
        self.settings.strict = strict;
        self
    }

    /// Only classes whose id matches one of these globs (`*` and `?`).
    pub fn only(mut self, globs: Vec<String>) -> Run {
        self.only = globs;
        self
    }

    pub fn baseline(mut self, baseline: Baseline) -> Run {
        self.baseline = baseline;
        self
    }

    /// The per-request timeout (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Run {
        self.timeout = timeout;
        self
    }

    /// Stop sending this long after the run starts (default: never). Cases not
    /// finished by then are reported as not run, and the run exits 3.
    pub fn deadline(mut self, deadline: Duration) -> Run {
        self.settings.deadline = Some(deadline);
        self
    }

    /// Permit an amazonaws.com endpoint.
    pub fn allow_aws(mut self, allow: bool) -> Run {
        self.allow_aws = allow;
        self
    }

    /// Show a progress bar on stderr (when it is a terminal).
    pub fn progress(mut self, show: bool) -> Run {
        self.progress = show;
        self
    }

    /// Call `f` as each case finishes.
    pub fn on_case(mut self, f: impl Fn() + Send + Sync + 'static) -> Run {
        self.on_case = Some(OnCase(Arc::new(f)));
        self
    }

    /// Retries after a throttled or 5xx answer (default: 5 against AWS, 3 otherwise).
    pub fn retries(mut self, n: u32) -> Run {
        self.retries = Some(n);
        self
    }

    /// Requests per second at most; 0 for no limit (default: 5 against AWS, none otherwise).
    pub fn rate(mut self, per_second: f64) -> Run {
        self.rate = Some(per_second);
        self
    }

    /// Send at most this many requests (cleanup exempt); cases that would
    /// need more end in error and the run exits 3.
    pub fn max_requests(mut self, n: u64) -> Run {
        self.max_requests = Some(n);
        self
    }

    /// Wait at most this long for writes to show in reads (default: 10 s
    /// against AWS, none otherwise); every wait needed is reported.
    pub fn consistency_wait(mut self, wait: Duration) -> Run {
        self.consistency_wait = Some(wait);
        self
    }

    /// Write the run's ledger (what it creates, as it happens) into this directory.
    pub fn ledger_dir(mut self, dir: PathBuf) -> Run {
        self.ledger_dir = Some(dir);
        self
    }

    /// Stop at Ctrl-C, clean up, and end with [`RunError::Interrupted`].
    pub fn stop_on_ctrl_c(mut self, stop: bool) -> Run {
        self.ctrl_c = stop;
        self
    }

    /// The run's id: its users live under `/iam-conformance/<id>/`.
    pub fn run_id(&self) -> &RunId {
        &self.run_id
    }

    /// How the client will send: the target's default policy with this run's overrides.
    pub fn policy(&self) -> Policy {
        self.target
            .as_ref()
            .map_or_else(Policy::local, Policy::for_target)
            .overridden(self.retries, self.rate, self.max_requests)
    }

    /// What the run will do, before it does it: cases, requests, users, keys.
    pub fn plan(&self) -> Result<Plan, RunError> {
        let classes = self.validate()?;
        let mut plan = Plan::new(&self.run_id, self.policy());
        for class in classes {
            plan.classes += 1;
            for case in
                runner::cases_of(class, self.settings.seed).take(self.settings.cases as usize)
            {
                plan.add(&case);
            }
        }
        Ok(plan)
    }

    /// The selected classes.
    pub fn classes(&self) -> Result<Vec<&'static CaseClass>, RunError> {
        select(&self.only)
    }

    /// The target the run will use, if it is not the embedded server.
    pub fn target(&self) -> Option<&Target> {
        self.target.as_ref()
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Checks the plan without sending anything; returns the selected classes.
    pub fn validate(&self) -> Result<Vec<&'static CaseClass>, RunError> {
        if self.settings.jobs == 0 {
            return Err(RunError::Usage("--jobs must be at least 1".into()));
        }
        if self.rate.is_some_and(|r| !r.is_finite() || r < 0.0) {
            return Err(RunError::Usage(
                "--rate must be a number of requests per second (0: no limit)".into(),
            ));
        }
        if let Some(t) = &self.target {
            t.guard(self.allow_aws)?;
        }
        self.classes()
    }

    /// Runs the suite and builds the report. Whatever stops it (its end, a
    /// panic, Ctrl-C when asked to stop on it), every user it created is
    /// deleted before this returns, or is named in the report and the ledger.
    pub async fn execute(self) -> Result<Report, RunError> {
        let classes = self.validate()?;
        let policy = self.policy();
        let own_server = self.target.is_none();
        let server;
        let target = match self.target {
            Some(t) => t,
            None => {
                server = Server::start(0, self.server.clone())
                    .await
                    .map_err(|e| RunError::Start(format!("embedded server: {e}")))?;
                let mut t = Target::new(server.url(), TargetKind::Embedded);
                t.credentials = wire::Credentials::dummy();
                t
            }
        };
        let client = wire::Client::new(target.clone(), self.timeout)
            .map_err(|e| RunError::Start(e.to_string()))?
            .with_policy(policy);
        // The embedded server's users die with it: its ledger need not outlive the run.
        let ledger_dir = self.ledger_dir.as_ref().filter(|_| !own_server);
        let ledger = match ledger_dir {
            Some(dir) => Ledger::on_disk(dir, self.run_id.clone(), target.endpoint.as_str())
                .map_err(|e| RunError::Start(format!("ledger in {}: {e}", dir.display())))?,
            None => Ledger::in_memory(self.run_id.clone()),
        };
        let mut settings = self.settings.clone();
        settings.consistency_wait = self
            .consistency_wait
            .unwrap_or_else(|| runner::Session::default_wait(&target));
        let total = classes.len() as u64 * u64::from(settings.cases);
        let bar = if self.progress {
            indicatif::ProgressBar::new(total)
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} cases {elapsed} ({eta} left)",
            )
            .expect("a valid template"),
        );
        let on_case = || {
            bar.inc(1);
            if let Some(OnCase(f)) = &self.on_case {
                f();
            }
        };
        let work = runner::run_classes(&client, &classes, &settings, &ledger, &on_case);
        let guarded = guarded(&client, &ledger, self.ctrl_c, work).await;
        bar.finish_and_clear();
        let Some(ran) = guarded.output else {
            return Err(RunError::Interrupted {
                left_behind: guarded.left_behind,
                ledger: guarded.ledger,
            });
        };
        let mut report = Report::new(
            &target,
            settings.seed,
            settings.level,
            &ran.outcomes,
            &self.baseline,
        );
        report.run = report::RunInfo {
            id: self.run_id.as_str().to_string(),
            path: self.run_id.path(),
            traffic: client.traffic(),
            consistency_waits: ran.waits,
            stopped: ran.stopped,
            left_behind: guarded.left_behind,
            ledger: guarded.ledger,
        };
        Ok(report)
    }
}

/// What became of work done under [`guarded`]: its output (`None` when
/// Ctrl-C stopped it), and the users it created that could not be deleted,
/// with the ledger file that names them.
#[derive(Debug)]
pub struct Guarded<T> {
    pub output: Option<T>,
    pub left_behind: Vec<String>,
    pub ledger: Option<String>,
}

/// Does `work`, whose users go into `ledger`; however it ends (done, a
/// panic, or Ctrl-C when `ctrl_c`), deletes every user the ledger still
/// lists before returning (or before the panic goes on unwinding). A second
/// Ctrl-C stops that clean-up: what is left stays in the ledger for `clean`.
pub async fn guarded<T>(
    client: &wire::Client,
    ledger: &Ledger,
    ctrl_c: bool,
    work: impl std::future::Future<Output = T>,
) -> Guarded<T> {
    let work = AssertUnwindSafe(work).catch_unwind();
    // Listen before the first request leaves: from then on Ctrl-C is ours.
    let interrupted = next_ctrl_c(ctrl_c);
    let finished = tokio::select! {
        done = work => Some(done),
        () = interrupted => None,
    };
    let stop = next_ctrl_c(ctrl_c);
    if finished.is_none() {
        eprintln!(
            "interrupted: deleting what the run created (Ctrl-C again to stop, and leave it \
             to `iam-conformance clean`)"
        );
    }
    tokio::select! {
        _ = runner::sweep(client, ledger) => {}
        () = stop => eprintln!("clean-up stopped"),
    }
    let left_behind = ledger.finish();
    let file = (!left_behind.is_empty())
        .then(|| ledger.file().map(|p| p.display().to_string()))
        .flatten();
    let output = match finished {
        Some(Ok(output)) => Some(output),
        Some(Err(panic)) => std::panic::resume_unwind(panic),
        None => None,
    };
    Guarded {
        output,
        left_behind,
        ledger: file,
    }
}

/// Resolves at the next Ctrl-C (never, unless `enabled`), listening from
/// the moment it is made.
fn next_ctrl_c(enabled: bool) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    let mut next = Box::pin(async move {
        if enabled && tokio::signal::ctrl_c().await.is_ok() {
            return;
        }
        std::future::pending::<()>().await
    });
    // The first poll registers the listener.
    let _ = next.as_mut().now_or_never();
    next
}

/// What a run will do, worked out from its cases before anything is sent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub classes: usize,
    pub cases: u64,
    /// Requests the cases send when nothing diverges (fixtures, the request or
    /// sequence, state reads, cleanup); shrinking a divergence adds up to
    /// [`Settings::shrink_budget`] re-runs of its case.
    pub requests: u64,
    /// Users and keys created (and deleted again), all under `path`.
    pub users: u64,
    pub keys: u64,
    pub path: String,
    pub policy: Policy,
}

impl Plan {
    /// An empty plan for a run with this id and policy.
    pub fn new(run_id: &RunId, policy: Policy) -> Plan {
        Plan {
            path: run_id.path(),
            policy,
            ..Plan::default()
        }
    }

    /// Counts in one more case.
    pub fn add(&mut self, case: &suite::Case) {
        self.cases += 1;
        let users = case.users.len() as u64;
        let keys: u64 = case.users.iter().map(|u| u.keys.len() as u64).sum();
        let follow_ups: u64 = case
            .users
            .iter()
            .flat_map(|u| &u.keys)
            .filter(|k| k.deleted || k.status != "Active")
            .count() as u64;
        let creates = |step: &suite::Step| matches!(step, suite::Step::CreateUser);
        let uploads = |step: &suite::Step| matches!(step, suite::Step::Upload { .. });
        let step_users = case.sequence.iter().filter(|s| creates(s)).count() as u64;
        let step_keys = case.sequence.iter().filter(|s| uploads(s)).count() as u64;
        let own =
            u64::from(case.sequence.is_empty() && case.operation == spec::Operation::CreateUser);
        let sent = case.sequence.len().max(1) as u64;
        let all_users = users + step_users + own;
        let all_keys =
            keys + step_keys + u64::from(case.operation == spec::Operation::UploadSSHPublicKey);
        // Fixtures, what is under test, a List per user and a Get per key to
        // read the state back, and cleanup: a List, a Delete per key, a DeleteUser.
        self.requests +=
            users + keys + follow_ups + sent + 2 * all_users + 2 * all_keys + all_users;
        self.users += all_users;
        self.keys += all_keys;
    }

    /// The plan in a few lines, for the console.
    pub fn describe(&self) -> String {
        let pace = match self.policy.rate {
            Some(rate) => format!(
                "at most {rate} requests/s: {:.1} minutes or more",
                self.requests as f64 / rate / 60.0
            ),
            None => "no rate limit".to_string(),
        };
        let cap = self
            .policy
            .max_requests
            .map_or("no cap (--max-requests)".to_string(), |n| {
                format!("capped at {n} by --max-requests")
            });
        format!(
            "plan: {} classes, {} cases; about {} requests ({pace}; {cap}), more to shrink a divergence;\n      creates {} users and {} SSH keys, all under the IAM path {} and deleted again;\n      retries: {} after throttling or a 5xx answer",
            self.classes,
            self.cases,
            self.requests,
            self.users,
            self.keys,
            self.path,
            self.policy.retries
        )
    }
}

/// Classes whose id matches any glob; all of them when there is none.
pub fn select(globs: &[String]) -> Result<Vec<&'static CaseClass>, RunError> {
    let patterns = globs
        .iter()
        .map(|g| {
            let re = format!(
                "^{}$",
                regex::escape(g).replace(r"\*", ".*").replace(r"\?", ".")
            );
            regex::Regex::new(&re).map_err(|e| RunError::Usage(format!("--only {g}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(catalogue()
        .iter()
        .filter(|c| patterns.is_empty() || patterns.iter().any(|p| p.is_match(c.id)))
        .collect())
}
