//! The AWS Query protocol at the HTTP edge: encode a request as a form, sign it
//! with SigV4, send it, and read the answer into a [`Response`] that checks can
//! judge, or a [`TransportError`] when nothing trustworthy came back.
//!
//! The line between the two is the line between "non-conformant" and "could not
//! tell": a refused connection, a timeout, a cut or endless body, a gateway
//! status (502/503/504), throttling (429 or a throttling code), and a body that
//! is not well-formed XML are transport trouble. An XML answer of any shape, an
//! empty body, and a 500 or 501 from the target itself are responses, and the
//! checks judge them.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials as SigningCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::RunError;
use crate::profile;
use crate::spec::{API_VERSION, Operation};
use crate::xml::{self, Element};

/// The Content-Type of every request: an awsQuery form.
const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";
/// The largest body the harness reads before it calls the answer transport trouble.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Error codes that mean "slow down", not "you are wrong".
const THROTTLING_CODES: [&str; 6] = [
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "ServiceUnavailable",
    "SlowDown",
];

/// Error codes that refuse the caller, not the request: its credentials are
/// unknown or expired, or it may not call the operation. No case expects
/// one; such an answer says nothing of the API, and the next request would
/// get the same.
const CALLER_REFUSALS: [&str; 4] = [
    "InvalidClientTokenId",
    "ExpiredToken",
    "AccessDenied",
    "UnrecognizedClientException",
];

/// An awsQuery request: name/value pairs in wire order, Action and Version
/// included, and how it travels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub params: Vec<(String, String)>,
    pub wire: Wire,
}

/// How a request travels. The SDKs send [`Wire::Post`]; the others are for
/// protocol cases.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wire {
    /// A SigV4-signed form POST.
    #[default]
    Post,
    /// A signed GET with the parameters in the query string.
    Get,
    /// A form POST without a signature.
    Unsigned,
    /// A form POST signed for another service.
    Scope(String),
    /// A signed POST whose body is the parameters as a JSON object.
    Json,
    /// A signed form POST without a Content-Type header.
    NoContentType,
    /// A signed form POST with this raw form text appended to the body.
    Appended(String),
}

impl Wire {
    /// The parameters a server reads from a request sent this way: only a
    /// form body or a query string carries them.
    pub fn params_seen(&self, params: &[(String, String)]) -> Vec<(String, String)> {
        match self {
            Wire::Json | Wire::NoContentType => Vec::new(),
            Wire::Appended(tail) => params
                .iter()
                .cloned()
                .chain(form_urlencoded::parse(tail.as_bytes()).into_owned())
                .collect(),
            Wire::Post | Wire::Get | Wire::Unsigned | Wire::Scope(_) => params.to_vec(),
        }
    }

    /// The service the request is signed for; `None` when it is not signed.
    pub fn scope(&self) -> Option<&str> {
        match self {
            Wire::Unsigned => None,
            Wire::Scope(service) => Some(service),
            _ => Some("iam"),
        }
    }
}

/// A request as HTTP: method, URL, Content-Type and body.
struct Http {
    method: &'static str,
    url: String,
    content_type: Option<&'static str>,
    body: String,
}

impl Request {
    /// `Action=<op>&Version=2010-05-08`, sent as a signed form POST.
    pub fn new(op: Operation) -> Request {
        Request {
            params: vec![
                ("Action".into(), op.name().into()),
                ("Version".into(), API_VERSION.into()),
            ],
            wire: Wire::Post,
        }
    }

    pub fn with(mut self, name: &str, value: impl Into<String>) -> Request {
        self.params.push((name.to_string(), value.into()));
        self
    }

