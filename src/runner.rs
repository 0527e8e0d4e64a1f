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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Iso8601;
use tokio::time::Instant;

use crate::check::{CheckResult, Checker, Level, Mismatch, Verdict, Window, check_response};
use crate::keys::{RsaKey, corpus_keys};
use crate::ledger::{Ledger, RunId};
use crate::oracle::{self, Key, Prediction, Provenance, State, Success, User};
use crate::spec::Operation;
use crate::suite::{Case, CaseClass, Step, Value};
use crate::wire::{Client, Request, Response, Target, TransportError, TransportErrorKind, Wire};

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
    /// How long to wait, at most, for writes to show in reads (eventual
    /// consistency): after the fixtures, and before a state check calls a
    /// difference a divergence. Zero: reads are trusted at once.
    pub consistency_wait: Duration,
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
            consistency_wait: Duration::ZERO,
        }
    }
}

/// The requests a case sent, in order: what a reproducer replays.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// Runs one case on its own (fixtures, request, checks, cleanup), its users
/// under a run path of its own, reads trusted at once.
pub async fn run_case(client: &Client, case: &Case, level: Level) -> CaseRun {
    let ledger = Ledger::in_memory(RunId::new());
    run_case_in(client, case, level, &Session::new(&ledger)).await
}

/// Where cases run: the ledger their users go into (and under whose run's
/// path they live), and how long writes may take to show in reads.
#[derive(Clone, Copy, Debug)]
pub struct Session<'a> {
    pub ledger: &'a Ledger,
    pub consistency_wait: Duration,
}

impl<'a> Session<'a> {
    /// Reads trusted at once.
    pub fn new(ledger: &'a Ledger) -> Session<'a> {
        Session {
            ledger,
            consistency_wait: Duration::ZERO,
        }
    }

    /// The wait a target gets by default: 10 s for AWS (IAM is eventually
    /// consistent), none for a local server.
    pub fn default_wait(target: &Target) -> Duration {
        if target.is_aws() {
            Duration::from_secs(10)
        } else {
            Duration::ZERO
        }
    }
}

/// Runs one case in a session.
pub async fn run_case_in(
    client: &Client,
    case: &Case,
    level: Level,
    session: &Session<'_>,
) -> CaseRun {
    let settings = Settings {
        level,
        consistency_wait: session.consistency_wait,
        ..Settings::default()
    };
    Context::new(&settings, session.ledger)
        .run(client, case)
        .await
}

/// How often, and how long in all, the run waited for its writes to show.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Waits {
    pub count: u64,
    pub millis: u64,
}

impl CaseRun {
    /// What the target answered when it refused to set up a fixture (a user
    /// or key the case needs): the case never reached its request.
    pub fn refused_fixture(&self) -> Option<&Mismatch> {
        match &self.outcome {
            CaseOutcome::Checked(checks) => checks
                .iter()
                .find(|c| c.check == FIXTURE_CHECK)
                .and_then(|c| c.mismatch.as_ref()),
            _ => None,
        }
    }

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

/// The check a case fails when the target refuses one of its fixtures.
const FIXTURE_CHECK: &str = "fixture";

/// The seed of the golden views: `cargo test`'s snapshot trials and
/// `iam-conformance record` shrink each class's cases from it by default.
pub const SNAPSHOT_SEED: u64 = 20261204;

/// The class's simplest case: a generated case shrunk as far as it goes, so a
/// golden view shows one small, stable example of the class. The same seed
/// gives the same case.
pub fn minimal_case(class: &CaseClass, seed: u64) -> Case {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed.to_le_bytes().repeat(4)),
    );
    let mut tree = class
        .strategy()
        .new_tree(&mut runner)
        .expect("case strategies do not reject");
    while tree.simplify() {}
    tree.current()
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

