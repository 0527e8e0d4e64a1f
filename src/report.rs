//! Reports and baselines: what a run found, in the JSON shape of design.md and
//! on the console, and which of it a target's baseline already knows.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::check::{Level, Verdict};
use crate::runner::{ClassOutcome, DEADLINE_PASSED, Divergence, Waits};
use crate::spec::Operation;
use crate::wire::{Target, TargetKind, Traffic};

/// Exit codes: public API, documented in the README.
pub mod exit {
    /// Nothing beyond the baseline.
    pub const CONFORMANT: u8 = 0;
    /// Divergences not in the baseline, or baseline entries that no longer occur.
    pub const DIVERGENT: u8 = 1;
    /// A usage or configuration error.
    pub const USAGE: u8 = 2;
    /// The target was unreachable or the transport failed.
    pub const TRANSPORT: u8 = 3;
    /// No case ran.
    pub const NOTHING_RAN: u8 = 4;
    /// Ctrl-C stopped the run (after its cleanup), as shells count SIGINT.
    pub const INTERRUPTED: u8 = 130;
    /// `serve --crash-after`: the embedded server crashed on purpose.
    pub const CRASHED: u8 = 5;
}

/// Known divergences of one target, keyed by (case class, check), each with a reason.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Baseline {
    /// What the baseline is for (`moto 5.2.5`).
    #[serde(default)]
    pub target: String,
    #[serde(default, rename = "divergence")]
    pub entries: Vec<BaselineEntry>,
}

/// One known divergence.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BaselineEntry {
    pub class: String,
    pub check: String,
    pub reason: String,
}

impl Baseline {
    /// Reads a TOML baseline file.
    pub fn load(path: &Path) -> Result<Baseline, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("read baseline {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("parse baseline {}: {e}", path.display()))
    }

    fn find(&self, class: &str, check: &str) -> Option<&BaselineEntry> {
        self.entries
            .iter()
            .find(|e| e.class == class && e.check == check)
    }

    /// A baseline that lists exactly these divergences (for a first baseline of a new target).
    pub fn from_divergences(target: &str, divergences: &[DivergenceEntry]) -> Baseline {
        let entries: BTreeSet<BaselineEntry> = divergences
            .iter()
            .map(|d| BaselineEntry {
                class: d.divergence.class.to_string(),
                check: d.divergence.check.to_string(),
                reason: format!(
                    "expected {}, got {}",
                    d.divergence.expected, d.divergence.actual
                ),
            })
            .collect();
        Baseline {
            target: target.to_string(),
            entries: entries.into_iter().collect(),
        }
    }
}

/// The JSON report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub target: TargetInfo,
    pub seed: u64,
    pub level: Level,
    pub summary: Summary,
    pub classes: Vec<ClassEntry>,
    pub divergences: Vec<DivergenceEntry>,
    /// Baseline entries whose divergence no longer occurs (the ratchet only tightens).
    pub stale_baseline: Vec<BaselineEntry>,
    /// How the run went on the wire: its id and path, what it sent, how it
    /// waited, and what it could not clean up.
    pub run: RunInfo,
}

/// The run itself, beside its verdicts.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunInfo {
    /// The run's id; its users lived under `path`.
    pub id: String,
    pub path: String,
    pub traffic: Traffic,
    /// Waits for writes to show in reads (eventual consistency).
    pub consistency_waits: Waits,
    /// Why the run stopped before its cases were all run, when the target
    /// refused the caller (its credentials or permissions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Users the run created and could not delete (`iam-conformance clean` removes them).
    pub left_behind: Vec<String>,
    /// The ledger file that lists them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TargetInfo {
    pub endpoint: String,
    pub kind: TargetKind,
}

