//! The oracle: the reference model of IAM's users and SSH keys.
//!
//! Given a state and a request, [`handle`] says what real AWS answers and how
//! the state changes, following `spec/aws-iam-ssh-keys.md` rule by rule. Each
//! rule names its provenance, so a divergence from a rule the spec only infers
//! is reported as `unverified`, not `fail`. The embedded server serves exactly
//! this function; the runner calls it to predict what a target must answer.
//!
//! Order of checks, as the spec has it: dispatch (Action, Version), then the
//! model's validation of every member (all items at once), then IAM's own
//! userName pattern check, then existence: the user before the key.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::keys::{KeyError, RsaKey};
use crate::spec::{self, Kind, Operation};
use crate::xml::Element;

/// Where an expectation comes from, strongest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provenance {
    /// Recorded from real AWS.
    Live,
    /// AWS documentation.
    Doc,
    /// The service model.
    Model,
    /// Reasoned from the others; a divergence is `unverified`.
    Inferred,
}

impl Provenance {
    pub fn as_str(self) -> &'static str {
        match self {
            Provenance::Live => "live",
            Provenance::Doc => "doc",
            Provenance::Model => "model",
            Provenance::Inferred => "inferred",
        }
    }
}

/// The namespace of dispatch-level faults (unknown Action or Version).
pub const AWS_FAULT_NAMESPACE: &str = "http://webservices.amazon.com/AWSFault/2005-15-09";
/// What IAM answers when it cannot find the operation.
const NO_VERSION: &str = "NO_VERSION_SPECIFIED";
/// SSH public keys per user (IAM quotas page; not adjustable).
pub const KEYS_PER_USER: usize = 5;
/// The account of every ARN the embedded server makes.
pub const ACCOUNT_ID: &str = "123456789012";

/// An error answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    /// `Sender` (true) or `Receiver`.
    pub sender: bool,
    pub message: Message,
    pub namespace: &'static str,
}

/// The expected message of an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// This exact text.
    Text(String),
    /// `N validation error(s) detected: a; b`, items compared as a set.
    Validation(Vec<String>),
    /// The spec does not know the text: any non-empty message.
    Unknown,
}

impl Message {
    /// The text the embedded server sends.
    pub fn render(&self, code: &str) -> String {
        match self {
            Message::Text(text) => text.clone(),
            Message::Validation(items) => {
                let noun = if items.len() == 1 { "error" } else { "errors" };
                format!(
                    "{} validation {noun} detected: {}",
                    items.len(),
                    items.join("; ")
                )
            }
            Message::Unknown => format!("{code} (the real text is not recorded)"),
        }
    }
}

/// The encoding of a returned key body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Ssh,
    Pem,
}

/// A successful answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Success {
    /// Only ResponseMetadata.
    Empty,
    /// An SSHPublicKey element with the body in `body`.
    Key {
        key: Key,
        body: String,
    },
    /// A page of SSHPublicKeyMetadata.
    KeyList {
        keys: Vec<Key>,
        truncated: bool,
        marker: Option<String>,
    },
    User(User),
    /// A page of users.
    UserList {
        users: Vec<User>,
        truncated: bool,
        marker: Option<String>,
    },
    /// A redirect with an empty body (a POST without Action).
    Redirect {
        location: String,
    },
}

/// What a request gets, and how sure the spec is of each part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prediction {
    pub operation: Option<Operation>,
    pub result: Result<Success, ApiError>,
    /// Provenance of the status, code and type (and of the success shape).
    pub codes: Provenance,
    /// Provenance of the message text.
    pub message: Provenance,
}

/// An IAM user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub path: String,
    pub id: String,
    pub created: OffsetDateTime,
}

impl User {
    pub fn arn(&self) -> String {
        format!("arn:aws:iam::{ACCOUNT_ID}:user{}{}", self.path, self.name)
    }
}

/// An SSH public key of a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub id: String,
    pub user: String,
    /// The body as uploaded (Upload echoes it, comment included).
    pub uploaded: String,
    pub rsa: RsaKey,
    pub status: String,
    pub uploaded_at: OffsetDateTime,
}

/// Users and keys. User names are unique case-insensitively; keys are kept by id.
#[derive(Clone, Debug, Default)]
pub struct State {
    users: BTreeMap<String, User>,
    keys: BTreeMap<String, Key>,
}

impl State {
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(&name.to_lowercase())
    }

    pub fn key(&self, id: &str) -> Option<&Key> {
        self.keys.get(id)
    }

    /// The keys of a user, by key id.
    pub fn keys_of<'a>(&'a self, user: &'a str) -> impl Iterator<Item = &'a Key> + 'a {
        self.keys
            .values()
            .filter(move |k| k.user.eq_ignore_ascii_case(user))
    }

    /// Records a user that exists on a target (fixtures).
    pub fn insert_user(&mut self, user: User) {
        self.users.insert(user.name.to_lowercase(), user);
    }

    /// Records a key that exists on a target (fixtures).
    pub fn insert_key(&mut self, key: Key) {
        self.keys.insert(key.id.clone(), key);
    }

    /// Gives a key the id and date a target assigned it.
    pub fn rekey(&mut self, from: &str, to: &str, uploaded_at: OffsetDateTime) {
        if let Some(mut key) = self.keys.remove(from) {
            key.id = to.to_string();
            key.uploaded_at = uploaded_at;
            self.keys.insert(key.id.clone(), key);
        }
    }

    /// The number of users and keys held.
    pub fn len(&self) -> (usize, usize) {
        (self.users.len(), self.keys.len())
    }
}

