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

use std::convert::Infallible;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use url::Url;

use crate::oracle::{self, Key, Message, Prediction, State, Success};

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
}

/// How the server behaves.
#[derive(Clone, Debug, Default)]
pub struct ServerConfig {
    pub deviations: Vec<Deviation>,
}

/// A running server; it stops when dropped.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
    shared: Arc<Shared>,
}

impl Server {
    /// Starts on 127.0.0.1 at `port` (0: any free port).
    pub async fn start(port: u16, config: ServerConfig) -> std::io::Result<Server> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            config,
            requests: AtomicU64::new(0),
        });
        let server_shared = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    // Out of file descriptors, say: wait for some to close
                    // rather than spin on the error.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let shared = shared.clone();
                        async move {
                            let answer = AssertUnwindSafe(shared.serve(req)).catch_unwind().await;
                            Ok::<_, Infallible>(answer.unwrap_or_else(|_| plain(500, PANIC_BODY)))
                        }
                    });
                    // A client that closes its sending side after the request
                    // still gets the answer (half_close).
                    let _ = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(READ_TIMEOUT)
                        .half_close(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
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

    /// How many users and keys the server holds.
    pub fn counts(&self) -> (usize, usize) {
        self.shared.state.lock().expect("state lock").len()
    }

    /// How many requests the server has taken (every one hyper could parse).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    config: ServerConfig,
    requests: AtomicU64,
}

impl Shared {
    fn deviates(&self, d: Deviation) -> bool {
        self.config.deviations.contains(&d)
    }

    async fn serve(&self, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
        self.requests.fetch_add(1, Ordering::Relaxed);
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
        if let Some(refusal) = oracle::authenticate(scope.as_deref()) {
            return self.render(refusal);
        }
        self.bend_request(&mut params);
        let prediction = {
            let mut state = self.state.lock().expect("state lock");
            // Only the key a request names can change; keep its old self for
            // `UpdateIgnored` (cloning the whole state per request made every
            // answer cost as much as the state is large).
            let before = oracle::param(&params, "SSHPublicKeyId")
                .and_then(|id| state.key(id))
                .cloned();
            let prediction = oracle::handle(&mut state, &params, OffsetDateTime::now_utc());
            self.bend_state(&prediction, &params, before, &mut state);
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
        let updated =
            p.operation == Some(crate::spec::Operation::UpdateSSHPublicKey) && p.result.is_ok();
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
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut envelope =
            oracle::envelope(&prediction, &request_id).expect("non-redirects have a body");
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
