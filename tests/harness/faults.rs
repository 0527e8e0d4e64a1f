//! The embedded server's [`Faults`], which the tests of retries, waits and
//! cleanup stand on: each fault must come at its rate, look on the wire as
//! IAM's does, and leave the state as it was; stale reads must stay stale
//! exactly as long as the delay; a crash must leave nothing answering.
//! `Client::new` sends every request once, so what a test sees is what the
//! server did.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use iam_conformance::server::FaultCounts;
use iam_conformance::spec::Operation;
use iam_conformance::wire::{Client, Request, Response, TransportError, TransportErrorKind};
use iam_conformance::{Faults, Server, ServerConfig, xml};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cli::command;
use crate::transport::{NAMESPACE, PATIENT, target};

/// The embedded server with these faults injected.
pub(crate) async fn faulty(faults: Faults) -> Server {
    Server::start(
        0,
        ServerConfig {
            faults,
            ..ServerConfig::default()
        },
    )
    .await
    .expect("the embedded server starts")
}

/// A patient client of a server started here.
pub(crate) fn client(server: &Server) -> Client {
    Client::new(target(server.url()), PATIENT).expect("a client")
}

fn create(name: &str) -> Request {
    Request::new(Operation::CreateUser)
        .with("UserName", name)
        .with("Path", "/iam-conformance/faults/")
}

fn get(name: &str) -> Request {
    Request::new(Operation::GetUser).with("UserName", name)
}

/// The status of a judged answer, or the kind of transport trouble.
fn outcome(sent: &Result<Response, TransportError>) -> Result<u16, TransportErrorKind> {
    sent.as_ref().map(|r| r.status).map_err(|e| e.kind)
}

/// One request by hand (the client would judge the answer): the status line,
/// the `x-amzn-RequestId` header and the parsed body.
async fn raw(server: &Server, form: &str) -> (String, Option<String>, xml::Element) {
    let addr = server.url().socket_addrs(|| None).expect("an address")[0];
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        form.len()
    );
    stream
        .write_all(format!("{head}{form}").as_bytes())
        .await
        .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.lines().next().unwrap_or_default().to_string();
    let request_id = head.lines().find_map(|l| {
        let (name, value) = l.split_once(": ")?;
        name.eq_ignore_ascii_case("x-amzn-requestid")
            .then(|| value.to_string())
    });
    (status, request_id, xml::parse(body).expect("an XML body"))
}

#[tokio::test]
async fn throttling_is_iams_answer_on_the_wire() {
    let server = faulty(Faults {
        throttle_rate: 1.0,
        ..Faults::default()
    })
    .await;
    let (status, request_id, root) = raw(&server, "Action=GetUser&Version=2010-05-08").await;
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    assert_eq!(root.name, "ErrorResponse");
    assert_eq!(root.namespace.as_deref(), Some(NAMESPACE));
    assert_eq!(root.text_at("Error/Type"), Some("Sender"));
    assert_eq!(root.text_at("Error/Code"), Some("Throttling"));
    assert_eq!(root.text_at("Error/Message"), Some("Rate exceeded"));
    let id = root.text_at("RequestId").expect("a RequestId");
    assert_eq!(
        request_id.as_deref(),
        Some(id),
        "the header names the same request"
    );
    // The client tells it apart from non-conformance.
    let sent = client(&server).send(&get("alice")).await;
    assert_eq!(outcome(&sent), Err(TransportErrorKind::Throttled));
}

#[tokio::test]
async fn a_failure_is_a_receiver_service_failure() {
    let server = faulty(Faults {
        failure_rate: 1.0,
        ..Faults::default()
    })
    .await;
    let (status, request_id, root) = raw(&server, "Action=GetUser&Version=2010-05-08").await;
    assert_eq!(status, "HTTP/1.1 500 Internal Server Error");
    assert_eq!(root.namespace.as_deref(), Some(NAMESPACE));
    assert_eq!(root.text_at("Error/Type"), Some("Receiver"));
    assert_eq!(root.text_at("Error/Code"), Some("ServiceFailure"));
    assert!(request_id.is_some());
    // A 500 from the target itself is judged, not transport trouble.
    let sent = client(&server).send(&get("alice")).await.expect("judged");
    assert_eq!(
        (sent.status, sent.error_code()),
        (500, Some("ServiceFailure"))
    );
    assert_eq!(
        server.faults_injected(),
        FaultCounts {
            throttled: 0,
            failed: 2
        }
    );
}

