//! Golden views: a response with its volatile parts checked, then redacted.
//!
//! One snapshot holds for every case of a class, so whatever varies from case
//! to case is replaced by a placeholder, and only after it was checked:
//! RequestId (a UUID equal to its header) becomes `[request-id]`, dates (ISO
//! 8601 with Z) `[date]`, and the names and ids the fixtures created become
//! `{user0}`, `{user0.key1}`. Redaction goes by element, never by a global
//! string replacement; in a message, a value is replaced only where it stands
//! as a whole word. A value that fails its check stays as it is, so the
//! snapshot no longer matches and the difference shows.
//!
//! A class recorded from real AWS (`iam-conformance record`, see
//! [`crate::record`]) has a second source of truth: [`expected`] decides what
//! its snapshot must hold, the live recording when the oracle agrees with it.

use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::keys;
use crate::oracle::Provenance;
use crate::runner::Observed;
use crate::suite::{Case, CaseClass, Value};
use crate::wire::{Body, Target, is_aws_host};
use crate::xml::Element;

/// What a snapshot file holds for a class, and a recording too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Golden {
    pub class: String,
    pub operation: String,
    pub summary: String,
    /// Provenance of the status and code, and of the message.
    pub provenance: GoldenProvenance,
    /// Where and when the view was recorded, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<Recorded>,
    /// The steps of a stateful case (the body is the last step's answer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sequence: Vec<String>,
    /// The request's members, generated values shown as `<generated>`.
    pub request: Vec<(String, String)>,
    pub status: u16,
    pub content_type: String,
    /// The body line by line, laid out as IAM lays it out, volatile parts redacted.
    pub body: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoldenProvenance {
    pub codes: Provenance,
    pub message: Provenance,
}

impl GoldenProvenance {
    /// Both parts recorded from real AWS.
    pub const LIVE: GoldenProvenance = GoldenProvenance {
        codes: Provenance::Live,
        message: Provenance::Live,
    };
}

/// Where and when a view was recorded: the day (YYYY-MM-DD, UTC), the signing
/// region, the endpoint's host (only an amazonaws.com host makes a recording
/// golden), and the seed its case was shrunk from (the snapshot trial shrinks
/// the same case to compare).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    pub date: String,
    pub region: String,
    pub host: String,
    pub seed: u64,
}

impl Recorded {
    /// A recording made today (UTC) from `target`, of cases shrunk from `seed`.
    pub fn today(target: &Target, seed: u64) -> Recorded {
        Recorded {
            date: time::OffsetDateTime::now_utc().date().to_string(),
            region: target.region.clone(),
            host: target.endpoint.host_str().unwrap_or_default().to_string(),
            seed,
        }
    }
}

impl Golden {
    /// Where the answers differ (the sequence, the request, the status, the
    /// Content-Type, the body), line by line: each entry names the line and
    /// shows both sides under `labels` (this view's, then `other`'s).
    pub fn differences(&self, other: &Golden, labels: [&str; 2]) -> Vec<String> {
        let request = |g: &Golden| -> Vec<String> {
            g.request.iter().map(|(k, v)| format!("{k}={v}")).collect()
        };
        let parts = [
            ("sequence", self.sequence.clone(), other.sequence.clone()),
            ("request", request(self), request(other)),
            (
                "status",
                vec![self.status.to_string()],
                vec![other.status.to_string()],
            ),
            (
                "content_type",
                vec![self.content_type.clone()],
                vec![other.content_type.clone()],
            ),
            ("body", self.body.clone(), other.body.clone()),
        ];
        let width = labels.iter().map(|l| l.len()).max().unwrap_or(0) + 2;
        let mut out = Vec::new();
        for (part, ours, theirs) in parts {
            for i in 0..ours.len().max(theirs.len()) {
                let (a, b) = (ours.get(i), theirs.get(i));
                if a == b {
                    continue;
                }
                let show =
                    |line: Option<&String>| line.map_or("(none)".into(), |l| format!("{l:?}"));
                let line = if matches!(part, "status" | "content_type") {
                    part.to_string()
                } else {
                    format!("{part} line {}", i + 1)
                };
                out.push(format!(
                    "{line}:\n  {:<width$}{}\n  {:<width$}{}",
                    format!("{}:", labels[0]),
                    show(a),
                    format!("{}:", labels[1]),
                    show(b),
                ));
            }
        }
        out
    }

