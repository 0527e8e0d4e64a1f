//! Checks: one comparison each between what the oracle predicts and what the
//! target answered, at one of three levels.
//!
//! 1 `codes`: HTTP status, error code, error type.
//! 2 `shape`: Content-Type, RequestId and its header, envelope and namespace,
//!   the element set, field values and formats, the state effect.
//! 3 `messages`: the message text; multi-item validation messages as sets.
//!
//! A check that diverges carries the provenance of the expectation it broke, so
//! the verdict can tell `fail` (a live, doc or model expectation) from
//! `unverified` (an inferred one).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Iso8601;

use crate::keys;
use crate::oracle::{Message, Prediction, Provenance, Success};
use crate::spec::{self, Operation};
use crate::wire::{Body, Response};
use crate::xml::Element;

/// How deep a run checks.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Codes = 1,
    Shape = 2,
    Messages = 3,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Codes => "codes",
            Level::Shape => "shape",
            Level::Messages => "messages",
        }
    }
}

/// The outcome of a check, a case or a class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Unsupported,
    Error,
    Unverified,
    Fail,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Unsupported => "unsupported",
            Verdict::Error => "error",
            Verdict::Unverified => "unverified",
            Verdict::Fail => "fail",
        }
    }
}

/// One check's result. `mismatch` is `None` when it passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    /// Stable name, `<level>.<what>`: baselines key on it.
    pub check: &'static str,
    pub level: Level,
    pub provenance: Provenance,
    pub mismatch: Option<Mismatch>,
}

/// What was expected and what came instead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub expected: String,
    pub actual: String,
}

impl CheckResult {
    /// The verdict of this check alone; `strict` makes `unverified` a `fail`.
    pub fn verdict(&self, strict: bool) -> Verdict {
        match (&self.mismatch, self.provenance) {
            (None, _) => Verdict::Pass,
            (Some(_), Provenance::Inferred) if !strict => Verdict::Unverified,
            (Some(_), _) => Verdict::Fail,
        }
    }
}

/// Collects results, skipping checks deeper than the run's level.
pub struct Checker {
    max: Level,
    pub results: Vec<CheckResult>,
}

impl Checker {
    pub fn new(max: Level) -> Checker {
        Checker {
            max,
            results: Vec::new(),
        }
    }

    /// Records a comparison of two displayable values.
    pub fn compare(
        &mut self,
        check: &'static str,
        level: Level,
        provenance: Provenance,
        expected: &str,
        actual: &str,
    ) {
        let mismatch = (expected != actual).then(|| Mismatch {
            expected: expected.to_string(),
            actual: actual.to_string(),
        });
        self.record(check, level, provenance, mismatch);
    }

    pub fn record(
        &mut self,
        check: &'static str,
        level: Level,
        provenance: Provenance,
        mismatch: Option<Mismatch>,
    ) {
        if level <= self.max {
            self.results.push(CheckResult {
                check,
                level,
                provenance,
                mismatch,
            });
        }
    }
}

/// The request's time window, for checking dates a target stamps.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
}

