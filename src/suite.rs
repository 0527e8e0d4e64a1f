//! The catalogue of case classes.
//!
//! A [`CaseClass`] is a named class of inputs that share one expected outcome;
//! its strategy makes concrete [`Case`]s. A case says which users and keys to
//! set up, and the request under test, whose member values either are literal
//! text or point at what the setup created (so one class holds whatever names
//! and ids a target hands out). Class ids are stable: reports, baselines and
//! snapshots key on them.

use proptest::prelude::*;
use serde::{Deserialize, Serialize};

use crate::check::Level;
use crate::keys;
use crate::oracle::Provenance;
use crate::spec::{API_VERSION, Operation};
use crate::strategies;
use crate::wire::{Request, Wire};

/// A member value of the request under test.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    /// This exact text.
    Text(String),
    /// The name of set-up user `n`.
    User(usize),
    /// A well-formed name that no user has.
    UnknownUser,
    /// The run's own IAM path (`/iam-conformance/<run-id>/`), where every
    /// user the harness creates lives.
    RunPath,
    /// The id of key `key` of set-up user `user`.
    Key { user: usize, key: usize },
    /// The key material of key `key` of set-up user `user`, as uploaded or,
    /// with a comment, as an `ssh-rsa` line with that comment.
    KeyBody {
        user: usize,
        key: usize,
        comment: Option<String>,
    },
}

/// A user to create before the request, with its keys.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSetup {
    /// Pad the unique name to this many characters.
    pub name_len: Option<usize>,
    pub keys: Vec<KeySetup>,
}

/// A key to upload (from the corpus), then bring to a status or delete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySetup {
    pub status: String,
    pub deleted: bool,
    /// Upload it PEM-encoded rather than as an `ssh-rsa` line.
    pub pem: bool,
}

impl KeySetup {
    fn with_status(status: &str) -> KeySetup {
        KeySetup {
            status: status.to_string(),
            deleted: false,
            pem: false,
        }
    }
}

/// One step of a stateful sequence. Indices pick among the users and keys the
/// sequence has made so far (modulo their number, deleted ones included), so
/// every sequence is valid, and shrinking it leaves a shorter valid one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    CreateUser,
    GetUser {
        user: usize,
    },
    DeleteUser {
        user: usize,
    },
    /// Upload corpus key `material` (the same material twice is a duplicate).
    Upload {
        user: usize,
        material: usize,
    },
    Update {
        user: usize,
        key: usize,
        status: String,
    },
    Get {
        user: usize,
        key: usize,
        encoding: String,
    },
    List {
        user: usize,
        max_items: Option<u16>,
    },
    /// List the page after the last truncated one for this user.
    NextPage {
        user: usize,
    },
    Delete {
        user: usize,
        key: usize,
    },
}

/// One concrete case: what to set up and what to send. It reads back from
/// what it serialises to (a saved regression); [`Case::validate`] then checks
/// that its references resolve against its own setup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub users: Vec<UserSetup>,
    pub operation: Operation,
    /// Members in wire order; an absent member is simply not listed.
    pub params: Vec<(String, Value)>,
    /// The Action sent (`None`: left out); the operation's name but in protocol cases.
    pub action: Option<String>,
    /// The Version sent (`None`: left out); 2010-05-08 but in protocol cases.
    pub version: Option<String>,
    pub wire: Wire,
    /// A stateful sequence sent instead of the single request (when not empty).
    pub sequence: Vec<Step>,
}

impl Case {
    /// A case of `op` sent the way the SDKs send it.
    pub fn new(users: Vec<UserSetup>, operation: Operation, params: Vec<(&str, Value)>) -> Case {
        Case {
            users,
            operation,
            params: params
                .into_iter()
                .map(|(n, v)| (n.to_string(), v))
                .collect(),
            action: Some(operation.name().to_string()),
            version: Some(API_VERSION.to_string()),
            wire: Wire::Post,
            sequence: Vec::new(),
        }
    }

    /// Checks what a file cannot promise: every reference names a set-up
    /// user or key, and every key status is one a key can be set to.
    pub fn validate(&self) -> Result<(), String> {
        for user in &self.users {
            for key in &user.keys {
                if !["Active", "Inactive"].contains(&key.status.as_str()) {
                    return Err(format!(
                        "key status {:?} is not Active or Inactive",
                        key.status
                    ));
                }
            }
        }
        let has_key =
            |user: usize, key: usize| self.users.get(user).is_some_and(|u| key < u.keys.len());
        for (name, value) in &self.params {
            let resolves = match value {
                Value::User(i) => *i < self.users.len(),
                Value::Key { user, key } | Value::KeyBody { user, key, .. } => has_key(*user, *key),
                Value::Text(_) | Value::UnknownUser | Value::RunPath => true,
            };
            if !resolves {
                return Err(format!("{name} refers to {value:?}, which the setup lacks"));
            }
        }
        Ok(())
    }
}