    /// What in the view looks like an AWS account id (twelve digits standing
    /// alone) or an access key id (AKIA or ASIA and sixteen more), if anything:
    /// a recording must carry neither.
    pub fn leak(&self) -> Option<String> {
        static RE: OnceLock<Regex> = OnceLock::new();
        let re = RE.get_or_init(|| {
            Regex::new(r"\b(\d{12}|(AKIA|ASIA)[A-Z0-9]{16})\b").expect("valid regex")
        });
        let text = serde_json::to_string(self).expect("views serialise");
        re.find(&text).map(|m| m.as_str().to_string())
    }
}

/// The snapshot a class must match: the embedded server's view, or, when the
/// class has a recording, the recorded view with provenance `live`, provided
/// the oracle agrees with it. The recording must come from an amazonaws.com
/// host and carry no account id or access key; otherwise, and when the
/// oracle answers otherwise than AWS did, the error says why, naming the
/// differing lines. The embedded view never replaces a recorded one.
pub fn expected(embedded: Golden, recording: Option<Golden>) -> Result<Golden, String> {
    let Some(recording) = recording else {
        return Ok(embedded);
    };
    let Some(recorded) = recording.recorded.clone() else {
        return Err("the recording says nothing of where and when it was made".into());
    };
    if !is_aws_host(&recorded.host) {
        return Err(format!(
            "the recording comes from {}, not from AWS: only a recording from an \
             amazonaws.com endpoint is golden; delete it",
            recorded.host
        ));
    }
    if let Some(leak) = recording.leak() {
        return Err(format!(
            "the recording carries {leak:?}, which looks like an account id or an access key"
        ));
    }
    if recording.class != embedded.class {
        return Err(format!(
            "the recording is of class {}, not {}",
            recording.class, embedded.class
        ));
    }
    let differences = recording.differences(&embedded, ["live", "oracle"]);
    if !differences.is_empty() {
        return Err(format!(
            "the oracle disagrees with the live recording of {} ({}) — fix the oracle\n{}",
            recorded.date,
            recorded.region,
            differences.join("\n")
        ));
    }
    Ok(Golden {
        provenance: GoldenProvenance::LIVE,
        recorded: Some(recorded),
        ..embedded
    })
}

/// The golden view of one observed case of a class.
pub fn golden(class: &CaseClass, case: &Case, observed: &Observed) -> Golden {
    let response = &observed.response;
    let header_id = response.request_id.as_deref();
    let body = match &response.body {
        Body::Xml(root) => redact(root, header_id, &observed.names).render(),
        Body::Empty => String::new(),
        Body::NotXml(excerpt) => format!("(not XML) {excerpt}"),
    };
    Golden {
        class: class.id.to_string(),
        operation: class.operation.name().to_string(),
        summary: class.summary.to_string(),
        provenance: GoldenProvenance {
            codes: observed.prediction.codes,
            message: observed.prediction.message,
        },
        recorded: None,
        sequence: case
            .sequence
            .iter()
            .map(|step| format!("{step:?}"))
            .collect(),
        request: case
            .params
            .iter()
            .map(|(name, value)| {
                let shown = match value {
                    Value::Text(_) => "<generated>".to_string(),
                    Value::User(i) => format!("{{user{i}}}"),
                    Value::UnknownUser => "{unknown-user}".to_string(),
                    Value::RunPath => "{path}".to_string(),
                    Value::Key { user, .. } => format!("{{a key of user{user}}}"),
                    Value::KeyBody { user, comment, .. } => match comment {
                        None => format!("{{the body of a key of user{user}}}"),
                        Some(_) => {
                            format!("{{the material of a key of user{user}, another comment}}")
                        }
                    },
                };
                (name.to_string(), shown)
            })
            .collect(),
        status: response.status,
        content_type: response.content_type.clone().unwrap_or_default(),
        body: body.lines().map(str::to_string).collect(),
    }
}

fn uuid() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
            .expect("valid regex")
    })
}

fn date() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$").expect("valid regex")
    })
}

