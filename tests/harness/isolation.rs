//! Isolation and cleanup, tested for real against the embedded server: a
//! killed run leaves users that `clean` then removes, exactly those and
//! nothing else; Ctrl-C and a panic clean up before the run ends; a server
//! that crashes mid-run is transport trouble, never non-conformance.

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use iam_conformance::ledger::LedgerFile;
use iam_conformance::spec::Operation;
use iam_conformance::wire::{Client, Request};
use iam_conformance::{Faults, Run};

use crate::cli::{command, scratch};
use crate::faults::{client, faulty};
use crate::transport::target;

/// Every user on the server, as (path, name), read with ListUsers page by page.
async fn users(client: &Client) -> BTreeSet<(String, String)> {
    let mut all = BTreeSet::new();
    let mut marker = None;
    loop {
        let mut list = Request::new(Operation::ListUsers).with("MaxItems", "7");
        if let Some(m) = &marker {
            list = list.with("Marker", m);
        }
        let answer = client.send(&list).await.expect("ListUsers answers");
        let xml = answer.xml().expect("an XML answer");
        let result = xml.at("ListUsersResult").expect("a ListUsersResult");
        for m in &result.at("Users").expect("Users").children {
            all.insert((
                m.text_at("Path").unwrap_or_default().to_string(),
                m.text_at("UserName").unwrap_or_default().to_string(),
            ));
        }
        if result.text_at("IsTruncated") != Some("true") {
            return all;
        }
        marker = result.text_at("Marker").map(str::to_string);
    }
}

/// The users under /iam-conformance/, by name.
pub(crate) async fn harness_users(client: &Client) -> BTreeSet<String> {
    users(client)
        .await
        .into_iter()
        .filter(|(path, _)| path.starts_with("/iam-conformance/"))
        .map(|(_, name)| name)
        .collect()
}

async fn create(client: &Client, name: &str, path: &str) {
    let answer = client
        .send(
            &Request::new(Operation::CreateUser)
                .with("UserName", name)
                .with("Path", path),
        )
        .await
        .expect("CreateUser answers");
    assert_eq!(answer.status, 200, "{answer:?}");
}

