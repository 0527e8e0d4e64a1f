//! Recording golden expectations from real AWS.
//!
//! `iam-conformance record` runs each selected class's simplest case (the one
//! its snapshot shows: [`minimal_case`]) against a target, builds the golden
//! view of the answer ([`golden`]: volatile parts checked, then redacted; an
//! ARN's account as `[account]`), and writes it with provenance `live`, the
//! day, the region, the endpoint's host and the seed to
//! `corpus/recordings/<class>.json`. The snapshot trials of `cargo test` then
//! hold the oracle to it and put it in the snapshot for `cargo insta review`
//! (see [`crate::snapshot::expected`]).
//!
//! Only a real answer is recorded. Transport trouble (throttling included), an
//! operation the target does not support, a fixture or credentials it refused,
//! and an answer that would carry an account id or an access key record
//! nothing for their class, and leave an existing recording as it was.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::check::Level;
use crate::report::exit;
use crate::runner::{CaseOutcome, Session, minimal_case, run_case_in};
use crate::snapshot::{Golden, GoldenProvenance, Recorded, golden};
use crate::suite::CaseClass;
use crate::wire::{Client, TransportError, TransportErrorKind};

/// Where recordings live, relative to the repository's root.
pub const DIR: &str = "corpus/recordings";

/// Codes of a target that refuses the request's signature rather than the
/// request: unless the oracle predicted one (the protocol classes send
/// unsigned or mis-signed requests on purpose), such an answer says nothing
/// of the API. (A refusal of the caller itself, AccessDenied and the like,
/// never gets this far: the client calls it transport trouble.)
const REFUSALS: [&str; 3] = [
    "SignatureDoesNotMatch",
    "MissingAuthenticationToken",
    "IncompleteSignature",
];

/// Why a class was not recorded.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum NotRecorded {
    /// No trustworthy answer: unreachable, timed out, throttled, a gateway's page.
    Transport(TransportError),
    /// The target does not implement an operation the case needs.
    Unsupported(String),
    /// The target refused a fixture or the credentials; what it answered.
    Refused(String),
    /// The view would carry what looks like an account id, an access key or a secret.
    Leak,
    /// Not tried: an earlier class was refused for its caller, as this one would be.
    NotTried(String),
}

impl fmt::Display for NotRecorded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotRecorded::Transport(e) => write!(f, "{e}"),
            NotRecorded::Unsupported(detail) => write!(f, "unsupported: {detail}"),
            NotRecorded::Refused(detail) => write!(f, "refused: {detail}"),
            NotRecorded::NotTried(why) => write!(f, "not tried: {why}"),
            NotRecorded::Leak => f.write_str(
                "the answer would carry what looks like an account id, an access key or a secret",
            ),
        }
    }
}

/// Runs the class's simplest case for `recorded.seed` and returns its golden
/// view: provenance `live`, stamped with `recorded`.
pub async fn record(
    client: &Client,
    session: &Session<'_>,
    class: &CaseClass,
    recorded: &Recorded,
) -> Result<Golden, NotRecorded> {
    let case = minimal_case(class, recorded.seed);
    let run = run_case_in(client, &case, Level::Messages, session).await;
    match &run.outcome {
        CaseOutcome::Error(e) => return Err(NotRecorded::Transport(e.clone())),
        CaseOutcome::Unsupported(detail) => return Err(NotRecorded::Unsupported(detail.clone())),
        CaseOutcome::Checked(_) => {}
    }
    if let Some(m) = run.refused_fixture() {
        // The status and the code: the message may name the caller's ARN.
        let answer: Vec<&str> = m.actual.split(' ').take(2).collect();
        return Err(NotRecorded::Refused(format!(
            "expected {}, got {}",
            m.expected,
            answer.join(" ")
        )));
    }
    let observed = run
        .observed
        .as_ref()
        .ok_or_else(|| NotRecorded::Refused("no request under test was sent".into()))?;
    let predicted = observed.prediction.result.as_ref().err().map(|e| &e.code);
    if let Some(code) = observed.response.error_code()
        && REFUSALS.contains(&code)
        && predicted.is_none_or(|p| p != code)
    {
        return Err(NotRecorded::Refused(format!("the credentials: {code}")));
    }
    let mut view = Golden {
        provenance: GoldenProvenance::LIVE,
        recorded: Some(recorded.clone()),
        ..golden(class, &case, observed)
    };
    // A sequence stops at the first step the target answers otherwise than
    // the oracle: the view shows the steps up to that one, whose answer it
    // holds. (A sequence has no fixtures: the requests before the last are
    // its earlier steps.)
    if !case.sequence.is_empty() {
        view.sequence.truncate(run.exchange.setup.len() + 1);
    }
    let text = serde_json::to_string(&view).expect("views serialise");
    let secrets = client.target().credentials.secrets();
    if view.leak().is_some() || secrets.iter().any(|s| text.contains(s)) {
        return Err(NotRecorded::Leak);
    }
    Ok(view)
}