/// A copy of the tree with volatile leaves replaced after their check.
fn redact(el: &Element, header_id: Option<&str>, names: &[(String, String)]) -> Element {
    let mut out = el.clone();
    out.children = el
        .children
        .iter()
        .map(|c| redact(c, header_id, names))
        .collect();
    // A fingerprint is checked against the body beside it.
    if let (Some(print), Some(body)) = (el.text_at("Fingerprint"), el.text_at("SSHPublicKeyBody"))
        && keys::fingerprint_of(body).as_deref() == Some(print)
        && let Some(leaf) = out.children.iter_mut().find(|c| c.name == "Fingerprint")
    {
        leaf.text = "[fingerprint of the body]".into();
    }
    // Which keys a page lists, and in which order, follows the ids a target
    // made up: a listed key is "a key of" its user.
    if el.name == "member"
        && let Some(leaf) = out.children.iter_mut().find(|c| c.name == "SSHPublicKeyId")
        && let Some(user) = leaf
            .text
            .strip_prefix('{')
            .and_then(|t| t.split(".key").next())
        && leaf.text.ends_with('}')
    {
        leaf.text = format!("{{a key of {user}}}");
    }
    if !out.children.is_empty() || out.text.starts_with('[') {
        return out;
    }
    let known = || {
        names
            .iter()
            .find(|(value, _)| value.trim_end() == el.text.trim_end())
            .map(|(_, p)| p.clone())
    };
    out.text = match el.name.as_str() {
        "RequestId" if uuid().is_match(&el.text) && Some(el.text.as_str()) == header_id => {
            "[request-id]".into()
        }
        "UploadDate" | "CreateDate" if date().is_match(&el.text) => "[date]".into(),
        "Message" => replace_words(&el.text, names),
        "Marker" if !el.text.is_empty() => "[marker]".into(),
        "SSHPublicKeyId" if known().is_none() && new_id("APKA").is_match(&el.text) => {
            "[new key id]".into()
        }
        "UserId" if new_id("AIDA").is_match(&el.text) => "[user id]".into(),
        // arn:aws:iam::<account>:user<path><name>, the path from / to /.
        "Arn" => match el.text.rsplit_once(":user/") {
            Some((account, rest)) if account.starts_with("arn:aws:iam::") => {
                let (path, name) = rest.rsplit_once('/').unwrap_or(("", rest));
                let path = if path.is_empty() {
                    "/".to_string()
                } else {
                    format!("/{path}/")
                };
                let shown = |value: &str| {
                    names
                        .iter()
                        .find(|(v, _)| v == value)
                        .map_or(value.to_string(), |(_, p)| p.clone())
                };
                format!("arn:aws:iam::[account]:user{}{}", shown(&path), shown(name))
            }
            _ => el.text.clone(),
        },
        _ => known().unwrap_or_else(|| el.text.clone()),
    };
    out
}

/// An id IAM issues: a four-letter prefix and 16 or 17 upper-case letters and digits.
fn new_id(prefix: &str) -> Regex {
    Regex::new(&format!("^{prefix}[A-Z0-9]{{16,17}}$")).expect("valid regex")
}