    /// The form-encoded parameters.
    pub fn form(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.params.iter())
            .finish()
    }

    fn http(&self, endpoint: &Url) -> Http {
        let post = |content_type, body| Http {
            method: "POST",
            url: endpoint.to_string(),
            content_type,
            body,
        };
        match &self.wire {
            Wire::Post | Wire::Unsigned | Wire::Scope(_) => {
                post(Some(FORM_CONTENT_TYPE), self.form())
            }
            Wire::NoContentType => post(None, self.form()),
            Wire::Appended(tail) => {
                post(Some(FORM_CONTENT_TYPE), format!("{}&{tail}", self.form()))
            }
            Wire::Json => {
                let object: serde_json::Map<String, serde_json::Value> = self
                    .params
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect();
                post(
                    Some("application/json"),
                    serde_json::Value::Object(object).to_string(),
                )
            }
            Wire::Get => {
                let mut url = endpoint.clone();
                url.set_query(Some(&self.form()));
                Http {
                    method: "GET",
                    url: url.to_string(),
                    content_type: None,
                    body: String::new(),
                }
            }
        }
    }

    /// A shell command that sends this request with curl's own SigV4 signing.
    /// Credentials stay in the environment: the command names the variables.
    pub fn curl(&self, target: &Target) -> String {
        let http = self.http(&target.endpoint);
        let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
        let mut cmd = format!("curl -sS -X {} {}", http.method, quote(&http.url));
        if let Some(service) = self.wire.scope() {
            cmd.push_str(&format!(
                " --aws-sigv4 'aws:amz:{}:{service}' --user \"$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY\"",
                target.region
            ));
            if target.credentials.token.is_some() {
                cmd.push_str(" -H \"x-amz-security-token: $AWS_SESSION_TOKEN\"");
            }
        }
        match (http.content_type, http.method) {
            (Some(ct), _) => cmd.push_str(&format!(" -H 'Content-Type: {ct}'")),
            (None, "POST") => cmd.push_str(" -H 'Content-Type:'"),
            (None, _) => {}
        }
        if !http.body.is_empty() {
            cmd.push_str(&format!(" --data-binary {}", quote(&http.body)));
        }
        cmd
    }
}

/// Who answers: the kind selects hooks; `embedded` is the reference server.
/// Names are kebab-case on the command line and in reports (`moto-ext`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    Embedded,
    Aws,
    Moto,
    /// moto-ext, LocalStack's fork of moto.
    MotoExt,
    Localstack,
    Ministack,
    Generic,
}

impl TargetKind {
    /// The kebab-case name, as the command line and the reports spell it (`moto-ext`).
    pub fn name(self) -> String {
        clap::ValueEnum::to_possible_value(&self)
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
}

/// Where a run's credentials came from: said in the run's start line, in
/// place of any value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
    Environment,
    /// A profile of the shared credentials or config file.
    Profile(String),
    /// None found: the dummy ones, for local emulators.
    Dummy,
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Environment => f.write_str("credentials from the environment"),
            CredentialSource::Profile(name) => write!(f, "credentials of profile {name}"),
            CredentialSource::Dummy => f.write_str("dummy credentials"),
        }
    }
}

/// Signing credentials. Never printed: `Debug` shows only where they came from.
#[derive(Clone)]
pub struct Credentials {
    access_key: String,
    secret_key: String,
    token: Option<String>,
    source: CredentialSource,
}

impl Credentials {
    pub(crate) fn new(
        access_key: &str,
        secret_key: &str,
        token: Option<&str>,
        source: CredentialSource,
    ) -> Credentials {
        Credentials {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            token: token.map(str::to_string),
            source,
        }
    }

    /// From AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, else
    /// dummy ones (emulators route unsigned requests elsewhere, so always sign).
    /// Only the environment: [`profile::resolve`] also reads the AWS profiles.
    pub fn from_env() -> Credentials {
        profile::environment_credentials(&profile::Env::process())
            .ok()
            .flatten()
            .unwrap_or_else(Credentials::dummy)
    }

