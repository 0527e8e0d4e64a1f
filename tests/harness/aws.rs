//! Safety against real AWS, proven without AWS. Every command pointed at an
//! amazonaws.com endpoint runs with HTTP(S)_PROXY aimed at a local listener
//! that counts connections: without `--allow-aws` it must count none (and the
//! command exit 2); with it, the run prints its plan first and the listener
//! sees the traffic, which proves the proxy would have caught a leak.

use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::cli::{Ran, command, output};

const AWS: &str = "https://iam.amazonaws.com/";

/// A proxy that accepts connections, counts them and closes them.
struct Proxy {
    url: String,
    connections: Arc<AtomicUsize>,
}

impl Proxy {
    fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                count.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        Proxy { url, connections }
    }

    /// The binary with dummy AWS credentials and every proxy variable set.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = command(args);
        cmd.env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", "iam-conformance-test-secret");
        for var in [
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "ALL_PROXY",
        ] {
            cmd.env(var, &self.url);
        }
        cmd.env_remove("NO_PROXY").env_remove("no_proxy");
        cmd
    }

    fn run(&self, args: &[&str]) -> Ran {
        output(self.command(args))
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// The command printed its plan first, saying each of `says`, then met the
/// proxy, which answers nothing: transport trouble, exit 3.
fn assert_planned(ran: &Ran, plan: &str, says: &[&str]) {
    assert_eq!(ran.code, Some(3), "{}", ran.dump());
    assert!(
        ran.stderr.starts_with(plan),
        "the plan comes first\n{}",
        ran.dump()
    );
    for said in says {
        assert!(ran.stderr.contains(said), "{said:?}\n{}", ran.dump());
    }
}

#[test]
fn without_allow_aws_no_command_sends_anything_to_aws() {
    let proxy = Proxy::start();
    let ledgers = crate::cli::scratch("aws-guard");
    let ledgers = ledgers.to_str().expect("UTF-8");
    let recordings = crate::cli::scratch("aws-guard-record").join("recordings");
    let recordings = recordings.to_str().expect("UTF-8");
    let saved = crate::cli::saved_case(
        &crate::cli::scratch("aws-guard-replay"),
        "update.ok.deactivate",
    );
    let saved = saved.to_str().expect("UTF-8");
    for args in [
        vec![
            "run",
            "--endpoint",
            AWS,
            "--cases",
            "1",
            "--ledger-dir",
            ledgers,
        ],
        vec!["matrix", "--target", &format!("aws={AWS}"), "--cases", "1"],
        vec!["clean", "--endpoint", AWS, "--ledger-dir", ledgers],
        vec!["record", "--endpoint", AWS, "--out", recordings],
        // record's default endpoint is AWS's.
        vec!["record", "--out", recordings],
        vec!["replay", saved, "--endpoint", AWS, "--ledger-dir", ledgers],
        // AWS by other names: the root's final dot, another partition.
        vec![
            "run",
            "--endpoint",
            "https://iam.amazonaws.com./",
            "--cases",
            "1",
        ],
        vec![
            "run",
            "--endpoint",
            "https://iam.cn-north-1.amazonaws.com.cn/",
            "--cases",
            "1",
        ],
    ] {
        let ran = proxy.run(&args);
        assert_eq!(ran.code, Some(2), "{args:?}\n{}", ran.dump());
        assert!(ran.stderr.contains("--allow-aws"), "{}", ran.dump());
    }
    // The endpoint may come from the environment too.
    let mut cmd = proxy.command(&["run", "--cases", "1", "--ledger-dir", ledgers]);
    cmd.env("AWS_ENDPOINT_URL_IAM", AWS);
    let ran = output(cmd);
    assert_eq!(ran.code, Some(2), "{}", ran.dump());
    assert_eq!(proxy.connections(), 0, "something was sent");
    assert!(
        !std::path::Path::new(recordings).exists(),
        "nothing was recorded"
    );
}

/// With `--allow-aws`, the plan is printed before anything is sent, and
/// `--max-requests` caps what the cases send (cleanup aside). The proxy
/// refuses every connection, so the case's CreateUser fails as transport
/// trouble (exit 3), and the sweep still tries to delete the user it may
/// have made: the listener sees exactly those three connections.
#[test]
fn with_allow_aws_the_plan_comes_first_and_max_requests_caps_the_run() {
    let proxy = Proxy::start();
    let ledgers = crate::cli::scratch("aws-plan");
    let ran = proxy.run(&[
        "run",
        "--endpoint",
        AWS,
        "--allow-aws",
        "--only",
        "update.ok.deactivate",
        "--cases",
        "1",
        "--seed",
        "1",
        "--max-requests",
        "1",
        "--ledger-dir",
        ledgers.to_str().expect("UTF-8"),
    ]);
    assert_planned(
        &ran,
        "plan: 1 classes, 1 cases; about ",
        &[
            "at most 5 requests/s",
            "capped at 1 by --max-requests",
            "under the IAM path /iam-conformance/",
        ],
    );
    assert_eq!(
        proxy.connections(),
        3,
        "CreateUser, then the sweep's ListSSHPublicKeys and DeleteUser\n{}",
        ran.dump()
    );
    // The user might exist: the ledger keeps it for `clean`.
    let kept = std::fs::read_dir(&ledgers).expect("the ledger dir").count();
    assert_eq!(kept, 1, "{}", ran.dump());
}

/// `--max-requests 0` is a dry run: the plan, and not one connection.
#[test]
fn max_requests_zero_prints_the_plan_and_sends_nothing() {
    let proxy = Proxy::start();
    let ledgers = crate::cli::scratch("aws-dry-run");
    let ran = proxy.run(&[
        "run",
        "--endpoint",
        AWS,
        "--allow-aws",
        "--only",
        "update.*",
        "--cases",
        "2",
        "--max-requests",
        "0",
        "--ledger-dir",
        ledgers.to_str().expect("UTF-8"),
    ]);
    assert_planned(&ran, "plan: 31 classes, 62 cases; about ", &[]);
    assert_eq!(proxy.connections(), 0, "{}", ran.dump());
    assert_eq!(
        std::fs::read_dir(&ledgers).expect("the ledger dir").count(),
        0
    );
}

/// `replay --allow-aws` is as careful as a run: the plan first, and a ledger
/// on disk that keeps the user its refused CreateUser may have made; it
/// signs for the region it is given.
#[test]
fn a_replay_against_aws_prints_its_plan_first_and_keeps_a_ledger() {
    let proxy = Proxy::start();
    let dir = crate::cli::scratch("aws-replay");
    let saved = crate::cli::saved_case(&dir, "update.ok.deactivate");
    let ledgers = dir.join("ledgers");
    let ran = proxy.run(&[
        "replay",
        saved.to_str().expect("UTF-8"),
        "--endpoint",
        AWS,
        "--allow-aws",
        "--region",
        "eu-west-1",
        "--ledger-dir",
        ledgers.to_str().expect("UTF-8"),
    ]);
    assert_planned(
        &ran,
        "plan: 1 classes, 1 cases; about ",
        &["at most 5 requests/s"],
    );
    assert!(ran.stdout.contains("in eu-west-1"), "{}", ran.dump());
    assert_eq!(
        proxy.connections(),
        3,
        "CreateUser, then the sweep's ListSSHPublicKeys and DeleteUser\n{}",
        ran.dump()
    );
    let kept = std::fs::read_dir(&ledgers).expect("the ledger dir").count();
    assert_eq!(kept, 1, "{}", ran.dump());
}

/// The plan's count of requests is what a run with nothing to shrink sends,
/// or a little more, never less: class by class against the embedded server.
#[tokio::test(flavor = "multi_thread")]
async fn the_plan_bounds_the_requests_of_a_conformant_run() {
    let (mut planned, mut sent) = (0, 0);
    for class in iam_conformance::catalogue() {
        let run = iam_conformance::Run::embedded()
            .only(vec![class.id.to_string()])
            .cases(5)
            .seed(3);
        let plan = run.plan().expect("a plan");
        let report = run.execute().await.expect("the run starts");
        assert_eq!(report.exit_code(), 0, "{}", report.render_console());
        let actual = report.run.traffic.requests;
        assert!(
            plan.requests >= actual,
            "{}: planned {} requests, sent {actual}",
            class.id,
            plan.requests
        );
        planned += plan.requests;
        sent += actual;
    }
    assert!(
        planned * 4 <= sent * 5,
        "the plan is within 25 % of the run: planned {planned}, sent {sent}"
    );
}

/// `record` and `replay` take the run's politeness flags: `--max-requests 0`
/// prints the plan (with the cap and the rate given) and sends nothing.
#[test]
fn record_and_replay_take_max_requests_and_rate() {
    let proxy = Proxy::start();
    let dir = crate::cli::scratch("aws-record-cap");
    let saved = crate::cli::saved_case(&dir, "update.ok.deactivate");
    let ledgers = dir.join("ledgers");
    let recordings = dir.join("recordings");
    let common = [
        "--endpoint",
        AWS,
        "--allow-aws",
        "--max-requests",
        "0",
        "--rate",
        "2",
        "--ledger-dir",
        ledgers.to_str().expect("UTF-8"),
    ];
    let record = [
        &["record", "--only", "update.ok.*", "--out"][..],
        &[recordings.to_str().expect("UTF-8")],
        &common,
    ]
    .concat();
    let replay = [&["replay", saved.to_str().expect("UTF-8")][..], &common].concat();
    for (args, plan) in [
        (record, "plan: 4 classes, 4 cases; about "),
        (replay, "plan: 1 classes, 1 cases; about "),
    ] {
        let ran = proxy.run(&args);
        assert_planned(
            &ran,
            plan,
            &["at most 2 requests/s", "capped at 0 by --max-requests"],
        );
    }
    assert_eq!(proxy.connections(), 0);
    assert!(
        std::fs::read_dir(&recordings).map_or(true, |d| d.count() == 0),
        "nothing was recorded"
    );
    assert!(
        std::fs::read_dir(&ledgers).map_or(true, |d| d.count() == 0),
        "nothing is left to clean"
    );
}