impl Case {
    /// The request under test, its references resolved: `users[i]` is the name
    /// of set-up user `i`, `keys[i][j]` the target's id of that user's key `j`,
    /// `bodies[i][j]` the body it was uploaded with, and `path` the run's path.
    pub fn request(
        &self,
        users: &[String],
        keys: &[Vec<String>],
        bodies: &[Vec<String>],
        unknown_user: &str,
        path: &str,
    ) -> Request {
        let mut request = Request {
            params: Vec::new(),
            wire: self.wire.clone(),
        };
        if let Some(action) = &self.action {
            request = request.with("Action", action);
        }
        if let Some(version) = &self.version {
            request = request.with("Version", version);
        }
        for (name, value) in &self.params {
            let text = match value {
                Value::Text(t) => t.clone(),
                Value::User(i) => users[*i].clone(),
                Value::UnknownUser => unknown_user.to_string(),
                Value::RunPath => path.to_string(),
                Value::Key { user, key } => keys[*user][*key].clone(),
                Value::KeyBody { user, key, comment } => {
                    let body = &bodies[*user][*key];
                    match comment {
                        None => body.clone(),
                        Some(c) => format!(
                            "{}{c}",
                            keys::RsaKey::parse(body)
                                .expect("fixture bodies parse")
                                .to_ssh()
                        ),
                    }
                }
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

type Member = BoxedStrategy<Option<Value>>;
type Setup = BoxedStrategy<Vec<UserSetup>>;

fn text(s: impl Strategy<Value = String> + 'static) -> Member {
    s.prop_map(|v| Some(Value::Text(v))).boxed()
}

fn lit(s: &'static str) -> Member {
    Just(Some(Value::Text(s.to_string()))).boxed()
}

fn absent() -> Member {
    Just(None).boxed()
}

fn user(i: usize) -> Member {
    Just(Some(Value::User(i))).boxed()
}

fn unknown_user() -> Member {
    Just(Some(Value::UnknownUser)).boxed()
}

fn key(user: usize, key: usize) -> Member {
    Just(Some(Value::Key { user, key })).boxed()
}

fn no_users() -> Setup {
    Just(vec![]).boxed()
}

/// Users as given, each with keys of the given statuses.
fn users(keys: &[&[&'static str]]) -> Setup {
    Just(
        keys.iter()
            .map(|statuses| UserSetup {
                name_len: None,
                keys: statuses.iter().map(|s| KeySetup::with_status(s)).collect(),
            })
            .collect(),
    )
    .boxed()
}

/// One user with keys of random statuses, their number in `n`.
fn user_with_keys(n: std::ops::RangeInclusive<usize>) -> Setup {
    proptest::collection::vec(proptest::sample::select(&STATUSES[..]), n)
        .prop_map(|statuses| {
            vec![UserSetup {
                name_len: None,
                keys: statuses.into_iter().map(KeySetup::with_status).collect(),
            }]
        })
        .boxed()
}

/// One user with 0 to 2 keys of any status (so that lookups have company).
fn one_user() -> Setup {
    user_with_keys(0..=2)
}

/// A case of `op` from a setup and member strategies (an absent member is left out).
fn request(
    op: Operation,
    setup: Setup,
    members: Vec<(&'static str, Member)>,
) -> BoxedStrategy<Case> {
    let (names, values): (Vec<_>, Vec<_>) = members.into_iter().unzip();
    (setup, values)
        .prop_map(move |(users, values)| {
            let params = names
                .iter()
                .zip(values)
                .filter_map(|(name, v)| v.map(|v| (*name, v)))
                .collect();
            Case::new(users, op, params)
        })
        .boxed()
}

fn update(setup: Setup, user_name: Member, key_id: Member, status: Member) -> BoxedStrategy<Case> {
    request(
        Operation::UpdateSSHPublicKey,
        setup,
        vec![
            ("UserName", user_name),
            ("SSHPublicKeyId", key_id),
            ("Status", status),
        ],
    )
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
            Case::new(
                vec![UserSetup {
                    name_len,
                    keys: statuses.into_iter().map(KeySetup::with_status).collect(),
                }],
                Operation::UpdateSSHPublicKey,
                vec![
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
            )
        })
        .boxed()
}

/// One user with one key of a random status.
fn one_key() -> Setup {
    proptest::sample::select(&STATUSES[..])
        .prop_map(|status| {
            vec![UserSetup {
                name_len: None,
                keys: vec![KeySetup::with_status(status)],
            }]
        })
        .boxed()
}

/// A valid Status value.
fn any_status() -> Member {
    text(proptest::sample::select(&STATUSES[..]).prop_map(str::to_string))
}

fn some_key_id() -> Member {
    text(prop_oneof![
        strategies::aws_key_id(),
        strategies::key_id_of_len(20..=128)
    ])
}

fn too_long_name() -> Member {
    text(strategies::user_name(65..=128))
}

fn wrong_status() -> Member {
    text(prop_oneof![
        strategies::status_wrong_case(),
        strategies::status_other_word()
    ])
}

fn short_key_id() -> Member {
    text(strategies::key_id_of_len(1..=19))
}

fn wrong_encoding() -> Member {
    text(
        prop_oneof![
            proptest::sample::select(vec![
                "ssh", "pem", "Ssh", "SSH2", "RSA", "OpenSSH", "DER", "PEM "
            ])
            .prop_map(str::to_string),
            strategies::status_other_word(),
        ]
        .prop_filter("not an encoding", |s| s != "SSH" && s != "PEM"),
    )
}

fn any_encoding() -> Member {
    text(proptest::sample::select(vec!["SSH", "PEM"]).prop_map(str::to_string))
}

fn upload(setup: Setup, user_name: Member, body: Member) -> BoxedStrategy<Case> {
    request(
        Operation::UploadSSHPublicKey,
        setup,
        vec![("UserName", user_name), ("SSHPublicKeyBody", body)],
    )
}

/// Upload of a body from `body` for a user with no keys.
fn upload_body(body: impl Strategy<Value = String> + 'static) -> BoxedStrategy<Case> {
    upload(users(&[&[]]), user(0), text(body))
}

fn get(setup: Setup, user_name: Member, key_id: Member, encoding: Member) -> BoxedStrategy<Case> {
    request(
        Operation::GetSSHPublicKey,
        setup,
        vec![
            ("UserName", user_name),
            ("SSHPublicKeyId", key_id),
            ("Encoding", encoding),
        ],
    )
}

fn list(setup: Setup, user_name: Member, marker: Member, max_items: Member) -> BoxedStrategy<Case> {
    request(
        Operation::ListSSHPublicKeys,
        setup,
        vec![
            ("UserName", user_name),
            ("Marker", marker),
            ("MaxItems", max_items),
        ],
    )
}

fn delete(setup: Setup, user_name: Member, key_id: Member) -> BoxedStrategy<Case> {
    request(
        Operation::DeleteSSHPublicKey,
        setup,
        vec![("UserName", user_name), ("SSHPublicKeyId", key_id)],
    )
}

fn user_op(op: Operation, setup: Setup, user_name: Member) -> BoxedStrategy<Case> {
    let mut members = vec![("UserName", user_name)];
    // Whatever the harness creates lives under its run's path.
    if op == Operation::CreateUser {
        members.push(("Path", Just(Some(Value::RunPath)).boxed()));
    }
    request(op, setup, members)
}

/// A key uploaded PEM-encoded, read back with an encoding.
fn pem_uploaded(encoding: &'static str) -> BoxedStrategy<Case> {
    let setup = Just(vec![UserSetup {
        name_len: None,
        keys: vec![KeySetup {
            status: "Active".to_string(),
            deleted: false,
            pem: true,
        }],
    }])
    .boxed();
    get(setup, user(0), key(0, 0), lit(encoding))
}

/// One step of a sequence, weighted towards the key operations.
fn step() -> BoxedStrategy<Step> {
    let n = 0usize..8;
    prop_oneof![
        2 => Just(Step::CreateUser),
        1 => n.clone().prop_map(|user| Step::GetUser { user }),
        1 => n.clone().prop_map(|user| Step::DeleteUser { user }),
        4 => (n.clone(), 0usize..8).prop_map(|(user, material)| Step::Upload { user, material }),
        4 => (n.clone(), n.clone(), proptest::sample::select(vec!["Active", "Inactive"]))
            .prop_map(|(user, key, status)| Step::Update { user, key, status: status.to_string() }),
        2 => (n.clone(), n.clone(), proptest::sample::select(vec!["SSH", "PEM"]))
            .prop_map(|(user, key, encoding)| Step::Get { user, key, encoding: encoding.to_string() }),
        2 => (n.clone(), proptest::option::of(1u16..=3)).prop_map(|(user, max_items)| Step::List { user, max_items }),
        1 => n.clone().prop_map(|user| Step::NextPage { user }),
        2 => (n.clone(), n).prop_map(|(user, key)| Step::Delete { user, key }),
    ]
    .boxed()
}

/// A sequence of 1 to `len` steps that begins by creating a user.
fn sequence(len: usize) -> BoxedStrategy<Case> {
    proptest::collection::vec(step(), 1..=len)
        .prop_map(|steps| Case {
            sequence: std::iter::once(Step::CreateUser).chain(steps).collect(),
            ..Case::new(Vec::new(), Operation::UpdateSSHPublicKey, Vec::new())
        })
        .boxed()
}

/// A valid update of an existing key, for protocol cases to bend.
fn valid_update() -> BoxedStrategy<Case> {
    update(one_key(), user(0), key(0, 0), any_status())
}

/// A case from `base`, changed by `tweak`.
fn bent(base: BoxedStrategy<Case>, tweak: fn(&mut Case)) -> BoxedStrategy<Case> {
    base.prop_map(move |mut case| {
        tweak(&mut case);
        case
    })
    .boxed()
}

/// A case from `base` with a generated value put in by `set`.
fn bent_with<T: std::fmt::Debug + Clone + 'static>(
    base: BoxedStrategy<Case>,
    values: impl Strategy<Value = T> + 'static,
    set: fn(&mut Case, T),
) -> BoxedStrategy<Case> {
    (base, values)
        .prop_map(move |(mut case, value)| {
            set(&mut case, value);
            case
        })
        .boxed()
}

/// An Action that is no operation: near misses of real names and other words.
fn unknown_action() -> BoxedStrategy<String> {
    prop_oneof![
        proptest::sample::select(vec![
            "updateSSHPublicKey",
            "UpdateSshPublicKey",
            "UpdateSSHPublicKeys",
            "UPDATESSHPUBLICKEY",
            "UpdateAccessKey2",
            "ListUsers2",
            "Update SSHPublicKey",
        ])
        .prop_map(str::to_string),
        proptest::string::string_regex("[A-Z][a-z]{2,10}[A-Z][a-z]{2,10}").expect("valid regex"),
    ]
    .prop_filter("not an operation", |a| Operation::from_name(a).is_none())
    .boxed()
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
#[rustfmt::skip]
pub fn catalogue() -> &'static [CaseClass] {
    use strategies::Forbidden::*;
    static CLASSES: &[CaseClass] = &[
        // UpdateSSHPublicKey
        class!("update.ok.deactivate", UpdateSSHPublicKey, Shape, Live / Live,
            "an Active key set to Inactive; only that key changes",
            update_existing("Active", "Inactive", None)),
        class!("update.ok.reactivate", UpdateSSHPublicKey, Shape, Doc / Doc,
            "an Inactive key set to Active",
            update_existing("Inactive", "Active", None)),
        class!("update.ok.same_status", UpdateSSHPublicKey, Shape, Inferred / Inferred,
            "a key set to the status it already has (a no-op)",
            prop_oneof![update_existing("Active", "Active", None), update_existing("Inactive", "Inactive", None)].boxed()),
        class!("update.ok.user_name_max_length", UpdateSSHPublicKey, Shape, Live / Live,
            "a user name of exactly 64 characters",
            update_existing("Active", "Inactive", Some(64))),
        class!("update.status.expired", UpdateSSHPublicKey, Messages, Inferred / Inferred,
            "Status=Expired: in the enum since 2025-06-30, refused with InvalidInput",
            update(one_key(), user(0), key(0, 0), lit("Expired"))),
        class!("update.status.wrong_case", UpdateSSHPublicKey, Messages, Model / Inferred,
            "a valid status in another letter case (active, INACTIVE)",
            update(one_key(), user(0), key(0, 0), text(strategies::status_wrong_case()))),
        class!("update.status.not_in_enum", UpdateSSHPublicKey, Messages, Model / Inferred,
            "a status that is another word",
            update(one_key(), user(0), key(0, 0), text(strategies::status_other_word()))),
        class!("update.status.empty", UpdateSSHPublicKey, Messages, Model / Inferred,
            "an empty Status",
            update(one_key(), user(0), key(0, 0), lit(""))),
        class!("update.status.missing", UpdateSSHPublicKey, Messages, Model / Inferred,
            "no Status member",
            update(one_key(), user(0), key(0, 0), absent())),
        class!("update.user_name.empty", UpdateSSHPublicKey, Messages, Model / Inferred,
            "an empty UserName",
            update(no_users(), lit(""), some_key_id(), any_status())),
        class!("update.user_name.too_long", UpdateSSHPublicKey, Messages, Model / Inferred,
            "a UserName of 65 to 128 valid characters",
            update(no_users(), too_long_name(), some_key_id(), any_status())),
        class!("update.user_name.space", UpdateSSHPublicKey, Messages, Model / Inferred,
            "a UserName with a space",
            update(no_users(), text(strategies::user_name_with(Space)), some_key_id(), any_status())),
        class!("update.user_name.slash", UpdateSSHPublicKey, Messages, Model / Inferred,
            "a UserName with a slash or backslash",
            update(no_users(), text(strategies::user_name_with(Slash)), some_key_id(), any_status())),
        class!("update.user_name.non_ascii", UpdateSSHPublicKey, Messages, Model / Inferred,
            "a UserName with a non-ASCII letter (AWS's \\w is ASCII)",
            update(no_users(), text(strategies::user_name_with(NonAsciiLetter)), some_key_id(), any_status())),
        class!("update.user_name.control", UpdateSSHPublicKey, Messages, Model / Inferred,
            "a UserName with a control character",
            update(no_users(), text(strategies::user_name_with(Control)), some_key_id(), any_status())),
        class!("update.user_name.punctuation", UpdateSSHPublicKey, Messages, Model / Inferred,
            "a UserName with punctuation outside +=,.@_-",
            update(no_users(), text(strategies::user_name_with(Punctuation)), some_key_id(), any_status())),
        class!("update.user_name.missing", UpdateSSHPublicKey, Messages, Model / Inferred,
            "no UserName member",
            update(no_users(), absent(), some_key_id(), any_status())),
        class!("update.user_name.unknown", UpdateSSHPublicKey, Messages, Inferred / Inferred,
            "a well-formed UserName that no user has",
            update(no_users(), unknown_user(), some_key_id(), any_status())),
        class!("update.key_id.too_short", UpdateSSHPublicKey, Messages, Model / Inferred,
            "an SSHPublicKeyId of 1 to 19 characters",
            update(one_user(), user(0), short_key_id(), any_status())),
        class!("update.key_id.too_long", UpdateSSHPublicKey, Messages, Model / Inferred,
            "an SSHPublicKeyId of 129 to 160 characters",
            update(one_user(), user(0), text(strategies::key_id_of_len(129..=160)), any_status())),
        class!("update.key_id.forbidden_char", UpdateSSHPublicKey, Messages, Model / Inferred,
            "an SSHPublicKeyId with a character outside [\\w]",
            update(one_user(), user(0), text(strategies::key_id_with_forbidden_char()), any_status())),
        class!("update.key_id.empty", UpdateSSHPublicKey, Messages, Model / Inferred,
            "an empty SSHPublicKeyId: pattern and length both fail",
            update(one_user(), user(0), lit(""), any_status())),
        class!("update.key_id.missing", UpdateSSHPublicKey, Messages, Model / Inferred,
            "no SSHPublicKeyId member",
            update(one_user(), user(0), absent(), any_status())),
        class!("update.key_id.unknown", UpdateSSHPublicKey, Messages, Live / Live,
            "a well-formed SSHPublicKeyId that no key has, for an existing user",
            update(one_user(), user(0), some_key_id(), any_status())),
        class!("update.key_id.of_other_user", UpdateSSHPublicKey, Messages, Inferred / Inferred,
            "the id of another user's key",
            update(users(&[&[], &["Active"]]), user(0), key(1, 0), any_status())),
        class!("update.key_id.deleted", UpdateSSHPublicKey, Messages, Live / Live,
            "the id of a key that was uploaded and deleted",
            update(
                Just(vec![UserSetup { name_len: None, keys: vec![KeySetup { status: "Active".to_string(), deleted: true, pem: false }] }]).boxed(),
                user(0), key(0, 0), any_status())),
        class!("update.unknown_user_and_key", UpdateSSHPublicKey, Messages, Inferred / Inferred,
            "neither the user nor the key exists: the user is named",
            update(no_users(), unknown_user(), lit("APKAXXXXXXXXXXXXXXXXX"), any_status())),
        class!("update.multi.name_and_status", UpdateSSHPublicKey, Messages, Model / Inferred,
            "a too-long UserName and a wrong Status: two items",
            update(no_users(), too_long_name(), some_key_id(), wrong_status())),
        class!("update.multi.all_invalid", UpdateSSHPublicKey, Messages, Model / Inferred,
            "all three members invalid: three items",
            update(no_users(), too_long_name(), short_key_id(), wrong_status())),
        class!("update.multi.all_missing", UpdateSSHPublicKey, Messages, Model / Inferred,
            "no members at all: three 'must not be null' items",
            update(no_users(), absent(), absent(), absent())),
        class!("update.multi.bad_chars_and_status", UpdateSSHPublicKey, Messages, Model / Inferred,
            "a UserName with a space and a wrong Status: the model's item only",
            update(no_users(), text(strategies::user_name_with(Space)), some_key_id(), wrong_status())),

        // UploadSSHPublicKey
        class!("upload.ok.rsa", UploadSSHPublicKey, Shape, Live / Live,
            "an ssh-rsa line of 2048, 3072 or 4096 bits, with or without a comment",
            upload_body(strategies::rsa_line())),
        class!("upload.ok.pem", UploadSSHPublicKey, Shape, Live / Live,
            "an RSA key as PEM SubjectPublicKeyInfo",
            upload_body(Just(keys::material("rsa2048-1.pkcs8.pem").to_string()))),
        class!("upload.ok.trailing_newline", UploadSSHPublicKey, Shape, Live / Live,
            "an ssh-rsa line ending in LF or CRLF",
            upload_body((strategies::rsa_line(), proptest::sample::select(vec!["\n", "\r\n"])).prop_map(|(l, e)| format!("{l}{e}")))),
        class!("upload.ok.second_key", UploadSSHPublicKey, Shape, Live / Live,
            "another key for a user who has 1 to 4",
            upload(user_with_keys(1..=4), user(0), text(Just(keys::material("rsa4096.pub").to_string())))),
        class!("upload.ok.same_key_other_user", UploadSSHPublicKey, Shape, Live / Live,
            "a key another user already has (duplicates are per user)",
            upload(users(&[&[], &["Active"]]), user(0), Just(Some(Value::KeyBody { user: 1, key: 0, comment: None })).boxed())),
        class!("upload.key.rsa_1024", UploadSSHPublicKey, Messages, Doc / Inferred,
            "an RSA key of 1024 bits, below the minimum",
            upload_body(Just(keys::material("rsa1024.pub").to_string()))),
        class!("upload.key.ed25519", UploadSSHPublicKey, Messages, Inferred / Inferred,
            "an ed25519 key: not ssh-rsa",
            upload_body(Just(keys::material("ed25519.pub").to_string()))),
        class!("upload.key.ecdsa", UploadSSHPublicKey, Messages, Inferred / Inferred,
            "an ECDSA P-256 key: not ssh-rsa",
            upload_body(Just(keys::material("ecdsa256.pub").to_string()))),
        class!("upload.key.pkcs1_pem", UploadSSHPublicKey, Messages, Inferred / Inferred,
            "an RSA key as PKCS#1 PEM (BEGIN RSA PUBLIC KEY)",
            upload_body(Just(keys::material("rsa2048-1.pkcs1.pem").to_string()))),
        class!("upload.key.rfc4716", UploadSSHPublicKey, Messages, Inferred / Inferred,
            "an RSA key in the RFC 4716 (SSH2) format",
            upload_body(Just(keys::material("rsa2048-1.rfc4716").to_string()))),
        class!("upload.key.x509_certificate", UploadSSHPublicKey, Messages, Inferred / Inferred,
            "an X.509 certificate instead of a public key",
            upload_body(Just(keys::material("x509-rsa2048.crt").to_string()))),
        class!("upload.key.garbage", UploadSSHPublicKey, Messages, Inferred / Inferred,
            "text that is no key at all",
            upload_body(strategies::garbage_key())),
        class!("upload.key.bad_base64", UploadSSHPublicKey, Messages, Doc / Inferred,
            "an ssh-rsa line whose base64 is broken",
            upload_body(strategies::bad_base64_key())),
        class!("upload.key.truncated", UploadSSHPublicKey, Messages, Doc / Inferred,
            "a real RSA blob cut short",
            upload_body(strategies::truncated_key())),
        class!("upload.key.relabelled", UploadSSHPublicKey, Messages, Doc / Inferred,
            "a real RSA blob under another type label",
            upload_body(strategies::relabelled_key())),
        class!("upload.key.options_prefix", UploadSSHPublicKey, Messages, Inferred / Inferred,
            "an authorized_keys line with options before the key type",
            upload_body(strategies::options_prefixed_key())),
        class!("upload.body.too_long", UploadSSHPublicKey, Messages, Model / Inferred,
            "a body of more than 16384 characters",
            upload_body(strategies::oversized_key())),
        class!("upload.body.forbidden_char", UploadSSHPublicKey, Messages, Model / Inferred,
            "a body with a character outside [\\t\\n\\r\\u0020-\\u00FF]",
            upload_body(strategies::key_with_forbidden_char())),
        class!("upload.body.empty", UploadSSHPublicKey, Messages, Model / Inferred,
            "an empty SSHPublicKeyBody: pattern and length both fail",
            upload(users(&[&[]]), user(0), lit(""))),
        class!("upload.body.missing", UploadSSHPublicKey, Messages, Model / Inferred,
            "no SSHPublicKeyBody member",
            upload(users(&[&[]]), user(0), absent())),
        class!("upload.user_name.unknown", UploadSSHPublicKey, Messages, Inferred / Inferred,
            "a valid key for a user that does not exist",
            upload(no_users(), unknown_user(), text(strategies::rsa_line()))),
        class!("upload.user_name.too_long", UploadSSHPublicKey, Messages, Model / Inferred,
            "a UserName of 65 to 128 characters",
            upload(no_users(), too_long_name(), text(strategies::rsa_line()))),
        class!("upload.user_name.non_ascii", UploadSSHPublicKey, Messages, Model / Inferred,
            "a UserName with a non-ASCII letter",
            upload(no_users(), text(strategies::user_name_with(NonAsciiLetter)), text(strategies::rsa_line()))),
        class!("upload.user_name.space", UploadSSHPublicKey, Messages, Model / Inferred,
            "a UserName with a space",
            upload(no_users(), text(strategies::user_name_with(Space)), text(strategies::rsa_line()))),
        class!("upload.user_name.missing", UploadSSHPublicKey, Messages, Model / Inferred,
            "no UserName member",
            upload(no_users(), absent(), text(strategies::rsa_line()))),
        class!("upload.duplicate.same_body", UploadSSHPublicKey, Messages, Doc / Inferred,
            "the same key again for the same user",
            upload(users(&[&["Active"]]), user(0), Just(Some(Value::KeyBody { user: 0, key: 0, comment: None })).boxed())),
        class!("upload.duplicate.other_comment", UploadSSHPublicKey, Messages, Doc / Inferred,
            "the same key material with another comment for the same user",
            upload(users(&[&["Active"]]), user(0),
                strategies::comment().prop_map(|c| Some(Value::KeyBody { user: 0, key: 0, comment: Some(format!("{c} again")) })).boxed())),
        class!("upload.duplicate.inactive", UploadSSHPublicKey, Messages, Doc / Inferred,
            "the same key again while the first copy is Inactive",
            upload(users(&[&["Inactive"]]), user(0), Just(Some(Value::KeyBody { user: 0, key: 0, comment: None })).boxed())),
        class!("upload.limit.sixth_key", UploadSSHPublicKey, Messages, Doc / Inferred,
            "a sixth key: the quota is five per user",
            upload(user_with_keys(5..=5), user(0), text(Just(keys::material("rsa3072.pub").to_string())))),
        class!("upload.multi.name_and_body", UploadSSHPublicKey, Messages, Model / Inferred,
            "a too-long UserName and a too-long body: two items",
            upload(no_users(), too_long_name(), text(strategies::oversized_key()))),

        // GetSSHPublicKey
        class!("get.ok.ssh", GetSSHPublicKey, Shape, Live / Live,
            "a key read as SSH: type and base64, the comment stripped",
            get(user_with_keys(1..=3), user(0), key(0, 0), lit("SSH"))),
        class!("get.ok.pem", GetSSHPublicKey, Shape, Doc / Doc,
            "a key read as PEM SubjectPublicKeyInfo",
            get(user_with_keys(1..=3), user(0), key(0, 0), lit("PEM"))),
        class!("get.ok.pem_upload_as_ssh", GetSSHPublicKey, Shape, Live / Live,
            "a key uploaded as PEM, read as SSH",
            pem_uploaded("SSH")),
        class!("get.ok.pem_upload_as_pem", GetSSHPublicKey, Shape, Doc / Doc,
            "a key uploaded as PEM, read as PEM",
            pem_uploaded("PEM")),
        class!("get.ok.inactive", GetSSHPublicKey, Shape, Live / Live,
            "an Inactive key read back: its status shows",
            get(users(&[&["Inactive"]]), user(0), key(0, 0), lit("SSH"))),
        class!("get.encoding.wrong", GetSSHPublicKey, Messages, Model / Inferred,
            "an Encoding outside SSH and PEM (ssh, RSA, ...)",
            get(one_key(), user(0), key(0, 0), wrong_encoding())),
        class!("get.encoding.empty", GetSSHPublicKey, Messages, Model / Inferred,
            "an empty Encoding",
            get(one_key(), user(0), key(0, 0), lit(""))),
        class!("get.encoding.missing", GetSSHPublicKey, Messages, Model / Inferred,
            "no Encoding member",
            get(one_key(), user(0), key(0, 0), absent())),
        class!("get.key_id.unknown", GetSSHPublicKey, Messages, Live / Live,
            "a well-formed id that no key has",
            get(one_user(), user(0), some_key_id(), any_encoding())),
        class!("get.key_id.of_other_user", GetSSHPublicKey, Messages, Inferred / Inferred,
            "the id of another user's key",
            get(users(&[&[], &["Active"]]), user(0), key(1, 0), any_encoding())),
        class!("get.key_id.deleted", GetSSHPublicKey, Messages, Live / Live,
            "the id of a deleted key",
            get(Just(vec![UserSetup { name_len: None, keys: vec![KeySetup { status: "Active".to_string(), deleted: true, pem: false }] }]).boxed(),
                user(0), key(0, 0), any_encoding())),
        class!("get.key_id.too_short", GetSSHPublicKey, Messages, Model / Inferred,
            "an id of 1 to 19 characters",
            get(one_user(), user(0), short_key_id(), any_encoding())),
        class!("get.key_id.forbidden_char", GetSSHPublicKey, Messages, Model / Inferred,
            "an id with a character outside [\\w]",
            get(one_user(), user(0), text(strategies::key_id_with_forbidden_char()), any_encoding())),
        class!("get.user_name.unknown", GetSSHPublicKey, Messages, Inferred / Inferred,
            "a user that does not exist",
            get(no_users(), unknown_user(), some_key_id(), any_encoding())),
        class!("get.user_name.too_long", GetSSHPublicKey, Messages, Model / Inferred,
            "a UserName of 65 to 128 characters",
            get(no_users(), too_long_name(), some_key_id(), any_encoding())),
        class!("get.user_name.punctuation", GetSSHPublicKey, Messages, Model / Inferred,
            "a UserName with punctuation outside +=,.@_-",
            get(no_users(), text(strategies::user_name_with(Punctuation)), some_key_id(), any_encoding())),
        class!("get.user_name.missing", GetSSHPublicKey, Messages, Model / Inferred,
            "no UserName member",
            get(no_users(), absent(), some_key_id(), any_encoding())),
        class!("get.multi.all_invalid", GetSSHPublicKey, Messages, Model / Inferred,
            "all three members invalid: three items",
            get(no_users(), too_long_name(), short_key_id(), wrong_encoding())),

        // ListSSHPublicKeys
        class!("list.ok.empty", ListSSHPublicKeys, Shape, Live / Live,
            "a user with no keys: an empty list, IsTruncated false",
            list(users(&[&[]]), user(0), absent(), absent())),
        class!("list.ok.keys", ListSSHPublicKeys, Shape, Live / Live,
            "a user with 1 to 5 keys: metadata only, no body or fingerprint",
            list(user_with_keys(1..=5), user(0), absent(), absent())),
        class!("list.ok.max_items_covers_all", ListSSHPublicKeys, Shape, Model / Model,
            "MaxItems of at least the number of keys: not truncated",
            list(user_with_keys(0..=3), user(0), absent(), text((3u32..=1000).prop_map(|n| n.to_string())))),
        class!("list.ok.truncated", ListSSHPublicKeys, Shape, Model / Model,
            "MaxItems below the number of keys: truncated, with a Marker",
            list(user_with_keys(2..=5), user(0), absent(), lit("1"))),
        class!("list.max_items.zero", ListSSHPublicKeys, Messages, Model / Inferred,
            "MaxItems=0 or negative",
            list(users(&[&[]]), user(0), absent(), text((-5i32..=0).prop_map(|n| n.to_string())))),
        class!("list.max_items.over_1000", ListSSHPublicKeys, Messages, Model / Inferred,
            "MaxItems above 1000",
            list(users(&[&[]]), user(0), absent(), text((1001u32..=100_000).prop_map(|n| n.to_string())))),
        class!("list.max_items.not_a_number", ListSSHPublicKeys, Messages, Inferred / Inferred,
            "MaxItems that is not an integer",
            list(users(&[&[]]), user(0), absent(), text(prop_oneof![Just("abc".to_string()), Just("1.5".to_string()), Just("".to_string()), Just("ten".to_string())]))),
        class!("list.marker.garbage", ListSSHPublicKeys, Messages, Inferred / Inferred,
            "a Marker that no listing handed out",
            list(user_with_keys(0..=2), user(0), text(proptest::string::string_regex("[A-Za-z0-9]{8,40}").expect("valid regex")), absent())),
        class!("list.marker.too_long", ListSSHPublicKeys, Messages, Model / Inferred,
            "a Marker of more than 320 characters",
            list(users(&[&[]]), user(0), text(proptest::string::string_regex("[A-Za-z0-9]{321,400}").expect("valid regex")), absent())),
        class!("list.user_name.missing", ListSSHPublicKeys, Messages, Inferred / Inferred,
            "no UserName with non-user credentials",
            list(no_users(), absent(), absent(), absent())),
        class!("list.user_name.unknown", ListSSHPublicKeys, Messages, Inferred / Inferred,
            "a user that does not exist",
            list(no_users(), unknown_user(), absent(), absent())),
        class!("list.user_name.too_long", ListSSHPublicKeys, Messages, Model / Inferred,
            "a UserName of 65 to 128 characters",
            list(no_users(), too_long_name(), absent(), absent())),
        class!("list.user_name.space", ListSSHPublicKeys, Messages, Model / Inferred,
            "a UserName with a space",
            list(no_users(), text(strategies::user_name_with(Space)), absent(), absent())),

        // DeleteSSHPublicKey
        class!("list.user_name.non_ascii", ListSSHPublicKeys, Messages, Model / Inferred,
            "a UserName with a non-ASCII letter",
            list(no_users(), text(strategies::user_name_with(NonAsciiLetter)), absent(), absent())),
        class!("delete.ok", DeleteSSHPublicKey, Shape, Live / Live,
            "a key deleted; the user's other keys stay",
            delete(user_with_keys(1..=3), user(0), key(0, 0))),
        class!("delete.ok.inactive", DeleteSSHPublicKey, Shape, Live / Live,
            "an Inactive key deleted",
            delete(users(&[&["Inactive"]]), user(0), key(0, 0))),
        class!("delete.key_id.unknown", DeleteSSHPublicKey, Messages, Live / Live,
            "a well-formed id that no key has",
            delete(one_user(), user(0), some_key_id())),
        class!("delete.key_id.deleted", DeleteSSHPublicKey, Messages, Live / Live,
            "a key deleted twice",
            delete(Just(vec![UserSetup { name_len: None, keys: vec![KeySetup { status: "Active".to_string(), deleted: true, pem: false }] }]).boxed(),
                user(0), key(0, 0))),
        class!("delete.key_id.of_other_user", DeleteSSHPublicKey, Messages, Inferred / Inferred,
            "another user's key: not found, and it stays",
            delete(users(&[&[], &["Active"]]), user(0), key(1, 0))),
        class!("delete.key_id.too_short", DeleteSSHPublicKey, Messages, Model / Inferred,
            "an id of 1 to 19 characters",
            delete(one_user(), user(0), short_key_id())),
        class!("delete.key_id.forbidden_char", DeleteSSHPublicKey, Messages, Model / Inferred,
            "an id with a character outside [\\w]",
            delete(one_user(), user(0), text(strategies::key_id_with_forbidden_char()))),
        class!("delete.key_id.missing", DeleteSSHPublicKey, Messages, Model / Inferred,
            "no SSHPublicKeyId member",
            delete(one_user(), user(0), absent())),
        class!("delete.user_name.unknown", DeleteSSHPublicKey, Messages, Inferred / Inferred,
            "a user that does not exist",
            delete(no_users(), unknown_user(), some_key_id())),
        class!("delete.user_name.missing", DeleteSSHPublicKey, Messages, Model / Inferred,
            "no UserName member",
            delete(no_users(), absent(), some_key_id())),
        class!("delete.user_name.control", DeleteSSHPublicKey, Messages, Model / Inferred,
            "a UserName with a control character",
            delete(no_users(), text(strategies::user_name_with(Control)), some_key_id())),

        // The user fixtures
        class!("user.delete.with_keys", DeleteUser, Messages, Model / Inferred,
            "a user who still has SSH keys cannot be deleted",
            user_op(Operation::DeleteUser, user_with_keys(1..=2), user(0))),
        class!("user.delete.unknown", DeleteUser, Messages, Live / Live,
            "a user that does not exist",
            user_op(Operation::DeleteUser, no_users(), unknown_user())),
        class!("user.get.unknown", GetUser, Messages, Live / Live,
            "a user that does not exist",
            user_op(Operation::GetUser, no_users(), unknown_user())),
        class!("user.get.ok", GetUser, Shape, Live / Live,
            "an existing user",
            user_op(Operation::GetUser, users(&[&[]]), user(0))),
        class!("user.create.duplicate", CreateUser, Messages, Live / Live,
            "a user name that exists already",
            user_op(Operation::CreateUser, users(&[&[]]), user(0))),
        class!("user.create.bad_name", CreateUser, Messages, Model / Live,
            "a user name with a character outside +=,.@_-",
            user_op(Operation::CreateUser, no_users(), text(strategies::user_name_with(Punctuation)))),

        // Stateful sequences
        class!("sequence.short", UpdateSSHPublicKey, Shape, Live / Live,
            "random sequences of up to 8 operations on users and keys, every answer and the final state checked",
            sequence(8)),
        class!("sequence.long", UpdateSSHPublicKey, Shape, Live / Live,
            "random sequences of up to 30 operations on users and keys",
            sequence(30)),

        // The protocol
        class!("protocol.unsigned", UpdateSSHPublicKey, Messages, Inferred / Inferred,
            "a valid request without a signature",
            bent(valid_update(), |c| c.wire = Wire::Unsigned)),
        class!("protocol.other_service_scope", UpdateSSHPublicKey, Messages, Inferred / Inferred,
            "a valid request signed for another service (sts, s3, ec2)",
            bent_with(valid_update(), proptest::sample::select(vec!["sts", "s3", "ec2"]), |c, s| c.wire = Wire::Scope(s.to_string()))),
        class!("protocol.action.unknown", UpdateSSHPublicKey, Messages, Live / Live,
            "an Action that is no operation",
            bent_with(valid_update(), unknown_action(), |c, a| c.action = Some(a))),
        class!("protocol.action.empty", UpdateSSHPublicKey, Messages, Inferred / Inferred,
            "an empty Action",
            bent(valid_update(), |c| c.action = Some(String::new()))),
        class!("protocol.action.missing", UpdateSSHPublicKey, Shape, Inferred / Inferred,
            "no Action: a redirect to the IAM console page",
            bent(valid_update(), |c| c.action = None)),
        class!("protocol.version.missing", UpdateSSHPublicKey, Messages, Inferred / Inferred,
            "no Version",
            bent(valid_update(), |c| c.version = None)),
        class!("protocol.version.empty", UpdateSSHPublicKey, Messages, Inferred / Inferred,
            "an empty Version",
            bent(valid_update(), |c| c.version = Some(String::new()))),
        class!("protocol.version.wrong", UpdateSSHPublicKey, Messages, Inferred / Inferred,
            "another Version date",
            bent_with(valid_update(),
                proptest::string::string_regex("(19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])").expect("valid regex")
                    .prop_filter("not the API version", |v| v != API_VERSION),
                |c, v| c.version = Some(v))),
        class!("protocol.get.update", UpdateSSHPublicKey, Shape, Doc / Doc,
            "UpdateSSHPublicKey as a GET with a query string (as the API reference's sample)",
            bent(update_existing("Active", "Inactive", None), |c| c.wire = Wire::Get)),
        class!("protocol.get.list", ListSSHPublicKeys, Shape, Doc / Doc,
            "ListSSHPublicKeys as a GET with a query string",
            bent(list(user_with_keys(0..=3), user(0), absent(), absent()), |c| c.wire = Wire::Get)),
        class!("protocol.extra_params", UpdateSSHPublicKey, Shape, Inferred / Inferred,
            "a valid request with a parameter no operation has: ignored",
            bent_with(valid_update(), proptest::string::string_regex("[a-z]{1,12}").expect("valid regex"),
                |c, v| c.params.push(("Foo".to_string(), Value::Text(v))))),
        class!("protocol.duplicate_param", UpdateSSHPublicKey, Shape, Inferred / Inferred,
            "Status twice, Inactive then Active: the first wins",
            request(Operation::UpdateSSHPublicKey, users(&[&["Active"]]), vec![
                ("UserName", user(0)), ("SSHPublicKeyId", key(0, 0)), ("Status", lit("Inactive")), ("Status", lit("Active")),
            ])),
        class!("protocol.json_body", UpdateSSHPublicKey, Shape, Inferred / Inferred,
            "the parameters as a JSON body: no form, so no Action",
            bent(valid_update(), |c| c.wire = Wire::Json)),
        class!("protocol.no_content_type", UpdateSSHPublicKey, Shape, Inferred / Inferred,
            "a form body without a Content-Type header",
            bent(valid_update(), |c| c.wire = Wire::NoContentType)),
        class!("protocol.invalid_utf8", GetUser, Messages, Model / Inferred,
            "a UserName whose percent-encoding is not UTF-8",
            bent(user_op(Operation::GetUser, no_users(), absent()), |c| c.wire = Wire::Appended("UserName=%FF%FEab".to_string()))),
        class!("protocol.lowercase_members", UpdateSSHPublicKey, Messages, Inferred / Inferred,
            "member names in lower camel case: unknown, so the real ones are missing",
            request(Operation::UpdateSSHPublicKey, one_key(), vec![
                ("userName", user(0)), ("sSHPublicKeyId", key(0, 0)), ("status", any_status()),
            ])),
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
    fn cases_read_back_from_what_they_serialise_to() {
        for class in catalogue() {
            for case in crate::runner::cases_of(class, 3).take(5) {
                let json = serde_json::to_string(&case).unwrap();
                let back: Case = serde_json::from_str(&json).unwrap();
                assert_eq!(back, case, "{json}");
            }
        }
    }

    #[test]
    fn every_class_case_reads_back_from_its_json() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        for class in catalogue() {
            let case = class.strategy().new_tree(&mut runner).unwrap().current();
            let json = serde_json::to_string(&case).unwrap();
            let back: Case = serde_json::from_str(&json).unwrap();
            assert_eq!(back, case, "{}", class.id);
            assert_eq!(back.validate(), Ok(()), "{}", class.id);
        }
    }

    #[test]
    fn saved_cases_must_resolve_against_their_setup() {
        let mut case = Case::new(
            Vec::new(),
            Operation::UpdateSSHPublicKey,
            vec![("UserName", Value::User(0))],
        );
        assert!(
            case.validate()
                .unwrap_err()
                .contains("which the setup lacks")
        );
        case.users.push(UserSetup {
            name_len: None,
            keys: vec![KeySetup::with_status("active")],
        });
        assert!(
            case.validate()
                .unwrap_err()
                .contains("is not Active or Inactive")
        );
        case.users[0].keys[0].status = "Inactive".into();
        assert_eq!(case.validate(), Ok(()));
        case.params
            .push(("SSHPublicKeyId".into(), Value::Key { user: 0, key: 1 }));
        assert!(case.validate().is_err());
    }

    #[test]
    fn ids_are_unique_and_dotted() {
        let mut ids: Vec<_> = catalogue().iter().map(|c| c.id).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
        assert!(n >= 25, "{n} classes");
        let re = regex::Regex::new(r"^[a-z]+(\.[a-z0-9_]+)+$").unwrap();
        assert!(ids.iter().all(|id| re.is_match(id)));
    }
}