impl Divergence {
    /// The divergence as text, each line after the first indented by
    /// `indent`: what diverged, expected and actual, and how to reproduce it.
    pub fn describe(&self, indent: &str) -> String {
        let curl: Vec<String> = self
            .reproducer
            .curl
            .lines()
            .map(|l| format!("{indent}  {l}"))
            .collect();
        format!(
            "{} {} {} [{}, {}]\n{indent}expected: {}\n{indent}actual:   {}\n{indent}request:  {}\n{indent}reproduce:\n{}",
            self.verdict.as_str().to_uppercase(),
            self.class,
            self.check,
            self.level.as_str(),
            self.provenance.as_str(),
            self.expected,
            self.actual,
            self.reproducer.request,
            curl.join("\n")
        )
    }
}

/// The exact request, and a shell script of curl commands (fixtures first);
/// the shrunk case itself and the requests it sent, for a faithful replay
/// (see [`crate::regression`]).
#[derive(Clone, Debug, Serialize)]
pub struct Reproducer {
    pub request: String,
    pub curl: String,
    pub case: Case,
    pub exchange: Exchange,
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
    ledger: &Ledger,
    on_case: &(dyn Fn() + Sync),
) -> Ran {
    let ctx = Context::new(settings, ledger);
    let mut tallies: Vec<Tally> = classes.iter().map(|c| Tally::new(c)).collect();
    // A refusal of the caller stops new cases; those in flight finish.
    let stop = AtomicBool::new(false);
    let jobs = classes
        .iter()
        .enumerate()
        .flat_map(|(k, class)| {
            cases_of(class, settings.seed)
                .take(settings.cases as usize)
                .enumerate()
                .map(move |(i, case)| (k, i, case))
        })
        .take_while(|_| !stop.load(Ordering::Relaxed));
    let mut stream = futures_util::stream::iter(jobs)
        .map(|(k, i, case)| {
            let ctx = &ctx;
            async move { (k, i, ctx.run(client, &case).await) }
        })
        .buffer_unordered(settings.jobs.max(1));
    // Dropping the stream at the deadline drops the cases in flight with it.
    let mut stopped = None;
    while let Some(Some((k, i, run))) = before(ctx.deadline, stream.next()).await {
        if let CaseOutcome::Error(e) = &run.outcome
            && e.kind == TransportErrorKind::Refused
            && stopped.is_none()
        {
            // Every later request would be refused too.
            stopped = Some(format!("the target refused the caller ({})", e.detail));
            stop.store(true, Ordering::Relaxed);
        }
        tallies[k].add(i, run, settings.strict);
        on_case();
    }
    drop(stream);
    // Shrinking is sequential within a class (each step depends on the last,
    // and one shrunk case serves several checks), side by side across classes.
    let mut shrinking = futures_util::stream::iter(
        tallies
            .iter_mut()
            .filter(|t| stopped.is_none() && !t.first.is_empty()),
    )
    .map(|tally| {
        let ctx = &ctx;
        async move { tally.shrink_all(client, ctx, settings).await }
    })
    .buffer_unordered(settings.jobs.max(1));
    while shrinking.next().await.is_some() {}
    drop(shrinking);
    let waits = Waits {
        count: ctx.waits.load(Ordering::Relaxed),
        millis: ctx.waited_ms.load(Ordering::Relaxed),
    };
    let why_not_run = stopped.as_deref().unwrap_or(DEADLINE_PASSED);
    Ran {
        outcomes: tallies
            .into_iter()
            .map(|t| t.finish(settings, why_not_run))
            .collect(),
        waits,
        stopped,
    }
}

/// Why cases are not run when nothing else stopped the run.
pub const DEADLINE_PASSED: &str = "the run's deadline passed";

/// What [`run_classes`] came to.
#[derive(Debug)]
pub struct Ran {
    pub outcomes: Vec<ClassOutcome>,
    pub waits: Waits,
    /// Why the run stopped before its cases were all run, if a refusal of
    /// the caller stopped it (a deadline says so in the classes' notes).
    pub stopped: Option<String>,
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

