//! Regressions: the shrunk case of every divergence a target showed, kept
//! under `corpus/regressions/<target>/` and replayed by `cargo test` against
//! the embedded reference server, which must pass every one.
//!
//! A divergence found on an emulator marks an input where an implementation
//! went wrong once; the embedded server answers as AWS does, and replaying
//! these inputs keeps it (and the oracle behind it) that way. The replay is
//! faithful: the saved [`Case`] (users to set up, operation, members with
//! symbolic values) goes back through [`run_case`] and every check is made
//! again. The requests the target was sent are kept beside it for the reader.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::check::Level;
use crate::report::DivergenceEntry;
use crate::runner::{CaseOutcome, Exchange, run_case};
use crate::suite::{self, Case};
use crate::wire::Client;

/// One saved divergence: where it was seen, what diverged, and its shrunk case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Regression {
    /// The target it was found on (`moto 5.2.5`).
    pub found_on: String,
    pub class: String,
    pub check: String,
    /// What AWS answers and what the target answered, for the reader.
    pub expected: String,
    pub actual: String,
    /// The shrunk case, replayed as it is.
    pub case: Case,
    /// The requests the case sent to the target (its names are that run's).
    pub exchange: Exchange,
}

impl Regression {
    pub fn from_divergence(found_on: &str, entry: &DivergenceEntry) -> Regression {
        let d = &entry.divergence;
        Regression {
            found_on: found_on.to_string(),
            class: d.class.to_string(),
            check: d.check.to_string(),
            expected: d.expected.clone(),
            actual: d.actual.clone(),
            case: d.reproducer.case.clone(),
            exchange: d.reproducer.exchange.clone(),
        }
    }

    /// `<class>--<check>.json`: one file per (class, check), like a baseline entry.
    pub fn file_name(&self) -> String {
        format!("{}--{}.json", self.class, self.check)
    }

    pub fn load(path: &Path) -> Result<Regression, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("read regression {}: {e}", path.display()))?;
        let regression: Regression = serde_json::from_str(&text)
            .map_err(|e| format!("parse regression {}: {e}", path.display()))?;
        regression
            .case
            .validate()
            .map_err(|e| format!("regression {}: {e}", path.display()))?;
        Ok(regression)
    }

    /// Re-runs the case against a target that must answer as AWS does: every
    /// check must pass, the saved one among them.
    pub async fn replay(&self, client: &Client) -> Result<(), String> {
        let class = suite::class(&self.class)
            .ok_or_else(|| format!("there is no case class {}", self.class))?;
        if class.operation != self.case.operation {
            return Err(format!(
                "{} tests {}, the case sends {}",
                class.id, class.operation, self.case.operation
            ));
        }
        let run = run_case(client, &self.case, Level::Messages).await;
        let checks = match run.outcome {
            CaseOutcome::Checked(checks) => checks,
            CaseOutcome::Unsupported(detail) => return Err(format!("unsupported: {detail}")),
            CaseOutcome::Error(e) => return Err(format!("transport: {e}")),
        };
        if !checks.iter().any(|c| c.check == self.check) {
            return Err(format!("the case no longer makes the check {}", self.check));
        }
        let failed: Vec<String> = checks
            .iter()
            .filter_map(|c| {
                let m = c.mismatch.as_ref()?;
                Some(format!(
                    "{}: expected {}, got {}",
                    c.check, m.expected, m.actual
                ))
            })
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed.join("\n"))
        }
    }
}

/// Saves a regression per divergence under `dir/<target>/`. A file whose
/// case and origin are unchanged is left alone, so that a rerun does not
/// rewrite every file for the new run's names. Returns how many files were written.
pub fn save(
    dir: &Path,
    target: &str,
    found_on: &str,
    divergences: &[DivergenceEntry],
) -> Result<usize, String> {
    if divergences.is_empty() {
        return Ok(0);
    }
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let mut written = 0;
    for entry in divergences {
        let regression = Regression::from_divergence(found_on, entry);
        let path = dir.join(regression.file_name());
        if Regression::load(&path)
            .is_ok_and(|old| old.case == regression.case && old.found_on == regression.found_on)
        {
            continue;
        }
        let json = serde_json::to_string_pretty(&regression).expect("regressions serialise");
        std::fs::write(&path, json + "\n").map_err(|e| format!("write {}: {e}", path.display()))?;
        written += 1;
    }
    Ok(written)
}

/// Every regression file under `dir/<target>/`, sorted by path.
pub fn files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut paths = Vec::new();
    let Ok(targets) = std::fs::read_dir(dir) else {
        return Ok(paths);
    };
    for target in targets {
        let target = target.map_err(|e| format!("read {}: {e}", dir.display()))?;
        if !target.path().is_dir() {
            continue;
        }
        let entries = std::fs::read_dir(target.path())
            .map_err(|e| format!("read {}: {e}", target.path().display()))?;
        for entry in entries {
            let path = entry
                .map_err(|e| format!("read {}: {e}", target.path().display()))?
                .path();
            if path.extension().is_some_and(|x| x == "json") {
                paths.push(path);
            }
        }
    }
    paths.sort();
    Ok(paths)
}