/// Creates `n` users one after another on a server with these faults; the
/// outcome of each, in order.
async fn create_many(faults: Faults, n: usize) -> (Server, Vec<Result<u16, TransportErrorKind>>) {
    let server = faulty(faults).await;
    let client = client(&server);
    let mut outcomes = Vec::new();
    for i in 0..n {
        outcomes.push(outcome(&client.send(&create(&format!("user-{i}"))).await));
    }
    (server, outcomes)
}

#[tokio::test]
async fn faults_come_at_their_rates_and_change_no_state() {
    let faults = Faults {
        throttle_rate: 0.2,
        failure_rate: 0.1,
        seed: 5,
        ..Faults::default()
    };
    let n = 400;
    let (server, outcomes) = create_many(faults, n).await;
    let count = |o: Result<u16, TransportErrorKind>| outcomes.iter().filter(|x| **x == o).count();
    let (created, throttled, failed) = (
        count(Ok(200)),
        count(Err(TransportErrorKind::Throttled)),
        count(Ok(500)),
    );
    assert_eq!(created + throttled + failed, n, "{outcomes:?}");
    // About 80 and 40: far outside these bounds the rates are not honoured.
    assert!(
        (50..=110).contains(&throttled),
        "{throttled} throttled of {n}"
    );
    assert!((20..=60).contains(&failed), "{failed} failed of {n}");
    assert_eq!(
        server.faults_injected(),
        FaultCounts {
            throttled: throttled as u64,
            failed: failed as u64
        }
    );
    // Only the answered creations made users.
    assert_eq!(server.counts(), (created, 0));
    // And a faulted creation can be sent again: the name is still free.
    let client = client(&server);
    let first_faulted = outcomes
        .iter()
        .position(|o| *o != Ok(200))
        .expect("a fault");
    let again = loop {
        let sent = client.send(&create(&format!("user-{first_faulted}"))).await;
        if let Ok(r) = sent
            && r.status != 500
        {
            break r;
        }
    };
    assert_eq!(again.status, 200, "{again:?}");
}

#[tokio::test]
async fn the_same_seed_faults_the_same_requests() {
    let faults = |seed| Faults {
        throttle_rate: 0.3,
        failure_rate: 0.3,
        seed,
        ..Faults::default()
    };
    let (_, first) = create_many(faults(9), 40).await;
    let (_, again) = create_many(faults(9), 40).await;
    let (_, other) = create_many(faults(10), 40).await;
    assert_eq!(first, again);
    assert_ne!(first, other);
}

/// Sends a write that must succeed: when it was sent (before the server
/// applied it) and when its answer came (after).
async fn write(client: &Client, request: &Request) -> (Instant, Instant) {
    let sent = Instant::now();
    let answer = client.send(request).await.expect("an answer");
    assert_eq!(answer.status, 200, "{answer:?}");
    (sent, Instant::now())
}

#[tokio::test]
async fn reads_see_a_write_only_after_the_consistency_delay() {
    let delay = Duration::from_secs(2);
    let server = faulty(Faults {
        consistency_delay: delay,
        ..Faults::default()
    })
    .await;
    let client = client(&server);
    let (sent, answered) = write(&client, &create("alice")).await;
    let stale = client.send(&get("alice")).await.expect("an answer");
    assert_eq!(
        (stale.status, stale.error_code()),
        (404, Some("NoSuchEntity"))
    );
    let listed = client
        .send(&Request::new(Operation::ListUsers))
        .await
        .expect("an answer");
    let users = listed.xml().and_then(|x| x.at("ListUsersResult/Users"));
    assert_eq!(users.map(|u| u.children.len()), Some(0), "{listed:?}");
    // Writes apply at once: the name is taken already.
    let twice = client.send(&create("alice")).await.expect("an answer");
    assert_eq!(twice.error_code(), Some("EntityAlreadyExists"));
    assert_eq!(server.counts(), (1, 0));
    assert!(
        sent.elapsed() < delay,
        "the reads above came too late to prove anything"
    );

    tokio::time::sleep(delay.saturating_sub(answered.elapsed())).await;
    let fresh = client.send(&get("alice")).await.expect("an answer");
    assert_eq!(fresh.status, 200, "{fresh:?}");
    // A deletion is seen as late as a creation.
    let delete = Request::new(Operation::DeleteUser).with("UserName", "alice");
    let (sent, answered) = write(&client, &delete).await;
    let stale = client.send(&get("alice")).await.expect("an answer");
    assert_eq!(stale.status, 200, "{stale:?}");
    assert!(sent.elapsed() < delay);
    tokio::time::sleep(delay.saturating_sub(answered.elapsed())).await;
    let gone = client.send(&get("alice")).await.expect("an answer");
    assert_eq!(gone.error_code(), Some("NoSuchEntity"));
}