/// Every check of one response against its prediction.
pub fn check_response(
    checker: &mut Checker,
    prediction: &Prediction,
    response: &Response,
    window: Window,
) {
    let codes = prediction.codes;
    match &prediction.result {
        Err(e) => {
            checker.compare(
                "codes.status",
                Level::Codes,
                codes,
                &e.status.to_string(),
                &response.status.to_string(),
            );
            let actual_code = response
                .error_code()
                .map_or_else(|| describe_body(response), str::to_string);
            checker.compare("codes.code", Level::Codes, codes, &e.code, &actual_code);
            let actual_type = response
                .xml()
                .and_then(|x| x.text_at("Error/Type"))
                .unwrap_or("(none)");
            let expected_type = if e.sender { "Sender" } else { "Receiver" };
            checker.compare(
                "codes.type",
                Level::Codes,
                codes,
                expected_type,
                actual_type,
            );
        }
        Ok(Success::Redirect { location }) => {
            checker.compare(
                "codes.status",
                Level::Codes,
                codes,
                "302",
                &response.status.to_string(),
            );
            checker.compare(
                "shape.location",
                Level::Shape,
                codes,
                location,
                response.location.as_deref().unwrap_or("(none)"),
            );
            return;
        }
        Ok(_) => {
            checker.compare(
                "codes.status",
                Level::Codes,
                codes,
                "200",
                &response.status.to_string(),
            );
            let actual = response.error_code().map_or("(none)", |c| c);
            checker.compare("codes.code", Level::Codes, codes, "(none)", actual);
        }
    }
    let expected = crate::oracle::envelope(prediction, "00000000-0000-0000-0000-000000000000")
        .expect("non-redirects have an envelope");
    check_content_type(checker, response);
    check_request_id(checker, response);
    let Some(actual) = response.xml() else {
        checker.compare(
            "shape.envelope",
            Level::Shape,
            Provenance::Live,
            &expected.name,
            &describe_body(response),
        );
        return;
    };
    // The root says success or error (as certain as the codes); IAM's
    // namespace itself is recorded live.
    let envelope_provenance = if expected.name == actual.name
        && expected.namespace.as_deref() == Some(spec::XML_NAMESPACE)
    {
        Provenance::Live
    } else {
        codes
    };
    checker.compare(
        "shape.envelope",
        Level::Shape,
        envelope_provenance,
        &format!(
            "<{} xmlns=\"{}\">",
            expected.name,
            expected.namespace.as_deref().unwrap_or("")
        ),
        &format!(
            "<{} xmlns=\"{}\">",
            actual.name,
            actual.namespace.as_deref().unwrap_or("")
        ),
    );
    let (want, got) = (paths(&expected), paths(actual));
    checker.record(
        "shape.elements",
        Level::Shape,
        codes,
        set_mismatch(&want, &got),
    );
    match &prediction.result {
        Err(e) => check_message(
            checker,
            prediction.message,
            &e.message,
            &e.code,
            actual.text_at("Error/Message"),
        ),
        Ok(_) => check_fields(checker, prediction, &expected, actual, window),
    }
}

fn describe_body(response: &Response) -> String {
    match &response.body {
        Body::Empty => "(empty body)".into(),
        Body::Xml(x) => format!("<{}> (no error code)", x.name),
        Body::NotXml(excerpt) => format!("(not XML: {excerpt})"),
    }
}

fn check_content_type(checker: &mut Checker, response: &Response) {
    let actual = response.content_type.as_deref().unwrap_or("(none)");
    let mime = actual.split(';').next().unwrap_or_default().trim();
    let shown = if mime == "text/xml" {
        "text/xml"
    } else {
        actual
    };
    checker.compare(
        "shape.content_type",
        Level::Shape,
        Provenance::Live,
        "text/xml",
        shown,
    );
}

fn uuid_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
            .expect("valid regex")
    })
}

/// The body's RequestId is a UUID and equals the `x-amzn-RequestId` header.
fn check_request_id(checker: &mut Checker, response: &Response) {
    let body_id = response.xml().and_then(|x| {
        x.text_at("ResponseMetadata/RequestId")
            .or_else(|| x.text_at("RequestId"))
    });
    let header = response.request_id.as_deref();
    let problem = match (body_id, header) {
        (_, None) => Some("no x-amzn-RequestId header".to_string()),
        (None, Some(_)) => Some("no RequestId in the body".to_string()),
        (Some(b), Some(h)) if b != h => Some(format!("body {b:?} but header {h:?}")),
        (Some(b), _) if !uuid_re().is_match(b) => Some(format!("{b:?} is not a UUID")),
        _ => None,
    };
    checker.record(
        "shape.request_id",
        Level::Shape,
        Provenance::Live,
        problem.map(|actual| Mismatch {
            expected: "a UUID RequestId in the body, equal to the x-amzn-RequestId header".into(),
            actual,
        }),
    );
}

