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
//! - [`server`]: the oracle served on loopback, the default target.
//! - [`suite`] and [`strategies`]: the catalogue of [`CaseClass`]es and their strategies.
//! - [`wire`]: encode, sign, send, classify ([`Response`] or [`TransportError`]).
//! - [`check`]: checks at three [`Level`]s and their [`Verdict`]s.
//! - [`runner`]: fixtures, concurrency, shrinking, reproducers.
//! - [`report`]: the JSON and console reports, [`Baseline`]s, exit codes.
//! - [`matrix`]: several targets side by side, class verdicts per level;
//!   [`markdown`] and [`junit`] render it (a single run is a matrix of one).
//! - [`regression`]: shrunk cases of past divergences, replayed by `cargo test`.
//! - [`snapshot`]: golden views of responses, volatile parts checked then redacted.
//! - [`record`]: each class's golden view recorded from real AWS, for the snapshots.
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

pub mod check;
pub mod junit;
pub mod keys;
pub mod markdown;
pub mod matrix;
pub mod oracle;
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

use std::time::Duration;

pub use check::{Level, Verdict};
pub use matrix::{Matrix, TargetRun};
pub use oracle::Provenance;
pub use regression::Regression;
pub use report::{Baseline, Report, exit};
pub use runner::{Divergence, Settings};
pub use server::{Deviation, Server, ServerConfig};
pub use suite::{CaseClass, catalogue};
pub use wire::{Response, Target, TargetKind, TransportError};

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
}

impl RunError {
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Usage(_) => exit::USAGE,
            RunError::Start(_) => exit::TRANSPORT,
        }
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
        if let Some(t) = &self.target {
            guard_aws(t, self.allow_aws)?;
        }
        self.classes()
    }

    /// Runs the suite and builds the report.
    pub async fn execute(self) -> Result<Report, RunError> {
        let classes = self.validate()?;
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
            .map_err(|e| RunError::Start(e.to_string()))?;
        let total = classes.len() as u64 * u64::from(self.settings.cases);
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
        let outcomes = runner::run_classes(&client, &classes, &self.settings, &|| bar.inc(1)).await;
        bar.finish_and_clear();
        Ok(Report::new(
            &target,
            self.settings.seed,
            self.settings.level,
            &outcomes,
            &self.baseline,
        ))
    }
}

/// Refuses a real-AWS target unless it is allowed (`--allow-aws`).
pub fn guard_aws(target: &Target, allow_aws: bool) -> Result<(), RunError> {
    if target.is_aws() && !allow_aws {
        return Err(RunError::Usage(format!(
            "{} is real AWS: refusing to send anything without --allow-aws",
            target.endpoint
        )));
    }
    Ok(())
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
