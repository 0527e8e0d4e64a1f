//! Faults at the HTTP edge. `src/wire.rs` draws the line between "the target
//! is non-conformant" and "we could not tell": each fault here must land on the
//! side its module doc promises, with the exact `TransportErrorKind` or judged
//! `Body`, and a run that meets one must end in an `error` verdict and exit
//! code 3, never in a failure. wiremock stages whole answers; the few faults it
//! cannot stage (a body that stalls, is cut, or never ends) are served by hand.

use std::future::Future;
use std::time::{Duration, Instant};

use iam_conformance::spec::Operation;
use iam_conformance::wire::{
    self, Body, Client, Credentials, MAX_BODY_BYTES, Response, TransportError, TransportErrorKind,
};
use iam_conformance::{Report, Run, Target, TargetKind, Verdict, exit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use url::Url;
use wiremock::matchers::method;
use wiremock::{Match, Mock, MockServer, ResponseTemplate};

pub(crate) const NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
const KEY_ID: &str = "APKAEIBAERJR2EXAMPLE";
/// Long enough for any loopback answer; only a hung test waits this long.
pub(crate) const PATIENT: Duration = Duration::from_secs(5);
/// The client timeout of the timeout tests: far below `STALL`.
pub(crate) const IMPATIENT: Duration = Duration::from_millis(300);
/// How long a stalling server keeps the client waiting.
pub(crate) const STALL: Duration = Duration::from_secs(10);
/// The one class the end-to-end tests run: it needs no fixtures, so the faulty
/// mock answers the request under test itself.
pub(crate) const NO_FIXTURES: &str = "update.user_name.too_long";

// ---------------------------------------------------------------------------
// Answers and endpoints
// ---------------------------------------------------------------------------

fn update_ok_xml() -> String {
    format!(
        "<UpdateSSHPublicKeyResponse xmlns=\"{NAMESPACE}\">\n  <ResponseMetadata>\n    \
         <RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId>\n  </ResponseMetadata>\n\
         </UpdateSSHPublicKeyResponse>\n"
    )
}

pub(crate) fn xml(status: u16, body: impl Into<Vec<u8>>) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.into(), "text/xml")
}

pub(crate) fn update_ok() -> ResponseTemplate {
    xml(200, update_ok_xml())
}

/// What nginx says when the service behind it is gone.
pub(crate) fn html_502() -> ResponseTemplate {
    ResponseTemplate::new(502).set_body_raw(
        "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n\
         <body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n",
        "text/html",
    )
}

/// A success envelope cut after its first child opened.
fn truncated_xml() -> ResponseTemplate {
    xml(
        200,
        format!("<UpdateSSHPublicKeyResponse xmlns=\"{NAMESPACE}\"><ResponseMetadata>"),
    )
}

fn throttling() -> ResponseTemplate {
    xml(
        400,
        "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\n  <Error>\n    \
         <Type>Sender</Type>\n    <Code>Throttling</Code>\n    <Message>Rate exceeded</Message>\n  \
         </Error>\n  <RequestId>4c1a7e8e-0f4b-4c5e-9a7c-3f0d9c1bEXAMPLE</RequestId>\n</ErrorResponse>\n",
    )
}

/// A good answer that comes far too late.
fn slow() -> ResponseTemplate {
    update_ok().set_delay(STALL)
}

/// A mock server answering every POST with `template`.
pub(crate) async fn answering(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(template)
        .mount(&server)
        .await;
    server
}

pub(crate) fn endpoint(server: &MockServer) -> Url {
    server.uri().parse().expect("a mock server URI is a URL")
}

/// A loopback port nothing listens on: bound, read, released.
pub(crate) fn refused_endpoint() -> Url {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let port = listener.local_addr().expect("a bound address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}/").parse().expect("a URL")
}

/// A generic target signed with the dummy credentials, whatever the
/// environment holds (`Target::new` reads it; tests must not set it).
pub(crate) fn target(endpoint: Url) -> Target {
    let mut target = Target::new(endpoint, TargetKind::Generic);
    target.credentials = Credentials::dummy();
    target
}

fn update_request() -> wire::Request {
    wire::Request::new(Operation::UpdateSSHPublicKey)
        .with("UserName", "alice smith")
        .with("SSHPublicKeyId", KEY_ID)
        .with("Status", "Inactive")
}

