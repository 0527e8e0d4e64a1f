//! The command line as a user meets it: the real binary, its exit codes and
//! what it prints. Exit codes are public API (design.md, "CLI contract"), so
//! each one is pinned here by a run that must produce it, and every usage error
//! must end in exit 2 with a message on stderr, never in a panic.
//!
//! Every run is hermetic: the AWS endpoint, credential, profile and region
//! variables are removed and the shared files point nowhere, so a developer's
//! shell cannot point a test at a real target or sign with a real key.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use iam_conformance::runner::cases_of;
use iam_conformance::suite;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_iam-conformance");

/// The binary with a clean environment: no endpoint, no credentials, no
/// profile, no region, and ledgers kept under the temp dir rather than the
/// user's state directory.
pub(crate) fn command(args: &[&str]) -> Command {
    let nowhere = std::env::temp_dir().join("iam-conformance-no-such-dir");
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for variable in [
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_IAM",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ] {
        cmd.env_remove(variable);
    }
    cmd.env("AWS_SHARED_CREDENTIALS_FILE", nowhere.join("credentials"))
        .env("AWS_CONFIG_FILE", nowhere.join("config"))
        .env(
            "XDG_STATE_HOME",
            std::env::temp_dir().join("iam-conformance-test-state"),
        );
    cmd
}

/// What one run of the binary came to.
pub(crate) struct Ran {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    took: Duration,
}

impl Ran {
    /// Both streams, for assertion messages.
    pub(crate) fn dump(&self) -> String {
        format!(
            "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

pub(crate) fn run(args: &[&str]) -> Ran {
    output(command(args))
}

/// Runs a command to its end.
pub(crate) fn output(mut command: Command) -> Ran {
    let start = Instant::now();
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("the binary starts");
    Ran {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        took: start.elapsed(),
    }
}

/// A fresh directory of this test's own under the system temp dir.
pub(crate) fn scratch(test: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("iam-conformance-cli-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch dir");
    dir
}

/// The simplest case of a class saved as a regression file in `dir`, for `replay`.
pub(crate) fn saved_case(dir: &Path, class: &str) -> PathBuf {
    let class = suite::class(class).expect("a class");
    let saved = iam_conformance::Regression {
        found_on: "a test".into(),
        class: class.id.to_string(),
        check: "shape.state".into(),
        expected: String::new(),
        actual: String::new(),
        case: iam_conformance::runner::minimal_case(class, 1),
        exchange: iam_conformance::runner::Exchange::default(),
    };
    let file = dir.join(format!("{}.json", class.id));
    std::fs::write(&file, serde_json::to_string_pretty(&saved).expect("JSON")).expect("written");
    file
}

fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}\n{text}", path.display()))
}

/// Exit 2, something said on stderr, and no panic.
fn assert_usage_error(args: &[&str], mentions: &str) -> Ran {
    assert_usage(command(args), mentions)
}

/// [`assert_usage_error`] for a command with an environment of its own.
pub(crate) fn assert_usage(command: Command, mentions: &str) -> Ran {
    let args: Vec<_> = command.get_args().map(|a| a.to_os_string()).collect();
    let ran = output(command);
    assert_eq!(
        ran.code,
        Some(2),
        "{args:?} must be a usage error\n{}",
        ran.dump()
    );
    assert!(
        !ran.stderr.contains("panicked"),
        "{args:?} panicked\n{}",
        ran.dump()
    );
    assert!(
        ran.stderr.contains("error"),
        "{args:?} must say what is wrong on stderr\n{}",
        ran.dump()
    );
    assert!(
        ran.stderr.contains(mentions),
        "{args:?}: stderr must mention {mentions:?}\n{}",
        ran.dump()
    );
    ran
}

/// A loopback port nothing listens on (bound, read, released).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("a bound address").port()
}

