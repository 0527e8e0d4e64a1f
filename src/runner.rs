//! The runner: generate cases, set up their fixtures, send, check, shrink.
//!
//! Cases are generated per class from a seed derived from the run's seed and
//! the class id, so the same `--seed` makes the same cases whatever `--jobs`
//! and `--only` are. Cases run concurrently; each one creates its own users
//! under a run prefix, predicts its answer with the oracle from what the target
//! reported for those fixtures, and deletes what it created. A case that
//! diverges is shrunk with proptest's value tree, re-running it until the
//! smallest input that still diverges on the same check remains.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Iso8601;
use tokio::time::Instant;

use crate::check::{CheckResult, Checker, Level, Mismatch, Verdict, Window, check_response};
use crate::keys::{RsaKey, corpus_keys};
use crate::oracle::{self, Key, Prediction, Provenance, State, Success, User};
use crate::spec::Operation;
use crate::suite::{Case, CaseClass, Value};
use crate::wire::{Client, Request, Response, TransportError};

/// How a run is carried out.
#[derive(Clone, Debug)]
pub struct Settings {
    pub cases: u32,
    pub seed: u64,
    pub jobs: usize,
    pub level: Level,
    pub strict: bool,
    /// How many re-runs shrinking one divergence may spend.
    pub shrink_budget: u32,
    /// When set, nothing is sent this long after the run starts: cases still
    /// in flight are dropped, and they and the cases never started are not run.
    pub deadline: Option<Duration>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            cases: 100,
            seed: 0,
            jobs: 8,
            level: Level::Messages,
            strict: false,
            shrink_budget: 64,
            deadline: None,
        }
    }
}

/// The requests a case sent, in order: what a reproducer replays.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Exchange {
    pub setup: Vec<Request>,
    pub request: Option<Request>,
}

/// What one case came to.
#[derive(Clone, Debug)]
pub enum CaseOutcome {
    Checked(Vec<CheckResult>),
    Unsupported(String),
    Error(TransportError),
}

/// One run of one case.
#[derive(Clone, Debug)]
pub struct CaseRun {
    pub outcome: CaseOutcome,
    pub exchange: Exchange,
    /// The request under test, its prediction and its answer (when it got one).
    pub observed: Option<Observed>,
}

/// The request under test as sent, what the oracle predicted, what came back,
/// and the names of what the fixtures created (value, placeholder).
#[derive(Clone, Debug)]
pub struct Observed {
    pub request: Request,
    pub prediction: Prediction,
    pub response: Response,
    pub names: Vec<(String, String)>,
}

/// Runs one case on its own (fixtures, request, checks, cleanup).
pub async fn run_case(client: &Client, case: &Case, level: Level) -> CaseRun {
    Context::new(level, None).run(client, case).await
}

