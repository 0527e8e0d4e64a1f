//! The embedded reference server: the oracle served over HTTP on loopback.
//!
//! It is the default target (a run needs no setup) and the proof that the
//! checks work: [`Deviation`]s make it differ from AWS on purpose, one way at a
//! time, and the tests watch each check catch its deviation.
//!
//! Whatever arrives, it stays up with bounded memory: hyper bounds the head,
//! [`MAX_REQUEST_BYTES`] the body, [`READ_TIMEOUT`] how long either may take
//! to arrive, and a panic while answering becomes a 500 that says so rather
//! than a dropped connection.
//!
//! [`Faults`] make it misbehave as a real service does now and then (it
//! throttles, fails, answers reads from stale state, crashes), so that
//! retries, waits and cleanup can be tested for real without AWS.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::FutureExt;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};
use time::OffsetDateTime;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use url::Url;

use crate::oracle::{self, Key, Message, Prediction, Provenance, State, Success};
use crate::spec::Operation;
use crate::xml::Element;

/// The largest request body the server reads; a longer one gets 413.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// How long the head, and then the body, of a request may take to arrive.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The body of the 500 a panic while answering turns into.
pub const PANIC_BODY: &str = "the embedded server panicked while answering; see its stderr";

/// A deliberate difference from AWS, for proving that a check catches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Deviation {
    /// Answer 400 where AWS answers 404.
    NotFoundAs400,
    /// Name the error `NoSuchEntityException` instead of `NoSuchEntity`.
    ExceptionSuffixOnCodes,
    /// `<Type>Receiver</Type>` on client errors.
    ReceiverType,
    /// Drop the trailing period of every plain-text message.
    MessagesWithoutPeriod,
    /// Report only the first item of a multi-item validation message.
    FirstValidationItemOnly,
    /// Leave out the `x-amzn-RequestId` header.
    NoRequestIdHeader,
    /// `Content-Type: application/json` on XML bodies.
    JsonContentType,
    /// Another XML namespace on every envelope.
    WrongNamespace,
    /// UpdateSSHPublicKey answers 200 and changes nothing.
    UpdateIgnored,
    /// UpdateSSHPublicKey changes every key of the user.
    UpdateAllKeys,
    /// Accept Status values in any letter case.
    CaseInsensitiveStatus,
    /// Accept user names of any length.
    NoUserNameLengthCheck,
    /// Answer an upload with the new key's id in lower case (`apka…`).
    LowerCaseKeyIds,
    /// Leave the user's path out of every ARN (`…:user/name`).
    ArnWithoutPath,
}

/// How the server behaves.
#[derive(Clone, Debug, Default)]
pub struct ServerConfig {
    pub deviations: Vec<Deviation>,
    pub faults: Faults,
}

/// Faults to inject, as a real service shows them now and then; the default
/// injects none.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use iam_conformance::{Faults, Server, ServerConfig};
/// let faults = Faults {
///     throttle_rate: 0.1,
///     consistency_delay: std::time::Duration::from_secs(1),
///     seed: 7,
///     ..Faults::default()
/// };
/// let config = ServerConfig { faults, ..ServerConfig::default() };
/// let server = Server::start(0, config).await.expect("the server starts");
/// assert_eq!(server.faults_injected().throttled, 0);
/// # }
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// The fraction of requests answered 400 `Throttling` before any state is touched.
    pub throttle_rate: f64,
    /// The fraction of requests answered 500 `ServiceFailure` before any state is touched.
    pub failure_rate: f64,
    /// Eventual consistency: writes apply at once, but reads (Get and List)
    /// are answered from the state as it was this long ago.
    pub consistency_delay: Duration,
    /// After answering this many requests the server dies: it closes its
    /// listener, drops open connections and answers nothing more.
    pub crash_after: Option<u64>,
    /// Seeds the choice of the throttled and failed requests.
    pub seed: u64,
}

impl Faults {
    /// Checks the rates (one draw per request decides, so they may add up to
    /// 1 at most) and that a crash comes after at least one answer.
    pub fn validate(&self) -> Result<(), String> {
        let rate = |r: f64| (0.0..=1.0).contains(&r);
        if !rate(self.throttle_rate) || !rate(self.failure_rate) {
            return Err("the throttle and failure rates must be from 0 to 1".into());
        }
        if self.throttle_rate + self.failure_rate > 1.0 {
            return Err("the throttle and failure rates must add up to 1 at most".into());
        }
        if self.crash_after == Some(0) {
            return Err("the server must answer at least one request before it crashes".into());
        }
        Ok(())
    }
}

/// How many requests were throttled or failed on purpose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub throttled: u64,
    pub failed: u64,
}