/// Replaces each value where it stands as a whole word (between spaces, a
/// final period allowed). The values are names and ids the harness made, none
/// of which ends with a period.
fn replace_words(text: &str, names: &[(String, String)]) -> String {
    text.split(' ')
        .map(|word| {
            let (core, tail) = word
                .strip_suffix('.')
                .map_or((word, ""), |core| (core, "."));
            match names.iter().find(|(value, _)| value == core) {
                Some((_, placeholder)) => format!("{placeholder}{tail}"),
                None => word.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_replaced_only_whole() {
        let names = vec![("iamc-x-1-0".to_string(), "{user0}".to_string())];
        assert_eq!(
            replace_words("The user with name iamc-x-1-0 cannot be found.", &names),
            "The user with name {user0} cannot be found."
        );
        assert_eq!(
            replace_words("The user iamc-x-1-0.", &names),
            "The user {user0}."
        );
        assert_eq!(
            replace_words("xiamc-x-1-0 stays", &names),
            "xiamc-x-1-0 stays"
        );
    }

    #[test]
    fn request_ids_are_redacted_only_when_they_match_the_header() {
        let id = "3eae9747-1d01-4f04-979d-fafd7a1dafd7";
        let el = Element::new("ErrorResponse").child(Element::leaf("RequestId", id));
        assert_eq!(
            redact(&el, Some(id), &[]).text_at("RequestId"),
            Some("[request-id]")
        );
        assert_eq!(
            redact(&el, Some("other"), &[]).text_at("RequestId"),
            Some(id)
        );
        assert_eq!(redact(&el, None, &[]).text_at("RequestId"), Some(id));
    }

    /// A view of `get.ok.ssh` as the embedded server answers it (shortened).
    fn view() -> Golden {
        Golden {
            class: "get.ok.ssh".into(),
            operation: "GetSSHPublicKey".into(),
            summary: "a key read as SSH".into(),
            provenance: GoldenProvenance {
                codes: Provenance::Live,
                message: Provenance::Inferred,
            },
            recorded: None,
            sequence: Vec::new(),
            request: vec![("UserName".into(), "{user0}".into())],
            status: 200,
            content_type: "text/xml".into(),
            body: vec![
                "<SSHPublicKey>".into(),
                "  <Status>Active</Status>".into(),
                "</SSHPublicKey>".into(),
            ],
        }
    }

    fn recording(host: &str) -> Golden {
        Golden {
            provenance: GoldenProvenance::LIVE,
            recorded: Some(Recorded {
                date: "2026-12-01".into(),
                region: "us-east-1".into(),
                host: host.into(),
                seed: 7,
            }),
            ..view()
        }
    }

    #[test]
    fn without_a_recording_the_snapshot_is_the_embedded_view() {
        assert_eq!(expected(view(), None), Ok(view()));
    }

    #[test]
    fn an_agreeing_recording_is_snapshotted_live_with_where_and_when() {
        let snapshot = expected(view(), Some(recording("iam.amazonaws.com"))).unwrap();
        assert_eq!(snapshot.provenance, GoldenProvenance::LIVE);
        assert_eq!(snapshot.recorded, recording("iam.amazonaws.com").recorded);
        assert_eq!(snapshot.body, view().body);
    }

    #[test]
    fn a_recording_the_oracle_disagrees_with_fails_naming_the_differing_lines() {
        let mut live = recording("iam.amazonaws.com");
        live.body[1] = "  <Status>Inactive</Status>".into();
        live.status = 201;
        let err = expected(view(), Some(live)).unwrap_err();
        assert!(
            err.starts_with(
                "the oracle disagrees with the live recording of 2026-12-01 (us-east-1) — fix the oracle\n"
            ),
            "{err}"
        );
        assert!(
            err.contains(
                "body line 2:\n  live:   \"  <Status>Inactive</Status>\"\n  oracle: \"  <Status>Active</Status>\""
            ),
            "{err}"
        );
        assert!(
            err.contains("status:\n  live:   \"201\"\n  oracle: \"200\""),
            "{err}"
        );
        assert!(
            !err.contains("line 1:") && !err.contains("line 3:"),
            "{err}"
        );
    }

    #[test]
    fn lines_one_side_lacks_are_shown_as_none() {
        let mut longer = view();
        longer.body.push("<extra/>".into());
        longer.request.clear();
        let differences = longer.differences(&view(), ["before", "now"]);
        assert_eq!(
            differences,
            [
                "request line 1:\n  before: (none)\n  now:    \"UserName={user0}\"",
                "body line 4:\n  before: \"<extra/>\"\n  now:    (none)",
            ]
        );
    }

    #[test]
    fn a_recording_from_anywhere_but_aws_is_refused() {
        for host in ["127.0.0.1", "localhost", "amazonaws.com.example.org"] {
            let err = expected(view(), Some(recording(host))).unwrap_err();
            assert!(err.contains("not from AWS"), "{host}: {err}");
        }
    }

    #[test]
    fn a_recording_with_an_account_id_or_an_access_key_is_refused() {
        for leaked in [
            "arn:aws:iam::123456789012:user/x",
            "account 123456789012.",
            "AKIAIOSFODNN7EXAMPLE",
            "ASIAY34FZKBOKMUTVV7A",
        ] {
            let mut live = recording("iam.amazonaws.com");
            live.body[1] = format!("  <Message>{leaked}</Message>");
            assert!(live.leak().is_some(), "{leaked}");
            let err = expected(view(), Some(live)).unwrap_err();
            assert!(
                err.contains("account id or an access key"),
                "{leaked}: {err}"
            );
        }
        // Longer runs of digits, key ids and redacted ARNs are not accounts.
        let mut clean = recording("iam.amazonaws.com");
        clean.body[1] = "1234567890123 APKAIOSFODNN7EXAMPLE arn:aws:iam::[account]:user/x".into();
        assert_eq!(clean.leak(), None);
    }
}