    /// Shrinks the class's divergences: first for the check that diverged
    /// earliest; the shrunk case usually shows the class's other divergences
    /// too, and serves for them.
    async fn shrink_all(&mut self, client: &Client, ctx: &Context<'_>, settings: &Settings) {
        let class = self.out.class;
        let mut pending = std::mem::take(&mut self.first);
        // Shrink for the check that diverged earliest; the shrunk case usually
        // shows the class's other divergences too, and serves for them.
        while let Some(check) = pending.iter().min_by_key(|(_, (i, _))| *i).map(|(c, _)| *c) {
            let (i, run) = pending.remove(check).expect("a pending check");
            let (best, case, tries) = shrink(client, ctx, class, i, run, check, settings).await;
            let CaseOutcome::Checked(checks) = &best.outcome else {
                continue;
            };
            for result in checks {
                let shown = result.check == check || pending.remove(result.check).is_some();
                if let (true, Some(Mismatch { expected, actual })) =
                    (shown, result.mismatch.clone())
                {
                    self.out.divergences.push(Divergence {
                        class: class.id,
                        operation: class.operation,
                        check: result.check,
                        level: result.level,
                        verdict: result.verdict(settings.strict),
                        provenance: result.provenance,
                        expected,
                        actual,
                        reproducer: reproducer(client, case.clone(), best.exchange.clone()),
                        shrink_runs: tries,
                    });
                }
            }
        }
    }

