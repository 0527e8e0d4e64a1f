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

use std::sync::OnceLock;

use regex::Regex;
use serde::Serialize;

use crate::keys;
use crate::oracle::Provenance;
use crate::runner::Observed;
use crate::suite::{Case, CaseClass, Value};
use crate::wire::Body;
use crate::xml::Element;

/// What a snapshot file holds for a class.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Golden {
    pub class: String,
    pub operation: String,
    pub summary: String,
    /// Provenance of the status and code, and of the message.
    pub provenance: GoldenProvenance,
    /// The steps of a stateful case (the body is the last step's answer).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sequence: Vec<String>,
    /// The request's members, generated values shown as `<generated>`.
    pub request: Vec<(String, String)>,
    pub status: u16,
    pub content_type: String,
    /// The body line by line, laid out as IAM lays it out, volatile parts redacted.
    pub body: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GoldenProvenance {
    pub codes: Provenance,
    pub message: Provenance,
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
}
