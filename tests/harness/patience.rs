//! Politeness and patience: retries with backoff only after throttling and
//! 5xx answers, never after a semantic error; a request rate; a request cap
//! that cleanup is exempt from; bounded waits for eventual consistency.
//! wiremock scripts the answers of one request; the embedded server's fault
//! injection (tests/harness/faults.rs) storms whole runs.

use std::time::{Duration, Instant};

use iam_conformance::wire::{Client, Policy, Request, TransportErrorKind};
use iam_conformance::{Faults, Report, Run, ServerConfig, Verdict, exit};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::transport::{PATIENT, answering, endpoint, target, update_ok, xml};

/// What [`error`] answers says: no report may repeat it (a refusal's message
/// can name the caller's ARN).
const MESSAGE: &str = "User arn:aws:iam::123456789012:user/bob says no";

fn error(status: u16, code: &str) -> ResponseTemplate {
    xml(
        status,
        format!(
            "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error>\
             <Type>Sender</Type><Code>{code}</Code><Message>{MESSAGE}</Message></Error>\
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

/// A refusal of the caller is not the API's answer: it comes back as
/// transport trouble, with its code and not its message (which may name the
/// caller's ARN), and it is not retried; unless the request was not signed
/// for IAM on purpose.
#[tokio::test]
async fn a_refusal_of_the_caller_is_not_judged_and_never_retried() {
    for code in ["InvalidClientTokenId", "ExpiredToken", "AccessDenied"] {
        let server = failing_first(error(403, code), 10).await;
        let client = client_of(&server, patient(5)).await;
        let e = client.send(&request()).await.expect_err("refused");
        assert_eq!(e.kind, TransportErrorKind::Refused, "{e}");
        assert!(e.to_string().contains(&format!("HTTP 403 {code}")), "{e}");
        assert!(!e.to_string().contains(MESSAGE), "no message: {e}");
        assert_eq!(client.traffic().requests, 1, "{:?}", client.traffic());
        // Unsigned on purpose (the protocol classes), it is the answer to judge.
        let mut unsigned = request();
        unsigned.wire = iam_conformance::wire::Wire::Unsigned;
        let got = client.send(&unsigned).await.expect("a judged answer");
        assert_eq!(got.error_code(), Some(code));
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

/// The whole suite against a server that throttles one request in ten and
/// fails one in twenty (before touching state): every class ends with the
/// same verdict and the same counts as against a faultless server, and the
/// report counts the retries that made it so.
#[tokio::test(flavor = "multi_thread")]
async fn with_throttling_and_500s_injected_the_suite_keeps_its_verdicts() {
    let run = |faults: Faults| async move {
        Run::embedded_with(ServerConfig {
            faults,
            ..ServerConfig::default()
        })
        .cases(4)
        .seed(5)
        // Ten retries: a request fails for good once in 0.15^11 tries.
        .retries(10)
        .execute()
        .await
        .expect("the run starts")
    };
    let calm = run(Faults::default()).await;
    let stormy = run(Faults {
        throttle_rate: 0.1,
        failure_rate: 0.05,
        seed: 9,
        ..Faults::default()
    })
    .await;
    let verdicts = |r: &Report| -> Vec<(&str, Verdict, u32)> {
        r.classes
            .iter()
            .map(|c| (c.id, c.verdict, c.cases))
            .collect()
    };
    assert_eq!(
        verdicts(&stormy),
        verdicts(&calm),
        "{}",
        stormy.render_console()
    );
    assert_eq!(stormy.summary.checks, calm.summary.checks);
    assert_eq!(stormy.summary.passed, calm.summary.passed);
    assert_eq!(stormy.summary.errors, 0, "{}", stormy.render_console());
    assert_eq!(stormy.exit_code(), exit::CONFORMANT);
    let (c, s) = (calm.run.traffic, stormy.run.traffic);
    assert_eq!(c.retries, 0, "{c:?}");
    assert!(s.throttled > 0 && s.server_errors > 0, "{s:?}");
    assert_eq!(s.retries, s.throttled + s.server_errors, "{s:?}");
    assert!(
        stormy
            .render_console()
            .contains(&format!("{} retries", s.retries)),
        "the console reports the retries"
    );
}

/// Against a server whose reads lag its writes by 300 ms, a run that waits
/// for consistency passes as it would without the lag, and reports its
/// waits; a run that trusts reads at once sees a stale state and diverges.
#[tokio::test(flavor = "multi_thread")]
async fn waits_for_consistency_are_bounded_used_and_reported() {
    let run = |wait: Duration| async move {
        Run::embedded_with(ServerConfig {
            faults: Faults {
                consistency_delay: Duration::from_millis(300),
                ..Faults::default()
            },
            ..ServerConfig::default()
        })
        .only(vec!["update.ok.*".into(), "get.ok.*".into()])
        .cases(3)
        .seed(2)
        .jobs(16)
        .consistency_wait(wait)
        .execute()
        .await
        .expect("the run starts")
    };
    let patient = run(Duration::from_secs(5)).await;
    let console = patient.render_console();
    assert_eq!(patient.exit_code(), exit::CONFORMANT, "{console}");
    let waits = patient.run.consistency_waits;
    assert!(waits.count > 0, "{console}");
    assert!(waits.millis >= 250 * waits.count, "{waits:?}");
    assert!(console.contains("waits for consistency"), "{console}");
    let hasty = run(Duration::ZERO).await;
    assert_eq!(
        hasty.exit_code(),
        exit::DIVERGENT,
        "{}",
        hasty.render_console()
    );
    assert_eq!(hasty.run.consistency_waits.count, 0);
}

/// `replay` waits for consistency as a run does: against reads that lag by
/// 300 ms, a saved update replays clean with `--consistency-wait`, and sees
/// the stale state without it; either way its users are gone afterwards.
#[test]
fn replay_waits_for_consistency_and_cleans_up() {
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let server = rt.block_on(crate::faults::faulty(Faults {
        consistency_delay: Duration::from_millis(300),
        ..Faults::default()
    }));
    let dir = crate::cli::scratch("replay-wait");
    let file = crate::cli::saved_case(&dir, "update.ok.deactivate");
    let ledgers = dir.join("ledgers");
    let replay = |wait: &str| {
        crate::cli::run(&[
            "replay",
            file.to_str().expect("UTF-8"),
            "--endpoint",
            server.url().as_str(),
            "--ledger-dir",
            ledgers.to_str().expect("UTF-8"),
            "--consistency-wait",
            wait,
        ])
    };
    let patient = replay("5");
    assert_eq!(patient.code, Some(0), "{}", patient.dump());
    assert!(!patient.stdout.contains("fail"), "{}", patient.dump());
    let hasty = replay("0");
    assert_eq!(hasty.code, Some(1), "{}", hasty.dump());
    assert!(
        hasty.stdout.contains("expected {\"APKA"),
        "a stale read of the key's status\n{}",
        hasty.dump()
    );
    // Reads lag: look once they have caught up.
    std::thread::sleep(Duration::from_millis(400));
    let left = rt.block_on(crate::isolation::harness_users(&crate::faults::client(
        &server,
    )));
    assert!(left.is_empty(), "replay left {left:?}");
    let kept: Vec<_> = std::fs::read_dir(&ledgers)
        .expect("the ledger dir")
        .collect();
    assert!(kept.is_empty(), "a ledger with nothing outstanding goes");
    let _ = std::fs::remove_dir_all(dir);
}

/// A target that refuses the caller stops the run at the first refusal: the
/// cases in flight finish, no case fails, the rest are not run, the run exits
/// 3 and says why, in the console and in the JSON report, without repeating
/// the message (it names the caller's account).
#[test]
fn a_run_the_target_refuses_stops_at_once_and_fails_nothing() {
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let denied = "User: arn:aws:iam::123456789012:user/bob is not authorized";
    let server = rt.block_on(crate::transport::answering(xml(
        403,
        format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>\
             <Message>{denied}</Message></Error><RequestId>r</RequestId></ErrorResponse>"
        ),
    )));
    let dir = crate::cli::scratch("refused");
    let json = dir.join("report.json");
    let ran = crate::cli::run(&[
        "run",
        "--endpoint",
        &server.uri(),
        "--cases",
        "50",
        "--seed",
        "1",
        "--json",
        json.to_str().expect("UTF-8"),
        "--ledger-dir",
        dir.join("ledgers").to_str().expect("UTF-8"),
    ]);
    assert_eq!(ran.code, Some(3), "{}", ran.dump());
    assert!(
        ran.stderr
            .contains("exit 3: the target refused the caller (HTTP 403 AccessDenied"),
        "{}",
        ran.dump()
    );
    assert!(!ran.stdout.contains("123456789012"), "{}", ran.dump());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the report")).expect("JSON");
    let summary = &report["summary"];
    assert_eq!(summary["failed"], 0, "{summary}");
    let (cases, not_run) = (
        summary["cases"].as_u64().expect("cases"),
        summary["not_run"].as_u64().expect("not_run"),
    );
    assert!(cases >= 1 && not_run > 0, "{summary}");
    assert_eq!(cases + not_run, 128 * 50, "{summary}");
    let sent = report["run"]["traffic"]["requests"]
        .as_u64()
        .expect("requests");
    assert!(
        sent <= 8,
        "the cases in flight (--jobs 8) and no more: {sent}"
    );
    // A refused CreateUser created nothing: nothing to sweep, no ledger kept.
    assert_eq!(report["run"]["left_behind"], serde_json::json!([]));
    let ledgers = std::fs::read_dir(dir.join("ledgers")).expect("the ledger dir");
    assert_eq!(ledgers.count(), 0);
    assert!(
        report["run"]["stopped"]
            .as_str()
            .is_some_and(|s| s.contains("AccessDenied")),
        "{}",
        report["run"]
    );
}