/// A request as name/value pairs in wire order. The first occurrence of a name wins.
pub type Params = [(String, String)];

/// The first value of a parameter.
pub fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// What IAM answers a request that is not signed (`None`) or signed for
/// another service, before it looks at anything else. Neither is recorded.
pub fn authenticate(scope: Option<&str>) -> Option<Prediction> {
    let (code, message) = match scope {
        None => ("MissingAuthenticationToken", Message::Unknown),
        Some("iam") => return None,
        Some(_) => (
            "SignatureDoesNotMatch",
            Message::Text("Credential should be scoped to correct service: 'iam'. ".into()),
        ),
    };
    Some(error(None, 403, code, message, Provenance::Inferred))
}

/// Answers a request, changing the state as IAM would. `now` is the server's clock.
///
/// Unknown parameters are ignored and the first of duplicated ones wins: that
/// is recorded on STS, not IAM, so such a request's expectations are inferred.
pub fn handle(state: &mut State, params: &Params, now: OffsetDateTime) -> Prediction {
    let mut prediction = answer(state, params, now);
    if let Some(op) = prediction.operation {
        let members = &spec::model().operation(op).members;
        let names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
        let unknown = names
            .iter()
            .any(|n| !matches!(*n, "Action" | "Version") && !members.iter().any(|m| m.name == *n));
        let duplicated = names
            .iter()
            .enumerate()
            .any(|(i, n)| names[..i].contains(n));
        if unknown || duplicated {
            prediction.codes = prediction.codes.max(Provenance::Inferred);
            prediction.message = prediction.message.max(Provenance::Inferred);
        }
    }
    prediction
}

fn answer(state: &mut State, params: &Params, now: OffsetDateTime) -> Prediction {
    let action = param(params, "Action");
    let version = param(params, "Version");
    let Some(action) = action else {
        // Live on STS (same Query stack); the IAM host is not verified.
        return success(
            None,
            Success::Redirect {
                location: "https://aws.amazon.com/iam".into(),
            },
            Provenance::Inferred,
        );
    };
    let op = Operation::from_name(action);
    let wrong_version = version != Some(spec::API_VERSION);
    if op.is_none() || wrong_version {
        let shown = version.unwrap_or(NO_VERSION);
        let mut prediction = error(
            op,
            400,
            "InvalidAction",
            Message::Text(format!(
                "Could not find operation {action} for version {shown}"
            )),
            // Unknown Action is live on IAM; an empty one and the Version
            // variants are live on STS.
            if wrong_version || action.is_empty() {
                Provenance::Inferred
            } else {
                Provenance::Live
            },
        );
        if let Err(e) = &mut prediction.result {
            e.namespace = AWS_FAULT_NAMESPACE;
        }
        return prediction;
    }
    let op = op.expect("checked above");
    if let Some(rejection) = validate(op, params) {
        return rejection;
    }
    let p = |name| param(params, name).unwrap_or_default();
    match op {
        Operation::UpdateSSHPublicKey => {
            update(state, p("UserName"), p("SSHPublicKeyId"), p("Status"))
        }
        Operation::UploadSSHPublicKey => upload(state, p("UserName"), p("SSHPublicKeyBody"), now),
        Operation::GetSSHPublicKey => {
            get_key(state, p("UserName"), p("SSHPublicKeyId"), p("Encoding"))
        }
        Operation::ListSSHPublicKeys => list_keys(
            state,
            param(params, "UserName"),
            param(params, "Marker"),
            param(params, "MaxItems"),
        ),
        Operation::DeleteSSHPublicKey => delete_key(state, p("UserName"), p("SSHPublicKeyId")),
        Operation::CreateUser => create_user(state, p("UserName"), param(params, "Path"), now),
        Operation::GetUser => get_user(state, param(params, "UserName")),
        Operation::DeleteUser => delete_user(state, p("UserName")),
        Operation::ListUsers => list_users(
            state,
            param(params, "PathPrefix"),
            param(params, "Marker"),
            param(params, "MaxItems"),
        ),
    }
}

fn success(op: Option<Operation>, result: Success, codes: Provenance) -> Prediction {
    Prediction {
        operation: op,
        result: Ok(result),
        codes,
        message: codes,
    }
}

/// An error answer with the same provenance for codes and text.
pub(crate) fn error(
    op: Option<Operation>,
    status: u16,
    code: &str,
    message: Message,
    provenance: Provenance,
) -> Prediction {
    Prediction {
        operation: op,
        result: Err(ApiError {
            status,
            code: code.into(),
            sender: status < 500,
            message,
            namespace: spec::XML_NAMESPACE,
        }),
        codes: provenance,
        message: provenance,
    }
}

