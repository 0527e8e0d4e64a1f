//! The service model: operations, members, constraints and error codes.
//!
//! Everything here is read from the botocore model subset kept in
//! `corpus/model/iam-ssh-model.json`, so the harness validates exactly what the
//! model declares and nothing it made up. The one IAM quirk the model cannot
//! express (IAM checks the `userName` pattern itself, with a handcrafted
//! message) lives in the oracle, not here.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// The API version every request carries.
pub const API_VERSION: &str = "2010-05-08";
/// The XML namespace of every IAM response envelope.
pub const XML_NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

const MODEL_JSON: &str = include_str!("../corpus/model/iam-ssh-model.json");

/// The operations in scope: the five SSH-key operations and four user fixtures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Operation {
    UpdateSSHPublicKey,
    UploadSSHPublicKey,
    GetSSHPublicKey,
    ListSSHPublicKeys,
    DeleteSSHPublicKey,
    CreateUser,
    GetUser,
    DeleteUser,
    ListUsers,
}

impl Operation {
    pub const ALL: [Operation; 9] = [
        Operation::UpdateSSHPublicKey,
        Operation::UploadSSHPublicKey,
        Operation::GetSSHPublicKey,
        Operation::ListSSHPublicKeys,
        Operation::DeleteSSHPublicKey,
        Operation::CreateUser,
        Operation::GetUser,
        Operation::DeleteUser,
        Operation::ListUsers,
    ];

    /// The `Action` name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Operation::UpdateSSHPublicKey => "UpdateSSHPublicKey",
            Operation::UploadSSHPublicKey => "UploadSSHPublicKey",
            Operation::GetSSHPublicKey => "GetSSHPublicKey",
            Operation::ListSSHPublicKeys => "ListSSHPublicKeys",
            Operation::DeleteSSHPublicKey => "DeleteSSHPublicKey",
            Operation::CreateUser => "CreateUser",
            Operation::GetUser => "GetUser",
            Operation::DeleteUser => "DeleteUser",
            Operation::ListUsers => "ListUsers",
        }
    }

    /// Whether the operation only reads (Get and List): it changes nothing.
    pub fn is_read(self) -> bool {
        matches!(
            self,
            Operation::GetSSHPublicKey
                | Operation::ListSSHPublicKeys
                | Operation::GetUser
                | Operation::ListUsers
        )
    }

    pub fn from_name(name: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|op| op.name() == name)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The value kind of a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    String,
    Integer,
    Other,
}

/// The constraints of one input member, as the model states them.
#[derive(Clone, Debug)]
pub struct Constraint {
    pub kind: Kind,
    pub min: Option<i64>,
    pub max: Option<i64>,
    /// The pattern as written in the model (shown in messages) and compiled.
    pub pattern: Option<(String, Regex)>,
    pub enum_values: Option<Vec<String>>,
}

/// One input member of an operation.
#[derive(Clone, Debug)]
pub struct Member {
    pub name: String,
    pub required: bool,
    pub constraint: Constraint,
}

impl Member {
    /// The member's name as IAM writes it in validation messages: the first
    /// letter lower-cased (`UserName` -> `userName`, `SSHPublicKeyId` -> `sSHPublicKeyId`).
    pub fn message_token(&self) -> String {
        let mut chars = self.name.chars();
        match chars.next() {
            Some(first) => first.to_lowercase().chain(chars).collect(),
            None => String::new(),
        }
    }
}

/// A modeled error: its code, HTTP status and fault side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorShape {
    pub code: String,
    pub status: u16,
    pub sender_fault: bool,
}

/// One operation: its input members, modeled errors and result wrapper.
#[derive(Clone, Debug)]
pub struct OperationSpec {
    pub operation: Operation,
    pub members: Vec<Member>,
    pub errors: Vec<ErrorShape>,
    pub result_wrapper: Option<String>,
}

impl OperationSpec {
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }
}

/// The loaded model.
#[derive(Debug)]
pub struct Model {
    operations: BTreeMap<Operation, OperationSpec>,
    errors: BTreeMap<String, ErrorShape>,
}