impl CaseRun {
    /// The names of the checks that diverged.
    fn diverging(&self) -> Vec<&'static str> {
        match &self.outcome {
            CaseOutcome::Checked(checks) => checks
                .iter()
                .filter(|c| c.mismatch.is_some())
                .map(|c| c.check)
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// A divergence with its shrunk case and reproducer.
#[derive(Clone, Debug, Serialize)]
pub struct Divergence {
    pub class: &'static str,
    pub operation: Operation,
    pub check: &'static str,
    pub level: Level,
    pub verdict: Verdict,
    pub provenance: Provenance,
    pub expected: String,
    pub actual: String,
    pub reproducer: Reproducer,
    /// How many smaller cases shrinking tried.
    pub shrink_runs: u32,
}

/// The exact request, and a shell script of curl commands (fixtures first).
#[derive(Clone, Debug, Serialize)]
pub struct Reproducer {
    pub request: String,
    pub curl: String,
}

/// Everything one class came to.
#[derive(Clone, Debug)]
pub struct ClassOutcome {
    pub class: &'static CaseClass,
    pub cases: u32,
    pub verdict: Verdict,
    pub checks: u64,
    pub passed: u64,
    pub failed: u64,
    pub unverified: u64,
    pub unsupported: u32,
    pub errors: u32,
    /// Cases the run's deadline left unfinished or unstarted.
    pub not_run: u32,
    /// The first transport error or unsupported answer, for the report.
    pub note: Option<String>,
    pub divergences: Vec<Divergence>,
}

/// Runs classes against a target. `on_case` is called as each case finishes.
///
/// Results are tallied as they stream in: only the counts and, per diverging
/// check, the first case that diverged are kept, so memory does not grow with
/// the number of cases. Past the deadline nothing more is sent, not even to
/// shrink: a divergence found by then is reported as first seen.
pub async fn run_classes(
    client: &Client,
    classes: &[&'static CaseClass],
    settings: &Settings,
    on_case: &(dyn Fn() + Sync),
) -> Vec<ClassOutcome> {
    let ctx = Context::new(settings.level, settings.deadline);
    let mut tallies: Vec<Tally> = classes.iter().map(|c| Tally::new(c)).collect();
    let jobs = classes.iter().enumerate().flat_map(|(k, class)| {
        cases_of(class, settings.seed)
            .take(settings.cases as usize)
            .enumerate()
            .map(move |(i, case)| (k, i, case))
    });
    let mut stream = futures_util::stream::iter(jobs)
        .map(|(k, i, case)| {
            let ctx = &ctx;
            async move { (k, i, ctx.run(client, &case).await) }
        })
        .buffer_unordered(settings.jobs.max(1));
    // Dropping the stream at the deadline drops the cases in flight with it.
    while let Some(Some((k, i, run))) = before(ctx.deadline, stream.next()).await {
        tallies[k].add(i, run, settings.strict);
        on_case();
    }
    drop(stream);
    // Shrinking one divergence is sequential (each step depends on the last),
    // but the divergences of every class shrink side by side, `jobs` at a time.
    let divergent: Vec<_> = tallies
        .iter_mut()
        .enumerate()
        .flat_map(|(k, tally)| {
            std::mem::take(&mut tally.first)
                .into_iter()
                .map(move |(check, (i, run))| (k, check, i, run))
        })
        .collect();
    let mut shrunk = futures_util::stream::iter(divergent)
        .map(|(k, check, i, run)| {
            let ctx = &ctx;
            async move {
                (
                    k,
                    shrink(client, ctx, classes[k], i, run, check, settings).await,
                )
            }
        })
        .buffer_unordered(settings.jobs.max(1));
    while let Some((k, divergence)) = shrunk.next().await {
        tallies[k].out.divergences.extend(divergence);
    }
    drop(shrunk);
    tallies.into_iter().map(|t| t.finish(settings)).collect()
}

/// Awaits `work` unless the deadline passes first (then `None`).
async fn before<F: Future>(deadline: Option<Instant>, work: F) -> Option<F::Output> {
    match deadline {
        Some(at) => tokio::time::timeout_at(at, work).await.ok(),
        None => Some(work.await),
    }
}

/// The cases of a class for a seed, endlessly: the same seed, the same cases.
pub fn cases_of(class: &CaseClass, seed: u64) -> impl Iterator<Item = Case> + use<> {
    let strategy = class.strategy();
    let mut runner = class_runner(class, seed);
    std::iter::repeat_with(move || {
        strategy
            .new_tree(&mut runner)
            .expect("case strategies do not reject")
            .current()
    })
}

fn class_runner(class: &CaseClass, seed: u64) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    // FNV-1a of the class id: stable across platforms and releases.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in class.id.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    bytes[8..16].copy_from_slice(&h.to_le_bytes());
    TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    )
}

/// A class's results so far.
struct Tally {
    out: ClassOutcome,
    /// Per diverging check, the first case (by index) that diverged on it.
    first: BTreeMap<&'static str, (usize, CaseRun)>,
}

impl Tally {
    fn new(class: &'static CaseClass) -> Tally {
        Tally {
            out: ClassOutcome {
                class,
                cases: 0,
                verdict: Verdict::Pass,
                checks: 0,
                passed: 0,
                failed: 0,
                unverified: 0,
                unsupported: 0,
                errors: 0,
                not_run: 0,
                note: None,
                divergences: Vec::new(),
            },
            first: BTreeMap::new(),
        }
    }