    /// The credentials used against local emulators when none are set.
    pub fn dummy() -> Credentials {
        Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "iam-conformance-dummy-secret",
            None,
            CredentialSource::Dummy,
        )
    }

    pub fn source(&self) -> &CredentialSource {
        &self.source
    }

    /// Every secret string these credentials hold, for redaction tests.
    pub fn secrets(&self) -> Vec<&str> {
        let mut s = vec![self.secret_key.as_str()];
        s.extend(self.token.as_deref());
        s
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// An endpoint to test.
#[derive(Clone, Debug)]
pub struct Target {
    pub endpoint: Url,
    pub region: String,
    pub kind: TargetKind,
    pub credentials: Credentials,
}

impl Target {
    /// A target in us-east-1, signed with [`Credentials::from_env`]: the
    /// environment's credentials or dummy ones, never a profile's. Set
    /// `region` and `credentials` from [`profile::resolve`] to find them as
    /// the AWS tools do.
    pub fn new(endpoint: Url, kind: TargetKind) -> Target {
        Target {
            endpoint,
            region: profile::DEFAULT_REGION.into(),
            kind,
            credentials: Credentials::from_env(),
        }
    }

    /// Whether the endpoint is real AWS (guarded by `--allow-aws`).
    pub fn is_aws(&self) -> bool {
        self.endpoint.host_str().is_some_and(is_aws_host)
    }

    /// Refuses real AWS unless `allow_aws`, and real AWS with dummy
    /// credentials (it would only answer InvalidClientTokenId).
    pub fn guard(&self, allow_aws: bool) -> Result<(), RunError> {
        if !self.is_aws() {
            return Ok(());
        }
        if !allow_aws {
            return Err(RunError::Usage(format!(
                "{} is real AWS: refusing to send anything without --allow-aws",
                self.endpoint
            )));
        }
        if self.credentials.source == CredentialSource::Dummy {
            return Err(RunError::Usage(
                "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
                 (and AWS_SESSION_TOKEN), e.g. \
                 eval \"$(aws configure export-credentials --format env)\", \
                 or AWS_PROFILE to a profile with aws_access_key_id and aws_secret_access_key"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// The DNS suffixes of AWS's partitions, their `dnsSuffix` and
/// `dualStackDnsSuffix` in the SDKs' partitions.json: aws and aws-us-gov,
/// aws-cn, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc.
const AWS_DNS_SUFFIXES: &[&str] = &[
    "amazonaws.com",
    "api.aws",
    "amazonaws.com.cn",
    "api.amazonwebservices.com.cn",
    "c2s.ic.gov",
    "sc2s.sgov.gov",
    "cloud.adc-e.uk",
    "csp.hci.ic.gov",
    "amazonaws.eu",
];

/// Whether a host is real AWS: one of its partitions' domains or a
/// subdomain, in any case, written with or without the root's final dot.
pub fn is_aws_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    AWS_DNS_SUFFIXES.iter().any(|suffix| {
        host.strip_suffix(suffix)
            .is_some_and(|rest| rest.is_empty() || rest.ends_with('.'))
    })
}

/// What came back, parsed far enough to judge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: Option<String>,
    /// The `x-amzn-RequestId` header.
    pub request_id: Option<String>,
    pub location: Option<String>,
    pub body: Body,
}

/// The body of a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    Empty,
    Xml(Element),
    /// Not XML, kept as a short excerpt (only for a 500 from the target itself).
    NotXml(String),
}

impl Response {
    pub fn xml(&self) -> Option<&Element> {
        match &self.body {
            Body::Xml(el) => Some(el),
            _ => None,
        }
    }

    /// The error code, when the body is an error envelope.
    pub fn error_code(&self) -> Option<&str> {
        self.xml()
            .filter(|x| x.name == "ErrorResponse")
            .and_then(|x| x.text_at("Error/Code"))
    }
}

/// Why no judgeable answer came back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct TransportError {
    pub kind: TransportErrorKind,
    pub detail: String,
}

/// The kinds of transport trouble.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TransportErrorKind {
    Connect,
    Connection,
    Timeout,
    Body,
    TooLarge,
    Gateway,
    Throttled,
    NotXml,
    MalformedXml,
    Request,
    /// The run's `--max-requests` was reached: nothing more is sent.
    Capped,
    /// What a request would create could not be written to the ledger first.
    Ledger,
    /// The target refused the caller (its credentials or permissions).
    Refused,
}

impl fmt::Display for TransportErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportErrorKind::Connect => "target unreachable",
            TransportErrorKind::Connection => "connection failed before an answer",
            TransportErrorKind::Timeout => "timed out",
            TransportErrorKind::Body => "failed to read the response body",
            TransportErrorKind::TooLarge => "response body too large",
            TransportErrorKind::Gateway => "gateway or unavailable status",
            TransportErrorKind::Throttled => "throttled",
            TransportErrorKind::NotXml => "response is not XML",
            TransportErrorKind::MalformedXml => "malformed XML",
            TransportErrorKind::Request => "failed to build the request",
            TransportErrorKind::Capped => "request cap reached",
            TransportErrorKind::Ledger => "failed to write the ledger",
            TransportErrorKind::Refused => "the target refused the caller",
        })
    }
}