/// An error whose code and status come from the model.
fn modeled(
    op: Operation,
    code: &str,
    message: Message,
    codes: Provenance,
    text: Provenance,
) -> Prediction {
    let status = spec::model().error(code).map_or(400, |e| e.status);
    let mut p = error(Some(op), status, code, message, codes);
    p.message = text;
    p
}

/// The model's validation, then IAM's userName check.
fn validate(op: Operation, params: &Params) -> Option<Prediction> {
    let spec = spec::model().operation(op);
    let mut items = Vec::new();
    for member in &spec.members {
        let token = member.message_token();
        let mut fail = |what: String| {
            items.push(format!(
                "Value at '{token}' failed to satisfy constraint: Member must {what}"
            ))
        };
        let Some(value) = param(params, &member.name) else {
            if member.required {
                fail("not be null".into());
            }
            continue;
        };
        let c = &member.constraint;
        match c.kind {
            Kind::Integer => {
                let Ok(n) = value.parse::<i64>() else {
                    return Some(error(
                        Some(op),
                        400,
                        "MalformedInput",
                        Message::Unknown,
                        Provenance::Inferred,
                    ));
                };
                if let Some(min) = c.min.filter(|min| n < *min) {
                    fail(format!("have value greater than or equal to {min}"));
                }
                if let Some(max) = c.max.filter(|max| n > *max) {
                    fail(format!("have value less than or equal to {max}"));
                }
            }
            Kind::String | Kind::Other => {
                if let Some(values) = &c.enum_values {
                    if !values.iter().any(|v| v == value) {
                        fail("satisfy enum value set".into());
                    }
                    continue;
                }
                let iam_checks_pattern = member.name == "UserName";
                if let Some((source, re)) = &c.pattern
                    && !iam_checks_pattern
                    && !re.is_match(value)
                {
                    fail(format!("satisfy regular expression pattern: {source}"));
                }
                let len = value.chars().count() as i64;
                if let Some(min) = c.min.filter(|min| len < *min) {
                    fail(format!("have length greater than or equal to {min}"));
                }
                if let Some(max) = c.max.filter(|max| len > *max) {
                    fail(format!("have length less than or equal to {max}"));
                }
            }
        }
    }
    if !items.is_empty() {
        // A model constraint makes the rejection certain; IAM's text for these
        // operations is inferred from the same checks on sibling operations.
        return Some(modeled(
            op,
            "ValidationError",
            Message::Validation(items),
            Provenance::Model,
            Provenance::Inferred,
        ));
    }
    let user_pattern = spec
        .member("UserName")
        .and_then(|m| m.constraint.pattern.as_ref());
    if let (Some(name), Some((_, re))) = (param(params, "UserName"), user_pattern)
        && !re.is_match(name)
    {
        // Recorded for CreateUser (and AttachUserPolicy); for the SSH
        // operations the handcrafted text is the likeliest, not recorded.
        let text = if op == Operation::CreateUser {
            Provenance::Live
        } else {
            Provenance::Inferred
        };
        return Some(modeled(
            op,
            "ValidationError",
            Message::Text(
                "The specified value for userName is invalid. It must contain only alphanumeric characters and/or the following: +=,.@_-".into(),
            ),
            Provenance::Model,
            text,
        ));
    }
    None
}

fn no_such_user(op: Operation, name: &str, provenance: Provenance) -> Prediction {
    modeled(
        op,
        "NoSuchEntity",
        Message::Text(format!("The user with name {name} cannot be found.")),
        provenance,
        provenance,
    )
}

fn no_such_key(op: Operation, id: &str, provenance: Provenance) -> Prediction {
    modeled(
        op,
        "NoSuchEntity",
        Message::Text(format!("The Public Key with id {id} cannot be found.")),
        provenance,
        provenance,
    )
}

/// Looks up the user, then the user's key (the spec's order; user first is
/// inferred). `None` when both exist, else the answer for the missing one.
fn missing_key(state: &State, op: Operation, user: &str, id: &str) -> Option<Prediction> {
    if state.user(user).is_none() {
        return Some(no_such_user(op, user, Provenance::Inferred));
    }
    match state.key(id) {
        Some(key) if key.user.eq_ignore_ascii_case(user) => None,
        // Another user's key: looked up per user, so "not found" (inferred).
        Some(_) => Some(no_such_key(op, id, Provenance::Inferred)),
        None => Some(no_such_key(op, id, Provenance::Live)),
    }
}

fn update(state: &mut State, user: &str, id: &str, status: &str) -> Prediction {
    let op = Operation::UpdateSSHPublicKey;
    if let Some(missing) = missing_key(state, op, user, id) {
        return missing;
    }
    let current = state.keys[id].status.clone();
    if status == "Expired" {
        // In the model since 2025-06-30 together with InvalidInput; no recording.
        return modeled(
            op,
            "InvalidInput",
            Message::Unknown,
            Provenance::Inferred,
            Provenance::Inferred,
        );
    }
    let provenance = match (current.as_str(), status) {
        ("Active", "Inactive") => Provenance::Live,
        (from, to) if from == to => Provenance::Inferred,
        _ => Provenance::Doc,
    };
    if let Some(key) = state.keys.get_mut(id) {
        key.status = status.to_string();
    }
    success(Some(op), Success::Empty, provenance)
}

