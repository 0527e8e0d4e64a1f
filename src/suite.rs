//! The catalogue of case classes.
//!
//! A [`CaseClass`] is a named class of inputs that share one expected outcome;
//! its strategy makes concrete [`Case`]s. A case says which users and keys to
//! set up, and the request under test, whose member values either are literal
//! text or point at what the setup created (so one class holds whatever names
//! and ids a target hands out). Class ids are stable: reports, baselines and
//! snapshots key on them.

use proptest::prelude::*;
use serde::Serialize;

use crate::check::Level;
use crate::oracle::Provenance;
use crate::spec::Operation;
use crate::strategies::{self, Forbidden};
use crate::wire::Request;

/// A member value of the request under test.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Value {
    /// This exact text.
    Text(String),
    /// The name of set-up user `n`.
    User(usize),
    /// A well-formed name that no user has.
    UnknownUser,
    /// The id of key `key` of set-up user `user`.
    Key { user: usize, key: usize },
}

/// A user to create before the request, with its keys.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UserSetup {
    /// Pad the unique name to this many characters.
    pub name_len: Option<usize>,
    pub keys: Vec<KeySetup>,
}

/// A key to upload (from the corpus), then bring to a status or delete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeySetup {
    pub status: &'static str,
    pub deleted: bool,
}

impl KeySetup {
    fn with_status(status: &'static str) -> KeySetup {
        KeySetup {
            status,
            deleted: false,
        }
    }
}

/// One concrete case: what to set up and what to send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Case {
    pub users: Vec<UserSetup>,
    pub operation: Operation,
    /// Members in wire order; an absent member is simply not listed.
    pub params: Vec<(&'static str, Value)>,
}

impl Case {
    /// The request under test, its references resolved: `users[i]` is the name
    /// of set-up user `i`, `keys[i][j]` the target's id of that user's key `j`.
    pub fn request(&self, users: &[String], keys: &[Vec<String>], unknown_user: &str) -> Request {
        let mut request = Request::new(self.operation);
        for (name, value) in &self.params {
            let text = match value {
                Value::Text(t) => t.clone(),
                Value::User(i) => users[*i].clone(),
                Value::UnknownUser => unknown_user.to_string(),
                Value::Key { user, key } => keys[*user][*key].clone(),
            };
            request = request.with(name, text);
        }
        request
    }
}

/// A named class of inputs with one expected outcome.
pub struct CaseClass {
    pub id: &'static str,
    pub operation: Operation,
    pub summary: &'static str,
    /// The deepest level at which the class has an expectation.
    pub level: Level,
    /// Provenance of the expected status and code.
    pub codes: Provenance,
    /// Provenance of the expected message.
    pub message: Provenance,
    strategy: fn() -> BoxedStrategy<Case>,
}

impl CaseClass {
    pub fn strategy(&self) -> BoxedStrategy<Case> {
        (self.strategy)()
    }
}

impl std::fmt::Debug for CaseClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaseClass")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

const STATUSES: [&str; 2] = ["Active", "Inactive"];

fn text(s: impl Strategy<Value = String> + 'static) -> BoxedStrategy<Option<Value>> {
    s.prop_map(|v| Some(Value::Text(v))).boxed()
}

fn lit(s: &'static str) -> BoxedStrategy<Option<Value>> {
    Just(Some(Value::Text(s.to_string()))).boxed()
}

fn absent() -> BoxedStrategy<Option<Value>> {
    Just(None).boxed()
}

/// One user with 0 to 2 keys of any status (so that lookups have company).
fn one_user() -> BoxedStrategy<Vec<UserSetup>> {
    proptest::collection::vec(proptest::sample::select(&STATUSES[..]), 0..=2)
        .prop_map(|statuses| {
            vec![UserSetup {
                name_len: None,
                keys: statuses.into_iter().map(KeySetup::with_status).collect(),
            }]
        })
        .boxed()
}

/// An UpdateSSHPublicKey case from member strategies and a setup.
fn update(
    users: BoxedStrategy<Vec<UserSetup>>,
    user_name: BoxedStrategy<Option<Value>>,
    key_id: BoxedStrategy<Option<Value>>,
    status: BoxedStrategy<Option<Value>>,
) -> BoxedStrategy<Case> {
    (users, user_name, key_id, status)
        .prop_map(|(users, user_name, key_id, status)| Case {
            users,
            operation: Operation::UpdateSSHPublicKey,
            params: [
                ("UserName", user_name),
                ("SSHPublicKeyId", key_id),
                ("Status", status),
            ]
            .into_iter()
            .filter_map(|(name, v)| v.map(|v| (name, v)))
            .collect(),
        })
        .boxed()
}