/// A running server; it stops when dropped.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
    shared: Arc<Shared>,
}

impl Server {
    /// Starts on 127.0.0.1 at `port` (0: any free port). Faults that do not
    /// validate are an `InvalidInput` error.
    pub async fn start(port: u16, config: ServerConfig) -> std::io::Result<Server> {
        config
            .faults
            .validate()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let seed = config.faults.seed.to_le_bytes().repeat(4);
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new(config.faults.consistency_delay)),
            rng: Mutex::new(TestRng::from_seed(RngAlgorithm::ChaCha, &seed)),
            config,
            requests: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            life: watch::Sender::new(Life::default()),
        });
        let server_shared = shared.clone();
        let listening = Open::new(shared.clone());
        let task = tokio::spawn(async move {
            let mut life = shared.life.subscribe();
            loop {
                let accepted = tokio::select! {
                    biased;
                    // Dropping the listener refuses every later connection.
                    () = crash(&mut life) => break,
                    accepted = listener.accept() => accepted,
                };
                let Ok((stream, _)) = accepted else {
                    // Out of file descriptors, say: wait for some to close
                    // rather than spin on the error.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                tokio::spawn(Open::new(shared.clone()).serve(stream));
            }
            drop(listener);
            drop(listening);
        });
        Ok(Server {
            addr,
            task,
            shared: server_shared,
        })
    }

    pub fn url(&self) -> Url {
        Url::parse(&format!("http://{}/", self.addr)).expect("a socket address makes a URL")
    }

    /// How many users and keys the server holds (writes applied, whatever reads see).
    pub fn counts(&self) -> (usize, usize) {
        self.shared.store.lock().expect("state lock").state.len()
    }

    /// How many requests the server has taken (every one hyper could parse).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// How many requests the server throttled or failed on purpose.
    pub fn faults_injected(&self) -> FaultCounts {
        FaultCounts {
            throttled: self.shared.throttled.load(Ordering::Relaxed),
            failed: self.shared.failed.load(Ordering::Relaxed),
        }
    }

    /// Waits until the server has crashed ([`Faults::crash_after`]) and its
    /// last answers are out; without a crash set, never.
    pub async fn crashed(&self) {
        let mut life = self.shared.life.subscribe();
        let _ = life.wait_for(|l| l.crashed && l.open == 0).await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug)]
struct Shared {
    store: Mutex<Store>,
    config: ServerConfig,
    requests: AtomicU64,
    /// Draws which requests are throttled or failed, in the order they come.
    rng: Mutex<TestRng>,
    throttled: AtomicU64,
    failed: AtomicU64,
    life: watch::Sender<Life>,
}

/// Whether the server has crashed, and whether anything is still open.
#[derive(Clone, Copy, Debug, Default)]
struct Life {
    crashed: bool,
    /// The listener and the connections.
    open: usize,
}

/// Resolves once the server has crashed.
async fn crash(life: &mut watch::Receiver<Life>) {
    let _ = life.wait_for(|l| l.crashed).await;
}

/// What a request gets once the server has crashed: hyper drops the
/// connection without an answer.
#[derive(Debug, thiserror::Error)]
#[error("the embedded server has crashed on purpose")]
struct Crashed;

/// The listener or a connection, counted while it is open.
struct Open(Arc<Shared>);

impl Open {
    fn new(shared: Arc<Shared>) -> Open {
        shared.life.send_modify(|l| l.open += 1);
        Open(shared)
    }

    async fn serve(self, stream: TcpStream) {
        let shared = self.0.clone();
        let service = service_fn(move |req| {
            let shared = shared.clone();
            async move {
                let last = shared.admit()?;
                let answer = AssertUnwindSafe(shared.serve(req)).catch_unwind().await;
                if last {
                    shared.life.send_modify(|l| l.crashed = true);
                }
                Ok::<_, Crashed>(answer.unwrap_or_else(|_| plain(500, PANIC_BODY)))
            }
        });
        // A client that closes its sending side after the request still gets
        // the answer (half_close).
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(READ_TIMEOUT)
            .half_close(true)
            .serve_connection(TokioIo::new(stream), service);
        let mut connection = std::pin::pin!(connection);
        let mut life = self.0.life.subscribe();
        tokio::select! {
            _ = connection.as_mut() => {}
            () = crash(&mut life) => {
                // Answers in flight go out (their requests came before the
                // crash), then the connection closes; `admit` refuses any
                // request read in between.
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            }
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.life.send_modify(|l| l.open -= 1);
    }
}

/// The state, and under a consistency delay the past states reads see.
#[derive(Debug)]
struct Store {
    state: State,
    delay: Duration,
    /// With a delay: the state after each write with its time, oldest first.
    /// The front is what reads see: the newest state at least `delay` old,
    /// or the empty one the server started with.
    history: VecDeque<(Instant, State)>,
}

impl Store {
    fn new(delay: Duration) -> Store {
        let mut history = VecDeque::new();
        if !delay.is_zero() {
            history.push_back((Instant::now(), State::default()));
        }
        Store {
            state: State::default(),
            delay,
            history,
        }
    }