pub(crate) async fn send(endpoint: Url, timeout: Duration) -> Result<Response, TransportError> {
    Client::new(target(endpoint), timeout)
        .expect("the client builds")
        .send(&update_request())
        .await
}

/// Sends the update request to a mock answering with `template`.
pub(crate) async fn send_to(
    template: ResponseTemplate,
    timeout: Duration,
) -> Result<Response, TransportError> {
    let server = answering(template).await;
    send(endpoint(&server), timeout).await
}

pub(crate) fn expect_kind(
    result: Result<Response, TransportError>,
    kind: TransportErrorKind,
) -> TransportError {
    match result {
        Err(e) => {
            assert_eq!(e.kind, kind, "{e}");
            e
        }
        Ok(r) => panic!(
            "expected {kind:?}, got HTTP {} with {} body",
            r.status,
            describe(&r.body)
        ),
    }
}

/// A body named briefly: a failing `TooLarge` test must not print 8 MiB.
fn describe(body: &Body) -> String {
    match body {
        Body::Empty => "an empty".into(),
        Body::Xml(root) => format!("an XML <{}>", root.name),
        Body::NotXml(excerpt) => format!("a non-XML ({excerpt})"),
    }
}

// ---------------------------------------------------------------------------
// Faults wiremock cannot stage: served by hand over one connection
// ---------------------------------------------------------------------------

/// Accepts connections, reads each one's whole request, and hands the socket
/// to `answer`. wiremock only sends whole bodies, so a body that stalls, is
/// cut, is reset or never ends is written here.
pub(crate) async fn by_hand<F, Fut>(answer: F) -> Url
where
    F: Fn(TcpStream) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let url = format!(
        "http://{}/",
        listener.local_addr().expect("a bound address")
    )
    .parse()
    .expect("a URL");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                // Reading it all matters: closing a socket with unread input sends
                // a reset, and the client would see that instead of the fault.
                if read_request(&mut stream).await.is_ok() {
                    answer(stream).await;
                }
            });
        }
    });
    url
}

pub(crate) async fn read_request(stream: &mut TcpStream) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return Ok(());
            }
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Headers promising 4096 bytes, then the start of an envelope.
pub(crate) fn promising_head() -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 4096\r\n\r\n\
         <UpdateSSHPublicKeyResponse xmlns=\"{NAMESPACE}\">"
    )
}

/// Sends the headers and part of the body, then nothing more.
async fn stalled_body() -> Url {
    by_hand(|mut stream| async move {
        let _ = stream.write_all(promising_head().as_bytes()).await;
        tokio::time::sleep(STALL).await;
    })
    .await
}