/// Counts: classes and cases run; checks and how they ended; cases
/// unsupported, in error, or not run because the run's deadline passed (or
/// the target refused the caller).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub classes: usize,
    pub cases: u64,
    pub checks: u64,
    pub passed: u64,
    pub failed: u64,
    pub unverified: u64,
    pub unsupported: u64,
    pub errors: u64,
    /// Shown only when the deadline cut the run: design.md's shape otherwise.
    #[serde(skip_serializing_if = "is_zero")]
    pub not_run: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ClassEntry {
    pub id: &'static str,
    pub operation: Operation,
    /// The deepest level at which the class has an expectation.
    pub level: Level,
    pub verdict: Verdict,
    pub cases: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub not_run: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn is_zero<N: Default + PartialEq>(n: &N) -> bool {
    *n == N::default()
}

/// A divergence and, if the baseline knows it, the baseline's reason.
#[derive(Clone, Debug, Serialize)]
pub struct DivergenceEntry {
    #[serde(flatten)]
    pub divergence: Divergence,
    pub baselined: Option<String>,
}

impl Report {
    /// Builds the report of a run and applies the baseline.
    pub fn new(
        target: &Target,
        seed: u64,
        level: Level,
        outcomes: &[ClassOutcome],
        baseline: &Baseline,
    ) -> Report {
        let mut summary = Summary {
            classes: outcomes.len(),
            ..Summary::default()
        };
        for o in outcomes {
            summary.cases += u64::from(o.cases);
            summary.checks += o.checks;
            summary.passed += o.passed;
            summary.failed += o.failed;
            summary.unverified += o.unverified;
            summary.unsupported += u64::from(o.unsupported);
            summary.errors += u64::from(o.errors);
            summary.not_run += u64::from(o.not_run);
        }
        let divergences: Vec<DivergenceEntry> = outcomes
            .iter()
            .flat_map(|o| &o.divergences)
            .map(|d| DivergenceEntry {
                divergence: d.clone(),
                baselined: baseline.find(d.class, d.check).map(|e| e.reason.clone()),
            })
            .collect();
        let stale_baseline = baseline
            .entries
            .iter()
            .filter(|e| {
                let ran_cleanly = outcomes.iter().any(|o| {
                    o.class.id == e.class && o.errors == 0 && o.not_run == 0 && o.cases > 0
                });
                let known_class = crate::suite::class(&e.class).is_some();
                let occurs = divergences
                    .iter()
                    .any(|d| d.divergence.class == e.class && d.divergence.check == e.check);
                (ran_cleanly || !known_class) && !occurs
            })
            .cloned()
            .collect();
        Report {
            target: TargetInfo {
                endpoint: target.endpoint.to_string(),
                kind: target.kind,
            },
            seed,
            level,
            summary,
            classes: outcomes
                .iter()
                .map(|o| ClassEntry {
                    id: o.class.id,
                    operation: o.class.operation,
                    level: o.class.level,
                    verdict: o.verdict,
                    cases: o.cases,
                    not_run: o.not_run,
                    note: o.note.clone(),
                })
                .collect(),
            divergences,
            stale_baseline,
            run: RunInfo::default(),
        }
    }

    /// Divergences the baseline does not know.
    pub fn new_divergences(&self) -> impl Iterator<Item = &DivergenceEntry> {
        self.divergences.iter().filter(|d| d.baselined.is_none())
    }

    /// The process exit code for this report. A run cut short by its deadline
    /// is transport trouble (3) unless it found new divergences first (1).
    pub fn exit_code(&self) -> u8 {
        if self.summary.cases == 0 && self.summary.not_run == 0 {
            exit::NOTHING_RAN
        } else if self.new_divergences().next().is_some() {
            exit::DIVERGENT
        } else if self.summary.errors > 0 || self.summary.not_run > 0 {
            exit::TRANSPORT
        } else if !self.stale_baseline.is_empty() {
            exit::DIVERGENT
        } else {
            exit::CONFORMANT
        }
    }

    /// The console summary: a table of classes, each new divergence with its
    /// reproducer, baseline notes, and the totals.
    pub fn render_console(&self) -> String {
        let mut out = String::new();
        let width = self
            .classes
            .iter()
            .map(|c| c.id.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let _ = writeln!(
            out,
            "{:<width$}  {:<11}  {:>5}",
            "class", "verdict", "cases"
        );
        for c in &self.classes {
            let _ = writeln!(
                out,
                "{:<width$}  {:<11}  {:>5}",
                c.id,
                c.verdict.as_str(),
                c.cases
            );
            if let Some(note) = c
                .note
                .as_ref()
                .filter(|_| c.verdict == Verdict::Error || c.verdict == Verdict::Unsupported)
            {
                let _ = writeln!(out, "{:<width$}    {note}", "");
            }
        }
        for d in self.new_divergences() {
            let _ = writeln!(out, "\n{}", d.divergence.describe("  "));
        }
        let known = self.divergences.len() - self.new_divergences().count();
        if known > 0 {
            let _ = writeln!(out, "\n{known} divergence(s) known to the baseline.");
        }
        for e in &self.stale_baseline {
            let _ = writeln!(
                out,
                "STALE baseline entry {} {}: it no longer diverges; remove it.",
                e.class, e.check
            );
        }
        let s = &self.summary;
        let _ = writeln!(
            out,
            "\n{} classes, {} cases, {} checks: {} passed, {} failed, {} unverified; {} cases unsupported, {} in error.",
            s.classes, s.cases, s.checks, s.passed, s.failed, s.unverified, s.unsupported, s.errors
        );
        if s.not_run > 0 {
            let why = self.run.stopped.as_deref().unwrap_or(DEADLINE_PASSED);
            let _ = writeln!(
                out,
                "Stopped, {why}: {} cases not run, nothing more was sent.",
                s.not_run
            );
        }
        let run = &self.run;
        let t = &run.traffic;
        if t.retries > 0 || run.consistency_waits.count > 0 {
            let _ = writeln!(
                out,
                "{} requests sent; {} retries ({} throttled, {} server errors); {} waits for consistency ({} ms).",
                t.requests,
                t.retries,
                t.throttled,
                t.server_errors,
                run.consistency_waits.count,
                run.consistency_waits.millis
            );
        }
        if !run.left_behind.is_empty() {
            let _ = writeln!(
                out,
                "{} user(s) could not be deleted and are left on the target under {}{}: run `iam-conformance clean`.",
                run.left_behind.len(),
                run.path,
                run.ledger
                    .as_ref()
                    .map(|l| format!(" (ledger {l})"))
                    .unwrap_or_default()
            );
        }
        out
    }
}

/// The text with control characters (and the two non-characters XML forbids)
/// spelled as `\u{..}` escapes, so that a generated value cannot break a
/// Markdown table or make a JUnit file invalid XML.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if (c.is_control() && !matches!(c, '\n' | '\t')) || matches!(c, '\u{fffe}' | '\u{ffff}')
            {
                format!("\\u{{{:x}}}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}