    /// Forgets the past states no read can see any more.
    fn settle(&mut self, now: Instant) {
        while self
            .history
            .get(1)
            .is_some_and(|(at, _)| now.duration_since(*at) >= self.delay)
        {
            self.history.pop_front();
        }
    }

    /// What reads see; reads change nothing.
    fn visible(&mut self) -> &mut State {
        match self.history.front_mut() {
            Some((_, past)) => past,
            None => &mut self.state,
        }
    }

    /// Keeps the state after a write for the reads to come.
    fn written(&mut self, now: Instant) {
        if !self.history.is_empty() {
            self.history.push_back((now, self.state.clone()));
        }
    }
}

impl Shared {
    fn deviates(&self, d: Deviation) -> bool {
        self.config.deviations.contains(&d)
    }

    /// Counts a request: `Ok(true)` for the last one before a crash, and
    /// `Err` for any after it.
    fn admit(&self) -> Result<bool, Crashed> {
        let n = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        match self.config.faults.crash_after {
            Some(last) if n > last => Err(Crashed),
            Some(last) => Ok(n == last),
            None => Ok(false),
        }
    }

    /// The throttling or failure this request gets instead of an answer, if
    /// any: one draw against both rates.
    fn fault(&self) -> Option<Prediction> {
        let faults = &self.config.faults;
        if faults.throttle_rate == 0.0 && faults.failure_rate == 0.0 {
            return None;
        }
        let draw: f64 = self.rng.lock().expect("rng lock").random();
        if draw < faults.throttle_rate {
            self.throttled.fetch_add(1, Ordering::Relaxed);
            // What IAM answers a caller over its request rate.
            let text = Message::Text("Rate exceeded".into());
            Some(oracle::error(
                None,
                400,
                "Throttling",
                text,
                Provenance::Live,
            ))
        } else if draw < faults.throttle_rate + faults.failure_rate {
            self.failed.fetch_add(1, Ordering::Relaxed);
            // The model's ServiceFailure (500, Receiver); the text is inferred.
            let text =
                Message::Text("Request processing has failed due to an internal error.".into());
            Some(oracle::error(
                None,
                500,
                "ServiceFailure",
                text,
                Provenance::Inferred,
            ))
        } else {
            None
        }
    }

    async fn serve(&self, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
        let query = req.uri().query().unwrap_or_default().to_string();
        let header = |name| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let is_form = header("content-type")
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        let scope = header("authorization").and_then(|a| credential_scope(&a));
        let body = Limited::new(req.into_body(), MAX_REQUEST_BYTES).collect();
        let body = match tokio::time::timeout(READ_TIMEOUT, body).await {
            Ok(Ok(body)) => body.to_bytes(),
            Ok(Err(_)) => return plain(413, "request body too large"),
            Err(_) => return plain(408, "request body not received in time"),
        };
        // Only a form body carries parameters; another body is not read.
        let form = if is_form { &body[..] } else { &[][..] };
        let mut params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .chain(form_urlencoded::parse(form))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if let Some(fault) = self.fault() {
            return self.render(fault);
        }
        if let Some(refusal) = oracle::authenticate(scope.as_deref()) {
            return self.render(refusal);
        }
        self.bend_request(&mut params);
        let read = oracle::param(&params, "Action")
            .and_then(Operation::from_name)
            .is_some_and(Operation::is_read);
        let prediction = {
            let mut store = self.store.lock().expect("state lock");
            let now = Instant::now();
            store.settle(now);
            let state = if read {
                store.visible()
            } else {
                &mut store.state
            };
            // Only the key a request names can change; keep its old self for
            // `UpdateIgnored` (cloning the whole state per request made every
            // answer cost as much as the state is large).
            let before = oracle::param(&params, "SSHPublicKeyId")
                .and_then(|id| state.key(id))
                .cloned();
            let prediction = oracle::handle(state, &params, OffsetDateTime::now_utc());
            self.bend_state(&prediction, &params, before, state);
            if !read && prediction.operation.is_some() && prediction.result.is_ok() {
                store.written(now);
            }
            prediction
        };
        self.render(prediction)
    }