impl TransportError {
    pub(crate) fn new(kind: TransportErrorKind, detail: impl Into<String>) -> TransportError {
        TransportError {
            kind,
            detail: detail.into(),
        }
    }
}

/// How patiently and politely a client sends: retries with backoff and
/// jitter after throttling and 5xx answers (never after any other answer), a
/// request rate, and a cap on the requests a run may send. The default sends
/// each request once, as fast as answers come (what [`Client::new`] does).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Policy {
    /// Retries after a throttled or 5xx answer (Throttling,
    /// RequestLimitExceeded, ServiceUnavailable, 500, 502-504; not 501).
    pub retries: u32,
    /// The backoff before the first retry; it doubles with each retry up to
    /// `max_backoff`, and the wait is a random part of it ("full jitter").
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Requests per second at most (`None`: as fast as answers come).
    pub rate: Option<f64>,
    /// Requests the run may send, retries included and cleanup exempt (`None`: no cap).
    pub max_requests: Option<u64>,
}

impl Policy {
    /// This policy with the overrides given: a rate of 0 means no limit.
    pub fn overridden(
        mut self,
        retries: Option<u32>,
        rate: Option<f64>,
        max_requests: Option<u64>,
    ) -> Policy {
        if let Some(n) = retries {
            self.retries = n;
        }
        if let Some(rate) = rate {
            self.rate = (rate > 0.0).then_some(rate);
        }
        self.max_requests = max_requests.or(self.max_requests);
        self
    }

    /// The default for a target: [`Policy::aws`] against AWS, else [`Policy::local`].
    pub fn for_target(target: &Target) -> Policy {
        if target.is_aws() {
            Policy::aws()
        } else {
            Policy::local()
        }
    }

    /// Conservative, as the AWS SDKs back off: 5 requests a second, 5
    /// retries from 500 ms up to 20 s.
    pub fn aws() -> Policy {
        Policy {
            retries: 5,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(20),
            rate: Some(5.0),
            max_requests: None,
        }
    }

    /// Quick, against a server on this machine: 3 retries from 20 ms, no rate limit.
    pub fn local() -> Policy {
        Policy {
            retries: 3,
            backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(500),
            rate: None,
            max_requests: None,
        }
    }

    /// The wait before retry number `retry` (1-based), for a random `unit` in [0, 1).
    fn backoff(&self, retry: u32, unit: f64) -> Duration {
        let ceiling = self
            .backoff
            .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
            .min(self.max_backoff);
        ceiling.mul_f64(unit)
    }
}

/// What a client sent, counted as it goes (shared by its clones).
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    /// Requests that count against `max_requests`.
    metered: AtomicU64,
    retries: AtomicU64,
    throttled: AtomicU64,
    server_errors: AtomicU64,
}