/// The CLI running the fixture-heavy classes against `url`, its ledger in `ledgers`.
fn spawn_run(url: &str, ledgers: &Path) -> Child {
    command(&[
        "run",
        "--endpoint",
        url,
        "--only",
        "update.ok.*",
        "--only",
        "list.*",
        "--cases",
        "1000",
        "--jobs",
        "8",
        "--seed",
        "1",
        "--ledger-dir",
        ledgers.to_str().expect("UTF-8"),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("the binary starts")
}

/// Waits until the server holds at least `n` users under /iam-conformance/.
async fn wait_for_users(client: &Client, n: usize) {
    let start = Instant::now();
    while harness_users(client).await.len() < n {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the run created no {n} users"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A run killed halfway (SIGKILL: no cleanup of its own) leaves users under
/// its path, all of them in its ledger. `clean --run-id` removes exactly
/// those; another run's leftovers stay until a `clean` of every run; users
/// that lack either mark (the path, the name prefix) are never touched.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_run_leaves_users_that_clean_removes_exactly() {
    let server = faulty(Faults::default()).await;
    let client = client(&server);
    let url = server.url().to_string();
    let bystanders = [
        ("alice", "/"),
        ("iamc-zzzzzz-1-0", "/"),
        ("bob", "/iam-conformance/abcdef/"),
        ("iamc-abcdef-1-0", "/iam-conformance/abcdef/x/"),
    ];
    for (name, path) in bystanders {
        create(&client, name, path).await;
    }
    create(&client, "iamc-abcdef-2-0", "/iam-conformance/abcdef/").await;

    let dir = scratch("killed");
    let mut child = spawn_run(&url, &dir);
    // The harness's own users beside the bystander under /iam-conformance/abcdef/.
    wait_for_users(&client, 6).await;
    child.kill().expect("kill the run");
    child.wait().expect("the run ends");
    let ledger = LedgerFile::all(&dir).expect("the ledger reads").remove(0);
    let prefix = format!("iamc-{}-", ledger.run_id.as_str());
    let left: BTreeSet<String> = harness_users(&client)
        .await
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(
        !left.is_empty(),
        "the killed run left no user behind; its ledger: {ledger:?}; the server: {:?}",
        users(&client).await
    );
    let noted: BTreeSet<String> = ledger.outstanding.iter().cloned().collect();
    assert!(
        left.is_subset(&noted),
        "users left that the ledger does not list: {:?}",
        left.difference(&noted).collect::<Vec<_>>()
    );

    let clean = |extra: &[&str]| {
        let mut args = vec!["clean", "--endpoint", &url, "--ledger-dir"];
        args.push(dir.to_str().expect("UTF-8"));
        args.extend_from_slice(extra);
        crate::cli::output(command(&args))
    };
    let ran = clean(&["--run-id", ledger.run_id.as_str()]);
    assert_eq!(ran.code, Some(0), "{}", ran.dump());
    let deleted: BTreeSet<String> = ran
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("deleted "))
        .map(str::to_string)
        .collect();
    assert_eq!(deleted, left, "clean must delete exactly what the run left");
    assert!(
        LedgerFile::all(&dir).expect("reads").is_empty(),
        "the ledger goes once nothing it lists is left"
    );
    let mut expected: BTreeSet<(String, String)> = bystanders
        .iter()
        .map(|(n, p)| (p.to_string(), n.to_string()))
        .collect();
    expected.insert(("/iam-conformance/abcdef/".into(), "iamc-abcdef-2-0".into()));
    assert_eq!(
        users(&client).await,
        expected,
        "only the killed run's users went"
    );

    // A clean of every run takes the other run's leftover, and nothing else.
    let ran = clean(&[]);
    assert_eq!(ran.code, Some(0), "{}", ran.dump());
    assert_eq!(
        ran.stdout.trim(),
        "deleted iamc-abcdef-2-0",
        "{}",
        ran.dump()
    );
    expected.remove(&("/iam-conformance/abcdef/".into(), "iamc-abcdef-2-0".into()));
    assert_eq!(users(&client).await, expected);
}

/// Ctrl-C stops the run, which deletes what its cases in flight created,
/// says so, exits 130 and leaves no ledger.
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_cleans_up_before_the_run_ends() {
    let server = faulty(Faults::default()).await;
    let client = client(&server);
    let dir = scratch("ctrl-c");
    let child = spawn_run(server.url().as_str(), &dir);
    wait_for_users(&client, 4).await;
    let interrupt = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(interrupt.success());
    let out = child.wait_with_output().expect("the run ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted; everything the run created was deleted"),
        "{stderr}"
    );
    assert!(harness_users(&client).await.is_empty());
    assert!(LedgerFile::all(&dir).expect("reads").is_empty());
}

/// A panic in the middle of a run (here in the progress hook, with cases in
/// flight) still deletes everything the run created before it unwinds.
#[tokio::test(flavor = "multi_thread")]
async fn a_panic_mid_run_cleans_up_before_it_unwinds() {
    let server = faulty(Faults::default()).await;
    let client = client(&server);
    let dir = scratch("panic");
    let done = std::sync::atomic::AtomicUsize::new(0);
    let run = Run::against(target(server.url()))
        .only(vec!["update.ok.*".into()])
        .cases(100)
        .jobs(8)
        .ledger_dir(dir.clone())
        .on_case(move || {
            if done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 20 {
                panic!("a bug in the harness");
            }
        });
    let outcome = AssertUnwindSafe(run.execute()).catch_unwind().await;
    assert!(outcome.is_err(), "the run panics");
    assert!(harness_users(&client).await.is_empty());
    assert!(LedgerFile::all(&dir).expect("reads").is_empty());
}

/// A server that dies mid-run: the cases after it are transport trouble
/// (exit 3), nothing is reported as a divergence, and the ledger keeps
/// the users that could not be deleted for a later `clean`.
#[tokio::test(flavor = "multi_thread")]
async fn a_crashed_server_is_transport_trouble_and_the_ledger_keeps_its_users() {
    let server = faulty(Faults {
        crash_after: Some(150),
        ..Faults::default()
    })
    .await;
    let dir = scratch("crash");
    let report = Run::against(target(server.url()))
        .only(vec!["update.ok.*".into()])
        .cases(20)
        .seed(1)
        .ledger_dir(dir.clone())
        .execute()
        .await
        .expect("the run starts");
    let console = report.render_console();
    assert_eq!(
        report.exit_code(),
        iam_conformance::exit::TRANSPORT,
        "{console}"
    );
    assert_eq!(report.summary.failed, 0, "{console}");
    assert!(report.divergences.is_empty(), "{console}");
    assert!(report.summary.errors > 0, "{console}");
    assert!(!report.run.left_behind.is_empty(), "{console}");
    let ledger = LedgerFile::all(&dir).expect("reads").remove(0);
    assert_eq!(ledger.outstanding, report.run.left_behind, "{console}");
}

/// A second Ctrl-C stops the clean-up the first one started: the run exits
/// 130 without deleting the rest, and its ledger keeps those users for
/// `clean`. The target answers everything with 200, each after a second, so
/// the clean-up is still going when the second Ctrl-C comes.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_ctrl_c_stops_the_clean_up_and_the_ledger_keeps_the_rest() {
    let slow = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(crate::transport::update_ok().set_delay(Duration::from_secs(1)))
        .mount(&slow)
        .await;
    let dir = scratch("second-ctrl-c");
    let mut child = spawn_run(&slow.uri(), &dir);
    let stderr = child.stderr.take().expect("stderr is piped");
    let (lines, said) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
            let line = line.expect("stderr reads");
            let _ = lines.send(line.clone());
            if line.starts_with("error: ") {
                break;
            }
        }
    });
    let start = Instant::now();
    while outstanding(&dir).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(60), "no user noted");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let interrupt = || {
        let sent = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("kill -INT");
        assert!(sent.success());
    };
    interrupt();
    let mut transcript = Vec::new();
    while !transcript
        .iter()
        .any(|l: &String| l.contains("Ctrl-C again to stop"))
    {
        match said.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => transcript.push(line),
            Err(e) => panic!("no word of the clean-up ({e}): {transcript:?}"),
        }
    }
    interrupt();
    let status = child.wait().expect("the run ends");
    reader.join().expect("the reader ends");
    transcript.extend(said.try_iter());
    let transcript = transcript.join("\n");
    assert_eq!(status.code(), Some(130), "{transcript}");
    assert!(transcript.contains("clean-up stopped"), "{transcript}");
    let left = outstanding(&dir);
    assert!(!left.is_empty(), "the ledger keeps what was not deleted");
    assert!(
        transcript.contains(&format!("{} user(s) were not deleted", left.len())),
        "{transcript}"
    );
}

/// The users the ledgers in `dir` still list.
fn outstanding(dir: &Path) -> Vec<String> {
    LedgerFile::all(dir)
        .expect("the ledgers read")
        .into_iter()
        .flat_map(|f| f.outstanding)
        .collect()
}