    fn bend_request(&self, params: &mut [(String, String)]) {
        if self.deviates(Deviation::CaseInsensitiveStatus) {
            for (k, v) in params.iter_mut() {
                if k == "Status" {
                    let lower = v.to_lowercase();
                    if let Some(canon) = ["Active", "Inactive", "Expired"]
                        .into_iter()
                        .find(|c| c.to_lowercase() == lower)
                    {
                        *v = canon.to_string();
                    }
                }
            }
        }
        if self.deviates(Deviation::NoUserNameLengthCheck) {
            for (k, v) in params.iter_mut() {
                if k == "UserName" && v.chars().count() > 64 {
                    v.truncate(64);
                }
            }
        }
    }

    fn bend_state(
        &self,
        p: &Prediction,
        params: &[(String, String)],
        before: Option<Key>,
        state: &mut State,
    ) {
        let updated = p.operation == Some(Operation::UpdateSSHPublicKey) && p.result.is_ok();
        if !updated {
            return;
        }
        let id = oracle::param(params, "SSHPublicKeyId").unwrap_or_default();
        if self.deviates(Deviation::UpdateIgnored)
            && let Some(old) = before
        {
            state.insert_key(old);
        }
        if self.deviates(Deviation::UpdateAllKeys)
            && let Some(key) = state.key(id).cloned()
        {
            let siblings: Vec<_> = state.keys_of(&key.user).cloned().collect();
            for mut sibling in siblings {
                sibling.status = key.status.clone();
                state.insert_key(sibling);
            }
        }
    }

    fn render(&self, mut prediction: Prediction) -> hyper::Response<Full<Bytes>> {
        if let Ok(Success::Redirect { location }) = &prediction.result {
            return hyper::Response::builder()
                .status(302)
                .header("location", location.as_str())
                .body(Full::new(Bytes::new()))
                .expect("a valid response");
        }
        let mut status = match &prediction.result {
            Ok(_) => 200,
            Err(e) => e.status,
        };
        if let Err(e) = &mut prediction.result {
            if self.deviates(Deviation::NotFoundAs400) && e.status == 404 {
                status = 400;
            }
            if self.deviates(Deviation::ExceptionSuffixOnCodes) {
                e.code.push_str("Exception");
            }
            if self.deviates(Deviation::ReceiverType) {
                e.sender = false;
            }
            match &mut e.message {
                Message::Text(t)
                    if self.deviates(Deviation::MessagesWithoutPeriod) && t.ends_with('.') =>
                {
                    t.pop();
                }
                Message::Validation(items) if self.deviates(Deviation::FirstValidationItemOnly) => {
                    items.truncate(1);
                }
                _ => {}
            }
        }
        if self.deviates(Deviation::LowerCaseKeyIds)
            && prediction.operation == Some(Operation::UploadSSHPublicKey)
            && let Ok(Success::Key { key, .. }) = &mut prediction.result
        {
            key.id = key.id.to_lowercase();
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut envelope =
            oracle::envelope(&prediction, &request_id).expect("non-redirects have a body");
        if self.deviates(Deviation::ArnWithoutPath) {
            drop_arn_paths(&mut envelope);
        }
        if self.deviates(Deviation::WrongNamespace) {
            envelope.namespace = Some("https://iam.amazonaws.com/doc/2010-05-08".into());
        }
        let content_type = if self.deviates(Deviation::JsonContentType) {
            "application/json"
        } else {
            "text/xml"
        };
        let mut builder = hyper::Response::builder()
            .status(status)
            .header("content-type", content_type);
        if !self.deviates(Deviation::NoRequestIdHeader) {
            builder = builder.header("x-amzn-RequestId", request_id.as_str());
        }
        builder
            .body(Full::new(Bytes::from(envelope.render())))
            .expect("a valid response")
    }
}

/// `arn:aws:iam::<account>:user/<path>/<name>` → `…:user/<name>`, everywhere in the tree.
fn drop_arn_paths(el: &mut Element) {
    if el.name == "Arn"
        && let Some((head, rest)) = el.text.split_once(":user/")
        && let Some((_, name)) = rest.rsplit_once('/')
    {
        el.text = format!("{head}:user/{name}");
    }
    el.children.iter_mut().for_each(drop_arn_paths);
}

/// The service of a SigV4 `Authorization` header's credential scope
/// (`Credential=AKID/DATE/REGION/SERVICE/aws4_request`). Signatures are not
/// verified: like the emulators, the server trusts any key.
fn credential_scope(authorization: &str) -> Option<String> {
    let credential = authorization.split("Credential=").nth(1)?;
    let scope = credential.split([',', ' ']).next()?;
    scope.split('/').nth(3).map(str::to_string)
}

fn plain(status: u16, text: &'static str) -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from_static(text.as_bytes())))
        .expect("a valid response")
}