    fn add(&mut self, i: usize, run: CaseRun, strict: bool) {
        let out = &mut self.out;
        out.cases += 1;
        match &run.outcome {
            CaseOutcome::Checked(checks) => {
                for c in checks {
                    out.checks += 1;
                    match c.verdict(strict) {
                        Verdict::Pass => out.passed += 1,
                        Verdict::Unverified => out.unverified += 1,
                        _ => out.failed += 1,
                    }
                }
            }
            CaseOutcome::Unsupported(detail) => {
                out.unsupported += 1;
                out.note.get_or_insert_with(|| detail.clone());
            }
            CaseOutcome::Error(e) => {
                out.errors += 1;
                out.note.get_or_insert_with(|| e.to_string());
            }
        }
        for check in run.diverging() {
            match self.first.get(check) {
                Some((j, _)) if *j < i => {}
                _ => {
                    self.first.insert(check, (i, run.clone()));
                }
            }
        }
    }

    /// The class's outcome once its cases ran and its divergences shrank.
    fn finish(mut self, settings: &Settings) -> ClassOutcome {
        let out = &mut self.out;
        // Shrinks finish in any order; reports list a class's checks by name.
        out.divergences.sort_by_key(|d| d.check);
        out.not_run = settings.cases - out.cases;
        if out.not_run > 0 {
            out.note.get_or_insert_with(|| {
                format!(
                    "{} of {} cases not run: the run's deadline passed",
                    out.not_run, settings.cases
                )
            });
        }
        out.verdict = if out.failed > 0 {
            Verdict::Fail
        } else if out.unverified > 0 {
            Verdict::Unverified
        } else if out.errors > 0 || out.not_run > 0 {
            Verdict::Error
        } else if out.unsupported > 0 {
            Verdict::Unsupported
        } else {
            Verdict::Pass
        };
        self.out
    }
}

/// Shrinks case `index` of a class while it still diverges on `check`, until
/// the budget or the deadline runs out.
async fn shrink(
    client: &Client,
    ctx: &Context,
    class: &'static CaseClass,
    index: usize,
    original: CaseRun,
    check: &'static str,
    settings: &Settings,
) -> Option<Divergence> {
    let strategy = class.strategy();
    let mut runner = class_runner(class, settings.seed);
    let mut tree = None;
    for _ in 0..=index {
        tree = Some(
            strategy
                .new_tree(&mut runner)
                .expect("case strategies do not reject"),
        );
    }
    let mut tree = tree?;
    let mut best = original;
    let mut tries = 0;
    if tree.simplify() {
        while tries < settings.shrink_budget {
            let Some(run) = before(ctx.deadline, ctx.run(client, &tree.current())).await else {
                break;
            };
            tries += 1;
            if run.diverging().contains(&check) {
                best = run;
                if !tree.simplify() {
                    break;
                }
            } else if !tree.complicate() {
                break;
            }
        }
    }
    let CaseOutcome::Checked(checks) = &best.outcome else {
        return None;
    };
    let result = checks.iter().find(|c| c.check == check)?;
    let Mismatch { expected, actual } = result.mismatch.clone()?;
    Some(Divergence {
        class: class.id,
        operation: class.operation,
        check,
        level: result.level,
        verdict: result.verdict(settings.strict),
        provenance: result.provenance,
        expected,
        actual,
        reproducer: reproducer(client, &best.exchange),
        shrink_runs: tries,
    })
}

fn reproducer(client: &Client, exchange: &Exchange) -> Reproducer {
    let mut lines = vec![
        "# Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY first (any values for an emulator)."
            .to_string(),
    ];
    for step in &exchange.setup {
        lines.push(format!("{}  # fixture", step.curl(client.target())));
    }
    if let Some(request) = &exchange.request {
        lines.push(request.curl(client.target()));
    }
    Reproducer {
        request: exchange
            .request
            .as_ref()
            .map(Request::form)
            .unwrap_or_default(),
        curl: lines.join("\n"),
    }
}

/// What a run shares between its cases: the name prefix, a case counter, the
/// level and the instant after which nothing is sent.
struct Context {
    prefix: String,
    counter: AtomicU64,
    level: Level,
    deadline: Option<Instant>,
}

/// The users and keys a case created on the target, for resolving and cleaning up.
#[derive(Default)]
struct Fixtures {
    users: Vec<String>,
    /// Per user, the target's id of each key.
    keys: Vec<Vec<String>>,
}

impl Context {
    /// A run starting now; `deadline` counts from now.
    fn new(level: Level, deadline: Option<Duration>) -> Context {
        Context {
            prefix: format!("iamc-{}", &oracle::new_id("", 6).to_lowercase()),
            counter: AtomicU64::new(0),
            level,
            deadline: deadline.map(|d| Instant::now() + d),
        }
    }