/// Sends the headers and part of the body, then closes the connection.
async fn cut_body() -> Url {
    by_hand(|mut stream| async move {
        let _ = stream.write_all(promising_head().as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await
}

/// A body delimited by the connection's end, which never comes.
async fn endless_body() -> Url {
    by_hand(|mut stream| async move {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nConnection: close\r\n\r\n<a>";
        if stream.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let filler = vec![b'x'; 64 * 1024];
        while stream.write_all(&filler).await.is_ok() {}
    })
    .await
}

// ---------------------------------------------------------------------------
// Client::send, fault by fault
// ---------------------------------------------------------------------------

#[tokio::test]
async fn html_502_from_a_gateway_is_gateway() {
    let e = expect_kind(
        send_to(html_502(), PATIENT).await,
        TransportErrorKind::Gateway,
    );
    assert!(e.detail.contains("HTTP 502"), "{e}");
}

#[tokio::test]
async fn truncated_xml_with_200_is_malformed_xml() {
    expect_kind(
        send_to(truncated_xml(), PATIENT).await,
        TransportErrorKind::MalformedXml,
    );
}

#[tokio::test]
async fn headers_later_than_the_timeout_are_a_timeout() {
    let start = Instant::now();
    expect_kind(
        send_to(slow(), IMPATIENT).await,
        TransportErrorKind::Timeout,
    );
    assert!(
        start.elapsed() < STALL / 2,
        "gave up after {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_body_that_stalls_past_the_timeout_is_a_timeout() {
    let start = Instant::now();
    expect_kind(
        send(stalled_body().await, IMPATIENT).await,
        TransportErrorKind::Timeout,
    );
    assert!(
        start.elapsed() < STALL / 2,
        "gave up after {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_body_cut_short_is_a_body_error() {
    expect_kind(
        send(cut_body().await, PATIENT).await,
        TransportErrorKind::Body,
    );
}

#[tokio::test]
async fn a_body_that_never_ends_is_too_large() {
    let e = expect_kind(
        send(endless_body().await, PATIENT).await,
        TransportErrorKind::TooLarge,
    );
    assert!(e.detail.contains(&MAX_BODY_BYTES.to_string()), "{e}");
}

#[tokio::test]
async fn a_refused_connection_is_connect() {
    expect_kind(
        send(refused_endpoint(), PATIENT).await,
        TransportErrorKind::Connect,
    );
}

#[tokio::test]
async fn iam_xml_under_a_json_content_type_is_judged() {
    let template = ResponseTemplate::new(200).set_body_raw(update_ok_xml(), "application/json");
    let response = send_to(template, PATIENT)
        .await
        .expect("a judgeable answer");
    assert_eq!(response.status, 200);
    assert_eq!(response.content_type.as_deref(), Some("application/json"));
    let Body::Xml(root) = &response.body else {
        panic!("expected an XML body, got {}", describe(&response.body));
    };
    assert_eq!(root.name, "UpdateSSHPublicKeyResponse");
    assert_eq!(root.namespace.as_deref(), Some(NAMESPACE));
}

#[tokio::test]
async fn json_under_a_json_content_type_is_not_xml() {
    let template = ResponseTemplate::new(200).set_body_raw(
        r#"{"ResponseMetadata":{"RequestId":"7a62c49f"}}"#,
        "application/json",
    );
    expect_kind(send_to(template, PATIENT).await, TransportErrorKind::NotXml);
}

#[tokio::test]
async fn a_throttling_error_is_throttled() {
    let e = expect_kind(
        send_to(throttling(), PATIENT).await,
        TransportErrorKind::Throttled,
    );
    assert_eq!(e.detail, "HTTP 400 Throttling");
}

#[tokio::test]
async fn a_body_one_byte_above_the_limit_is_too_large() {
    let mut body = update_ok_xml().into_bytes();
    body.resize(MAX_BODY_BYTES + 1, b' ');
    expect_kind(
        send_to(xml(200, body), PATIENT).await,
        TransportErrorKind::TooLarge,
    );
}

/// Guards the limit against an off-by-one: exactly `MAX_BODY_BYTES` is read.
#[tokio::test]
async fn a_body_of_exactly_the_limit_is_judged() {
    let mut body = update_ok_xml().into_bytes();
    body.resize(MAX_BODY_BYTES, b' ');
    let response = send_to(xml(200, body), PATIENT)
        .await
        .expect("a judgeable answer");
    assert!(
        matches!(&response.body, Body::Xml(root) if root.name == "UpdateSSHPublicKeyResponse"),
        "got {} body",
        describe(&response.body)
    );
}

/// A 500 from the target itself is its answer, judged by the checks.
#[tokio::test]
async fn html_500_from_the_target_is_judged_as_not_xml() {
    let template = ResponseTemplate::new(500).set_body_raw(
        "<html><body><h1>Internal Server Error</h1></body></html>",
        "text/html",
    );
    let response = send_to(template, PATIENT)
        .await
        .expect("a judgeable answer");
    assert_eq!(response.status, 500);
    let Body::NotXml(excerpt) = &response.body else {
        panic!("expected a non-XML body, got {}", describe(&response.body));
    };
    assert!(
        excerpt.starts_with("HTTP 500, content-type text/html"),
        "{excerpt}"
    );
    assert!(excerpt.contains("Internal Server Error"), "{excerpt}");
}

#[tokio::test]
async fn an_empty_200_is_judged_as_empty() {
    let response = send_to(ResponseTemplate::new(200), PATIENT)
        .await
        .expect("a judgeable answer");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, Body::Empty);
}

// ---------------------------------------------------------------------------
// End to end: a fault is an error, never a failure
// ---------------------------------------------------------------------------

/// Runs a class, each request sent once (no retries: these tests are about
/// how one answer is classified; tests/harness/patience.rs retries).
pub(crate) async fn run(endpoint: Url, class: &str, timeout: Duration) -> Report {
    Run::against(target(endpoint))
        .cases(3)
        .seed(1)
        .retries(0)
        .only(vec![class.into()])
        .timeout(timeout)
        .execute()
        .await
        .expect("the run starts")
}

/// Every case of the one class ran into `kind`: the class is in error, nothing
/// failed or diverged, and the run exits with the transport code.
pub(crate) fn assert_transport_trouble(report: &Report, kind: TransportErrorKind) {
    let console = report.render_console();
    let [class] = &report.classes[..] else {
        panic!("expected one class:\n{console}");
    };
    assert_eq!(class.verdict, Verdict::Error, "{console}");
    let note = class.note.as_deref().unwrap_or_default();
    assert!(
        note.starts_with(&format!("{kind}: ")),
        "expected a {kind:?} note, got {note:?}"
    );
    assert_eq!(report.summary.cases, 3, "{console}");
    assert_eq!(report.summary.errors, 3, "{console}");
    assert_eq!(report.summary.failed, 0, "{console}");
    assert!(report.divergences.is_empty(), "{console}");
    assert_eq!(report.exit_code(), exit::TRANSPORT, "{console}");
}

#[tokio::test]
async fn run_against_a_502_gateway_is_in_error() {
    let server = answering(html_502()).await;
    let report = run(endpoint(&server), NO_FIXTURES, PATIENT).await;
    assert_transport_trouble(&report, TransportErrorKind::Gateway);
}

#[tokio::test]
async fn run_against_truncated_xml_is_in_error() {
    let server = answering(truncated_xml()).await;
    let report = run(endpoint(&server), NO_FIXTURES, PATIENT).await;
    assert_transport_trouble(&report, TransportErrorKind::MalformedXml);
}

#[tokio::test]
async fn run_against_a_slow_target_is_in_error() {
    let server = answering(slow()).await;
    let report = run(endpoint(&server), NO_FIXTURES, IMPATIENT).await;
    assert_transport_trouble(&report, TransportErrorKind::Timeout);
}

#[tokio::test]
async fn run_against_a_refused_port_is_in_error() {
    let report = run(refused_endpoint(), NO_FIXTURES, PATIENT).await;
    assert_transport_trouble(&report, TransportErrorKind::Connect);
}

#[tokio::test]
async fn run_against_a_throttling_target_is_in_error() {
    let server = answering(throttling()).await;
    let report = run(endpoint(&server), NO_FIXTURES, PATIENT).await;
    assert_transport_trouble(&report, TransportErrorKind::Throttled);
}

/// A fixture that meets transport trouble stops its case as an error: it is
/// not a `fixture` check failure, and nothing of the case is sent after it.
/// The user may have been created all the same, so the run's sweep tries to
/// delete it (its keys first), once per user.
#[tokio::test]
async fn run_whose_fixtures_meet_a_502_is_in_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(Form::action("CreateUser"))
        .respond_with(html_502())
        .expect(3)
        .named("CreateUser, once per case")
        .mount(&server)
        .await;
    for cleanup in ["ListSSHPublicKeys", "DeleteUser"] {
        Mock::given(method("POST"))
            .and(Form::action(cleanup))
            .respond_with(html_502())
            .expect(3)
            .named("the sweep, once per user")
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .respond_with(html_502())
        .expect(0)
        .named("anything else after a failed fixture")
        .mount(&server)
        .await;
    let report = run(endpoint(&server), "update.ok.deactivate", PATIENT).await;
    assert_transport_trouble(&report, TransportErrorKind::Gateway);
    server.verify().await;
}

// ---------------------------------------------------------------------------
// What goes out: signed, form-encoded
// ---------------------------------------------------------------------------

/// Matches an awsQuery request whose form-encoded body carries each named
/// parameter exactly once, with exactly this (decoded) value.
struct Form(Vec<(String, String)>);

impl Form {
    fn action(action: &str) -> Form {
        Form(vec![("Action".into(), action.into())])
    }

    fn param(mut self, name: &str, value: &str) -> Form {
        self.0.push((name.into(), value.into()));
        self
    }
}

impl Match for Form {
    fn matches(&self, request: &wiremock::Request) -> bool {
        let sent: Vec<(String, String)> =
            form_urlencoded::parse(&request.body).into_owned().collect();
        self.0.iter().all(|(name, value)| {
            let mut values = sent.iter().filter(|(n, _)| n == name).map(|(_, v)| v);
            values.next() == Some(value) && values.next().is_none()
        })
    }
}

pub(crate) fn header<'r>(request: &'r wiremock::Request, name: &str) -> &'r str {
    request
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header in {:?}", request.headers))
}

#[tokio::test]
async fn requests_are_signed_and_form_encoded() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(
            Form::action("UpdateSSHPublicKey")
                .param("Version", "2010-05-08")
                .param("UserName", "alice smith")
                .param("SSHPublicKeyId", KEY_ID)
                .param("Status", "Inactive"),
        )
        .respond_with(update_ok())
        .expect(1)
        .mount(&server)
        .await;
    let response = send(endpoint(&server), PATIENT)
        .await
        .expect("the mock answers");
    assert_eq!(response.status, 200);
    server.verify().await;

    let requests = server.received_requests().await.expect("recording is on");
    let [request] = &requests[..] else {
        panic!("expected one request, got {}", requests.len());
    };
    assert_eq!(
        header(request, "content-type"),
        "application/x-www-form-urlencoded; charset=utf-8"
    );
    let authorization = header(request, "authorization");
    assert!(
        authorization.starts_with("AWS4-HMAC-SHA256 Credential="),
        "{authorization}"
    );
    assert!(
        authorization.contains("/us-east-1/iam/aws4_request"),
        "{authorization}"
    );
    let signed = authorization
        .split(", ")
        .find_map(|part| part.strip_prefix("SignedHeaders="))
        .unwrap_or_else(|| panic!("no SignedHeaders in {authorization}"));
    for name in ["content-type", "host", "x-amz-date"] {
        assert!(
            signed.split(';').any(|h| h == name),
            "{name} unsigned: {signed}"
        );
    }
    let date = header(request, "x-amz-date");
    assert!(
        regex::Regex::new(r"^\d{8}T\d{6}Z$")
            .expect("a valid regex")
            .is_match(date),
        "{date}"
    );
}

/// The form matcher compares whole decoded values: `alice` is not `alice smith`.
#[tokio::test]
async fn form_matcher_compares_whole_decoded_values() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(Form::action("UpdateSSHPublicKey").param("UserName", "alice"))
        .respond_with(update_ok())
        .expect(0)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(Form::action("UpdateSSHPublicKey").param("UserName", "alice smith"))
        .respond_with(update_ok())
        .expect(1)
        .mount(&server)
        .await;
    send(endpoint(&server), PATIENT)
        .await
        .expect("the mock answers");
    server.verify().await;
}