impl Model {
    pub fn operation(&self, op: Operation) -> &OperationSpec {
        &self.operations[&op]
    }

    /// A modeled error by its code (`NoSuchEntity`).
    pub fn error(&self, code: &str) -> Option<&ErrorShape> {
        self.errors.get(code)
    }
}

/// The model, parsed once.
pub fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| parse_model(MODEL_JSON).expect("the embedded service model parses"))
}

#[derive(Deserialize)]
struct RawModel {
    operations: BTreeMap<String, RawOperation>,
    shapes: BTreeMap<String, RawShape>,
}

#[derive(Deserialize)]
struct RawOperation {
    input: Option<RawRef>,
    output: Option<RawOutput>,
    #[serde(default)]
    errors: Vec<RawRef>,
}

#[derive(Deserialize)]
struct RawOutput {
    #[serde(rename = "resultWrapper")]
    result_wrapper: Option<String>,
}

#[derive(Deserialize)]
struct RawRef {
    shape: String,
}

#[derive(Deserialize)]
struct RawShape {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    required: Vec<String>,
    #[serde(default)]
    members: BTreeMap<String, RawRef>,
    min: Option<i64>,
    max: Option<i64>,
    pattern: Option<String>,
    #[serde(rename = "enum")]
    enum_values: Option<Vec<String>>,
    error: Option<RawError>,
}

#[derive(Deserialize)]
struct RawError {
    code: String,
    #[serde(rename = "httpStatusCode")]
    status: u16,
    #[serde(rename = "senderFault", default)]
    sender_fault: bool,
}

/// Parses a botocore model (subset) into the harness's view.
fn parse_model(json: &str) -> Result<Model, String> {
    let raw: RawModel = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let shape = |name: &str| {
        raw.shapes
            .get(name)
            .ok_or_else(|| format!("shape {name} is missing from the model"))
    };
    let mut operations = BTreeMap::new();
    let mut errors = BTreeMap::new();
    for (name, op) in &raw.operations {
        let operation = Operation::from_name(name)
            .ok_or_else(|| format!("operation {name} is not in scope"))?;
        let mut members = Vec::new();
        if let Some(input) = &op.input {
            let input = shape(&input.shape)?;
            for (member_name, member) in &input.members {
                let target = shape(&member.shape)?;
                members.push(Member {
                    name: member_name.clone(),
                    required: input.required.contains(member_name),
                    constraint: constraint(target)?,
                });
            }
        }
        let mut op_errors = Vec::new();
        for error_ref in &op.errors {
            let raw_error = shape(&error_ref.shape)?
                .error
                .as_ref()
                .ok_or_else(|| format!("shape {} has no error trait", error_ref.shape))?;
            let error = ErrorShape {
                code: raw_error.code.clone(),
                status: raw_error.status,
                sender_fault: raw_error.sender_fault,
            };
            errors.insert(error.code.clone(), error.clone());
            op_errors.push(error);
        }
        operations.insert(
            operation,
            OperationSpec {
                operation,
                members,
                errors: op_errors,
                result_wrapper: op.output.as_ref().and_then(|o| o.result_wrapper.clone()),
            },
        );
    }
    Ok(Model { operations, errors })
}

fn constraint(shape: &RawShape) -> Result<Constraint, String> {
    let kind = match shape.kind.as_str() {
        "string" => Kind::String,
        "integer" => Kind::Integer,
        _ => Kind::Other,
    };
    let pattern = match &shape.pattern {
        Some(p) => Some((p.clone(), compile_pattern(p)?)),
        None => None,
    };
    Ok(Constraint {
        kind,
        min: shape.min,
        max: shape.max,
        pattern,
        enum_values: shape.enum_values.clone(),
    })
}