    /// Runs one case: fixtures, the request, its checks, the state reads, cleanup.
    async fn run(&self, client: &Client, case: &Case) -> CaseRun {
        let mut attempt = Attempt {
            ctx: self,
            client,
            n: self.counter.fetch_add(1, Ordering::Relaxed),
            exchange: Exchange::default(),
            fixtures: Fixtures::default(),
            model: State::default(),
            observed: None,
        };
        let outcome = match attempt.set_up(case).await {
            Err(stopped) => stopped,
            Ok(()) => attempt.test(case).await,
        };
        clean_up(client, &attempt.fixtures).await;
        CaseRun {
            outcome,
            exchange: attempt.exchange,
            observed: attempt.observed,
        }
    }
}

/// One case in progress: what it sent, created and predicted so far.
struct Attempt<'a> {
    ctx: &'a Context,
    client: &'a Client,
    /// The case's number in the run, part of every name it makes.
    n: u64,
    exchange: Exchange,
    fixtures: Fixtures,
    /// The oracle's state, built from what the target reported for the fixtures.
    model: State,
    observed: Option<Observed>,
}

impl Attempt<'_> {
    fn unknown_user(&self) -> String {
        format!("{}-{}-nobody", self.ctx.prefix, self.n)
    }

    async fn set_up(&mut self, case: &Case) -> Result<(), CaseOutcome> {
        for (i, user) in case.users.iter().enumerate() {
            let mut name = format!("{}-{}-{i}", self.ctx.prefix, self.n);
            if let Some(len) = user.name_len {
                while name.len() < len {
                    name.push('x');
                }
            }
            let request = Request::new(Operation::CreateUser).with("UserName", &name);
            let response = fixture(self.client, &mut self.exchange, request).await?;
            self.fixtures.users.push(name.clone());
            self.fixtures.keys.push(Vec::new());
            self.model.insert_user(User {
                name: name.clone(),
                path: "/".into(),
                id: text_at(&response, "CreateUserResult/User/UserId"),
                created: date_at(&response, "CreateUserResult/User/CreateDate"),
            });
            for (j, key) in user.keys.iter().enumerate() {
                let body = corpus_keys()[(i + j) % corpus_keys().len()];
                let request = Request::new(Operation::UploadSSHPublicKey)
                    .with("UserName", &name)
                    .with("SSHPublicKeyBody", body);
                let response = fixture(self.client, &mut self.exchange, request).await?;
                let id = text_at(
                    &response,
                    "UploadSSHPublicKeyResult/SSHPublicKey/SSHPublicKeyId",
                );
                self.fixtures.keys[i].push(id.clone());
                self.model.insert_key(Key {
                    id: id.clone(),
                    user: name.clone(),
                    uploaded: body.to_string(),
                    rsa: RsaKey::parse(body).expect("corpus keys parse"),
                    status: "Active".into(),
                    uploaded_at: date_at(
                        &response,
                        "UploadSSHPublicKeyResult/SSHPublicKey/UploadDate",
                    ),
                });
                let follow_up = if key.deleted {
                    Request::new(Operation::DeleteSSHPublicKey)
                        .with("UserName", &name)
                        .with("SSHPublicKeyId", &id)
                } else if key.status != "Active" {
                    Request::new(Operation::UpdateSSHPublicKey)
                        .with("UserName", &name)
                        .with("SSHPublicKeyId", &id)
                        .with("Status", key.status)
                } else {
                    continue;
                };
                oracle::handle(
                    &mut self.model,
                    &follow_up.params,
                    OffsetDateTime::now_utc(),
                );
                fixture(self.client, &mut self.exchange, follow_up).await?;
            }
        }
        Ok(())
    }

    async fn test(&mut self, case: &Case) -> CaseOutcome {
        let request = case.request(
            &self.fixtures.users,
            &self.fixtures.keys,
            &self.unknown_user(),
        );
        self.exchange.request = Some(request.clone());
        let start = OffsetDateTime::now_utc();
        let prediction = oracle::handle(&mut self.model, &request.params, start);
        let response = match self.client.send(&request).await {
            Ok(r) => r,
            Err(e) => return CaseOutcome::Error(e),
        };
        let window = Window {
            start,
            end: OffsetDateTime::now_utc(),
        };
        self.observed = Some(Observed {
            request,
            prediction: prediction.clone(),
            response: response.clone(),
            names: self.names(case),
        });
        if let Some(detail) = unsupported(&prediction, &response) {
            return CaseOutcome::Unsupported(detail);
        }
        let mut checker = Checker::new(self.ctx.level);
        check_response(&mut checker, &prediction, &response, window);
        if self.ctx.level >= Level::Shape
            && let Err(e) = check_state(
                self.client,
                &mut checker,
                &prediction,
                &self.fixtures,
                &self.model,
            )
            .await
        {
            return CaseOutcome::Error(e);
        }
        CaseOutcome::Checked(checker.results)
    }

    /// The values a response may echo, with the placeholders snapshots show for them.
    fn names(&self, case: &Case) -> Vec<(String, String)> {
        let mut names = vec![(self.unknown_user(), "{unknown-user}".to_string())];
        // Messages echo these two members; other generated values are never echoed.
        for (name, value) in &case.params {
            if let Value::Text(text) = value
                && matches!(*name, "UserName" | "SSHPublicKeyId")
                && !text.is_empty()
            {
                names.push((text.clone(), format!("{{{name}}}")));
            }
        }
        for (i, (user, keys)) in self
            .fixtures
            .users
            .iter()
            .zip(&self.fixtures.keys)
            .enumerate()
        {
            names.push((user.clone(), format!("{{user{i}}}")));
            for (j, id) in keys.iter().enumerate() {
                names.push((id.clone(), format!("{{user{i}.key{j}}}")));
            }
        }
        names
    }
}

