//! Robustness: hostile answers from a target, the run's deadline, and hostile
//! requests to the embedded server.
//!
//! `transport.rs` pins where each ordinary fault lands; this module adds the
//! ones that try to exhaust the harness (a 100 MiB body, an entity bomb, a body
//! that trickles forever), a reset, invalid UTF-8 and bursts of 5xx, each an
//! `error` with a clear message and never a failure, panic or hang. The run's
//! deadline stops a run that a target holds up. The last test sends arbitrary
//! bytes to the embedded server, which must answer or close, never panic, and
//! still answer a valid request afterwards.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use iam_conformance::keys::corpus_keys;
use iam_conformance::server::{MAX_REQUEST_BYTES, PANIC_BODY};
use iam_conformance::spec::{self, Operation};
use iam_conformance::wire::{MAX_BODY_BYTES, TransportErrorKind};
use iam_conformance::{Run, Server, ServerConfig, Verdict, exit};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use url::Url;

use super::transport::{
    IMPATIENT, NAMESPACE, NO_FIXTURES, PATIENT, STALL, answering, assert_transport_trouble,
    by_hand, endpoint, expect_kind, promising_head, read_request, run, send, send_to, target,
    update_ok, xml,
};

const MIB: usize = 1024 * 1024;
/// What a hostile body claims or streams: far beyond `MAX_BODY_BYTES`.
const HUGE: usize = 100 * MIB;

// ---------------------------------------------------------------------------
// Hostile answers
// ---------------------------------------------------------------------------

/// Serves `head`, then up to `HUGE` bytes of `chunk` repeated, and reports on
/// `written` how many bytes of it went out before the client hung up.
async fn huge_body(head: &'static str, chunk: Vec<u8>) -> (Url, mpsc::UnboundedReceiver<usize>) {
    let (tx, written) = mpsc::unbounded_channel();
    let url = by_hand(move |mut stream| {
        let (tx, chunk) = (tx.clone(), chunk.clone());
        async move {
            let mut sent = 0;
            if stream.write_all(head.as_bytes()).await.is_ok() {
                while sent < HUGE && stream.write_all(&chunk).await.is_ok() {
                    sent += chunk.len();
                }
            }
            let _ = tx.send(sent);
        }
    })
    .await;
    (url, written)
}

/// How much of the huge body the server wrote; a bound far below `HUGE`
/// proves the client stopped reading (and so cannot have buffered it all).
async fn assert_stopped_early(written: &mut mpsc::UnboundedReceiver<usize>) {
    let sent = tokio::time::timeout(PATIENT, written.recv())
        .await
        .expect("the client hangs up")
        .expect("the server reports");
    // The limit, plus what the two sockets' buffers hold on loopback.
    let bound = MAX_BODY_BYTES + 16 * MIB;
    assert!(sent < bound, "the client let {sent} bytes through");
}

#[tokio::test]
async fn a_100_mib_body_announced_by_content_length_is_refused_unread() {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 104857600\r\n\r\n";
    let (url, mut written) = huge_body(head, vec![b' '; 64 * 1024]).await;
    let e = expect_kind(send(url, PATIENT).await, TransportErrorKind::TooLarge);
    assert!(e.detail.contains("Content-Length 104857600"), "{e}");
    assert_stopped_early(&mut written).await;
}

#[tokio::test]
async fn a_100_mib_chunked_body_is_cut_at_the_limit() {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut chunk = b"10000\r\n".to_vec();
    chunk.resize(chunk.len() + 0x10000, b' ');
    chunk.extend_from_slice(b"\r\n");
    let (url, mut written) = huge_body(head, chunk).await;
    let e = expect_kind(send(url, PATIENT).await, TransportErrorKind::TooLarge);
    assert!(e.detail.contains(&MAX_BODY_BYTES.to_string()), "{e}");
    assert_stopped_early(&mut written).await;
}

/// Headers and part of the body, a pause for the client to read them, then a
/// TCP reset (SO_LINGER 0) instead of the rest.
async fn reset_mid_body() -> Url {
    by_hand(|mut stream| async move {
        let _ = stream.write_all(promising_head().as_bytes()).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = stream.set_zero_linger();
    })
    .await
}

#[tokio::test]
async fn a_connection_reset_mid_body_is_a_body_error() {
    let e = expect_kind(
        send(reset_mid_body().await, PATIENT).await,
        TransportErrorKind::Body,
    );
    assert!(e.detail.contains("reset"), "{e}");
}