    /// The class's outcome once its cases ran and its divergences shrank;
    /// `why_not_run` says why cases were left unrun, if any were.
    fn finish(mut self, settings: &Settings, why_not_run: &str) -> ClassOutcome {
        let out = &mut self.out;
        // Shrinks finish in any order; reports list a class's checks by name.
        out.divergences.sort_by_key(|d| d.check);
        out.not_run = settings.cases - out.cases;
        if out.not_run > 0 {
            out.note.get_or_insert_with(|| {
                format!(
                    "{} of {} cases not run: {why_not_run}",
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
/// the budget or the deadline runs out; returns the smallest run that does,
/// its case, and how many runs shrinking took.
async fn shrink(
    client: &Client,
    ctx: &Context<'_>,
    class: &'static CaseClass,
    index: usize,
    original: CaseRun,
    check: &'static str,
    settings: &Settings,
) -> (CaseRun, Case, u32) {
    let strategy = class.strategy();
    let mut runner = class_runner(class, settings.seed);
    for _ in 0..index {
        strategy
            .new_tree(&mut runner)
            .expect("case strategies do not reject");
    }
    let mut tree = strategy
        .new_tree(&mut runner)
        .expect("case strategies do not reject");
    let mut best = original;
    let mut best_case = tree.current();
    let mut tries = 0;
    if tree.simplify() {
        while tries < settings.shrink_budget {
            let case = tree.current();
            let Some(run) = before(ctx.deadline, ctx.run(client, &case)).await else {
                break;
            };
            tries += 1;
            if run.diverging().contains(&check) {
                best = run;
                best_case = case;
                if !tree.simplify() {
                    break;
                }
            } else if !tree.complicate() {
                break;
            }
        }
    }
    (best, best_case, tries)
}

fn reproducer(client: &Client, case: Case, exchange: Exchange) -> Reproducer {
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
        case,
        exchange,
    }
}

/// What a run shares between its cases: the ledger (with the run's id, which
/// makes the users' path and name prefix), a case counter, the level, the
/// instant after which nothing is sent, and the consistency waits.
struct Context<'a> {
    ledger: &'a Ledger,
    prefix: String,
    path: String,
    counter: AtomicU64,
    level: Level,
    deadline: Option<Instant>,
    consistency_wait: Duration,
    waits: AtomicU64,
    waited_ms: AtomicU64,
}

/// The users and keys a case created on the target, for resolving and cleaning up.
#[derive(Default)]
struct Fixtures {
    users: Vec<String>,
    /// Per user, the target's id of each key.
    keys: Vec<Vec<String>>,
    /// Per user, the body each key was uploaded with.
    bodies: Vec<Vec<String>>,
    /// Users the request under test created (a target that accepts a name AWS refuses).
    created_by_request: Vec<String>,
}

impl Context<'_> {
    /// A run starting now; its deadline counts from now.
    fn new<'a>(settings: &Settings, ledger: &'a Ledger) -> Context<'a> {
        Context {
            ledger,
            prefix: ledger.run_id().prefix(),
            path: ledger.run_id().path(),
            counter: AtomicU64::new(0),
            level: settings.level,
            deadline: settings.deadline.map(|d| Instant::now() + d),
            consistency_wait: settings.consistency_wait,
            waits: AtomicU64::new(0),
            waited_ms: AtomicU64::new(0),
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
            Ok(()) if !case.sequence.is_empty() => attempt.sequence(&case.sequence).await,
            Ok(()) => attempt.test(case).await,
        };
        clean_up(client, self.ledger, &attempt.fixtures).await;
        CaseRun {
            outcome,
            exchange: attempt.exchange,
            observed: attempt.observed,
        }
    }
}

/// One case in progress: what it sent, created and predicted so far.
struct Attempt<'a> {
    ctx: &'a Context<'a>,
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
            let request = Request::new(Operation::CreateUser)
                .with("UserName", &name)
                .with("Path", &self.ctx.path);
            let response = self.fixture(request).await?;
            self.fixtures.users.push(name.clone());
            self.fixtures.keys.push(Vec::new());
            self.fixtures.bodies.push(Vec::new());
            self.model.insert_user(User {
                name: name.clone(),
                path: self.ctx.path.clone(),
                id: text_at(&response, "CreateUserResult/User/UserId"),
                created: date_at(&response, "CreateUserResult/User/CreateDate"),
            });
            for (j, key) in user.keys.iter().enumerate() {
                let line = corpus_keys()[(i + j) % corpus_keys().len()];
                let rsa = RsaKey::parse(line).expect("corpus keys parse");
                let body = if key.pem {
                    rsa.to_pem()
                } else {
                    line.to_string()
                };
                let request = Request::new(Operation::UploadSSHPublicKey)
                    .with("UserName", &name)
                    .with("SSHPublicKeyBody", &body);
                let response = self.fixture(request).await?;
                let id = text_at(
                    &response,
                    "UploadSSHPublicKeyResult/SSHPublicKey/SSHPublicKeyId",
                );
                self.fixtures.keys[i].push(id.clone());
                self.fixtures.bodies[i].push(body.clone());
                self.model.insert_key(Key {
                    id: id.clone(),
                    user: name.clone(),
                    uploaded: body,
                    rsa,
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
                        .with("Status", &key.status)
                } else {
                    continue;
                };
                oracle::handle(
                    &mut self.model,
                    &follow_up.params,
                    OffsetDateTime::now_utc(),
                );
                self.fixture(follow_up).await?;
            }
        }
        if !self.ctx.consistency_wait.is_zero() {
            // Reads must show the fixtures before the request under test
            // relies on them; if they never do, the state check tells.
            let users = self.fixtures.users.clone();
            self.settle(&users).await.map_err(CaseOutcome::Error)?;
        }
        Ok(())
    }

    /// Reads the users' keys back until they are what the model says, for at
    /// most the run's consistency wait; returns what still differs. A wait
    /// that was needed is counted.
    async fn settle(&self, users: &[String]) -> Result<Vec<String>, TransportError> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(50);
        let mut slept = false;
        loop {
            let problems = read_state(self.client, users, &self.model).await?;
            let waited = start.elapsed();
            if problems.is_empty() || waited >= self.ctx.consistency_wait {
                if slept {
                    self.ctx.waits.fetch_add(1, Ordering::Relaxed);
                    self.ctx
                        .waited_ms
                        .fetch_add(waited.as_millis() as u64, Ordering::Relaxed);
                }
                return Ok(problems);
            }
            tokio::time::sleep(pause.min(self.ctx.consistency_wait - waited)).await;
            slept = true;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    /// After the request: every user's keys must read back as the model says
    /// (a changed key changed, no other did), once writes have had the run's
    /// consistency wait to show.
    async fn check_state(
        &self,
        checker: &mut Checker,
        prediction: &Prediction,
        users: &[String],
    ) -> Result<(), TransportError> {
        if users.is_empty() {
            return Ok(());
        }
        let problems = self.settle(users).await?;
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

    /// Sends a fixture request; anything but success stops the case with its outcome.
    async fn fixture(&mut self, request: Request) -> Result<Response, CaseOutcome> {
        self.exchange.setup.push(request.clone());
        let response = send_noted(self.client, self.ctx.ledger, &request)
            .await
            .map_err(CaseOutcome::Error)?;
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
            check: FIXTURE_CHECK,
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

    async fn test(&mut self, case: &Case) -> CaseOutcome {
        let fixtures = &self.fixtures;
        let request = case.request(
            &fixtures.users,
            &fixtures.keys,
            &fixtures.bodies,
            &self.unknown_user(),
            &self.ctx.path,
        );
        self.exchange.request = Some(request.clone());
        let start = OffsetDateTime::now_utc();
        let prediction = match oracle::authenticate(case.wire.scope()) {
            Some(refusal) => refusal,
            None => {
                let seen = case.wire.params_seen(&request.params);
                let mut p = oracle::handle(&mut self.model, &seen, start);
                if case.wire == Wire::Get {
                    // The API reference's samples are GETs; no recording is.
                    p.codes = p.codes.max(Provenance::Doc);
                    p.message = p.message.max(Provenance::Doc);
                }
                p
            }
        };
        let (response, window) = match self.send(&request, &prediction, start).await {
            Ok(sent) => sent,
            Err(e) => return CaseOutcome::Error(e),
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
        if self.ctx.level >= Level::Shape {
            let users = self.fixtures.users.clone();
            if let Err(e) = self.check_state(&mut checker, &prediction, &users).await {
                return CaseOutcome::Error(e);
            }
        }
        CaseOutcome::Checked(checker.results)
    }

    /// Runs a stateful sequence: every step predicted from the model, sent,
    /// checked; the first step that diverges ends it; then the state is read back.
    async fn sequence(&mut self, steps: &[Step]) -> CaseOutcome {
        let mut users: Vec<String> = Vec::new();
        let mut keys: Vec<String> = Vec::new();
        // Per user, the Marker of the next page: the target's, and the model's.
        let mut pages: BTreeMap<String, (String, String)> = BTreeMap::new();
        let mut checker = Checker::new(self.ctx.level);
        let mut last = None;
        for step in steps {
            let pick = |list: &Vec<String>, i: usize| list.get(i % list.len().max(1)).cloned();
            let user = |i: &usize| pick(&users, *i).unwrap_or_else(|| self.unknown_user());
            let key =
                |i: &usize| pick(&keys, *i).unwrap_or_else(|| "APKAXXXXXXXXXXXXXXXX".to_string());
            let mut model_marker = None;
            let request = match step {
                Step::CreateUser => Request::new(Operation::CreateUser)
                    .with(
                        "UserName",
                        format!("{}-{}-s{}", self.ctx.prefix, self.n, users.len()),
                    )
                    .with("Path", &self.ctx.path),
                Step::GetUser { user: u } => {
                    Request::new(Operation::GetUser).with("UserName", user(u))
                }
                Step::DeleteUser { user: u } => {
                    Request::new(Operation::DeleteUser).with("UserName", user(u))
                }
                Step::Upload { user: u, material } => Request::new(Operation::UploadSSHPublicKey)
                    .with("UserName", user(u))
                    .with(
                        "SSHPublicKeyBody",
                        corpus_keys()[material % corpus_keys().len()],
                    ),
                Step::Update {
                    user: u,
                    key: k,
                    status,
                } => Request::new(Operation::UpdateSSHPublicKey)
                    .with("UserName", user(u))
                    .with("SSHPublicKeyId", key(k))
                    .with("Status", status),
                Step::Get {
                    user: u,
                    key: k,
                    encoding,
                } => Request::new(Operation::GetSSHPublicKey)
                    .with("UserName", user(u))
                    .with("SSHPublicKeyId", key(k))
                    .with("Encoding", encoding),
                Step::List { user: u, max_items } => {
                    let request =
                        Request::new(Operation::ListSSHPublicKeys).with("UserName", user(u));
                    match max_items {
                        Some(n) => request.with("MaxItems", n.to_string()),
                        None => request,
                    }
                }
                Step::NextPage { user: u } => {
                    let request =
                        Request::new(Operation::ListSSHPublicKeys).with("UserName", user(u));
                    match pages.get(&user(u)) {
                        Some((theirs, ours)) => {
                            model_marker = Some(ours.clone());
                            request.with("Marker", theirs).with("MaxItems", "1")
                        }
                        None => request,
                    }
                }
                Step::Delete { user: u, key: k } => Request::new(Operation::DeleteSSHPublicKey)
                    .with("UserName", user(u))
                    .with("SSHPublicKeyId", key(k)),
            };
            if let Some(prior) = self.exchange.request.replace(request.clone()) {
                self.exchange.setup.push(prior);
            }
            // The model reads its own marker where the target gets its own.
            let mut seen = request.params.clone();
            if let Some(ours) = model_marker {
                seen.iter_mut()
                    .filter(|(k, _)| k == "Marker")
                    .for_each(|(_, v)| *v = ours.clone());
            }
            let start = OffsetDateTime::now_utc();
            let prediction = oracle::handle(&mut self.model, &seen, start);
            let (response, window) = match self.send(&request, &prediction, start).await {
                Ok(sent) => sent,
                Err(e) => return CaseOutcome::Error(e),
            };
            let listed = oracle::param(&request.params, "UserName")
                .unwrap_or_default()
                .to_string();
            match &prediction.result {
                Ok(Success::User(u)) if *step == Step::CreateUser => users.push(u.name.clone()),
                Ok(Success::Key { .. }) if matches!(step, Step::Upload { .. }) => {
                    keys.push(text_at(
                        &response,
                        "UploadSSHPublicKeyResult/SSHPublicKey/SSHPublicKeyId",
                    ));
                }
                Ok(Success::KeyList {
                    marker: Some(ours), ..
                }) => {
                    let theirs = text_at(&response, "ListSSHPublicKeysResult/Marker");
                    pages.insert(listed, (theirs, ours.clone()));
                }
                Ok(Success::KeyList { marker: None, .. }) => {
                    pages.remove(&listed);
                }
                _ => {}
            }
            check_response(&mut checker, &prediction, &response, window);
            let names = users
                .iter()
                .enumerate()
                .map(|(i, u)| (u.clone(), format!("{{user{i}}}")))
                .chain([(self.ctx.path.clone(), "{path}".to_string())])
                .chain(
                    keys.iter()
                        .enumerate()
                        .map(|(j, k)| (k.clone(), format!("{{key{j}}}"))),
                )
                .collect();
            self.observed = Some(Observed {
                request,
                prediction: prediction.clone(),
                response,
                names,
            });
            last = Some(prediction);
            if checker.results.iter().any(|c| c.mismatch.is_some()) {
                return CaseOutcome::Checked(checker.results);
            }
        }
        if self.ctx.level >= Level::Shape
            && let Some(last) = &last
            && let Err(e) = self.check_state(&mut checker, last, &users).await
        {
            return CaseOutcome::Error(e);
        }
        CaseOutcome::Checked(checker.results)
    }

    /// Sends a request under test that began at `start`, and keeps the model
    /// in step with what it created; returns the answer and its time window.
    async fn send(
        &mut self,
        request: &Request,
        prediction: &Prediction,
        start: OffsetDateTime,
    ) -> Result<(Response, Window), TransportError> {
        let response = send_noted(self.client, self.ctx.ledger, request).await?;
        let window = Window {
            start,
            end: OffsetDateTime::now_utc(),
        };
        self.adopt(prediction, &response);
        Ok((response, window))
    }

    /// Keeps the model in step with what the request created on the target:
    /// the key id and date an upload got, the user a create made (and must
    /// delete again).
    fn adopt(&mut self, prediction: &Prediction, response: &Response) {
        if response.status != 200 {
            return;
        }
        match (&prediction.result, prediction.operation) {
            (Ok(Success::Key { key, .. }), Some(Operation::UploadSSHPublicKey)) => {
                let path = "UploadSSHPublicKeyResult/SSHPublicKey";
                let id = text_at(response, &format!("{path}/SSHPublicKeyId"));
                let date = date_at(response, &format!("{path}/UploadDate"));
                self.model.rekey(&key.id, &id, date);
            }
            (Ok(Success::User(user)), Some(Operation::CreateUser)) => {
                self.model.insert_user(User {
                    id: text_at(response, "CreateUserResult/User/UserId"),
                    created: date_at(response, "CreateUserResult/User/CreateDate"),
                    ..user.clone()
                });
                self.fixtures.created_by_request.push(user.name.clone());
            }
            (_, Some(Operation::CreateUser)) => {
                // A target that creates what AWS refuses: clean that up too.
                if let Some(name) = self
                    .exchange
                    .request
                    .as_ref()
                    .and_then(|r| oracle::param(&r.params, "UserName"))
                {
                    self.fixtures.created_by_request.push(name.to_string());
                }
            }
            _ => {}
        }
    }

    /// The values a response may echo, with the placeholders snapshots show for them.
    fn names(&self, case: &Case) -> Vec<(String, String)> {
        let mut names = vec![
            (self.unknown_user(), "{unknown-user}".to_string()),
            (self.ctx.path.clone(), "{path}".to_string()),
        ];
        // Responses echo these members; other generated values never are.
        for (name, value) in &case.params {
            if let Value::Text(text) = value
                && matches!(
                    name.as_str(),
                    "UserName" | "SSHPublicKeyId" | "SSHPublicKeyBody"
                )
                && !text.is_empty()
            {
                names.push((text.clone(), format!("{{{name}}}")));
            }
        }
        let fixtures = &self.fixtures;
        for (i, user) in fixtures.users.iter().enumerate() {
            names.push((user.clone(), format!("{{user{i}}}")));
            for (j, (id, body)) in fixtures.keys[i].iter().zip(&fixtures.bodies[i]).enumerate() {
                names.push((id.clone(), format!("{{user{i}.key{j}}}")));
                let rsa = RsaKey::parse(body).expect("fixture bodies parse");
                names.push((rsa.to_ssh(), format!("{{user{i}.key{j} as SSH}}")));
                names.push((rsa.to_pem(), format!("{{user{i}.key{j} as PEM}}")));
            }
        }
        names
    }
}

/// Sends a request; a CreateUser is written to the ledger first (and not
/// sent if that fails: nothing is created that cleanup could not find), and
/// noted as not created when the target refuses it.
async fn send_noted(
    client: &Client,
    ledger: &Ledger,
    request: &Request,
) -> Result<Response, TransportError> {
    let creates = oracle::param(&request.params, "Action") == Some("CreateUser");
    let Some(user) = oracle::param(&request.params, "UserName").filter(|_| creates) else {
        return client.send(request).await;
    };
    let fresh = ledger.creating(user).map_err(|e| {
        TransportError::new(
            TransportErrorKind::Ledger,
            format!("write the ledger before creating {user}: {e}"),
        )
    })?;
    let answer = client.send(request).await;
    let refused = match &answer {
        Ok(r) => r.status != 200,
        // Capped: it was never sent; Refused: the caller may not create it.
        Err(e) => matches!(
            e.kind,
            TransportErrorKind::Capped | TransportErrorKind::Refused
        ),
    };
    if fresh && refused {
        ledger.deleted(user);
    }
    answer
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

/// Every user's keys, read back with List and Get, against what the model
/// says they are: what differs, line by line (nothing when the target cannot
/// list keys: it cannot show its state).
async fn read_state(
    client: &Client,
    users: &[String],
    model: &State,
) -> Result<Vec<String>, TransportError> {
    let mut problems = Vec::new();
    // Users the model says are gone were checked by the step that deleted them.
    for user in users.iter().filter(|u| model.user(u).is_some()) {
        let want: BTreeMap<&str, &str> = model
            .keys_of(user)
            .map(|k| (k.id.as_str(), k.status.as_str()))
            .collect();
        let list = client
            .send(&Request::new(Operation::ListSSHPublicKeys).with("UserName", user))
            .await?;
        // A target without ListSSHPublicKeys cannot show its state: nothing to check.
        let listing = Prediction {
            operation: Some(Operation::ListSSHPublicKeys),
            result: Ok(Success::Empty),
            codes: Provenance::Live,
            message: Provenance::Live,
        };
        if unsupported(&listing, &list).is_some() {
            return Ok(Vec::new());
        }
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
    Ok(problems)
}

/// Deletes what the case created: every key of its users (whoever uploaded
/// it, the fixtures or the request), then the users. A failure is not the
/// case's business (a target that cannot delete was reported by the checks
/// already); a user not deleted stays in the ledger for the run's sweep.
async fn clean_up(client: &Client, ledger: &Ledger, fixtures: &Fixtures) {
    let none = Vec::new();
    let users = fixtures.users.iter().zip(&fixtures.keys);
    let created = fixtures.created_by_request.iter().map(|u| (u, &none));
    for (user, known) in users.chain(created) {
        if delete_user(client, user, known).await {
            ledger.deleted(user);
        }
    }
}

/// Deletes a user the harness created, its keys first (those it lists and
/// those `known`); whether the target says it is gone. Sent with
/// [`Client::send_cleanup`]: a request cap never strands a user.
pub async fn delete_user(client: &Client, user: &str, known: &[String]) -> bool {
    let list = Request::new(Operation::ListSSHPublicKeys).with("UserName", user);
    let mut ids: Vec<String> = match client.send_cleanup(&list).await {
        Ok(r) => r
            .xml()
            .and_then(|x| x.at("ListSSHPublicKeysResult/SSHPublicKeys"))
            .map(|keys| {
                keys.children
                    .iter()
                    .filter_map(|m| m.text_at("SSHPublicKeyId"))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    ids.extend(known.iter().filter(|id| !id.is_empty()).cloned());
    ids.sort();
    ids.dedup();
    for id in ids {
        let delete = Request::new(Operation::DeleteSSHPublicKey)
            .with("UserName", user)
            .with("SSHPublicKeyId", id);
        let _ = client.send_cleanup(&delete).await;
    }
    let delete = Request::new(Operation::DeleteUser).with("UserName", user);
    client
        .send_cleanup(&delete)
        .await
        .is_ok_and(|r| r.status == 200 || r.error_code() == Some("NoSuchEntity"))
}

/// Deletes every user the ledger still lists (what cases dropped at a
/// deadline, a Ctrl-C or a panic left behind); returns those still there.
pub async fn sweep(client: &Client, ledger: &Ledger) -> Vec<String> {
    for user in ledger.outstanding() {
        if delete_user(client, &user, &[]).await {
            ledger.deleted(&user);
        }
    }
    ledger.outstanding()
}

/// The text at `path` in the answer (empty when there is none).
pub(crate) fn text_at(response: &Response, path: &str) -> String {
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