/// Sends a fixture request; anything but success stops the case with its outcome.
async fn fixture(
    client: &Client,
    exchange: &mut Exchange,
    request: Request,
) -> Result<Response, CaseOutcome> {
    exchange.setup.push(request.clone());
    let response = client.send(&request).await.map_err(CaseOutcome::Error)?;
    let prediction = Prediction {
        operation: Operation::from_name(&request.params[0].1),
        result: Ok(Success::Empty),
        codes: Provenance::Live,
        message: Provenance::Live,
    };
    if let Some(detail) = unsupported(&prediction, &response) {
        return Err(CaseOutcome::Unsupported(detail));
    }
    if response.status == 200 && response.error_code().is_none() {
        return Ok(response);
    }
    let xml = response.xml();
    let message = xml.and_then(|x| x.text_at("Error/Message")).unwrap_or("");
    Err(CaseOutcome::Checked(vec![CheckResult {
        check: "fixture",
        level: Level::Codes,
        provenance: Provenance::Live,
        mismatch: Some(Mismatch {
            expected: format!("200 from {}", request.params[0].1),
            actual: format!(
                "{} {} {}",
                response.status,
                response.error_code().unwrap_or(""),
                message
            )
            .trim_end()
            .to_string(),
        }),
    }]))
}

/// The operation is not implemented by the target (and the oracle expected it to be).
fn unsupported(prediction: &Prediction, response: &Response) -> Option<String> {
    let expected_code = prediction.result.as_ref().err().map(|e| e.code.as_str());
    let code = response.error_code();
    let not_implemented = matches!(
        code,
        Some("InvalidAction" | "NotImplemented" | "UnknownOperation")
    ) || response.status == 501;
    (not_implemented && expected_code != Some("InvalidAction")).then(|| {
        format!(
            "{} answered HTTP {} {}",
            prediction.operation.map_or("the request", |o| o.name()),
            response.status,
            code.unwrap_or("")
        )
    })
}