/// What a client sent: every request, retries included, and why it retried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    pub requests: u64,
    pub retries: u64,
    /// Answers that said "slow down" (429 or a throttling code).
    pub throttled: u64,
    /// 500 and 502-504 answers.
    pub server_errors: u64,
}

/// Sends requests to one target.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    target: Target,
    /// The target's credentials as the signer takes them, built once.
    signing: SigningCredentials,
    policy: Policy,
    counters: Arc<Counters>,
    /// The earliest instant the next request may leave (with a rate limit).
    next_slot: Arc<Mutex<tokio::time::Instant>>,
}

impl fmt::Debug for Client {
    /// Like [`Credentials`], the signer's copy shows nothing (not even the access key).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("target", &self.target)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client that sends each request once (the default [`Policy`]).
    pub fn new(target: Target, timeout: Duration) -> Result<Client, TransportError> {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| TransportError::new(TransportErrorKind::Request, e.to_string()))?;
        let creds = &target.credentials;
        let signing = SigningCredentials::new(
            &creds.access_key,
            &creds.secret_key,
            creds.token.clone(),
            None,
            "iam-conformance",
        );
        Ok(Client {
            http,
            target,
            signing,
            policy: Policy::default(),
            counters: Arc::default(),
            next_slot: Arc::new(Mutex::new(tokio::time::Instant::now())),
        })
    }

    /// The same client under another policy (counts start afresh).
    pub fn with_policy(self, policy: Policy) -> Client {
        Client {
            policy,
            counters: Arc::default(),
            ..self
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// What this client (and its clones) sent so far.
    pub fn traffic(&self) -> Traffic {
        let c = &self.counters;
        Traffic {
            requests: c.requests.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            throttled: c.throttled.load(Ordering::Relaxed),
            server_errors: c.server_errors.load(Ordering::Relaxed),
        }
    }

    /// Signs and sends a request as its [`Wire`] says, retrying throttled and
    /// 5xx answers as the policy says; reads and classifies the answer.
    pub async fn send(&self, request: &Request) -> Result<Response, TransportError> {
        self.send_with(request, true).await
    }

    /// Like [`send`](Client::send), but exempt from `max_requests`: cleanup
    /// must be able to delete what the run created after the cap is reached.
    pub async fn send_cleanup(&self, request: &Request) -> Result<Response, TransportError> {
        self.send_with(request, false).await
    }

    async fn send_with(
        &self,
        request: &Request,
        metered: bool,
    ) -> Result<Response, TransportError> {
        let c = &self.counters;
        let mut retry = 0;
        loop {
            if metered
                && let Some(max) = self.policy.max_requests
                && c.metered.fetch_add(1, Ordering::Relaxed) >= max
            {
                return Err(TransportError::new(
                    TransportErrorKind::Capped,
                    format!("--max-requests {max}: nothing more is sent"),
                ));
            }
            self.pace().await;
            c.requests.fetch_add(1, Ordering::Relaxed);
            let result = self.send_once(request).await;
            let transient = match &result {
                Err(e) if e.kind == TransportErrorKind::Throttled => Some(&c.throttled),
                Err(e) if e.kind == TransportErrorKind::Gateway => Some(&c.server_errors),
                Ok(r) if r.status >= 500 && r.status != 501 => Some(&c.server_errors),
                _ => None,
            };
            let Some(counter) = transient else {
                return result;
            };
            counter.fetch_add(1, Ordering::Relaxed);
            if retry >= self.policy.retries {
                return result;
            }
            retry += 1;
            c.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(self.policy.backoff(retry, jitter())).await;
        }
    }

    /// Waits for the request's slot under the rate limit.
    async fn pace(&self) {
        let Some(rate) = self.policy.rate.filter(|r| *r > 0.0) else {
            return;
        };
        let interval = Duration::from_secs_f64(1.0 / rate);
        let slot = {
            let mut next = self.next_slot.lock().unwrap_or_else(|e| e.into_inner());
            let slot = (*next).max(tokio::time::Instant::now());
            *next = slot + interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// One request, one answer.
    async fn send_once(&self, request: &Request) -> Result<Response, TransportError> {
        let prepared = self.prepare(request)?;
        let mut response = self
            .http
            .execute(prepared)
            .await
            .map_err(|e| classify_reqwest(&e))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header("content-type");
        let request_id = header("x-amzn-requestid");
        let location = header("location");
        // A body announced too large is refused unread; one that grows too
        // large (chunked, or delimited by the connection's end) is cut below.
        if let Some(length) = response.content_length()
            && length > MAX_BODY_BYTES as u64
        {
            return Err(TransportError::new(
                TransportErrorKind::TooLarge,
                format!("Content-Length {length} is more than {MAX_BODY_BYTES} bytes"),
            ));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| classify_reqwest(&e))? {
            if bytes.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(TransportError::new(
                    TransportErrorKind::TooLarge,
                    format!("more than {MAX_BODY_BYTES} bytes"),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        let body = classify_body(status, content_type.as_deref(), &bytes)?;
        let response = Response {
            status,
            content_type,
            request_id,
            location,
            body,
        };
        // A request signed as the SDKs sign it, refused for its caller. (An
        // unsigned or mis-scoped one is refused on purpose: that is judged.)
        if request.wire.scope() == Some("iam")
            && let Some(code) = response.error_code()
            && CALLER_REFUSALS.contains(&code)
        {
            // The message may name the caller's ARN: the code alone is shown.
            return Err(TransportError::new(
                TransportErrorKind::Refused,
                format!("HTTP {status} {code}: check the credentials and their IAM permissions"),
            ));
        }
        Ok(response)
    }

    /// Builds the HTTP request and signs it for the wire's scope, without
    /// sending it (`send` does this first; the benchmarks time it alone).
    pub fn prepare(&self, request: &Request) -> Result<reqwest::Request, TransportError> {
        let fail = |what: &str, e: &dyn fmt::Display| {
            TransportError::new(TransportErrorKind::Request, format!("{what}: {e}"))
        };
        let http = request.http(&self.target.endpoint);
        let mut builder = http::Request::builder().method(http.method).uri(&http.url);
        if let Some(ct) = http.content_type {
            builder = builder.header("content-type", ct);
        }
        let mut req = builder
            .body(http.body)
            .map_err(|e| fail("build request", &e))?;
        if let Some(service) = request.wire.scope() {
            self.sign(&mut req, service)
                .map_err(|e| fail("sign request", &e))?;
        }
        reqwest::Request::try_from(req.map(reqwest::Body::from))
            .map_err(|e| fail("build request", &e))
    }

    fn sign(
        &self,
        req: &mut http::Request<String>,
        service: &str,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let identity = self.signing.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.target.region)
            .name(service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()?
            .into();
        let headers: Vec<(&str, &str)> = req
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
            .collect();
        let signable = SignableRequest::new(
            req.method().as_str(),
            req.uri().to_string(),
            headers.into_iter(),
            SignableBody::Bytes(req.body().as_bytes()),
        )?;
        let (instructions, _) = sign(signable, &params)?.into_parts();
        instructions.apply_to_request_http1x(req);
        Ok(())
    }
}

/// Installs the ring TLS provider once (reqwest is built without a default one).
/// ring builds in seconds where aws-lc-rs takes a minute on two cores; rustls
/// deprecates it for lacking post-quantum key exchange, which a harness whose
/// requests carry only per-request signatures can do without.
#[allow(deprecated)]
fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn classify_reqwest(e: &reqwest::Error) -> TransportError {
    // reqwest's Display may name the URL; endpoints carry no secrets.
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    let kind = if e.is_timeout() {
        TransportErrorKind::Timeout
    } else if e.is_connect() {
        TransportErrorKind::Connect
    } else if e.is_body() || e.is_decode() {
        TransportErrorKind::Body
    } else if e.is_builder() {
        TransportErrorKind::Request
    } else {
        // Closed before an answer, reset, or not HTTP at all.
        TransportErrorKind::Connection
    };
    TransportError::new(kind, detail)
}

/// Decides what a body is: judgeable, or transport trouble.
pub fn classify_body(
    status: u16,
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<Body, TransportError> {
    let excerpt = || {
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
        format!(
            "HTTP {status}, content-type {}, body begins {:?}",
            content_type.unwrap_or("(none)"),
            text
        )
    };
    if status == 429 {
        return Err(TransportError::new(
            TransportErrorKind::Throttled,
            excerpt(),
        ));
    }
    if matches!(status, 502..=504) {
        return Err(TransportError::new(TransportErrorKind::Gateway, excerpt()));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Body::Empty);
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(TransportError::new(
            TransportErrorKind::NotXml,
            format!("invalid UTF-8; {}", excerpt()),
        ));
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if !text.trim_start().starts_with('<') || looks_like_html(text) {
        // The target's own failure or refusal (500, 501) is judged; anything
        // else that is not XML may come from a proxy.
        return if matches!(status, 500 | 501) {
            Ok(Body::NotXml(excerpt()))
        } else {
            Err(TransportError::new(TransportErrorKind::NotXml, excerpt()))
        };
    }
    let root = match xml::parse(text) {
        Ok(root) => root,
        // A whole document with tags that do not match is the target's own
        // (unescaped text); a cut or hostile one may come from anywhere.
        Err(e) if e.malformation() == xml::Malformation::MismatchedTags => {
            return Ok(Body::NotXml(format!("ill-formed XML: {e}; {}", excerpt())));
        }
        Err(e) => {
            return Err(TransportError::new(
                TransportErrorKind::MalformedXml,
                format!("{e}; {}", excerpt()),
            ));
        }
    };
    if root.name == "ErrorResponse"
        && let Some(code) = root.text_at("Error/Code")
        && THROTTLING_CODES.contains(&code)
    {
        return Err(TransportError::new(
            TransportErrorKind::Throttled,
            format!("HTTP {status} {code}"),
        ));
    }
    Ok(Body::Xml(root))
}

/// A random number in [0, 1) for backoff jitter: splitmix64 over a counter
/// and the clock (jitter needs spread, not cryptographic quality).
fn jitter() -> f64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut z = COUNTER
        .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
        .wrapping_add(u64::from(nanos));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

fn looks_like_html(text: &str) -> bool {
    let head = text.trim_start().as_bytes();
    let head = head[..head.len().min(15)].to_ascii_lowercase();
    head.starts_with(b"<!doctype html") || head.starts_with(b"<html")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encodes_members_in_order() {
        let r = Request::new(Operation::UpdateSSHPublicKey)
            .with("UserName", "a b+c")
            .with("Status", "Active");
        assert_eq!(
            r.form(),
            "Action=UpdateSSHPublicKey&Version=2010-05-08&UserName=a+b%2Bc&Status=Active"
        );
    }

    #[test]
    fn bodies_are_classified() {
        assert_eq!(classify_body(200, None, b""), Ok(Body::Empty));
        let html = b"<html><body>Bad Gateway</body></html>";
        assert_eq!(
            classify_body(502, None, html).unwrap_err().kind,
            TransportErrorKind::Gateway
        );
        assert_eq!(
            classify_body(200, None, html).unwrap_err().kind,
            TransportErrorKind::NotXml
        );
        assert!(matches!(
            classify_body(500, None, html),
            Ok(Body::NotXml(_))
        ));
        assert_eq!(
            classify_body(200, None, b"<A><B>").unwrap_err().kind,
            TransportErrorKind::MalformedXml
        );
        let throttled = b"<ErrorResponse><Error><Code>Throttling</Code></Error></ErrorResponse>";
        assert_eq!(
            classify_body(400, None, throttled).unwrap_err().kind,
            TransportErrorKind::Throttled
        );
        assert!(matches!(
            classify_body(400, Some("application/json"), b"<A/>"),
            Ok(Body::Xml(_))
        ));
        let short_html = "<html><head>Ошибка</head></html>";
        assert!(matches!(
            classify_body(500, None, short_html.as_bytes()),
            Ok(Body::NotXml(_))
        ));
        assert!(matches!(
            classify_body(500, None, b"<html></html>"),
            Ok(Body::NotXml(_))
        ));
        assert!(matches!(
            classify_body(501, None, b"Not Implemented"),
            Ok(Body::NotXml(_))
        ));
        assert!(matches!(
            classify_body(200, None, "\u{feff}<A/>".as_bytes()),
            Ok(Body::Xml(_))
        ));
        assert_eq!(
            classify_body(429, None, throttled).unwrap_err().kind,
            TransportErrorKind::Throttled
        );
    }

    #[test]
    fn credentials_never_show_in_debug_or_curl() {
        let target = Target {
            endpoint: "http://127.0.0.1:1/".parse().unwrap(),
            region: "us-east-1".into(),
            kind: TargetKind::Generic,
            credentials: Credentials::new(
                "AKIDSECRETLOOKING",
                "very-secret",
                Some("session-secret"),
                CredentialSource::Environment,
            ),
        };
        let shown = format!(
            "{target:?} {}",
            Request::new(Operation::GetUser).curl(&target)
        );
        for secret in target.credentials.secrets() {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("$AWS_SESSION_TOKEN"));
    }

    #[test]
    fn target_kinds_have_one_name_in_reports_and_on_the_command_line() {
        for kind in <TargetKind as clap::ValueEnum>::value_variants() {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json.as_str(), Some(kind.name().as_str()));
        }
        assert_eq!(TargetKind::MotoExt.name(), "moto-ext");
    }

    #[test]
    fn backoff_doubles_up_to_its_ceiling_and_is_jittered_below_it() {
        let policy = Policy {
            retries: 8,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..Policy::default()
        };
        let ceiling = |retry| policy.backoff(retry, 1.0);
        assert_eq!(ceiling(1), Duration::from_millis(100));
        assert_eq!(ceiling(2), Duration::from_millis(200));
        assert_eq!(ceiling(4), Duration::from_millis(800));
        assert_eq!(ceiling(5), Duration::from_secs(1));
        assert_eq!(ceiling(40), Duration::from_secs(1));
        assert_eq!(policy.backoff(3, 0.25), Duration::from_millis(100));
        let draws: Vec<f64> = (0..1000).map(|_| jitter()).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
        let low = draws.iter().filter(|u| **u < 0.5).count();
        assert!((350..650).contains(&low), "{low} of 1000 draws below 0.5");
    }

    #[test]
    fn aws_endpoints_are_recognised() {
        let t = |u: &str| Target::new(u.parse().unwrap(), TargetKind::Generic).is_aws();
        for aws in [
            "https://iam.amazonaws.com/",
            "https://IAM.AmazonAWS.com/",
            "https://iam.amazonaws.com./",
            "https://iam%2Eamazonaws%2Ecom/",
            "https://user@iam.amazonaws.com:443/",
            "https://iam-fips.amazonaws.com/",
            "https://iam.us-gov.amazonaws.com/",
            "https://iam.global.api.aws/",
            "https://iam.cn-north-1.amazonaws.com.cn/",
            "https://iam.us-iso-east-1.c2s.ic.gov/",
            "https://iam.us-isob-east-1.sc2s.sgov.gov/",
            "https://amazonaws.com/",
        ] {
            assert!(t(aws), "{aws} is AWS");
        }
        for other in [
            "http://127.0.0.1:5000/",
            "https://amazonaws.com.example.org/",
            "https://notamazonaws.com/",
            "https://iam.amazonaws.co/",
            "http://localhost.localstack.cloud:4566/",
        ] {
            assert!(!t(other), "{other} is not AWS");
        }
    }
}
