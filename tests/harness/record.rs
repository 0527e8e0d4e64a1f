//! `iam-conformance record`: what it writes, what it refuses to send, and
//! what it refuses to record. Real AWS is never contacted: the recorder is run
//! against the embedded server (whose recordings are not golden, but are made
//! the same way), against mocks, and against AWS's endpoint without the flag
//! or the credentials it needs, where nothing may be sent.

use std::path::Path;
use std::time::Duration;

use iam_conformance::check::Level;
use iam_conformance::record;
use iam_conformance::runner::{SNAPSHOT_SEED, minimal_case, run_case};
use iam_conformance::snapshot::{Golden, GoldenProvenance, Recorded, expected, golden};
use iam_conformance::wire::Client;
use iam_conformance::{Deviation, Server, ServerConfig, catalogue};
use regex::Regex;
use url::Url;
use wiremock::ResponseTemplate;

use crate::cli::{Ran, run, scratch};
use crate::transport::{NAMESPACE, NO_FIXTURES, answering, endpoint, html_502, target, xml};

/// Runs the binary off the async runtime, so the servers of the test keep answering.
async fn run_off_runtime(args: Vec<String>) -> Ran {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args)
    })
    .await
    .expect("the binary ran")
}

fn args(endpoint: &Url, out: &Path, more: &[&str]) -> Vec<String> {
    let mut args = vec![
        "record".to_string(),
        "--endpoint".into(),
        endpoint.to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    args.extend(more.iter().map(|a| a.to_string()));
    args
}

/// Every file under `dir`, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| {
                    let path = e.expect("a directory entry").path();
                    let bytes = std::fs::read(&path).expect("a readable recording");
                    (path.display().to_string(), bytes)
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread")]
async fn recording_the_embedded_server_writes_every_class_as_the_snapshot_trial_sees_it() {
    let server = Server::start(0, ServerConfig::default())
        .await
        .expect("the embedded server starts");
    let dir = scratch("record-embedded");
    let ledgers = scratch("record-embedded-ledgers");
    let ledger_dir = ledgers.display().to_string();
    let ran = run_off_runtime(args(
        &server.url(),
        &dir,
        &["--region", "eu-west-1", "--ledger-dir", &ledger_dir],
    ))
    .await;
    assert_eq!(ran.code, Some(0), "{}", ran.dump());
    // Every user the recordings made is gone, and so is their ledger.
    let client = Client::new(target(server.url()), Duration::from_secs(10)).expect("a client");
    assert!(crate::isolation::harness_users(&client).await.is_empty());
    assert_eq!(
        std::fs::read_dir(&ledgers).expect("the ledger dir").count(),
        0
    );
    assert!(
        ran.stderr.contains("is not AWS") && ran.stderr.contains("not golden"),
        "a recording from elsewhere than AWS must be called not golden\n{}",
        ran.dump()
    );
    let n = catalogue().len();
    assert!(
        ran.stdout.contains(&format!(
            "recorded {n} ({n} new, 0 unchanged: same as before, 0 changed), not recorded 0"
        )),
        "{}",
        ran.dump()
    );

    let today = time::OffsetDateTime::now_utc().date().to_string();
    let account = Regex::new(r"\b\d{12}\b").unwrap();
    let access_key = Regex::new(r"(AKIA|ASIA)[A-Z0-9]{16}").unwrap();
    let client = Client::new(target(server.url()), Duration::from_secs(10)).expect("a client");
    for class in catalogue() {
        let path = record::path(&dir, class.id);
        let text = std::fs::read_to_string(&path).expect("a recording per class");
        let recording: Golden = serde_json::from_str(&text).expect("a recording parses");
        let recorded = recording.recorded.clone().expect("where and when");
        assert_eq!(
            (recorded.date.as_str(), recorded.region.as_str()),
            (today.as_str(), "eu-west-1")
        );
        assert_eq!(
            (recorded.host.as_str(), recorded.seed),
            ("127.0.0.1", SNAPSHOT_SEED)
        );
        assert_eq!(recording.provenance, GoldenProvenance::LIVE, "{}", class.id);
        // The embedded server's account is 123456789012: it must not show.
        assert!(
            !account.is_match(&text),
            "{} carries an account\n{text}",
            class.id
        );
        assert!(
            !access_key.is_match(&text),
            "{} carries a key\n{text}",
            class.id
        );

        // What the snapshot trial computes for the class, and would snapshot
        // if the same answer had come from AWS.
        let case = minimal_case(class, SNAPSHOT_SEED);
        let run = run_case(&client, &case, Level::Messages).await;
        let view = golden(class, &case, run.observed.as_ref().expect("an answer"));
        assert_eq!(
            recording.differences(&view, ["recorded", "trial"]),
            Vec::<String>::new(),
            "{}",
            class.id
        );
        let mut from_aws = recording.clone();
        from_aws.recorded.as_mut().expect("recorded").host = "iam.amazonaws.com".into();
        let snapshot = expected(view, Some(from_aws.clone()));
        assert_eq!(snapshot, Ok(from_aws), "{}", class.id);
    }

    // The same answers again: nothing is rewritten, not even the date.
    let before = files(&dir);
    let again = run_off_runtime(args(
        &server.url(),
        &dir,
        &[
            "--region",
            "eu-west-1",
            "--only",
            "get.ok.*",
            "--only",
            "user.*",
        ],
    ))
    .await;
    assert_eq!(again.code, Some(0), "{}", again.dump());
    assert!(
        again.stdout.contains("0 new, ") && again.stdout.contains(" 0 changed)"),
        "{}",
        again.dump()
    );
    assert_eq!(
        files(&dir),
        before,
        "an unchanged recording is left as it was"
    );

    // Another region is a change: the file is rewritten and says so.
    let moved = run_off_runtime(args(&server.url(), &dir, &["--only", "user.get.ok"])).await;
    assert_eq!(moved.code, Some(0), "{}", moved.dump());
    assert!(
        moved.stdout.contains("changed user.get.ok:")
            && moved
                .stdout
                .contains("recorded from 127.0.0.1 (eu-west-1), now from 127.0.0.1 (us-east-1)"),
        "{}",
        moved.dump()
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn real_aws_is_refused_without_allow_aws_and_without_credentials_before_anything_is_sent() {
    let dir = scratch("record-aws");
    let out = dir.join("recordings");
    let out = out.to_str().expect("a UTF-8 temp path");
    let aws = ["--endpoint", "https://iam.amazonaws.com/"];
    for (given, mentions) in [
        (&aws[..], "--allow-aws"),
        (&[][..], "--allow-aws"), // AWS is the default endpoint
        (
            &["--endpoint", "https://iam.us-gov.amazonaws.com/"][..],
            "--allow-aws",
        ),
        (&[aws[0], aws[1], "--allow-aws"][..], "AWS_ACCESS_KEY_ID"),
    ] {
        let mut args = vec!["record", "--out", out, "--only", NO_FIXTURES];
        args.extend(given);
        let ran = run(&args);
        assert_eq!(ran.code, Some(2), "{args:?}\n{}", ran.dump());
        assert!(
            ran.stderr.contains("error") && ran.stderr.contains(mentions),
            "{args:?} must say why, mentioning {mentions}\n{}",
            ran.dump()
        );
        assert!(
            !ran.stderr.contains("iam-conformance: recording") && !ran.stdout.contains("recorded"),
            "nothing may be sent\n{}",
            ran.dump()
        );
    }
    assert!(!Path::new(out).exists(), "nothing may be written");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_selection_of_no_class_exits_4() {
    let ran = run(&[
        "record",
        "--endpoint",
        "http://127.0.0.1:9/",
        "--only",
        "no.such.class*",
    ]);
    assert_eq!(ran.code, Some(4), "{}", ran.dump());
    assert!(ran.stderr.contains("no.such.class*"), "{}", ran.dump());
}

fn error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    xml(
        status,
        format!(
            "<ErrorResponse xmlns=\"{NAMESPACE}\">\n  <Error>\n    <Type>Sender</Type>\n    \
             <Code>{code}</Code>\n    <Message>{message}</Message>\n  </Error>\n  \
             <RequestId>4c1a7e8e-0f4b-4c5e-9a7c-3f0d9c1b0e2a</RequestId>\n</ErrorResponse>\n"
        ),
    )
}

/// A target that never gives a real answer: each way records nothing, says
/// why, exits 3, and leaves the recording there was as it was.
#[tokio::test(flavor = "multi_thread")]
async fn no_real_answer_records_nothing_and_leaves_the_previous_recording_untouched() {
    let denied = "User: arn:aws:iam::123456789012:user/bob is not authorized to perform: iam:*";
    let cases: [(&str, Option<ResponseTemplate>, &str, &str); 6] = [
        (
            "502",
            Some(html_502()),
            "gateway or unavailable status",
            "gateway or unavailable status",
        ),
        ("refused", None, "target unreachable", "target unreachable"),
        (
            "unsupported",
            Some(error(400, "InvalidAction", "Could not find operation")),
            "unsupported: UpdateSSHPublicKey answered HTTP 400 InvalidAction",
            "unsupported: CreateUser answered HTTP 400 InvalidAction",
        ),
        (
            "bad-token",
            Some(error(
                403,
                "InvalidClientTokenId",
                "The security token is invalid.",
            )),
            "the target refused the caller: HTTP 403 InvalidClientTokenId",
            // The first class refused, the next is not tried.
            "not tried: the target refused the caller: HTTP 403 InvalidClientTokenId",
        ),
        (
            "denied",
            Some(error(403, "AccessDenied", denied)),
            "the target refused the caller: HTTP 403 AccessDenied",
            // The first class refused, the next is not tried.
            "not tried: the target refused the caller: HTTP 403 AccessDenied",
        ),
        (
            "leak",
            Some(error(
                400,
                "ValidationError",
                "Account 123456789012 says no.",
            )),
            "the answer would carry what looks like an account id",
            "refused: expected 200 from CreateUser, got 400 ValidationError",
        ),
    ];
    for (name, answer, why_request, why_fixture) in cases {
        let dir = scratch(&format!("record-{name}"));
        let previous = dir.join(format!("{NO_FIXTURES}.json"));
        std::fs::write(&previous, "the recording of an earlier day\n").expect("write");
        let mock = match answer {
            Some(template) => Some(answering(template).await),
            None => None,
        };
        let url = mock
            .as_ref()
            .map_or_else(crate::transport::refused_endpoint, endpoint);
        let ran = run_off_runtime(args(
            &url,
            &dir,
            &[
                "--only",
                NO_FIXTURES,
                "--only",
                "get.ok.ssh",
                "--timeout",
                "2",
            ],
        ))
        .await;
        assert_eq!(ran.code, Some(3), "{name}\n{}", ran.dump());
        for (class, why) in [(NO_FIXTURES, why_request), ("get.ok.ssh", why_fixture)] {
            assert!(
                ran.stdout.contains(&format!("not recorded {class}: {why}")),
                "{name}: {class} must be reported with its reason ({why})\n{}",
                ran.dump()
            );
        }
        assert!(
            ran.stdout.contains("recorded 0 (") && ran.stdout.contains("not recorded 2"),
            "{name}\n{}",
            ran.dump()
        );
        assert!(
            !ran.stdout.contains("123456789012") && !ran.stderr.contains("123456789012"),
            "{name}: what the target said is not repeated when it carries an account\n{}",
            ran.dump()
        );
        assert_eq!(
            std::fs::read_to_string(&previous).expect("still there"),
            "the recording of an earlier day\n",
            "{name}"
        );
        assert!(!record::path(&dir, "get.ok.ssh").exists(), "{name}");
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A sequence stops at the first step that diverges: its recording holds the
/// steps up to that one and that step's answer, and the snapshot trial's
/// comparison shows both the missing steps and the differing answer.
#[tokio::test]
async fn a_sequence_is_recorded_up_to_the_step_the_target_answers_otherwise() {
    let class = catalogue()
        .iter()
        .find(|c| c.id == "sequence.short")
        .expect("the class");
    let deviating = Server::start(
        0,
        ServerConfig {
            deviations: vec![Deviation::WrongNamespace],
            ..ServerConfig::default()
        },
    )
    .await
    .expect("a deviating server starts");
    let client = Client::new(target(deviating.url()), Duration::from_secs(10)).expect("a client");
    let recorded = Recorded::today(client.target(), SNAPSHOT_SEED);
    let ledger = iam_conformance::Ledger::in_memory(iam_conformance::RunId::new());
    let session = iam_conformance::runner::Session::new(&ledger);
    let mut recording = record::record(&client, &session, class, &recorded)
        .await
        .expect("an answer is recorded");
    assert_eq!(recording.sequence, ["CreateUser"], "{recording:#?}");
    assert!(
        recording.body[0].starts_with("<CreateUserResponse")
            && !recording.body[0].contains(NAMESPACE),
        "{recording:#?}"
    );

    let server = Server::start(0, ServerConfig::default())
        .await
        .expect("the embedded server starts");
    let client = Client::new(target(server.url()), Duration::from_secs(10)).expect("a client");
    let case = minimal_case(class, SNAPSHOT_SEED);
    let run = run_case(&client, &case, Level::Messages).await;
    let view = golden(class, &case, run.observed.as_ref().expect("an answer"));
    assert_eq!(view.sequence, ["CreateUser", "CreateUser"]);
    recording.recorded.as_mut().expect("recorded").host = "iam.amazonaws.com".into();
    let err = expected(view, Some(recording)).expect_err("the oracle disagrees");
    assert!(
        err.contains("sequence line 2:\n  live:   (none)\n  oracle: \"CreateUser\"")
            && err.contains("body line 1:"),
        "{err}"
    );
}