/// What writing a recording did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Saved {
    /// The class had no recording.
    New,
    /// The answer and where it came from are as recorded before: the file,
    /// and its date, are kept.
    Unchanged,
    /// The file was rewritten; what changed, line by line.
    Changed(Vec<String>),
}

/// The file of a class's recording under `dir`.
pub fn path(dir: &Path, class: &str) -> PathBuf {
    dir.join(format!("{class}.json"))
}

/// The class's recording under `dir`, if it has one.
pub fn load(dir: &Path, class: &str) -> Result<Option<Golden>, String> {
    let path = path(dir, class);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("parse {}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("read {}: {e}", path.display())),
    }
}

/// Writes a recorded view under `dir`, unless the same answer from the same
/// host and region is there already.
pub fn save(dir: &Path, view: &Golden) -> Result<Saved, String> {
    let saved = match load(dir, &view.class) {
        Ok(None) => Saved::New,
        Ok(Some(before)) => {
            let mut changes = before.differences(view, ["before", "now"]);
            if let (Some(was), Some(now)) = (&before.recorded, &view.recorded)
                && (&was.host, &was.region) != (&now.host, &now.region)
            {
                changes.push(format!(
                    "recorded from {} ({}), now from {} ({})",
                    was.host, was.region, now.host, now.region
                ));
            }
            if changes.is_empty() {
                return Ok(Saved::Unchanged);
            }
            Saved::Changed(changes)
        }
        Err(e) => Saved::Changed(vec![e]),
    };
    let path = path(dir, &view.class);
    let text = serde_json::to_string_pretty(view).expect("views serialise") + "\n";
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&path, text))
        .map_err(|e| format!("write {}: {e}", path.display()))?;
    Ok(saved)
}

/// What a recording run did, class by class.
#[derive(Debug, Default)]
pub struct Summary {
    pub new: Vec<&'static str>,
    pub unchanged: Vec<&'static str>,
    pub changed: Vec<(&'static str, Vec<String>)>,
    pub not_recorded: Vec<(&'static str, NotRecorded)>,
}

impl Summary {
    /// 0 when every class was recorded, 3 when some could not be (whatever
    /// kept it from being recorded: each one's reason is in the summary).
    pub fn exit_code(&self) -> u8 {
        if self.not_recorded.is_empty() {
            exit::CONFORMANT
        } else {
            exit::TRANSPORT
        }
    }

    /// How many classes were recorded (new, unchanged or changed).
    pub fn recorded(&self) -> usize {
        self.new.len() + self.unchanged.len() + self.changed.len()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (class, changes) in &self.changed {
            writeln!(f, "changed {class}:")?;
            for change in changes {
                writeln!(f, "  {}", change.replace('\n', "\n  "))?;
            }
        }
        for (class, why) in &self.not_recorded {
            writeln!(f, "not recorded {class}: {why}")?;
        }
        writeln!(
            f,
            "recorded {} ({} new, {} unchanged: same as before, {} changed), not recorded {}",
            self.recorded(),
            self.new.len(),
            self.unchanged.len(),
            self.changed.len(),
            self.not_recorded.len()
        )
    }
}

/// Records every class in turn (one case at a time: gentle on AWS's request
/// rate) into `dir`; `on_class` hears of each as it is done. Fails only when
/// a recording cannot be written.
pub async fn record_into(
    dir: &Path,
    client: &Client,
    session: &Session<'_>,
    classes: &[&'static CaseClass],
    recorded: &Recorded,
    on_class: &dyn Fn(&str, &str),
) -> Result<Summary, String> {
    let mut summary = Summary::default();
    let mut refused: Option<TransportError> = None;
    for class in classes {
        if let Some(why) = &refused {
            on_class(class.id, "not recorded");
            summary
                .not_recorded
                .push((class.id, NotRecorded::NotTried(why.to_string())));
            continue;
        }
        match record(client, session, class, recorded).await {
            Ok(view) => match save(dir, &view)? {
                Saved::New => {
                    on_class(class.id, "new");
                    summary.new.push(class.id);
                }
                Saved::Unchanged => {
                    on_class(class.id, "unchanged");
                    summary.unchanged.push(class.id);
                }
                Saved::Changed(changes) => {
                    on_class(class.id, "changed");
                    summary.changed.push((class.id, changes));
                }
            },
            Err(why) => {
                // Every later class would be refused too.
                if let NotRecorded::Transport(e) = &why
                    && e.kind == TransportErrorKind::Refused
                {
                    refused = Some(e.clone());
                }
                on_class(class.id, "not recorded");
                summary.not_recorded.push((class.id, why));
            }
        }
    }
    Ok(summary)
}