/// Compiles a model (Java) pattern for a whole-string match. Java's `\w` is
/// ASCII, Rust's is Unicode, so `\w` is spelled out; every `\w` in the model
/// stands inside a character class.
pub fn compile_pattern(pattern: &str) -> Result<Regex, String> {
    let ascii = pattern.replace(r"\w", "A-Za-z0-9_");
    Regex::new(&format!("^(?:{ascii})$")).map_err(|e| format!("pattern {pattern}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_members_follow_the_model() {
        let op = model().operation(Operation::UpdateSSHPublicKey);
        let names: Vec<_> = op.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["SSHPublicKeyId", "Status", "UserName"]);
        assert!(op.members.iter().all(|m| m.required));
        let user = op.member("UserName").unwrap();
        assert_eq!(
            (user.constraint.min, user.constraint.max),
            (Some(1), Some(64))
        );
        let status = op.member("Status").unwrap();
        assert_eq!(
            status.constraint.enum_values.as_deref(),
            Some(&["Active".to_string(), "Inactive".into(), "Expired".into()][..])
        );
        let codes: Vec<_> = op.errors.iter().map(|e| e.code.as_str()).collect();
        assert_eq!(codes, ["NoSuchEntity", "InvalidInput"]);
    }

    #[test]
    fn list_users_members_follow_the_model() {
        let op = model().operation(Operation::ListUsers);
        let names: Vec<_> = op.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["Marker", "MaxItems", "PathPrefix"]);
        assert!(op.members.iter().all(|m| !m.required));
        let prefix = &op.member("PathPrefix").unwrap().constraint;
        assert_eq!((prefix.min, prefix.max), (Some(1), Some(512)));
        let re = &prefix.pattern.as_ref().unwrap().1;
        assert!(re.is_match("/iam-conformance/"));
        assert!(re.is_match("/iam-conformance/run-1"));
        assert!(!re.is_match("iam-conformance/"));
        assert!(!re.is_match("/a b/"));
        let max = &op.member("MaxItems").unwrap().constraint;
        assert_eq!(
            (max.kind, max.min, max.max),
            (Kind::Integer, Some(1), Some(1000))
        );
        assert_eq!(op.result_wrapper.as_deref(), Some("ListUsersResult"));
    }

    #[test]
    fn reads_are_the_get_and_list_operations() {
        let reads: Vec<_> = Operation::ALL
            .into_iter()
            .filter(|op| op.is_read())
            .collect();
        assert_eq!(
            reads,
            [
                Operation::GetSSHPublicKey,
                Operation::ListSSHPublicKeys,
                Operation::GetUser,
                Operation::ListUsers
            ]
        );
    }

    #[test]
    fn word_class_is_ascii_like_java() {
        let (_, re) = model()
            .operation(Operation::UpdateSSHPublicKey)
            .member("UserName")
            .unwrap()
            .constraint
            .pattern
            .clone()
            .unwrap();
        assert!(re.is_match("Jane.Doe+ops@example.com"));
        assert!(!re.is_match("Jané"));
        assert!(!re.is_match("a b"));
        assert!(!re.is_match(""));
    }

    #[test]
    fn key_body_pattern_allows_latin1_but_not_controls() {
        let member = model()
            .operation(Operation::UploadSSHPublicKey)
            .member("SSHPublicKeyBody")
            .unwrap()
            .clone();
        let re = &member.constraint.pattern.as_ref().unwrap().1;
        assert!(re.is_match("ssh-rsa AAAA\r\n\tcomment é"));
        assert!(!re.is_match("ssh-rsa \u{1}"));
        assert!(!re.is_match("ssh-rsa \u{100}"));
        assert_eq!(member.message_token(), "sSHPublicKeyBody");
    }

    #[test]
    fn errors_carry_status_and_side() {
        let m = model();
        assert_eq!(m.error("LimitExceeded").unwrap().status, 409);
        assert_eq!(m.error("NoSuchEntity").unwrap().status, 404);
        assert!(!m.error("ServiceFailure").unwrap().sender_fault);
        assert_eq!(
            m.operation(Operation::ListSSHPublicKeys)
                .result_wrapper
                .as_deref(),
            Some("ListSSHPublicKeysResult")
        );
    }
}