fn upload(state: &mut State, user: &str, body: &str, now: OffsetDateTime) -> Prediction {
    let op = Operation::UploadSSHPublicKey;
    let Some(owner) = state.user(user).map(|u| u.name.clone()) else {
        return no_such_user(op, user, Provenance::Inferred);
    };
    let rsa = match RsaKey::parse(body) {
        Ok(rsa) => rsa,
        // Documented: "malformed or otherwise invalid", "minimum 2048 bits".
        Err(KeyError::Malformed(_) | KeyError::TooShort(_)) => {
            return modeled(
                op,
                "InvalidPublicKey",
                Message::Unknown,
                Provenance::Doc,
                Provenance::Inferred,
            );
        }
        // Which of the two codes an ed25519 or ECDSA key gets is not recorded.
        Err(KeyError::NotRsa(_)) => {
            return modeled(
                op,
                "InvalidPublicKey",
                Message::Unknown,
                Provenance::Inferred,
                Provenance::Inferred,
            );
        }
        Err(KeyError::Unrecognized) => {
            return modeled(
                op,
                "UnrecognizedPublicKeyEncoding",
                Message::Unknown,
                Provenance::Inferred,
                Provenance::Inferred,
            );
        }
    };
    if state.keys_of(user).any(|k| k.rsa == rsa) {
        return modeled(
            op,
            "DuplicateSSHPublicKey",
            Message::Unknown,
            Provenance::Doc,
            Provenance::Inferred,
        );
    }
    if state.keys_of(user).count() >= KEYS_PER_USER {
        return modeled(
            op,
            "LimitExceeded",
            Message::Text(format!(
                "Cannot exceed quota for SSHPublicKeysPerUser: {KEYS_PER_USER}"
            )),
            Provenance::Doc,
            Provenance::Inferred,
        );
    }
    let key = Key {
        id: new_id("APKA", 16),
        user: owner,
        uploaded: body.to_string(),
        rsa,
        status: "Active".into(),
        uploaded_at: now,
    };
    state.insert_key(key.clone());
    let body = key.uploaded.clone();
    success(Some(op), Success::Key { key, body }, Provenance::Live)
}

fn get_key(state: &State, user: &str, id: &str, encoding: &str) -> Prediction {
    let op = Operation::GetSSHPublicKey;
    if let Some(missing) = missing_key(state, op, user, id) {
        return missing;
    }
    let key = state.keys[id].clone();
    let (body, provenance) = match encoding {
        "PEM" => (key.rsa.to_pem(), Provenance::Doc),
        _ => (key.rsa.to_ssh(), Provenance::Live),
    };
    success(Some(op), Success::Key { key, body }, provenance)
}

fn list_keys(
    state: &State,
    user: Option<&str>,
    marker: Option<&str>,
    max_items: Option<&str>,
) -> Prediction {
    let op = Operation::ListSSHPublicKeys;
    let Some(user) = user else {
        // The harness signs with non-user credentials.
        return modeled(
            op,
            "ValidationError",
            Message::Text("Must specify userName when calling with non-User credentials".into()),
            Provenance::Inferred,
            Provenance::Inferred,
        );
    };
    if state.user(user).is_none() {
        return no_such_user(op, user, Provenance::Inferred);
    }
    // An empty list and IsTruncated=false are recorded; paging is the model's.
    let provenance = if marker.is_some() || max_items.is_some() {
        Provenance::Model
    } else {
        Provenance::Live
    };
    let all = state.keys_of(user).cloned().collect();
    let Some((keys, truncated, marker)) = page(all, |k: &Key| &k.id, marker, max_items) else {
        return invalid_marker(op);
    };
    success(
        Some(op),
        Success::KeyList {
            keys,
            truncated,
            marker,
        },
        provenance,
    )
}

/// One page of a list, `items` in list order: from the item the marker names
/// on, at most `max_items` (validated already; 100 without). Markers are
/// opaque; ours name the first item of the next page by its `id`, so `None`
/// when the marker names no item of the list.
fn page<T>(
    items: Vec<T>,
    id: impl Fn(&T) -> &str,
    marker: Option<&str>,
    max_items: Option<&str>,
) -> Option<(Vec<T>, bool, Option<String>)> {
    let start = match marker {
        None => 0,
        Some(m) => {
            let named = URL_SAFE_NO_PAD
                .decode(m)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())?;
            items.iter().position(|item| id(item) == named)?
        }
    };
    let limit = max_items
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(100);
    let mut items: Vec<T> = items.into_iter().skip(start).collect();
    let truncated = items.len() > limit;
    let marker = truncated.then(|| URL_SAFE_NO_PAD.encode(id(&items[limit])));
    items.truncate(limit);
    Some((items, truncated, marker))
}