fn connection_trouble(sent: &Result<Response, TransportError>) -> bool {
    matches!(
        outcome(sent),
        Err(TransportErrorKind::Connect | TransportErrorKind::Connection)
    )
}

#[tokio::test]
async fn after_its_last_answer_the_server_is_gone() {
    let server = faulty(Faults {
        crash_after: Some(3),
        ..Faults::default()
    })
    .await;
    let addr = server.url().socket_addrs(|| None).expect("an address")[0];
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    let client = client(&server);
    for name in ["a", "b", "c"] {
        let sent = client.send(&create(name)).await;
        assert_eq!(outcome(&sent), Ok(200), "{sent:?}");
    }
    tokio::time::timeout(PATIENT, server.crashed())
        .await
        .expect("the server says it crashed");
    // The connection opened before is dropped, new ones are refused, and a
    // request gets no answer either way.
    let mut buf = [0; 1];
    let read = tokio::time::timeout(PATIENT, idle.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "an open connection survived: {read:?}"
    );
    let refused = TcpStream::connect(addr).await;
    assert!(refused.is_err(), "a new connection was accepted");
    for _ in 0..2 {
        let sent = client.send(&get("a")).await;
        assert!(connection_trouble(&sent), "{sent:?}");
    }
    let fresh = Client::new(target(server.url()), PATIENT).expect("a client");
    let sent = fresh.send(&get("a")).await;
    assert_eq!(outcome(&sent), Err(TransportErrorKind::Connect), "{sent:?}");
}

/// Requests sent all at once to a server that crashes after `last` answers:
/// how many were answered. None waits for another, so each takes a
/// connection of its own.
async fn race_the_crash(last: u64, requests: usize) -> usize {
    let server = faulty(Faults {
        crash_after: Some(last),
        ..Faults::default()
    })
    .await;
    let client = client(&server);
    let sends: Vec<_> = (0..requests)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.send(&create(&format!("user-{i}"))).await })
        })
        .collect();
    let mut answered = 0;
    for send in sends {
        let sent = send.await.expect("the send finishes");
        if sent.is_ok() {
            answered += 1;
        } else {
            assert!(connection_trouble(&sent), "{sent:?}");
        }
    }
    assert_eq!(
        server.counts().0,
        answered,
        "only answered requests change state"
    );
    answered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_in_flight_at_the_crash_get_no_answer() {
    // Requests race the crash on other connections: none past the last may be
    // answered, however they interleave.
    for round in 0..20 {
        assert_eq!(race_the_crash(3, 16).await, 3, "round {round}");
    }
}

#[tokio::test]
async fn serve_crash_after_exits_on_its_own_after_its_last_answer() {
    let mut child = command(&["serve", "--crash-after", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("a line on stdout");
    let url = line
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|u| u.parse().ok())
        .unwrap_or_else(|| panic!("no URL in {line:?}"));
    let client = Client::new(target(url), PATIENT).expect("a client");
    for name in ["a", "b", "c"] {
        let sent = client.send(&create(name)).await;
        assert_eq!(outcome(&sent), Ok(200), "{sent:?}");
    }
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > PATIENT {
            let _ = child.kill();
            panic!("serve --crash-after 3 still runs after its third answer");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("read stderr");
    assert_eq!(status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("crashed"), "{stderr}");
}