/// Every distinct element path below the root (`Error/Code`), list members collapsed.
pub fn paths(root: &Element) -> BTreeSet<String> {
    fn walk(el: &Element, prefix: &str, out: &mut BTreeSet<String>) {
        for child in &el.children {
            let path = if prefix.is_empty() {
                child.name.clone()
            } else {
                format!("{prefix}/{}", child.name)
            };
            walk(child, &path, out);
            out.insert(path);
        }
    }
    let mut out = BTreeSet::new();
    walk(root, "", &mut out);
    out
}

fn set_mismatch(want: &BTreeSet<String>, got: &BTreeSet<String>) -> Option<Mismatch> {
    if want == got {
        return None;
    }
    let missing: Vec<_> = want.difference(got).cloned().collect();
    let extra: Vec<_> = got.difference(want).cloned().collect();
    Some(Mismatch {
        expected: want.iter().cloned().collect::<Vec<_>>().join(", "),
        actual: format!(
            "missing [{}], unexpected [{}]",
            missing.join(", "),
            extra.join(", ")
        ),
    })
}

/// The message: exact text, a validation item set, or (unknown text) any non-empty one.
fn check_message(
    checker: &mut Checker,
    provenance: Provenance,
    expected: &Message,
    code: &str,
    actual: Option<&str>,
) {
    let actual_text = actual.unwrap_or("");
    let mismatch = match expected {
        Message::Text(text) => (text != actual_text).then(|| text.clone()),
        Message::Validation(items) => {
            let want: BTreeSet<&str> = items.iter().map(String::as_str).collect();
            match split_validation(actual_text) {
                Some((count, got)) if count == items.len() && got == want => None,
                _ => Some(expected.render(code)),
            }
        }
        Message::Unknown => actual_text
            .trim()
            .is_empty()
            .then(|| "a non-empty message".to_string()),
    };
    checker.record(
        "messages.message",
        Level::Messages,
        provenance,
        mismatch.map(|expected| Mismatch {
            expected,
            actual: actual.map_or_else(|| "(no Message element)".into(), str::to_string),
        }),
    );
}

/// `N validation error(s) detected: a; b` into its count and item set.
pub fn split_validation(text: &str) -> Option<(usize, BTreeSet<&str>)> {
    let (head, items) = text.split_once(" detected: ")?;
    let count = head
        .strip_suffix(" validation errors")
        .or_else(|| head.strip_suffix(" validation error"))?
        .parse()
        .ok()?;
    Some((count, items.split("; ").collect()))
}

/// Field values and formats of a success result, leaf by leaf below the result wrapper.
fn check_fields(
    checker: &mut Checker,
    prediction: &Prediction,
    expected: &Element,
    actual: &Element,
    window: Window,
) {
    // Operations without output have no fields; a missing result element is
    // `shape.elements`' finding.
    let Some(op) = prediction.operation else {
        return;
    };
    let Some(wrapper) = &spec::model().operation(op).result_wrapper else {
        return;
    };
    let (Some(want), Some(got)) = (expected.get(wrapper), actual.get(wrapper)) else {
        return;
    };
    let mut problems = Vec::new();
    let fresh = matches!(op, Operation::UploadSSHPublicKey | Operation::CreateUser);
    compare_tree(wrapper, want, got, fresh, window, &mut problems);
    let mismatch = (!problems.is_empty()).then(|| Mismatch {
        expected: "field values as the oracle predicts".into(),
        actual: problems.join("; "),
    });
    checker.record("shape.fields", Level::Shape, prediction.codes, mismatch);
}