fn invalid_marker(op: Operation) -> Prediction {
    modeled(
        op,
        "ValidationError",
        Message::Text("Invalid Marker.".into()),
        Provenance::Inferred,
        Provenance::Inferred,
    )
}

fn delete_key(state: &mut State, user: &str, id: &str) -> Prediction {
    let op = Operation::DeleteSSHPublicKey;
    if let Some(missing) = missing_key(state, op, user, id) {
        return missing;
    }
    state.keys.remove(id);
    success(Some(op), Success::Empty, Provenance::Live)
}

fn create_user(
    state: &mut State,
    name: &str,
    path: Option<&str>,
    now: OffsetDateTime,
) -> Prediction {
    let op = Operation::CreateUser;
    if state.user(name).is_some() {
        return modeled(
            op,
            "EntityAlreadyExists",
            Message::Text(format!("User with name {name} already exists.")),
            Provenance::Live,
            Provenance::Live,
        );
    }
    let user = User {
        name: name.to_string(),
        path: path.unwrap_or("/").to_string(),
        id: new_id("AIDA", 17),
        created: now,
    };
    state.insert_user(user.clone());
    success(Some(op), Success::User(user), Provenance::Live)
}

fn get_user(state: &State, name: Option<&str>) -> Prediction {
    let op = Operation::GetUser;
    let Some(name) = name else {
        return modeled(
            op,
            "ValidationError",
            Message::Text("Must specify userName when calling with non-User credentials".into()),
            Provenance::Live,
            Provenance::Live,
        );
    };
    match state.user(name) {
        Some(user) => success(Some(op), Success::User(user.clone()), Provenance::Live),
        None => no_such_user(op, name, Provenance::Live),
    }
}

fn delete_user(state: &mut State, name: &str) -> Prediction {
    let op = Operation::DeleteUser;
    if state.user(name).is_none() {
        return no_such_user(op, name, Provenance::Live);
    }
    if state.keys_of(name).next().is_some() {
        return modeled(
            op,
            "DeleteConflict",
            Message::Text("Cannot delete entity, must delete SSH public keys first.".into()),
            Provenance::Model,
            Provenance::Inferred,
        );
    }
    state.users.remove(&name.to_lowercase());
    success(Some(op), Success::Empty, Provenance::Live)
}

/// The users whose path starts with `prefix` (default `/`: all), a page at a time.
fn list_users(
    state: &State,
    prefix: Option<&str>,
    marker: Option<&str>,
    max_items: Option<&str>,
) -> Prediction {
    let op = Operation::ListUsers;
    let prefix = prefix.unwrap_or("/");
    let resumed = marker.is_some();
    // By name, case-insensitively (the names' uniqueness): inferred.
    let all = state
        .users
        .values()
        .filter(|u| u.path.starts_with(prefix))
        .cloned()
        .collect();
    let Some((users, truncated, marker)) = page(all, |u: &User| &u.name, marker, max_items) else {
        return invalid_marker(op);
    };
    // The API reference states the filter, the defaults and the paging; which
    // users fill a page depends on the order, which is inferred.
    let provenance = if truncated || resumed {
        Provenance::Inferred
    } else {
        Provenance::Doc
    };
    success(
        Some(op),
        Success::UserList {
            users,
            truncated,
            marker,
        },
        provenance,
    )
}

/// A fresh id: a prefix and base32 characters, as IAM's `APKA…`/`AIDA…`.
pub fn new_id(prefix: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let tail: String = bytes
        .iter()
        .chain(uuid::Uuid::new_v4().as_bytes())
        .take(len)
        .map(|b| ALPHABET[(*b % 32) as usize] as char)
        .collect();
    format!("{prefix}{tail}")
}

/// IAM's timestamp text: ISO 8601 in UTC with `Z`, milliseconds when asked.
pub fn timestamp(t: OffsetDateTime, millis: bool) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if millis {
        format!("{base}.{:03}Z", t.millisecond())
    } else {
        format!("{base}Z")
    }
}

/// The XML body IAM sends for a prediction: the success envelope or the error envelope.
pub fn envelope(prediction: &Prediction, request_id: &str) -> Option<Element> {
    let op = prediction.operation;
    match &prediction.result {
        Err(e) => Some(
            Element::new("ErrorResponse")
                .with_namespace(e.namespace)
                .child(
                    Element::new("Error")
                        .child(Element::leaf(
                            "Type",
                            if e.sender { "Sender" } else { "Receiver" },
                        ))
                        .child(Element::leaf("Code", e.code.clone()))
                        .child(Element::leaf("Message", e.message.render(&e.code))),
                )
                .child(Element::leaf("RequestId", request_id)),
        ),
        Ok(Success::Redirect { .. }) => None,
        Ok(result) => {
            let op = op.expect("a success names its operation");
            let mut root =
                Element::new(&format!("{op}Response")).with_namespace(spec::XML_NAMESPACE);
            if let Some(wrapper) = &spec::model().operation(op).result_wrapper {
                let mut result_el = Element::new(wrapper);
                result_el.children = result_children(op, result);
                root = root.child(result_el);
            }
            Some(root.child(
                Element::new("ResponseMetadata").child(Element::leaf("RequestId", request_id)),
            ))
        }
    }
}

