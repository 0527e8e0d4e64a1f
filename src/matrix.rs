//! The conformance matrix: one run over several targets, and what each case
//! class came to per target, operation and level.
//!
//! A target's [`Report`] says how each class ended as a whole; the matrix
//! splits that by level, so that "moto gets the codes right but not the
//! messages" is visible at a glance. The Markdown and JUnit sinks render a
//! matrix; a single `run` is a matrix of one target.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::check::{Level, Verdict};
use crate::report::{ClassEntry, Report, exit};
use crate::spec::Operation;

/// The levels, shallowest first.
pub const LEVELS: [Level; 3] = [Level::Codes, Level::Shape, Level::Messages];

/// Several targets run with the same settings.
#[derive(Clone, Debug, Serialize)]
pub struct Matrix {
    /// The UTC date of the run, `YYYY-MM-DD`.
    pub date: String,
    pub seed: u64,
    /// Cases generated per class.
    pub cases: u32,
    pub level: Level,
    pub targets: Vec<TargetRun>,
}

/// One target's run: its name in the matrix, the emulator's version if known,
/// how long the run took, and its report.
#[derive(Clone, Debug, Serialize)]
pub struct TargetRun {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Wall-clock seconds: cases, state reads, cleanup and shrinking.
    pub seconds: f64,
    pub report: Report,
}

impl TargetRun {
    /// The name with its version (`moto 5.2.5`), as tables show it.
    pub fn label(&self) -> String {
        match &self.version {
            Some(v) => format!("{} {v}", self.name),
            None => self.name.clone(),
        }
    }

    /// Cases per second of wall-clock time.
    pub fn rate(&self) -> f64 {
        if self.seconds > 0.0 {
            self.report.summary.cases as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// How many classes ended in each verdict at one level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub pass: usize,
    pub fail: usize,
    pub unverified: usize,
    pub unsupported: usize,
    pub error: usize,
}

impl Tally {
    fn add(&mut self, verdict: Verdict) {
        match verdict {
            Verdict::Pass => self.pass += 1,
            Verdict::Fail => self.fail += 1,
            Verdict::Unverified => self.unverified += 1,
            Verdict::Unsupported => self.unsupported += 1,
            Verdict::Error => self.error += 1,
        }
    }
}

/// What a class came to at one level, or `None` when nothing was checked
/// there (the class has no expectation that deep, or the run stopped short).
///
/// A diverging check at that level decides (`fail` over `unverified`);
/// otherwise a class that could not be judged keeps its `unsupported` or
/// `error`; otherwise it passed.
pub fn level_verdict(report: &Report, class: &ClassEntry, level: Level) -> Option<Verdict> {
    if level > class.level || level > report.level {
        return None;
    }
    let diverged = report
        .divergences
        .iter()
        .map(|d| &d.divergence)
        .filter(|d| d.class == class.id && d.level == level)
        .map(|d| d.verdict)
        .max();
    Some(diverged.unwrap_or(match class.verdict {
        Verdict::Unsupported | Verdict::Error => class.verdict,
        _ => Verdict::Pass,
    }))
}

/// Per operation and level (in that order), the classes of a report by verdict.
pub fn tallies(report: &Report) -> BTreeMap<(Operation, Level), Tally> {
    let mut tallies: BTreeMap<(Operation, Level), Tally> = BTreeMap::new();
    for class in &report.classes {
        for level in LEVELS {
            if let Some(v) = level_verdict(report, class, level) {
                tallies.entry((class.operation, level)).or_default().add(v);
            }
        }
    }
    tallies
}

impl Matrix {
    /// The exit code of the whole matrix: the most serious of its targets'
    /// (divergences, then transport trouble, then a target where nothing ran).
    pub fn exit_code(&self) -> u8 {
        let codes: Vec<u8> = self.targets.iter().map(|t| t.report.exit_code()).collect();
        if codes.is_empty() {
            return exit::NOTHING_RAN;
        }
        [exit::DIVERGENT, exit::TRANSPORT, exit::NOTHING_RAN]
            .into_iter()
            .find(|c| codes.contains(c))
            .unwrap_or(exit::CONFORMANT)
    }
}

/// What an exit code means, in a few words.
pub fn exit_meaning(code: u8) -> &'static str {
    match code {
        exit::CONFORMANT => "conformant: nothing beyond the baseline",
        exit::DIVERGENT => "divergences found (or stale baseline entries)",
        exit::TRANSPORT => "transport trouble: some cases could not be judged",
        exit::NOTHING_RAN => "no case ran",
        exit::USAGE => "usage or configuration error",
        exit::CRASHED => "the embedded server crashed on purpose",
        _ => "",
    }
}