/// Update of key `target` of a user with 1 to 3 keys, from `from` to `to`.
fn update_existing(
    from: &'static str,
    to: &'static str,
    name_len: Option<usize>,
) -> BoxedStrategy<Case> {
    (1usize..=3)
        .prop_flat_map(move |n| {
            (
                0..n,
                proptest::collection::vec(proptest::sample::select(&STATUSES[..]), n),
            )
        })
        .prop_map(move |(target, mut statuses)| {
            statuses[target] = from;
            Case {
                users: vec![UserSetup {
                    name_len,
                    keys: statuses.into_iter().map(KeySetup::with_status).collect(),
                }],
                operation: Operation::UpdateSSHPublicKey,
                params: vec![
                    ("UserName", Value::User(0)),
                    (
                        "SSHPublicKeyId",
                        Value::Key {
                            user: 0,
                            key: target,
                        },
                    ),
                    ("Status", Value::Text(to.to_string())),
                ],
            }
        })
        .boxed()
}

fn existing_key() -> BoxedStrategy<(Vec<UserSetup>, Option<Value>, Option<Value>)> {
    proptest::sample::select(&STATUSES[..])
        .prop_map(|status| {
            (
                vec![UserSetup {
                    name_len: None,
                    keys: vec![KeySetup::with_status(status)],
                }],
                Some(Value::User(0)),
                Some(Value::Key { user: 0, key: 0 }),
            )
        })
        .boxed()
}

/// A valid Status value.
fn any_status() -> BoxedStrategy<Option<Value>> {
    proptest::sample::select(&STATUSES[..])
        .prop_map(|s| Some(Value::Text(s.to_string())))
        .boxed()
}

fn some_key_id() -> BoxedStrategy<Option<Value>> {
    text(prop_oneof![
        strategies::aws_key_id(),
        strategies::key_id_of_len(20..=128)
    ])
}

/// An update where only the status is generated, against an existing key.
fn update_status(status: BoxedStrategy<Option<Value>>) -> BoxedStrategy<Case> {
    (existing_key(), status)
        .prop_map(|((users, user, key), status)| Case {
            users,
            operation: Operation::UpdateSSHPublicKey,
            params: [
                ("UserName", user),
                ("SSHPublicKeyId", key),
                ("Status", status),
            ]
            .into_iter()
            .filter_map(|(n, v)| v.map(|v| (n, v)))
            .collect(),
        })
        .boxed()
}

/// An update where only the user name is generated (no setup needed: validation comes first).
fn update_user_name(name: BoxedStrategy<Option<Value>>) -> BoxedStrategy<Case> {
    update(Just(vec![]).boxed(), name, some_key_id(), any_status())
}

/// An update where only the key id is generated, for an existing user.
fn update_key_id(key: BoxedStrategy<Option<Value>>) -> BoxedStrategy<Case> {
    update(
        one_user(),
        Just(Some(Value::User(0))).boxed(),
        key,
        any_status(),
    )
}

fn too_long_name() -> BoxedStrategy<Option<Value>> {
    text(strategies::user_name(65..=128))
}

fn wrong_status() -> BoxedStrategy<Option<Value>> {
    text(prop_oneof![
        strategies::status_wrong_case(),
        strategies::status_other_word()
    ])
}

macro_rules! class {
    ($id:literal, $op:ident, $level:ident, $codes:ident / $message:ident, $summary:literal, $strategy:expr) => {
        CaseClass {
            id: $id,
            operation: Operation::$op,
            summary: $summary,
            level: Level::$level,
            codes: Provenance::$codes,
            message: Provenance::$message,
            strategy: || $strategy,
        }
    };
}