#[test]
fn list_shows_the_update_classes_with_operation_level_and_provenance() {
    let ran = run(&["list"]);
    assert_eq!(ran.code, Some(0), "{}", ran.dump());
    let provenance = ["live", "doc", "model", "inferred"];
    let updates: Vec<&str> = ran
        .stdout
        .lines()
        .filter(|l| l.starts_with("update."))
        .collect();
    assert!(
        updates.len() >= 25,
        "expected at least 25 update. classes, got {}\n{}",
        updates.len(),
        ran.stdout
    );
    for line in updates {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert!(fields.len() >= 4, "too few columns: {line:?}");
        assert_eq!(fields[1], "UpdateSSHPublicKey", "operation in {line:?}");
        assert!(
            ["codes", "shape", "messages"].contains(&fields[2]),
            "level in {line:?}"
        );
        let pair = fields[3].split_once('/');
        assert!(
            pair.is_some_and(
                |(codes, message)| provenance.contains(&codes) && provenance.contains(&message)
            ),
            "provenance pair like live/live in {line:?}"
        );
    }
}

#[test]
fn run_against_the_embedded_server_exits_0_and_writes_json() {
    let dir = scratch("embedded_json");
    let json = dir.join("report.json");
    let ran = run(&[
        "run",
        "--cases",
        "3",
        "--seed",
        "5",
        "--only",
        "update.key_id.*",
        "--json",
        json.to_str().expect("a UTF-8 temp path"),
    ]);
    assert_eq!(ran.code, Some(0), "{}", ran.dump());
    let report = read_json(&json);
    assert_eq!(report["seed"], 5, "{report:#}");
    assert_eq!(report["target"]["kind"], "embedded", "{report:#}");
    let classes = report["classes"].as_array().expect("classes is an array");
    assert!(!classes.is_empty(), "{report:#}");
    assert!(
        classes.iter().all(|c| c["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("update.key_id."))
            && c["cases"] == 3),
        "only update.key_id.* classes, 3 cases each: {report:#}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_unknown_flag_is_a_usage_error() {
    assert_usage_error(&["run", "--no-such-flag"], "--no-such-flag");
}

#[test]
fn an_unknown_level_is_a_usage_error() {
    assert_usage_error(&["run", "--level", "bogus"], "--level");
}

#[test]
fn zero_jobs_is_a_usage_error() {
    assert_usage_error(&["run", "--jobs", "0"], "--jobs");
}

#[test]
fn an_endpoint_that_is_not_a_url_is_a_usage_error() {
    assert_usage_error(&["run", "--endpoint", "not-a-url"], "--endpoint");
}

#[test]
fn an_endpoint_that_is_not_http_is_a_usage_error() {
    assert_usage_error(&["run", "--endpoint", "ftp://x/"], "http");
}

#[test]
fn a_negative_timeout_is_a_usage_error() {
    // `=` keeps clap from reading `-1` as a flag: this reaches the plan's own check.
    assert_usage_error(&["run", "--timeout=-1"], "--timeout");
    assert_usage_error(&["run", "--timeout", "0"], "--timeout");
}

#[test]
fn serve_fault_flags_out_of_range_are_usage_errors() {
    assert_usage_error(&["serve", "--throttle-rate", "1.5"], "--throttle-rate");
    assert_usage_error(&["serve", "--failure-rate=-0.1"], "--failure-rate");
    assert_usage_error(&["serve", "--failure-rate", "NaN"], "--failure-rate");
    assert_usage_error(
        &["serve", "--throttle-rate", "0.6", "--failure-rate", "0.5"],
        "add up to 1 at most",
    );
    assert_usage_error(&["serve", "--consistency-delay=-1"], "--consistency-delay");
    assert_usage_error(&["serve", "--crash-after", "0"], "--crash-after");
    assert_usage_error(&["serve", "--fault-seed", "x"], "--fault-seed");
}

#[test]
fn a_rate_that_is_not_a_non_negative_number_is_a_usage_error() {
    for command in ["run", "record", "replay"] {
        for rate in ["-1", "NaN", "inf", "fast"] {
            assert_usage_error(&[command, "--rate", rate], "--rate");
        }
    }
}

#[test]
fn a_non_positive_deadline_is_a_usage_error() {
    assert_usage_error(&["run", "--deadline", "0"], "--deadline");
    assert_usage_error(&["run", "--deadline", "-1"], "--deadline");
    assert_usage_error(&["run", "--deadline", "inf"], "--deadline");
}

/// Regression guard: `--timeout -1` (with a space, as users type it) is
/// refused, but the message must be about the timeout, not an "unexpected
/// argument '-1'" that leaves the user guessing.
#[test]
fn a_negative_timeout_with_a_space_names_the_timeout() {
    assert_usage_error(&["run", "--timeout", "-1"], "--timeout");
}

#[test]
fn a_missing_baseline_file_is_a_usage_error() {
    assert_usage_error(
        &["run", "--baseline", "/nonexistent.toml"],
        "/nonexistent.toml",
    );
}

#[test]
fn a_baseline_that_is_not_toml_is_a_usage_error() {
    let dir = scratch("bad_baseline");
    let path = dir.join("baseline.toml");
    std::fs::write(&path, "this is [not toml\n").expect("write the baseline");
    assert_usage_error(
        &[
            "run",
            "--baseline",
            path.to_str().expect("a UTF-8 temp path"),
        ],
        "baseline",
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn real_aws_is_refused_without_allow_aws_before_anything_is_sent() {
    let ran = assert_usage_error(
        &[
            "run",
            "--endpoint",
            "https://iam.amazonaws.com/",
            "--cases",
            "1",
            "--only",
            "update.user_name.too_long",
        ],
        "--allow-aws",
    );
    assert!(
        ran.took < Duration::from_secs(5),
        "the guard must refuse at once, took {:?}",
        ran.took
    );
    for transport in [
        "unreachable",
        "timed out",
        "timeout",
        "error sending request",
    ] {
        assert!(
            !ran.stderr.contains(transport),
            "nothing may be sent: stderr mentions {transport:?}\n{}",
            ran.dump()
        );
    }
    assert!(
        !ran.stdout.contains(" checks: "),
        "no case may run\n{}",
        ran.dump()
    );
}

#[test]
fn an_unreachable_endpoint_exits_3_and_fails_nothing() {
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}/");
    let ran = run(&[
        "run",
        "--endpoint",
        &endpoint,
        "--cases",
        "2",
        "--only",
        "update.user_name.too_long",
    ]);
    assert_eq!(ran.code, Some(3), "{}", ran.dump());
    assert!(!ran.stderr.contains("panicked"), "{}", ran.dump());
    let both = format!("{}{}", ran.stdout, ran.stderr);
    assert!(both.contains("error"), "{}", ran.dump());
    assert!(both.contains("unreachable"), "{}", ran.dump());
    let summary = ran
        .stdout
        .lines()
        .find(|l| l.contains(" checks: "))
        .unwrap_or_else(|| panic!("no summary line\n{}", ran.dump()));
    assert!(
        summary.contains(" 0 failed"),
        "transport errors are not failures: {summary:?}"
    );
    assert!(summary.contains("2 in error"), "{summary:?}");
}

#[test]
fn a_glob_that_matches_nothing_exits_4() {
    let ran = run(&["run", "--only", "nomatch*"]);
    assert_eq!(ran.code, Some(4), "{}", ran.dump());
    assert!(!ran.stderr.contains("panicked"), "{}", ran.dump());
}

#[test]
fn zero_cases_exits_4() {
    let ran = run(&["run", "--cases", "0"]);
    assert_eq!(ran.code, Some(4), "{}", ran.dump());
    assert!(!ran.stderr.contains("panicked"), "{}", ran.dump());
}

#[test]
fn the_same_seed_reports_the_same_seed_and_classes() {
    let dir = scratch("same_seed");
    let reports: Vec<Value> = ["a.json", "b.json"]
        .iter()
        .map(|name| {
            let path = dir.join(name);
            let ran = run(&[
                "run",
                "--cases",
                "5",
                "--seed",
                "42",
                "--only",
                "update.user_name.too_long",
                "--json",
                path.to_str().expect("a UTF-8 temp path"),
            ]);
            assert_eq!(ran.code, Some(0), "{}", ran.dump());
            read_json(&path)
        })
        .collect();
    assert_eq!(reports[0]["seed"], 42);
    assert_eq!(reports[0]["seed"], reports[1]["seed"]);
    assert_eq!(reports[0]["classes"], reports[1]["classes"]);
    assert_eq!(reports[0]["summary"], reports[1]["summary"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_same_seed_generates_the_same_cases() {
    let class = suite::class("update.user_name.too_long").expect("the class exists");
    let first: Vec<_> = cases_of(class, 42).take(20).collect();
    let again: Vec<_> = cases_of(class, 42).take(20).collect();
    let other: Vec<_> = cases_of(class, 43).take(20).collect();
    assert_eq!(first.len(), 20);
    assert_eq!(first, again, "seed 42 twice must make the same cases");
    assert_ne!(first, other, "seed 43 must make other cases than seed 42");
}

#[test]
fn a_matrix_target_that_is_not_name_equals_url_is_a_usage_error() {
    assert_usage_error(&["matrix"], "--target");
    assert_usage_error(&["matrix", "--target", "http://127.0.0.1:1/"], "NAME=URL");
    assert_usage_error(&["matrix", "--target", "Moto=http://127.0.0.1:1/"], "NAME");
    assert_usage_error(&["matrix", "--target", "m=ftp://x/"], "http");
    assert_usage_error(
        &["matrix", "--target", "m=http://127.0.0.1:1/,nokind"],
        "nokind",
    );
    assert_usage_error(
        &[
            "matrix",
            "--target",
            "m=http://127.0.0.1:1/",
            "--target",
            "m=http://127.0.0.1:2/",
        ],
        "twice",
    );
    assert_usage_error(
        &["matrix", "--target", "aws=https://iam.amazonaws.com/"],
        "--allow-aws",
    );
}

/// Two targets that are both the embedded server (one deviating) make a matrix
/// whose every report is written, the README section included, and whose exit
/// code is the divergent target's; the run's own sinks work the same way.
#[tokio::test(flavor = "multi_thread")]
async fn a_matrix_writes_every_report_and_exits_with_its_worst_target() {
    use iam_conformance::{Deviation, Server, ServerConfig};
    let good = Server::start(0, ServerConfig::default())
        .await
        .expect("a server");
    let bent = Server::start(
        0,
        ServerConfig {
            deviations: vec![Deviation::NotFoundAs400],
            ..ServerConfig::default()
        },
    )
    .await
    .expect("a server");
    let dir = scratch("matrix");
    let path = |name: &str| dir.join(name).to_str().expect("UTF-8").to_string();
    std::fs::create_dir_all(dir.join("baselines")).expect("a baseline dir");
    std::fs::write(
        dir.join("baselines/good.toml"),
        "target = \"the reference\"\n[[divergence]]\nclass = \"update.key_id.unknown\"\ncheck = \"codes.status\"\nreason = \"stale on purpose\"\n",
    )
    .expect("a baseline");
    std::fs::write(
        dir.join("README.md"),
        "# Title\n<!-- matrix:begin -->\nold\n<!-- matrix:end -->\nafter\n",
    )
    .expect("a readme");
    let args = [
        "matrix".to_string(),
        "--target".into(),
        format!("good={},embedded,1.0", good.url()),
        "--target".into(),
        format!("bent={}", bent.url()),
        "--cases".into(),
        "2".into(),
        "--seed".into(),
        "4".into(),
        "--only".into(),
        "update.key_id.unknown".into(),
        "--baseline-dir".into(),
        path("baselines"),
        "--json".into(),
        path("m.json"),
        "--markdown".into(),
        path("m.md"),
        "--junit".into(),
        path("m.xml"),
        "--regressions".into(),
        path("regressions"),
        "--readme".into(),
        path("README.md"),
    ];
    let ran = tokio::task::spawn_blocking(move || {
        run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .expect("the binary ran");
    assert_eq!(ran.code, Some(1), "{}", ran.dump());
    assert!(
        ran.stderr.contains("no baseline for bent"),
        "{}",
        ran.dump()
    );

    let json = read_json(&dir.join("m.json"));
    let targets = json["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 2, "{json:#}");
    assert_eq!(targets[0]["name"], "good");
    assert_eq!(targets[0]["version"], "1.0");
    assert_eq!(targets[0]["report"]["target"]["kind"], "embedded");
    assert_eq!(targets[1]["report"]["target"]["kind"], "generic");
    assert_eq!(
        targets[0]["report"]["stale_baseline"][0]["reason"], "stale on purpose",
        "{json:#}"
    );
    let divergences = targets[1]["report"]["divergences"]
        .as_array()
        .expect("a list");
    assert!(!divergences.is_empty(), "{json:#}");
    assert!(
        divergences[0]["reproducer"]["case"]["params"].is_array(),
        "{json:#}"
    );

    let md = std::fs::read_to_string(dir.join("m.md")).expect("the markdown");
    assert!(md.contains("| good 1.0 | `embedded` |"), "{md}");
    let readme = std::fs::read_to_string(dir.join("README.md")).expect("the readme");
    assert!(
        readme.starts_with("# Title\n<!-- matrix:begin -->\nGenerated by"),
        "{readme}"
    );
    assert!(readme.ends_with("<!-- matrix:end -->\nafter\n"), "{readme}");
    assert!(!readme.contains("old"), "{readme}");
    let xml = std::fs::read_to_string(dir.join("m.xml")).expect("the junit");
    assert!(xml.contains("<testsuite name=\"bent\""), "{xml}");
    let saved = std::fs::read_dir(dir.join("regressions/bent"))
        .expect("regressions of bent")
        .count();
    assert_eq!(saved, divergences.len());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn run_writes_markdown_and_junit_beside_json() {
    let dir = scratch("run_sinks");
    let path = |name: &str| dir.join(name).to_str().expect("UTF-8").to_string();
    let (md, xml) = (path("r.md"), path("r.xml"));
    let ran = run(&[
        "run",
        "--cases",
        "2",
        "--seed",
        "4",
        "--only",
        "update.key_id.*",
        "--markdown",
        &md,
        "--junit",
        &xml,
    ]);
    assert_eq!(ran.code, Some(0), "{}", ran.dump());
    let md = std::fs::read_to_string(&md).expect("the markdown");
    assert!(md.contains("| embedded | `embedded` |"), "{md}");
    let xml = std::fs::read_to_string(&xml).expect("the junit");
    let cases = xml.matches("<testcase ").count();
    let classes = iam_conformance::select(&["update.key_id.*".into()])
        .expect("a glob")
        .len();
    assert_eq!(cases, classes, "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A saved reproducer of a divergence: the embedded server (as AWS) passes
/// it, a server with the same deviation fails it again, check by check.
#[test]
fn replay_re_runs_a_saved_reproducer_and_shows_each_verdict() {
    use iam_conformance::regression::Regression;
    use iam_conformance::{Deviation, Run, Server, ServerConfig};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = ServerConfig {
        deviations: vec![Deviation::NotFoundAs400],
        ..ServerConfig::default()
    };
    let report = rt
        .block_on(
            Run::embedded_with(config.clone())
                .only(vec!["update.key_id.unknown".into()])
                .cases(3)
                .seed(1)
                .execute(),
        )
        .unwrap();
    let entry = report
        .divergences
        .iter()
        .find(|d| d.divergence.check == "codes.status")
        .expect("the deviation diverges on codes.status");
    let dir = scratch("replay");
    let file = dir.join("saved.json");
    let saved = Regression::from_divergence("a deviating server", entry);
    std::fs::write(&file, serde_json::to_string_pretty(&saved).unwrap()).unwrap();
    let path = file.to_str().unwrap();

    let faithful = run(&["replay", path]);
    assert_eq!(faithful.code, Some(0), "{}", faithful.dump());
    assert!(
        faithful.stdout.contains("pass  codes.status"),
        "{}",
        faithful.dump()
    );
    assert!(
        faithful.stdout.contains("Action=UpdateSSHPublicKey"),
        "{}",
        faithful.dump()
    );

    // The server runs on the runtime's worker threads while this one waits.
    let server = rt.block_on(Server::start(0, config)).unwrap();
    let deviating = run(&["replay", path, "--endpoint", server.url().as_str()]);
    assert_eq!(deviating.code, Some(1), "{}", deviating.dump());
    assert!(
        deviating.stdout.contains("fail  codes.status"),
        "{}",
        deviating.dump()
    );
    assert!(
        deviating.stdout.contains("expected: 404"),
        "{}",
        deviating.dump()
    );

    let broken = dir.join("broken.json");
    std::fs::write(&broken, "{\"class\": 1}").unwrap();
    assert_usage_error(&["replay", broken.to_str().unwrap()], "regression");
    let _ = std::fs::remove_dir_all(dir);
}