fn result_children(op: Operation, result: &Success) -> Vec<Element> {
    match result {
        Success::Key { key, body } => {
            let millis = op == Operation::UploadSSHPublicKey;
            vec![
                Element::new("SSHPublicKey")
                    .child(Element::leaf("UserName", key.user.clone()))
                    .child(Element::leaf("SSHPublicKeyId", key.id.clone()))
                    .child(Element::leaf("Fingerprint", key.rsa.fingerprint()))
                    .child(Element::leaf("SSHPublicKeyBody", body.clone()))
                    .child(Element::leaf("Status", key.status.clone()))
                    .child(Element::leaf(
                        "UploadDate",
                        timestamp(key.uploaded_at, millis),
                    )),
            ]
        }
        Success::KeyList {
            keys,
            truncated,
            marker,
        } => {
            let mut list = Element::new("SSHPublicKeys");
            for key in keys {
                list = list.child(
                    Element::new("member")
                        .child(Element::leaf("UserName", key.user.clone()))
                        .child(Element::leaf("SSHPublicKeyId", key.id.clone()))
                        .child(Element::leaf("Status", key.status.clone()))
                        .child(Element::leaf(
                            "UploadDate",
                            timestamp(key.uploaded_at, false),
                        )),
                );
            }
            paged(list, *truncated, marker.as_deref())
        }
        Success::User(user) => vec![user_element("User", user)],
        Success::UserList {
            users,
            truncated,
            marker,
        } => {
            let mut list = Element::new("Users");
            for user in users {
                list = list.child(user_element("member", user));
            }
            paged(list, *truncated, marker.as_deref())
        }
        Success::Empty | Success::Redirect { .. } => Vec::new(),
    }
}

/// A list element, then IsTruncated, then the Marker of the next page if any.
fn paged(list: Element, truncated: bool, marker: Option<&str>) -> Vec<Element> {
    let mut children = vec![list, Element::leaf("IsTruncated", truncated.to_string())];
    children.extend(marker.map(|m| Element::leaf("Marker", m)));
    children
}