/// After the request: every set-up user's keys, read back with List and Get,
/// must be what the oracle's state says (a changed key changed, no other did).
async fn check_state(
    client: &Client,
    checker: &mut Checker,
    prediction: &Prediction,
    fixtures: &Fixtures,
    model: &State,
) -> Result<(), TransportError> {
    if fixtures.users.is_empty() {
        return Ok(());
    }
    let mut problems = Vec::new();
    for user in &fixtures.users {
        let want: BTreeMap<&str, &str> = model
            .keys_of(user)
            .map(|k| (k.id.as_str(), k.status.as_str()))
            .collect();
        let list = client
            .send(&Request::new(Operation::ListSSHPublicKeys).with("UserName", user))
            .await?;
        let listed: BTreeMap<String, String> = list
            .xml()
            .and_then(|x| x.at("ListSSHPublicKeysResult/SSHPublicKeys"))
            .map(|keys| {
                keys.children
                    .iter()
                    .map(|m| {
                        (
                            m.text_at("SSHPublicKeyId").unwrap_or("").to_string(),
                            m.text_at("Status").unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let listed_view: BTreeMap<&str, &str> = listed
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if list.status != 200 || listed_view != want {
            problems.push(format!(
                "ListSSHPublicKeys({user}) answered {} with {listed_view:?}, expected {want:?}",
                list.status
            ));
        }
        for (id, status) in &want {
            let get = client
                .send(
                    &Request::new(Operation::GetSSHPublicKey)
                        .with("UserName", user)
                        .with("SSHPublicKeyId", *id)
                        .with("Encoding", "SSH"),
                )
                .await?;
            let got = get
                .xml()
                .and_then(|x| x.text_at("GetSSHPublicKeyResult/SSHPublicKey/Status"))
                .unwrap_or("(none)");
            if get.status != 200 || got != *status {
                problems.push(format!(
                    "GetSSHPublicKey({id}) answered {} with Status {got}, expected {status}",
                    get.status
                ));
            }
        }
    }
    checker.record(
        "shape.state",
        Level::Shape,
        prediction.codes,
        (!problems.is_empty()).then(|| Mismatch {
            expected: "keys read back with the statuses the request leaves".into(),
            actual: problems.join("; "),
        }),
    );
    Ok(())
}

/// Deletes what the case created, keys first. Failures are ignored: a target
/// that cannot delete has been reported by the checks already.
async fn clean_up(client: &Client, fixtures: &Fixtures) {
    for (user, keys) in fixtures.users.iter().zip(&fixtures.keys) {
        for id in keys {
            let _ = client
                .send(
                    &Request::new(Operation::DeleteSSHPublicKey)
                        .with("UserName", user)
                        .with("SSHPublicKeyId", id),
                )
                .await;
        }
        let _ = client
            .send(&Request::new(Operation::DeleteUser).with("UserName", user))
            .await;
    }
}

fn text_at(response: &Response, path: &str) -> String {
    response
        .xml()
        .and_then(|x| x.text_at(path))
        .unwrap_or_default()
        .to_string()
}

fn date_at(response: &Response, path: &str) -> OffsetDateTime {
    OffsetDateTime::parse(&text_at(response, path), &Iso8601::DEFAULT)
        .unwrap_or_else(|_| OffsetDateTime::now_utc())
}