// ---------------------------------------------------------------------------
// Secrets stay secret
// ---------------------------------------------------------------------------

/// The `Signature=` of every request a server received.
async fn signatures(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .expect("recording is on")
        .iter()
        .filter_map(|r| {
            let authorization = header(r, "authorization");
            let (_, signature) = authorization.split_once("Signature=")?;
            Some(signature.to_string())
        })
        .collect()
}

/// Neither a transport error (Display or Debug) nor a report (JSON or console)
/// shows the secret key, nor the signature of any request sent.
#[tokio::test]
async fn transport_errors_and_reports_never_show_secrets() {
    let mut servers = Vec::new();
    let mut errors = Vec::new();
    for (template, timeout) in [
        (html_502(), PATIENT),
        (truncated_xml(), PATIENT),
        (throttling(), PATIENT),
        (slow(), IMPATIENT),
    ] {
        let server = answering(template).await;
        errors.push(send(endpoint(&server), timeout).await);
        servers.push(server);
    }
    errors.push(send(refused_endpoint(), PATIENT).await);
    errors.push(send(cut_body().await, PATIENT).await);

    let mut shown = Vec::new();
    for result in errors {
        let e = result.expect_err("every fault is transport trouble");
        shown.push(format!("{e}"));
        shown.push(format!("{e:?}"));
    }
    for server in &servers[..3] {
        let report = run(endpoint(server), NO_FIXTURES, PATIENT).await;
        assert_eq!(report.exit_code(), exit::TRANSPORT);
        shown.push(serde_json::to_string(&report).expect("a report serializes"));
        shown.push(report.render_console());
    }

    let dummy = Credentials::dummy();
    let mut secrets: Vec<String> = dummy.secrets().iter().map(|s| s.to_string()).collect();
    assert!(!secrets.is_empty());
    for server in &servers {
        secrets.extend(signatures(server).await);
    }
    // The secret key, three direct requests answered at once (the slow one
    // may not be recorded yet) and three runs of three cases.
    assert!(
        secrets.len() >= 1 + 3 + 9,
        "too few signatures: {secrets:?}"
    );
    for text in &shown {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{secret:?} shown in {text}"
            );
        }
    }
}
