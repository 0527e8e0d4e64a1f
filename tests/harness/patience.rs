//! Politeness and patience: retries with backoff only after throttling and
//! 5xx answers, never after a semantic error; a request rate; a request cap
//! that cleanup is exempt from. wiremock scripts the answers of one request;
//! tests/harness/faults.rs injects the same faults into whole runs.

use std::time::{Duration, Instant};

use iam_conformance::wire::{Client, Policy, Request, TransportErrorKind};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::transport::{PATIENT, answering, endpoint, target, update_ok, xml};

fn error(status: u16, code: &str) -> ResponseTemplate {
    xml(
        status,
        format!(
            "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error>\
             <Type>Sender</Type><Code>{code}</Code><Message>m</Message></Error>\
             <RequestId>4c1a7e8e-0f4b-4c5e-9a7c-3f0d9c1b0000</RequestId></ErrorResponse>"
        ),
    )
}

/// Quick retries: the tests count them, they need not wait for them.
fn patient(retries: u32) -> Policy {
    Policy {
        retries,
        backoff: Duration::from_millis(2),
        max_backoff: Duration::from_millis(10),
        ..Policy::default()
    }
}

fn request() -> Request {
    Request::new(iam_conformance::spec::Operation::GetUser).with("UserName", "alice")
}

/// A server answering `first` `n` times, then 200.
async fn failing_first(first: ResponseTemplate, n: u64) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(first)
        .up_to_n_times(n)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(update_ok())
        .mount(&server)
        .await;
    server
}

async fn client_of(server: &MockServer, policy: Policy) -> Client {
    Client::new(target(endpoint(server)), PATIENT)
        .expect("a client")
        .with_policy(policy)
}

#[tokio::test]
async fn throttling_and_5xx_answers_are_retried_until_one_passes() {
    for (first, throttled, server_errors) in [
        (error(400, "Throttling"), 2, 0),
        (error(400, "RequestLimitExceeded"), 2, 0),
        (error(503, "ServiceUnavailable"), 0, 2),
        (ResponseTemplate::new(429), 2, 0),
        (error(500, "ServiceFailure"), 0, 2),
        (ResponseTemplate::new(502), 0, 2),
        (ResponseTemplate::new(504), 0, 2),
    ] {
        let server = failing_first(first, 2).await;
        let client = client_of(&server, patient(3)).await;
        let answer = client.send(&request()).await.expect("the third try passes");
        assert_eq!(answer.status, 200);
        let traffic = client.traffic();
        assert_eq!(traffic.requests, 3, "{traffic:?}");
        assert_eq!(traffic.retries, 2, "{traffic:?}");
        assert_eq!(traffic.throttled, throttled, "{traffic:?}");
        assert_eq!(traffic.server_errors, server_errors, "{traffic:?}");
    }
}

#[tokio::test]
async fn semantic_errors_and_501_are_never_retried() {
    for answer in [
        error(400, "ValidationError"),
        error(404, "NoSuchEntity"),
        error(409, "LimitExceeded"),
        error(403, "InvalidClientTokenId"),
        error(501, "NotImplemented"),
    ] {
        let server = failing_first(answer, 10).await;
        let client = client_of(&server, patient(5)).await;
        let got = client.send(&request()).await.expect("a judged answer");
        assert_ne!(got.status, 200);
        assert_eq!(client.traffic().requests, 1, "{:?}", client.traffic());
        assert_eq!(client.traffic().retries, 0);
    }
}

#[tokio::test]
async fn retries_that_run_out_end_in_transport_trouble() {
    let server = failing_first(error(400, "Throttling"), 100).await;
    let client = client_of(&server, patient(4)).await;
    let e = client.send(&request()).await.expect_err("always throttled");
    assert_eq!(e.kind, TransportErrorKind::Throttled);
    assert_eq!(client.traffic().requests, 5);
    assert_eq!(client.traffic().retries, 4);
    // A 500 that outlasts its retries is the target's answer, judged as such.
    let server = failing_first(error(500, "ServiceFailure"), 100).await;
    let failing = client_of(&server, patient(2)).await;
    assert_eq!(failing.send(&request()).await.expect("judged").status, 500);
    assert_eq!(failing.traffic().requests, 3);
}

/// Requests leave at most `rate` a second, however many are in flight: ten
/// at 50 a second span at least nine intervals of 20 ms.
#[tokio::test]
async fn the_rate_limit_spaces_requests_out() {
    let server = answering(update_ok()).await;
    let client = client_of(
        &server,
        Policy {
            rate: Some(50.0),
            ..Policy::default()
        },
    )
    .await;
    let start = Instant::now();
    let request = request();
    let sends = (0..10).map(|_| client.send(&request));
    for answer in futures_util::future::join_all(sends).await {
        assert_eq!(answer.expect("200").status, 200);
    }
    assert!(
        start.elapsed() >= Duration::from_millis(180),
        "10 requests at 50/s took {:?}",
        start.elapsed()
    );
}

/// The cap counts every request sent, retries included; once reached,
/// nothing more goes out but cleanup.
#[tokio::test]
async fn the_request_cap_stops_sending_but_not_cleanup() {
    let server = failing_first(error(400, "Throttling"), 1).await;
    let client = client_of(
        &server,
        Policy {
            max_requests: Some(3),
            ..patient(3)
        },
    )
    .await;
    assert_eq!(client.send(&request()).await.expect("retried").status, 200);
    assert_eq!(client.send(&request()).await.expect("sent").status, 200);
    let e = client.send(&request()).await.expect_err("capped");
    assert_eq!(e.kind, TransportErrorKind::Capped);
    assert_eq!(server.received_requests().await.map(|r| r.len()), Some(3));
    assert_eq!(
        client.send_cleanup(&request()).await.expect("sent").status,
        200
    );
    assert_eq!(server.received_requests().await.map(|r| r.len()), Some(4));
}