fn user_element(name: &str, user: &User) -> Element {
    Element::new(name)
        .child(Element::leaf("Path", user.path.clone()))
        .child(Element::leaf("UserName", user.name.clone()))
        .child(Element::leaf("UserId", user.id.clone()))
        .child(Element::leaf("Arn", user.arn()))
        .child(Element::leaf("CreateDate", timestamp(user.created, false)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::corpus_keys;

    fn req(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v = vec![("Version".to_string(), spec::API_VERSION.to_string())];
        v.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        v
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH
    }

    fn err(p: &Prediction) -> &ApiError {
        p.result.as_ref().unwrap_err()
    }

    fn setup() -> (State, String) {
        let mut s = State::default();
        handle(
            &mut s,
            &req(&[("Action", "CreateUser"), ("UserName", "Jane")]),
            now(),
        );
        let p = handle(
            &mut s,
            &req(&[
                ("Action", "UploadSSHPublicKey"),
                ("UserName", "Jane"),
                ("SSHPublicKeyBody", corpus_keys()[0]),
            ]),
            now(),
        );
        let Ok(Success::Key { key, .. }) = p.result else {
            panic!("{p:?}")
        };
        (s, key.id)
    }

    #[test]
    fn update_changes_only_the_named_key() {
        let (mut s, id) = setup();
        let p = handle(
            &mut s,
            &req(&[
                ("Action", "UpdateSSHPublicKey"),
                ("UserName", "Jane"),
                ("SSHPublicKeyId", &id),
                ("Status", "Inactive"),
            ]),
            now(),
        );
        assert_eq!(p.result, Ok(Success::Empty));
        assert_eq!(p.codes, Provenance::Live);
        assert_eq!(s.key(&id).unwrap().status, "Inactive");
    }

    #[test]
    fn validation_comes_before_existence_and_lists_every_item() {
        let mut s = State::default();
        let p = handle(
            &mut s,
            &req(&[
                ("Action", "UpdateSSHPublicKey"),
                ("UserName", &"a".repeat(65)),
                ("SSHPublicKeyId", "short"),
                ("Status", "active"),
            ]),
            now(),
        );
        let e = err(&p);
        assert_eq!((e.status, e.code.as_str()), (400, "ValidationError"));
        let Message::Validation(items) = &e.message else {
            panic!()
        };
        assert_eq!(items.len(), 3);
        assert!(items.contains(&"Value at 'status' failed to satisfy constraint: Member must satisfy enum value set".to_string()));
        assert!(items.contains(&"Value at 'sSHPublicKeyId' failed to satisfy constraint: Member must have length greater than or equal to 20".to_string()));
        assert!(
            e.message
                .render(&e.code)
                .starts_with("3 validation errors detected: ")
        );
    }

    #[test]
    fn unknown_key_is_the_recorded_message() {
        let (mut s, _) = setup();
        let p = handle(
            &mut s,
            &req(&[
                ("Action", "UpdateSSHPublicKey"),
                ("UserName", "Jane"),
                ("SSHPublicKeyId", "APKAXXXXXXXXXXXXXXXXX"),
                ("Status", "Inactive"),
            ]),
            now(),
        );
        assert_eq!(
            err(&p).message,
            Message::Text("The Public Key with id APKAXXXXXXXXXXXXXXXXX cannot be found.".into())
        );
        assert_eq!((err(&p).status, p.codes), (404, Provenance::Live));
    }

    #[test]
    fn handcrafted_user_name_message_after_model_checks() {
        let mut s = State::default();
        let p = handle(
            &mut s,
            &req(&[
                ("Action", "UpdateSSHPublicKey"),
                ("UserName", "Jané"),
                ("SSHPublicKeyId", "APKAXXXXXXXXXXXXXXXX"),
                ("Status", "Active"),
            ]),
            now(),
        );
        assert!(
            matches!(&err(&p).message, Message::Text(t) if t.starts_with("The specified value for userName is invalid."))
        );
    }

    #[test]
    fn dispatch_errors_use_the_fault_namespace() {
        let mut s = State::default();
        let p = handle(
            &mut s,
            &[("Action".into(), "UpdateSSHPublicKey".into())],
            now(),
        );
        let e = err(&p);
        assert_eq!(
            e.message,
            Message::Text(
                "Could not find operation UpdateSSHPublicKey for version NO_VERSION_SPECIFIED"
                    .into()
            )
        );
        assert_eq!(e.namespace, AWS_FAULT_NAMESPACE);
    }

    #[test]
    fn sixth_key_and_user_deletion_conflict() {
        let (mut s, _) = setup();
        for body in &corpus_keys()[1..5] {
            let p = handle(
                &mut s,
                &req(&[
                    ("Action", "UploadSSHPublicKey"),
                    ("UserName", "jane"),
                    ("SSHPublicKeyBody", body),
                ]),
                now(),
            );
            assert!(p.result.is_ok());
        }
        let p = handle(
            &mut s,
            &req(&[
                ("Action", "UploadSSHPublicKey"),
                ("UserName", "Jane"),
                ("SSHPublicKeyBody", corpus_keys()[5]),
            ]),
            now(),
        );
        assert_eq!(
            (err(&p).status, err(&p).code.as_str()),
            (409, "LimitExceeded")
        );
        let p = handle(
            &mut s,
            &req(&[("Action", "DeleteUser"), ("UserName", "Jane")]),
            now(),
        );
        assert_eq!(
            (err(&p).status, err(&p).code.as_str()),
            (409, "DeleteConflict")
        );
    }

    #[test]
    fn list_pages_with_markers() {
        let (mut s, _) = setup();
        handle(
            &mut s,
            &req(&[
                ("Action", "UploadSSHPublicKey"),
                ("UserName", "Jane"),
                ("SSHPublicKeyBody", corpus_keys()[1]),
            ]),
            now(),
        );
        let p = handle(
            &mut s,
            &req(&[
                ("Action", "ListSSHPublicKeys"),
                ("UserName", "Jane"),
                ("MaxItems", "1"),
            ]),
            now(),
        );
        let Ok(Success::KeyList {
            keys,
            truncated: true,
            marker: Some(m),
        }) = p.result
        else {
            panic!()
        };
        let p = handle(
            &mut s,
            &req(&[
                ("Action", "ListSSHPublicKeys"),
                ("UserName", "Jane"),
                ("Marker", &m),
            ]),
            now(),
        );
        let Ok(Success::KeyList {
            keys: rest,
            truncated: false,
            marker: None,
        }) = p.result
        else {
            panic!()
        };
        assert_eq!(keys.len() + rest.len(), 2);
        assert!(keys[0].id < rest[0].id);
    }

    /// A state with users (name, path) created in this order.
    fn users(users: &[(&str, &str)]) -> State {
        let mut s = State::default();
        for &(name, path) in users {
            let p = handle(
                &mut s,
                &req(&[("Action", "CreateUser"), ("UserName", name), ("Path", path)]),
                now(),
            );
            assert!(p.result.is_ok(), "{p:?}");
        }
        s
    }

    /// The names on one page of ListUsers, IsTruncated and the Marker.
    fn list_users(s: &mut State, pairs: &[(&str, &str)]) -> (Vec<String>, bool, Option<String>) {
        let mut pairs = pairs.to_vec();
        pairs.push(("Action", "ListUsers"));
        let p = handle(s, &req(&pairs), now());
        let Ok(Success::UserList {
            users,
            truncated,
            marker,
        }) = p.result
        else {
            panic!("{p:?}")
        };
        (
            users.into_iter().map(|u| u.name).collect(),
            truncated,
            marker,
        )
    }

    #[test]
    fn list_users_filters_by_path_prefix_in_name_order() {
        let mut s = users(&[
            ("dave", "/iam-conformance/run-1/"),
            ("alice", "/"),
            ("Bob", "/iam-conformance/run-2/"),
            ("carol", "/iam-conformance/run-1/"),
            ("erin", "/other/iam-conformance/"),
        ]);
        let all = list_users(&mut s, &[]);
        assert_eq!(
            all,
            (
                vec![
                    "alice".into(),
                    "Bob".into(),
                    "carol".into(),
                    "dave".into(),
                    "erin".into()
                ],
                false,
                None
            )
        );
        assert_eq!(list_users(&mut s, &[("PathPrefix", "/")]), all);
        let (run, ..) = list_users(&mut s, &[("PathPrefix", "/iam-conformance/")]);
        assert_eq!(run, ["Bob", "carol", "dave"]);
        let (one, ..) = list_users(&mut s, &[("PathPrefix", "/iam-conformance/run-1")]);
        assert_eq!(one, ["carol", "dave"]);
        let (none, truncated, _) = list_users(&mut s, &[("PathPrefix", "/nobody/")]);
        assert!(none.is_empty() && !truncated);
        let p = handle(&mut s, &req(&[("Action", "ListUsers")]), now());
        assert_eq!(p.codes, Provenance::Doc);
    }

    #[test]
    fn list_users_pages_with_markers_until_not_truncated() {
        let names = ["u0", "u1", "u2", "u3", "u4"];
        let created: Vec<_> = names.iter().rev().map(|n| (*n, "/p/")).collect();
        let mut s = users(&created);
        let mut seen = Vec::new();
        let mut pages = 0;
        let mut marker: Option<String> = None;
        loop {
            let mut pairs = vec![("MaxItems", "2")];
            if let Some(m) = &marker {
                pairs.push(("Marker", m));
            }
            let (page, truncated, next) = list_users(&mut s, &pairs);
            pages += 1;
            assert_eq!(truncated, next.is_some());
            assert!(page.len() <= 2);
            seen.extend(page);
            let Some(next) = next else { break };
            marker = Some(next);
        }
        assert_eq!((seen, pages), (names.map(String::from).to_vec(), 3));
        let p = handle(
            &mut s,
            &req(&[("Action", "ListUsers"), ("MaxItems", "2")]),
            now(),
        );
        assert_eq!(
            p.codes,
            Provenance::Inferred,
            "a page depends on the inferred order"
        );
    }

    #[test]
    fn list_users_validates_like_the_model() {
        let mut s = users(&[("alice", "/")]);
        let items = |pairs: &[(&str, &str)]| {
            let mut pairs = pairs.to_vec();
            pairs.push(("Action", "ListUsers"));
            let p = handle(&mut s.clone(), &req(&pairs), now());
            let e = err(&p).clone();
            assert_eq!((e.status, e.code.as_str()), (400, "ValidationError"));
            e.message
        };
        assert_eq!(
            items(&[("MaxItems", "0"), ("PathPrefix", "iam-conformance/")]),
            Message::Validation(vec![
                "Value at 'maxItems' failed to satisfy constraint: Member must have value greater than or equal to 1".into(),
                "Value at 'pathPrefix' failed to satisfy constraint: Member must satisfy regular expression pattern: \\u002F[\\u0021-\\u007F]*".into(),
            ])
        );
        assert_eq!(
            items(&[("MaxItems", "1001")]),
            Message::Validation(vec![
                "Value at 'maxItems' failed to satisfy constraint: Member must have value less than or equal to 1000".into(),
            ])
        );
        let unknown_user = URL_SAFE_NO_PAD.encode("bob");
        assert_eq!(
            items(&[("Marker", &unknown_user)]),
            Message::Text("Invalid Marker.".into())
        );
        assert_eq!(list_users(&mut s, &[("MaxItems", "1000")]).0, ["alice"]);
    }

    #[test]
    fn list_users_renders_members_and_the_marker() {
        let mut s = users(&[("alice", "/iam-conformance/r/"), ("bob", "/")]);
        let p = handle(
            &mut s,
            &req(&[("Action", "ListUsers"), ("MaxItems", "1")]),
            now(),
        );
        let root = envelope(&p, "req-1").unwrap();
        assert_eq!(root.name, "ListUsersResponse");
        let result = root.get("ListUsersResult").unwrap();
        let member = result.get("Users").unwrap().get("member").unwrap();
        assert_eq!(member.text_at("Path"), Some("/iam-conformance/r/"));
        assert_eq!(member.text_at("UserName"), Some("alice"));
        assert!(member.text_at("UserId").unwrap().starts_with("AIDA"));
        assert_eq!(
            member.text_at("Arn"),
            Some("arn:aws:iam::123456789012:user/iam-conformance/r/alice")
        );
        assert_eq!(member.text_at("CreateDate"), Some("1970-01-01T00:00:00Z"));
        assert_eq!(result.text_at("IsTruncated"), Some("true"));
        assert_eq!(
            result.text_at("Marker"),
            Some(URL_SAFE_NO_PAD.encode("bob").as_str())
        );
    }

    #[test]
    fn timestamps_are_iso_8601_utc() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_433_537_806_012_000_000).unwrap();
        assert_eq!(timestamp(t, true), "2015-06-05T20:56:46.012Z");
        assert_eq!(timestamp(t, false), "2015-06-05T20:56:46Z");
    }
}