/// Compares the leaves of `got` with those of `want`. Missing or extra
/// elements are `shape.elements`' business and are skipped here. `fresh`: the
/// answer creates the entity, so its id and date are new and only their form
/// can be checked.
fn compare_tree(
    path: &str,
    want: &Element,
    got: &Element,
    fresh: bool,
    window: Window,
    problems: &mut Vec<String>,
) {
    if want.name == "SSHPublicKeys" {
        let ids = |el: &Element| -> Vec<String> {
            el.children
                .iter()
                .map(|m| m.text_at("SSHPublicKeyId").unwrap_or("").to_string())
                .collect()
        };
        if ids(want) != ids(got) {
            problems.push(format!(
                "{path}: key ids {:?} in this order, got {:?}",
                ids(want),
                ids(got)
            ));
            return;
        }
        for (w, g) in want.children.iter().zip(&got.children) {
            compare_tree(&format!("{path}/member"), w, g, fresh, window, problems);
        }
        return;
    }
    for w in &want.children {
        let Some(g) = got.get(&w.name) else { continue };
        let label = format!("{path}/{}", w.name);
        if !w.children.is_empty() || w.name == "SSHPublicKeys" {
            compare_tree(&label, w, g, fresh, window, problems);
            continue;
        }
        let problem = match w.name.as_str() {
            "SSHPublicKeyId" | "UserId" if fresh => id_form(&w.name, &g.text),
            "UploadDate" | "CreateDate" => date_form(&w.text, &g.text, fresh, window),
            "SSHPublicKeyBody" if g.text.trim_end() == w.text.trim_end() => {
                let recomputed = keys::fingerprint_of(&g.text);
                (recomputed.as_deref() != got.text_at("Fingerprint")).then(|| {
                    format!(
                        "the body's recomputed fingerprint {recomputed:?} differs from Fingerprint"
                    )
                })
            }
            _ if g.text != w.text => Some(format!("expected {:?}, got {:?}", w.text, g.text)),
            _ => None,
        };
        if let Some(problem) = problem {
            problems.push(format!("{label}: {problem}"));
        }
    }
}

/// A new id: `[\w]+` of 20 to 128 characters (model); AWS issues `APKA` + 16 and `AIDA` + 17.
fn id_form(name: &str, id: &str) -> Option<String> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| Regex::new(r"^[A-Za-z0-9_]{16,128}$").expect("valid regex"));
    let prefix = if name == "UserId" { "AIDA" } else { "APKA" };
    (!re.is_match(id) || !id.starts_with(prefix))
        .then(|| format!("{id:?} is not {prefix}… of word characters"))
}

/// ISO 8601 with `Z`; a new date inside the request's window, a known one equal to the second.
fn date_form(want: &str, got: &str, fresh: bool, window: Window) -> Option<String> {
    if !got.ends_with('Z') {
        return Some(format!("{got:?} is not UTC with Z"));
    }
    let t = match OffsetDateTime::parse(got, &Iso8601::DEFAULT) {
        Ok(t) => t,
        Err(e) => return Some(format!("{got:?} is not ISO 8601: {e}")),
    };
    let second = time::Duration::seconds(1);
    if fresh {
        (t < window.start - second || t > window.end + second).then(|| {
            format!(
                "{got} is outside the request's window {} .. {}",
                crate::oracle::timestamp(window.start, true),
                crate::oracle::timestamp(window.end, true)
            )
        })
    } else {
        let want_t = OffsetDateTime::parse(want, &Iso8601::DEFAULT).ok()?;
        ((t - want_t).abs() >= second).then(|| format!("expected {want}, got {got}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_messages_split_into_sets() {
        let (n, items) = split_validation("2 validation errors detected: b; a").unwrap();
        assert_eq!(n, 2);
        assert_eq!(items, BTreeSet::from(["a", "b"]));
        assert_eq!(
            split_validation("1 validation error detected: x")
                .unwrap()
                .0,
            1
        );
        assert!(split_validation("nonsense").is_none());
    }

    #[test]
    fn inferred_divergences_are_unverified_unless_strict() {
        let r = CheckResult {
            check: "messages.message",
            level: Level::Messages,
            provenance: Provenance::Inferred,
            mismatch: Some(Mismatch {
                expected: "a".into(),
                actual: "b".into(),
            }),
        };
        assert_eq!(r.verdict(false), Verdict::Unverified);
        assert_eq!(r.verdict(true), Verdict::Fail);
    }
}