/// A chunked body of one byte every 20 ms, forever: never idle, never done.
async fn trickling_body() -> Url {
    by_hand(|mut stream| async move {
        let head =
            "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n";
        let _ = stream.write_all(head.as_bytes()).await;
        while stream.write_all(b"1\r\n \r\n").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// The per-request timeout bounds the whole exchange, not each read.
#[tokio::test]
async fn a_body_that_trickles_forever_times_out() {
    expect_kind(
        send(trickling_body().await, IMPATIENT).await,
        TransportErrorKind::Timeout,
    );
}

/// A good answer that is slow, but within the timeout, is judged.
#[tokio::test]
async fn a_slow_answer_within_the_timeout_is_judged() {
    let template = update_ok().set_delay(Duration::from_millis(200));
    let response = send_to(template, PATIENT)
        .await
        .expect("a judgeable answer");
    assert_eq!(response.status, 200);
}

fn invalid_utf8() -> Vec<u8> {
    let mut body = format!("<UpdateSSHPublicKeyResponse xmlns=\"{NAMESPACE}\">").into_bytes();
    body.extend_from_slice(b"\xff\xfe\xc3");
    body.extend_from_slice(b"</UpdateSSHPublicKeyResponse>");
    body
}

#[tokio::test]
async fn invalid_utf8_is_not_xml() {
    let e = expect_kind(
        send_to(xml(200, invalid_utf8()), PATIENT).await,
        TransportErrorKind::NotXml,
    );
    assert!(e.detail.contains("invalid UTF-8"), "{e}");
}

/// Billion laughs: ten levels of ten references, 10^10 `lol`s if expanded.
fn entity_bomb() -> String {
    let mut doc =
        String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol0 \"lol\">\n");
    for level in 1..10 {
        let refs = format!("&lol{};", level - 1).repeat(10);
        doc.push_str(&format!("<!ENTITY lol{level} \"{refs}\">\n"));
    }
    doc.push_str("]>\n<UpdateSSHPublicKeyResponse>&lol9;</UpdateSSHPublicKeyResponse>\n");
    doc
}

/// Entity bombs, external entities and undeclared entities are all refused.
#[tokio::test]
async fn entity_bombs_and_external_entities_are_refused() {
    let external = "<!DOCTYPE a [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><a>&x;</a>";
    for (body, says) in [
        (entity_bomb(), "DOCTYPE"),
        (external.to_string(), "DOCTYPE"),
        ("<a>&lol9;</a>".to_string(), "unknown entity"),
    ] {
        let e = expect_kind(
            send_to(xml(200, body), PATIENT).await,
            TransportErrorKind::MalformedXml,
        );
        assert!(e.detail.contains(says), "{e}");
    }
}

/// Whole runs against each hostile answer: every case in error, none failed.
#[tokio::test]
async fn runs_against_hostile_answers_are_in_error() {
    let bomb = answering(xml(200, entity_bomb())).await;
    let garbled = answering(xml(200, invalid_utf8())).await;
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 104857600\r\n\r\n";
    let (huge, _written) = huge_body(head, vec![b' '; 64 * 1024]).await;
    for (url, timeout, kind) in [
        (endpoint(&bomb), PATIENT, TransportErrorKind::MalformedXml),
        (endpoint(&garbled), PATIENT, TransportErrorKind::NotXml),
        (huge, PATIENT, TransportErrorKind::TooLarge),
        (reset_mid_body().await, PATIENT, TransportErrorKind::Body),
        (
            trickling_body().await,
            IMPATIENT,
            TransportErrorKind::Timeout,
        ),
    ] {
        let report = run(url, NO_FIXTURES, timeout).await;
        assert_transport_trouble(&report, kind);
    }
}

/// Answers the first connections with these statuses (one each, closing it),
/// then forwards every later connection to `upstream` untouched.
async fn bursting(statuses: &'static [u16], upstream: SocketAddr) -> Url {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let url = format!("http://{}/", listener.local_addr().expect("an address"))
        .parse()
        .expect("a URL");
    tokio::spawn(async move {
        let mut burst = statuses.iter();
        while let Ok((mut client, _)) = listener.accept().await {
            let status = burst.next().copied();
            tokio::spawn(async move {
                match status {
                    Some(status) if read_request(&mut client).await.is_ok() => {
                        let answer = format!(
                            "HTTP/1.1 {status} Unavailable\r\nContent-Type: text/html\r\n\
                             Content-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                        let _ = client.write_all(answer.as_bytes()).await;
                    }
                    Some(_) => {}
                    None => {
                        if let Ok(mut server) = TcpStream::connect(upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    }
                }
            });
        }
    });
    url
}

/// Five gateway answers in a row, then a healthy target. Sent once each
/// (`retries(0)`), five cases are in error and the rest pass; with the default
/// three retries the burst costs one case (its four tries all meet it) and the
/// next one passes on its second try. Nothing fails either way, the run exits 3,
/// and the retries are counted.
#[tokio::test]
async fn a_burst_of_5xx_is_transport_trouble_that_retries_shorten() {
    for (retries, errors, retried) in [(0, 5, 0), (3, 1, 4)] {
        let server = Server::start(0, ServerConfig::default())
            .await
            .expect("the embedded server starts");
        let upstream = server.url().socket_addrs(|| None).expect("an address")[0];
        let proxy = bursting(&[502, 503, 504, 503, 502], upstream).await;
        let report = Run::against(target(proxy))
            .cases(10)
            .seed(1)
            .jobs(1)
            .retries(retries)
            .only(vec![NO_FIXTURES.into()])
            .timeout(PATIENT)
            .execute()
            .await
            .expect("the run starts");
        let console = report.render_console();
        assert_eq!(report.summary.cases, 10, "{console}");
        assert_eq!(report.summary.errors, errors, "{console}");
        assert_eq!(report.summary.failed, 0, "{console}");
        assert!(report.summary.passed > 0, "{console}");
        assert_eq!(report.run.traffic.retries, retried, "{console}");
        assert_eq!(report.run.traffic.server_errors, 5, "{console}");
        let note = report.classes[0].note.as_deref().unwrap_or_default();
        assert!(
            note.starts_with("gateway or unavailable status: HTTP 50"),
            "{note}"
        );
        assert_eq!(report.classes[0].verdict, Verdict::Error, "{console}");
        assert_eq!(report.exit_code(), exit::TRANSPORT, "{console}");
    }
}

// ---------------------------------------------------------------------------
// The run's deadline
// ---------------------------------------------------------------------------

/// A target that takes 10 s per answer, a 30 s timeout and a 300 ms deadline:
/// the deadline ends the run, the case in flight is dropped, nothing more is
/// sent, and every case is reported as not run.
#[tokio::test]
async fn a_run_past_its_deadline_stops_sending_and_reports_the_rest_not_run() {
    let server = answering(update_ok().set_delay(STALL)).await;
    let report = Run::against(target(endpoint(&server)))
        .cases(3)
        .seed(1)
        .jobs(1)
        .only(vec![NO_FIXTURES.into()])
        .timeout(STALL * 3)
        .deadline(Duration::from_millis(300))
        .execute()
        .await
        .expect("the run starts");
    let console = report.render_console();
    assert_eq!(report.summary.cases, 0, "{console}");
    assert_eq!(report.summary.not_run, 3, "{console}");
    assert_eq!(
        report.summary.failed + report.summary.errors,
        0,
        "{console}"
    );
    assert_eq!(report.classes[0].verdict, Verdict::Error, "{console}");
    assert!(
        console.contains("deadline passed: 3 cases not run"),
        "{console}"
    );
    assert_eq!(report.exit_code(), exit::TRANSPORT, "{console}");
    let json = serde_json::to_value(&report).expect("a report serializes");
    assert_eq!(json["summary"]["not_run"], 3, "{json:#}");
    assert_eq!(json["classes"][0]["not_run"], 3, "{json:#}");
    let sent = server.received_requests().await.expect("recording is on");
    assert!(sent.len() <= 1, "{} requests sent", sent.len());
}

/// A deadline that passes mid-run: what finished is counted, the rest is not
/// run, and the two add up to every case.
#[tokio::test]
async fn a_deadline_mid_run_splits_the_cases_into_run_and_not_run() {
    let report = Run::embedded()
        .cases(100_000)
        .seed(1)
        .only(vec![NO_FIXTURES.into()])
        .deadline(Duration::from_millis(50))
        .execute()
        .await
        .expect("the run starts");
    let console = report.render_console();
    let s = &report.summary;
    assert_eq!(s.cases + s.not_run, 100_000, "{console}");
    assert!(s.not_run > 0, "{console}");
    assert_eq!(s.failed + s.errors, 0, "{console}");
    assert_eq!(report.exit_code(), exit::TRANSPORT, "{console}");
}

/// The command line: `--deadline` against a target that never answers exits 3
/// and says why.
#[tokio::test]
async fn the_cli_deadline_exits_3_and_says_so() {
    let silent = by_hand(|stream| async move {
        tokio::time::sleep(STALL).await;
        drop(stream);
    })
    .await
    .to_string();
    let ran = tokio::task::spawn_blocking(move || {
        super::cli::run(&[
            "run",
            "--endpoint",
            &silent,
            "--only",
            NO_FIXTURES,
            "--cases",
            "3",
            "--jobs",
            "1",
            "--timeout",
            "30",
            "--deadline",
            "0.5",
        ])
    })
    .await
    .expect("the binary ran");
    assert_eq!(ran.code, Some(3), "{}", ran.dump());
    assert!(ran.stdout.contains("3 cases not run"), "{}", ran.dump());
    assert!(
        ran.stderr.contains("exit 3: the run's deadline passed"),
        "{}",
        ran.dump()
    );
}

// ---------------------------------------------------------------------------
// Hostile requests to the embedded server
// ---------------------------------------------------------------------------

/// How long one exchange may take before the server counts as hung.
const HANG: Duration = Duration::from_secs(10);
/// The most of an answer read back (the server's answers are small).
const ANSWER_CAP: u64 = 64 * 1024;

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn text(pattern: &str) -> BoxedStrategy<Vec<u8>> {
    proptest::string::string_regex(pattern)
        .expect("a valid pattern")
        .prop_map(String::into_bytes)
        .boxed()
}

/// A member value: anything, or something close enough to pass validation.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9+=,.@_-]{1,70}",
        "(Active|Inactive|Expired|SSH|PEM|active)",
        "-?[0-9]{1,25}",
        proptest::sample::select(corpus_keys()).prop_map(str::to_string),
    ]
}

/// A Query-protocol form: a real or made-up Action and Version, then members
/// of the real operations with arbitrary values.
fn form() -> impl Strategy<Value = Vec<u8>> {
    let members: Vec<String> = Operation::ALL
        .iter()
        .flat_map(|op| spec::model().operation(*op).members.iter())
        .map(|m| m.name.clone())
        .collect();
    let action = prop_oneof![
        4 => proptest::sample::select(&Operation::ALL[..]).prop_map(|op| op.name().to_string()),
        1 => any::<String>(),
    ];
    let version = prop_oneof![4 => Just(spec::API_VERSION.to_string()), 1 => any::<String>()];
    let params = proptest::collection::vec((proptest::sample::select(members), value()), 0..6);
    (action, version, params).prop_map(|(action, version, params)| {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("Action", &action)
            .append_pair("Version", &version)
            .extend_pairs(params)
            .finish()
            .into_bytes()
    })
}

/// The body's length as announced: the truth, nothing, or anything at all.
#[derive(Clone, Debug)]
enum Length {
    Honest,
    Absent,
    Claimed(Vec<u8>),
}

/// Arbitrary requests, from HTTP-shaped ones with hostile parts to garbage.
fn request() -> impl Strategy<Value = Vec<u8>> {
    let method = prop_oneof![
        4 => Just(b"POST".to_vec()),
        1 => Just(b"GET".to_vec()),
        1 => text("[A-Z]{1,12}"),
        1 => bytes(12),
    ];
    let path = prop_oneof![
        4 => Just(b"/".to_vec()),
        1 => text("/[!-~]{0,60}"),
        1 => form().prop_map(|f| [b"/?".to_vec(), f].concat()),
        1 => bytes(60),
    ];
    let name = prop_oneof![
        text("(Content-Type|Transfer-Encoding|Expect|Connection|Host|Authorization|X-Amz-Date)"),
        text("[A-Za-z-]{1,20}"),
        bytes(20),
    ];
    let header_value = prop_oneof![
        3 => text("[ -~]{0,80}"),
        3 => text("(chunked|100-continue|close|application/x-www-form-urlencoded)"),
        3 => bytes(80),
        1 => Just(vec![b'a'; MIB / 2]),
    ];
    let length = prop_oneof![
        4 => Just(Length::Honest),
        1 => Just(Length::Absent),
        1 => text("(-1|[0-9]{1,25}|0x10|1, 2)").prop_map(Length::Claimed),
    ];
    let body = prop_oneof![
        4 => form(),
        2 => bytes(4096),
        1 => Just(vec![b'a'; MAX_REQUEST_BYTES + 1]),
    ];
    let shaped = (
        method,
        path,
        proptest::collection::vec((name, header_value), 0..6),
        length,
        body,
    )
        .prop_map(|(method, path, headers, length, body)| {
            let mut out = [method, b" ".to_vec(), path, b" HTTP/1.1\r\n".to_vec()].concat();
            for (name, value) in headers {
                out.extend([name, b": ".to_vec(), value, b"\r\n".to_vec()].concat());
            }
            match length {
                Length::Honest => {
                    out.extend(format!("Content-Length: {}\r\n", body.len()).into_bytes())
                }
                Length::Absent => {}
                Length::Claimed(claim) => {
                    out.extend([b"Content-Length: ".to_vec(), claim, b"\r\n".to_vec()].concat())
                }
            }
            out.extend(b"\r\n");
            out.extend(body);
            out
        });
    prop_oneof![4 => shaped, 1 => bytes(4096)]
}

/// Sends `request`, closes the sending side, and reads what comes back. Errors
/// while sending or reading are the server's right (it may refuse early and
/// reset); only silence past `HANG` is a failure.
fn exchange(addr: SocketAddr, request: &[u8]) -> Result<Vec<u8>, TestCaseError> {
    let mut stream = std::net::TcpStream::connect(addr)
        .map_err(|e| TestCaseError::fail(format!("the server refuses connections: {e}")))?;
    for set in [
        std::net::TcpStream::set_read_timeout,
        std::net::TcpStream::set_write_timeout,
    ] {
        set(&stream, Some(HANG)).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    let hung = |e: &std::io::Error| {
        matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )
    };
    if let Err(e) = stream.write_all(request)
        && hung(&e)
    {
        return Err(TestCaseError::fail(
            "the server stopped reading but kept the connection",
        ));
    }
    let _ = stream.shutdown(Shutdown::Write);
    let mut answer = Vec::new();
    match (&mut stream).take(ANSWER_CAP).read_to_end(&mut answer) {
        Err(e) if hung(&e) => Err(TestCaseError::fail(format!(
            "no answer and no close within {HANG:?}"
        ))),
        _ => Ok(answer),
    }
}

/// A request that must always get the same answer, whatever state the
/// arbitrary ones left: an unknown Action is refused by the oracle.
fn probe(addr: SocketAddr) -> Result<(), TestCaseError> {
    let body = "Action=RobustnessProbe&Version=2010-05-08";
    let request = format!(
        "POST / HTTP/1.1\r\nHost: probe\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=AKIDPROBE/20260101/us-east-1/iam/aws4_request, \
         SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let answer = String::from_utf8_lossy(&exchange(addr, request.as_bytes())?).into_owned();
    prop_assert!(
        answer.starts_with("HTTP/1.1 400 ") && answer.contains("<Code>InvalidAction</Code>"),
        "the server no longer answers a valid request: {answer:?}"
    );
    Ok(())
}

/// Arbitrary bytes to the embedded server: every answer is HTTP and none is a
/// panic, and a valid request afterwards is answered. The case count is
/// proptest's (`PROPTEST_CASES`, default 256); each case is two requests. The
/// README's long run sets it to 500000.
#[test]
fn the_embedded_server_survives_arbitrary_requests() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let server = runtime
        .block_on(Server::start(0, ServerConfig::default()))
        .expect("the embedded server starts");
    let addr = server.url().socket_addrs(|| None).expect("an address")[0];
    let answered = AtomicUsize::new(0);
    let config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new(config)
        .run(&request(), |request| {
            let answer = exchange(addr, &request)?;
            if !answer.is_empty() {
                answered.fetch_add(1, Ordering::Relaxed);
                prop_assert!(
                    answer.starts_with(b"HTTP/1.1 "),
                    "not an HTTP answer: {:?}",
                    String::from_utf8_lossy(&answer)
                );
            }
            let text = String::from_utf8_lossy(&answer);
            prop_assert!(!text.contains(PANIC_BODY), "the server panicked: {text}");
            probe(addr)
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(answered.load(Ordering::Relaxed) > 0, "nothing was answered");
}