/// Every case class, in report order.
pub fn catalogue() -> &'static [CaseClass] {
    static CLASSES: &[CaseClass] = &[
        class!(
            "update.ok.deactivate",
            UpdateSSHPublicKey,
            Shape,
            Live / Live,
            "an Active key set to Inactive; only that key changes",
            update_existing("Active", "Inactive", None)
        ),
        class!(
            "update.ok.reactivate",
            UpdateSSHPublicKey,
            Shape,
            Doc / Doc,
            "an Inactive key set to Active",
            update_existing("Inactive", "Active", None)
        ),
        class!(
            "update.ok.same_status",
            UpdateSSHPublicKey,
            Shape,
            Inferred / Inferred,
            "a key set to the status it already has (a no-op)",
            prop_oneof![
                update_existing("Active", "Active", None),
                update_existing("Inactive", "Inactive", None),
            ]
            .boxed()
        ),
        class!(
            "update.ok.user_name_max_length",
            UpdateSSHPublicKey,
            Shape,
            Live / Live,
            "a user name of exactly 64 characters",
            update_existing("Active", "Inactive", Some(64))
        ),
        class!(
            "update.status.expired",
            UpdateSSHPublicKey,
            Messages,
            Inferred / Inferred,
            "Status=Expired: in the enum since 2025-06-30, refused with InvalidInput",
            update_status(lit("Expired"))
        ),
        class!(
            "update.status.wrong_case",
            UpdateSSHPublicKey,
            Messages,
            Model / Inferred,
            "a valid status in another letter case (active, INACTIVE)",
            update_status(text(strategies::status_wrong_case()))
        ),
        class!(
            "update.status.not_in_enum",
            UpdateSSHPublicKey,
            Messages,
            Model / Inferred,
            "a status that is another word",
            update_status(text(strategies::status_other_word()))
        ),
        class!(
            "update.status.empty",
            UpdateSSHPublicKey,
            Messages,
            Model / Inferred,
            "an empty Status",
            update_status(lit(""))
        ),
        class!(
            "update.status.missing",
            UpdateSSHPublicKey,
            Messages,
            Model / Inferred,
            "no Status member",
            update_status(absent())
        ),
        class!(
            "update.user_name.empty",
            UpdateSSHPublicKey,
            Messages,
            Model / Inferred,
            "an empty UserName",
            update_user_name(lit(""))
        ),
        class!(
            "update.user_name.too_long",
            UpdateSSHPublicKey,
            Messages,
            Model / Inferred,
            "a UserName of 65 to 128 valid characters",
            update_user_name(too_long_name())
        ),
        class!(
            "update.user_name.space",
            UpdateSSHPublicKey,
            Messages,
            Model / Inferred,
            "a UserName with a space",
            update_user_name(text(strategies::user_name_with(Forbidden::Space)))
        ),
        class!(
            "update.user_name.slash",
            UpdateSSHPublicKey,
            Messages,
            Model / Inferred,
            "a UserName with a slash or backslash",
            update_user_name(text(strategies::user_name_with(Forbidden::Slash)))
        ),
        class!(
            "update.user_name.non_ascii",
            UpdateSSHPublicKey,
            Messages,
            Model / Inferred,
            "a UserName with a non-ASCII letter (AWS's \\w is ASCII)",
            update_user_name(text(strategies::user_name_with(Forbidden::NonAsciiLetter)))
        ),
        class!(
            "update.user_name.control",
            UpdateSSHPublicKey,
            Messages,
            Model / Inferred,
            "a UserName with a control character",
            update_user_name(text(strategies::user_name_with(Forbidden::Control)))
        ),
        class!(
            "update.user_name.punctuation",
            UpdateSSHPublicKey,
            Messages,
            Model / Inferred,
            "a UserName with punctuation outside +=,.@_-",
            update_user_name(text(strategies::user_name_with(Forbidden::Punctuation)))
        ),
        class!(
            "update.user_name.missing",
            UpdateSSHPublicKey,
            Messages,
            Model / Inferred,
            "no UserName member",
            update_user_name(absent())
        ),
        class!(
            "update.user_name.unknown",
            UpdateSSHPublicKey,
            Messages,
            Inferred / Inferred,
            "a well-formed UserName that no user has",
            update_user_name(Just(Some(Value::UnknownUser)).boxed())
        ),
        class!(
            "update.key_id.too_short",
            UpdateSSHPublicKey,
            Messages,
            Model / Inferred,
            "an SSHPublicKeyId of 1 to 19 characters",
            update_key_id(text(strategies::key_id_of_len(1..=19)))
        ),
        class!(
            "update.key_id.too_long",
            UpdateSSHPublicKey,
            Messages,
            Model / Inferred,
            "an SSHPublicKeyId of 129 to 160 characters",
            update_key_id(text(strategies::key_id_of_len(129..=160)))
        ),
        class!(
            "update.key_id.forbidden_char",
            UpdateSSHPublicKey,
            Messages,
            Model / Inferred,
            "an SSHPublicKeyId with a character outside [\\w]",
            update_key_id(text(strategies::key_id_with_forbidden_char()))
        ),
        class!(
            "update.key_id.empty",
            UpdateSSHPublicKey,
            Messages,
            Model / Inferred,
            "an empty SSHPublicKeyId: pattern and length both fail",
            update_key_id(lit(""))
        ),
        class!(
            "update.key_id.missing",
            UpdateSSHPublicKey,
            Messages,
            Model / Inferred,
            "no SSHPublicKeyId member",
            update_key_id(absent())
        ),
        class!(
            "update.key_id.unknown",
            UpdateSSHPublicKey,
            Messages,
            Live / Live,
            "a well-formed SSHPublicKeyId that no key has, for an existing user",
            update_key_id(some_key_id())
        ),
        class!(
            "update.key_id.of_other_user",
            UpdateSSHPublicKey,
            Messages,
            Inferred / Inferred,
            "the id of another user's key",
            update(
                Just(vec![
                    UserSetup::default(),
                    UserSetup {
                        name_len: None,
                        keys: vec![KeySetup::with_status("Active")]
                    },
                ])
                .boxed(),
                Just(Some(Value::User(0))).boxed(),
                Just(Some(Value::Key { user: 1, key: 0 })).boxed(),
                any_status(),
            )
        ),
        class!(
            "update.key_id.deleted",
            UpdateSSHPublicKey,
            Messages,
            Live / Live,
            "the id of a key that was uploaded and deleted",
            update(
                Just(vec![UserSetup {
                    name_len: None,
                    keys: vec![KeySetup {
                        status: "Active",
                        deleted: true
                    }],
                }])
                .boxed(),
                Just(Some(Value::User(0))).boxed(),
                Just(Some(Value::Key { user: 0, key: 0 })).boxed(),
                any_status(),
            )
        ),
        class!(
            "update.unknown_user_and_key",
            UpdateSSHPublicKey,
            Messages,
            Inferred / Inferred,
            "neither the user nor the key exists: the user is named",
            update_user_name(Just(Some(Value::UnknownUser)).boxed())
                .prop_map(|mut c| {
                    c.params[1].1 = Value::Text("APKAXXXXXXXXXXXXXXXXX".into());
                    c
                })
                .boxed()
        ),
        class!(
            "update.multi.name_and_status",
            UpdateSSHPublicKey,
            Messages,
            Model / Inferred,
            "a too-long UserName and a wrong Status: two items",
            update(
                Just(vec![]).boxed(),
                too_long_name(),
                some_key_id(),
                wrong_status()
            )
        ),
        class!(
            "update.multi.all_invalid",
            UpdateSSHPublicKey,
            Messages,
            Model / Inferred,
            "all three members invalid: three items",
            update(
                Just(vec![]).boxed(),
                too_long_name(),
                text(strategies::key_id_of_len(1..=19)),
                wrong_status()
            )
        ),
        class!(
            "update.multi.all_missing",
            UpdateSSHPublicKey,
            Messages,
            Model / Inferred,
            "no members at all: three 'must not be null' items",
            update(Just(vec![]).boxed(), absent(), absent(), absent())
        ),
        class!(
            "update.multi.bad_chars_and_status",
            UpdateSSHPublicKey,
            Messages,
            Model / Inferred,
            "a UserName with a space and a wrong Status: the model's item only",
            update(
                Just(vec![]).boxed(),
                text(strategies::user_name_with(Forbidden::Space)),
                some_key_id(),
                wrong_status()
            )
        ),
    ];
    CLASSES
}

/// The class with this id.
pub fn class(id: &str) -> Option<&'static CaseClass> {
    catalogue().iter().find(|c| c.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_dotted() {
        let mut ids: Vec<_> = catalogue().iter().map(|c| c.id).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
        assert!(n >= 25, "{n} classes");
        let re = regex::Regex::new(r"^[a-z]+(\.[a-z_]+)+$").unwrap();
        assert!(ids.iter().all(|id| re.is_match(id)));
    }
}
