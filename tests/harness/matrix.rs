//! The conformance matrix and its sinks: class verdicts split by level, the
//! matrix's exit code, the Markdown and JUnit reports, and regressions saved
//! from divergences and replayed. The runs are against the embedded server,
//! made to diverge on purpose with [`Deviation`]s, so every expectation here
//! is one a wrong aggregation or a wrong rendering would break.

use std::path::PathBuf;
use std::time::Duration;

use iam_conformance::check::Level;
use iam_conformance::matrix::{Tally, level_verdict, tallies};
use iam_conformance::report::BaselineEntry;
use iam_conformance::spec::Operation;
use iam_conformance::wire::Client;
use iam_conformance::{
    Baseline, Deviation, Matrix, Regression, Report, Run, Server, ServerConfig, Target, TargetKind,
    TargetRun, Verdict, exit, junit, markdown, regression,
};
use quick_xml::events::Event;
use quick_xml::reader::Reader;

/// Messages lose their period: `update.key_id.unknown` diverges at the
/// messages level only; `update.user_name.too_long` is left alone; and
/// `update.ok.deactivate` has nothing to check at the messages level.
const CLASSES: [&str; 3] = [
    "update.key_id.unknown",
    "update.user_name.too_long",
    "update.ok.deactivate",
];

async fn report(deviations: Vec<Deviation>, level: Level, baseline: Baseline) -> Report {
    Run::embedded_with(ServerConfig {
        deviations,
        ..ServerConfig::default()
    })
    .cases(3)
    .seed(11)
    .level(level)
    .only(CLASSES.iter().map(|c| c.to_string()).collect())
    .baseline(baseline)
    .execute()
    .await
    .expect("the run starts")
}

fn target_run(name: &str, report: Report) -> TargetRun {
    TargetRun {
        name: name.into(),
        version: Some("1.0".into()),
        seconds: 3.0,
        report,
    }
}

fn matrix(targets: Vec<TargetRun>) -> Matrix {
    Matrix {
        date: "2026-12-04".into(),
        seed: 11,
        cases: 3,
        level: Level::Messages,
        targets,
    }
}

/// The verdicts of a class at codes, shape and messages.
fn verdicts(report: &Report, id: &str) -> [Option<Verdict>; 3] {
    let class = report
        .classes
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no class {id}"));
    [Level::Codes, Level::Shape, Level::Messages].map(|l| level_verdict(report, class, l))
}

fn periods_dropped() -> Vec<Deviation> {
    vec![Deviation::MessagesWithoutPeriod]
}

fn known_period() -> Baseline {
    Baseline {
        target: "embedded, periods dropped".into(),
        entries: vec![BaselineEntry {
            class: "update.key_id.unknown".into(),
            check: "messages.message".into(),
            reason: "the server drops the trailing period".into(),
        }],
    }
}

#[tokio::test]
async fn a_class_is_judged_at_each_level_on_its_own() {
    let r = report(periods_dropped(), Level::Messages, Baseline::default()).await;
    let (pass, fail) = (Some(Verdict::Pass), Some(Verdict::Fail));
    assert_eq!(verdicts(&r, "update.key_id.unknown"), [pass, pass, fail]);
    assert_eq!(
        verdicts(&r, "update.user_name.too_long"),
        [pass, pass, pass]
    );
    assert_eq!(verdicts(&r, "update.ok.deactivate"), [pass, pass, None]);

    let t = tallies(&r);
    let at = |level| t[&(Operation::UpdateSSHPublicKey, level)];
    let passing = |n| Tally {
        pass: n,
        ..Tally::default()
    };
    assert_eq!(at(Level::Codes), passing(3));
    assert_eq!(at(Level::Shape), passing(3));
    assert_eq!(
        at(Level::Messages),
        Tally {
            pass: 1,
            fail: 1,
            ..Tally::default()
        },
        "update.ok.deactivate has no message to check"
    );
}

#[tokio::test]
async fn levels_the_run_did_not_reach_are_not_counted() {
    let r = report(periods_dropped(), Level::Codes, Baseline::default()).await;
    assert_eq!(
        verdicts(&r, "update.key_id.unknown"),
        [Some(Verdict::Pass), None, None]
    );
    let t = tallies(&r);
    assert_eq!(t.len(), 1, "codes only: {t:?}");
}

#[tokio::test]
async fn unjudged_classes_keep_their_verdict_and_divergences_win_over_it() {
    let mut r = report(periods_dropped(), Level::Messages, Baseline::default()).await;
    for c in &mut r.classes {
        c.verdict = match c.id {
            "update.user_name.too_long" => Verdict::Unsupported,
            _ => Verdict::Error,
        };
    }
    let (unsupported, error) = (Some(Verdict::Unsupported), Some(Verdict::Error));
    assert_eq!(
        verdicts(&r, "update.user_name.too_long"),
        [unsupported, unsupported, unsupported]
    );
    assert_eq!(verdicts(&r, "update.ok.deactivate"), [error, error, None]);
    assert_eq!(
        verdicts(&r, "update.key_id.unknown"),
        [error, error, Some(Verdict::Fail)],
        "a divergence at a level is what the class came to there"
    );
}

#[tokio::test]
async fn an_inferred_expectation_diverges_as_unverified_unless_strict() {
    // An unknown key: the message is live, but a 400 for a user's missing key
    // diverges on codes, which the oracle infers for unknown users only.
    let run = |strict| {
        Run::embedded_with(ServerConfig {
            deviations: vec![Deviation::NotFoundAs400],
            ..ServerConfig::default()
        })
        .cases(3)
        .seed(11)
        .strict(strict)
        .only(vec!["update.user_name.unknown".into()])
        .execute()
    };
    let lenient = run(false).await.expect("the run starts");
    let strict = run(true).await.expect("the run starts");
    let at_codes = |r: &Report| verdicts(r, "update.user_name.unknown")[0];
    assert_eq!(at_codes(&lenient), Some(Verdict::Unverified));
    assert_eq!(at_codes(&strict), Some(Verdict::Fail));
    assert_eq!(
        tallies(&lenient)[&(Operation::UpdateSSHPublicKey, Level::Codes)].unverified,
        1
    );
}

#[tokio::test]
async fn the_matrix_exits_with_its_most_serious_target() {
    let clean = report(vec![], Level::Messages, Baseline::default()).await;
    let divergent = report(periods_dropped(), Level::Messages, Baseline::default()).await;
    let known = report(periods_dropped(), Level::Messages, known_period()).await;
    let mut unreachable = clean.clone();
    unreachable.summary.errors = 1;
    let code = |reports: Vec<&Report>| {
        matrix(
            reports
                .into_iter()
                .map(|r| target_run("t", r.clone()))
                .collect(),
        )
        .exit_code()
    };
    assert_eq!(code(vec![&clean, &known]), exit::CONFORMANT);
    assert_eq!(code(vec![&clean, &divergent]), exit::DIVERGENT);
    assert_eq!(code(vec![&unreachable, &clean]), exit::TRANSPORT);
    assert_eq!(code(vec![&unreachable, &divergent]), exit::DIVERGENT);
    assert_eq!(code(vec![]), exit::NOTHING_RAN);
}

/// The rows of the Markdown table that starts with `header`.
fn table<'a>(md: &'a str, header: &str) -> Vec<Vec<&'a str>> {
    let start = md
        .find(header)
        .unwrap_or_else(|| panic!("no table {header:?} in\n{md}"));
    md[start..]
        .lines()
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(str::trim)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn the_markdown_matrix_shows_targets_levels_classes_and_divergences() {
    let clean = report(vec![], Level::Messages, Baseline::default()).await;
    let divergent = report(periods_dropped(), Level::Messages, Baseline::default()).await;
    let mut known = report(periods_dropped(), Level::Messages, known_period()).await;
    // A generated value with a pipe, a backtick and a control character must not break a table.
    known.divergences[0].divergence.actual = "a|b`c\u{7}".into();
    let md = markdown::render(&matrix(vec![
        target_run("clean", clean),
        target_run("dropper", divergent),
        target_run("known", known),
    ]));
    assert!(
        md.contains("on 2026-12-04: seed 11, 3 cases per class"),
        "{md}"
    );

    let targets = table(&md, "| target | kind |");
    assert_eq!(targets.len(), 2 + 3, "{md}");
    assert_eq!(targets[2][0], "clean 1.0");
    assert_eq!(targets[2][1], "`embedded`");
    assert_eq!(targets[2][3], "9", "cases: {md}");
    assert_eq!(targets[2][6], "3", "cases per second: {md}");
    assert!(targets[2][7].starts_with("0 "), "{md}");
    assert!(targets[3][7].starts_with("1 "), "{md}");
    assert!(targets[4][7].starts_with("0 "), "{md}");

    let levels = table(&md, "| target | operation | level |");
    assert_eq!(levels.len(), 2 + 3 * 3, "three targets, three levels: {md}");
    let dropper_messages = levels
        .iter()
        .find(|r| r[0] == "dropper 1.0" && r[2] == "messages")
        .expect("a messages row for the dropper");
    assert_eq!(dropper_messages[1], "UpdateSSHPublicKey");
    assert_eq!(&dropper_messages[3..], ["1", "1", "0", "0", "0"], "{md}");

    let classes = table(&md, "| class |");
    assert_eq!(
        classes[0],
        ["class", "clean 1.0", "dropper 1.0", "known 1.0"]
    );
    let row = |id: &str| {
        classes
            .iter()
            .find(|r| r[0] == format!("`{id}`"))
            .unwrap_or_else(|| panic!("no row for {id}: {md}"))
            .clone()
    };
    assert_eq!(
        row("update.key_id.unknown")[1..],
        ["✓ ✓ ✓", "✓ ✓ ✗", "✓ ✓ ✗"]
    );
    assert_eq!(row("update.ok.deactivate")[1], "✓ ✓ ·");
    for r in [&targets, &levels, &classes] {
        let width = r[0].len();
        let rows = r.iter().skip(2);
        assert!(rows.clone().all(|cells| cells.len() == width), "{r:?}");
    }

    assert!(
        md.contains("<b>dropper 1.0</b>: 1 divergences, 0 known to its baseline, 1 new"),
        "{md}"
    );
    assert!(
        md.contains("- `update.key_id.unknown` `messages.message`: fail (messages, live). **new**"),
        "{md}"
    );
    assert!(
        md.contains("known: the server drops the trailing period"),
        "{md}"
    );
    assert!(md.contains("  - actual: ``a|b`c\\u{7}``"), "{md}");
    assert!(
        md.contains("  - request: `Action=UpdateSSHPublicKey&"),
        "{md}"
    );
}

/// A JUnit element seen while reading: its name, its attributes, its text.
#[derive(Debug, Default)]
struct Node {
    name: String,
    attributes: Vec<(String, String)>,
    children: Vec<Node>,
    text: String,
}

impl Node {
    fn attr(&self, name: &str) -> &str {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("<{}> has no {name}: {self:?}", self.name))
    }

    fn all(&self, name: &str) -> Vec<&Node> {
        self.children.iter().filter(|c| c.name == name).collect()
    }
}

/// Parses the JUnit XML strictly enough to catch a broken document.
fn parse_junit(xml: &str) -> Node {
    let mut reader = Reader::from_str(xml);
    let mut stack = vec![Node::default()];
    let open = |e: &quick_xml::events::BytesStart| Node {
        name: e.name().as_ref().to_string(),
        attributes: e
            .attributes()
            .map(|a| {
                let a = a.expect("a well-formed attribute");
                (
                    a.key.as_ref().to_string(),
                    a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .expect("an escaped value")
                        .into_owned(),
                )
            })
            .collect(),
        ..Node::default()
    };
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => stack.push(open(&e)),
            Event::Empty(e) => {
                let node = open(&e);
                stack.last_mut().unwrap().children.push(node);
            }
            Event::End(_) => {
                let node = stack.pop().unwrap();
                stack.last_mut().unwrap().children.push(node);
            }
            Event::Text(t) => stack.last_mut().unwrap().text += &t.xml10_content(),
            Event::GeneralRef(r) => {
                let name = r.xml10_content();
                let c = match name.as_ref() {
                    "lt" => "<",
                    "gt" => ">",
                    "amp" => "&",
                    "quot" => "\"",
                    "apos" => "'",
                    other => panic!("unexpected entity {other}"),
                };
                stack.last_mut().unwrap().text += c;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(stack.len(), 1, "every element is closed");
    stack.pop().unwrap().children.pop().expect("a root element")
}

#[tokio::test]
async fn the_junit_report_has_a_test_case_per_target_and_class() {
    let mut divergent = report(periods_dropped(), Level::Messages, Baseline::default()).await;
    divergent.divergences[0].divergence.actual = "bell \u{7} & <tag>".into();
    let known = report(periods_dropped(), Level::Messages, known_period()).await;
    let mut unsupported = report(vec![], Level::Messages, Baseline::default()).await;
    unsupported.classes[1].verdict = Verdict::Unsupported;
    unsupported.classes[1].note = Some("UpdateSSHPublicKey answered HTTP 400 InvalidAction".into());
    let xml = junit::render(&matrix(vec![
        target_run("dropper", divergent),
        target_run("known", known),
        target_run("ministack", unsupported),
    ]));
    assert!(
        !xml.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t')),
        "no character XML 1.0 forbids: {xml}"
    );
    let root = parse_junit(&xml);
    assert_eq!(root.name, "testsuites");
    assert_eq!(root.attr("tests"), "9");
    assert_eq!(root.attr("failures"), "1");
    assert_eq!(root.attr("skipped"), "1");
    assert_eq!(root.attr("errors"), "0");
    let suites = root.all("testsuite");
    let names: Vec<&str> = suites.iter().map(|s| s.attr("name")).collect();
    assert_eq!(names, ["dropper 1.0", "known 1.0", "ministack 1.0"]);

    let case = |suite: usize, id: &str| -> &Node {
        suites[suite]
            .all("testcase")
            .into_iter()
            .find(|c| c.attr("name") == id)
            .unwrap_or_else(|| panic!("no test case {id} in {:?}", suites[suite]))
    };
    for (i, suite) in suites.iter().enumerate() {
        assert_eq!(suite.all("testcase").len(), 3, "{suite:?}");
        assert_eq!(
            case(i, CLASSES[0]).attr("classname"),
            names[i].split(' ').next().unwrap()
        );
    }
    let failed = case(0, "update.key_id.unknown");
    let failure = &failed.all("failure")[0];
    assert!(
        failure.attr("message").contains("messages.message"),
        "{failure:?}"
    );
    assert!(failure.text.contains("\nexpected: "), "{failure:?}");
    assert!(
        failure.text.contains("\nactual:   bell \\u{7} & <tag>\n"),
        "{failure:?}"
    );
    assert!(failure.text.contains("curl "), "{failure:?}");
    assert!(case(0, "update.user_name.too_long").children.is_empty());

    let known_case = case(1, "update.key_id.unknown");
    assert!(known_case.all("failure").is_empty(), "{known_case:?}");
    let out = &known_case.all("system-out")[0].text;
    assert!(
        out.contains("known divergence messages.message (fail): the server drops"),
        "{out}"
    );

    let skipped = &case(2, CLASSES[1]).all("skipped")[0];
    assert!(
        skipped.attr("message").starts_with("unsupported: "),
        "{skipped:?}"
    );
}

#[tokio::test]
async fn a_stale_baseline_entry_fails_its_class_in_junit() {
    let stale = Baseline {
        target: "a baseline from a worse day".into(),
        entries: vec![
            BaselineEntry {
                class: "update.user_name.too_long".into(),
                check: "codes.status".into(),
                reason: "no longer true".into(),
            },
            BaselineEntry {
                class: "update.gone".into(),
                check: "codes.status".into(),
                reason: "a class that was removed".into(),
            },
        ],
    };
    let r = report(vec![], Level::Messages, stale).await;
    let root = parse_junit(&junit::render(&matrix(vec![target_run("t", r)])));
    let suite = &root.all("testsuite")[0];
    let failures: Vec<(&str, &str)> = suite
        .all("testcase")
        .into_iter()
        .filter_map(|c| Some((c.attr("name"), c.all("failure").first()?.text.as_str())))
        .collect();
    assert_eq!(failures.len(), 2, "{suite:?}");
    assert_eq!(failures[0].0, "update.user_name.too_long");
    assert!(
        failures[0].1.contains("STALE baseline entry"),
        "{failures:?}"
    );
    assert_eq!(failures[1].0, "update.gone");
}

/// A fresh directory of this test's own under the system temp dir.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "iam-conformance-matrix-{}-{test}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

async fn client_of(deviations: Vec<Deviation>) -> (Server, Client) {
    let server = Server::start(
        0,
        ServerConfig {
            deviations,
            ..ServerConfig::default()
        },
    )
    .await
    .expect("the embedded server starts");
    let target = Target::new(server.url(), TargetKind::Embedded);
    let client = Client::new(target, Duration::from_secs(10)).expect("a client");
    (server, client)
}

#[tokio::test]
async fn a_saved_regression_replays_its_shrunk_case_and_fails_where_the_divergence_is() {
    let r = Run::embedded_with(ServerConfig {
        deviations: vec![Deviation::NotFoundAs400],
        ..ServerConfig::default()
    })
    .cases(5)
    .seed(3)
    .only(vec!["update.key_id.unknown".into()])
    .execute()
    .await
    .expect("the run starts");
    let status = r
        .divergences
        .iter()
        .find(|d| d.divergence.check == "codes.status")
        .expect("a 400 for a 404 diverges on codes.status");

    let dir = scratch("replay");
    let written = regression::save(&dir, "bent", "bent 1.0", &r.divergences).expect("saved");
    assert_eq!(written, r.divergences.len());
    let again = regression::save(&dir, "bent", "bent 1.0", &r.divergences).expect("saved");
    assert_eq!(again, 0, "an unchanged case is not rewritten");
    let files = regression::files(&dir).expect("listed");
    assert_eq!(files.len(), r.divergences.len());
    let path = dir.join("bent/update.key_id.unknown--codes.status.json");
    assert!(files.contains(&path), "{files:?}");

    let saved = Regression::load(&path).expect("it loads");
    assert_eq!(
        saved.case, status.divergence.reproducer.case,
        "the shrunk case itself"
    );
    assert_eq!(saved.found_on, "bent 1.0");
    assert_eq!(
        saved.exchange.request.as_ref().map(|r| r.form()),
        Some(status.divergence.reproducer.request.clone())
    );

    let (_conformant, good) = client_of(vec![]).await;
    saved
        .replay(&good)
        .await
        .expect("the embedded server passes it");
    let (_bent, bad) = client_of(vec![Deviation::NotFoundAs400]).await;
    let err = saved
        .replay(&bad)
        .await
        .expect_err("the deviation is caught");
    assert!(err.contains("codes.status: expected 404"), "{err}");

    let mut wrong = saved.clone();
    wrong.check = "codes.nothing".into();
    let err = wrong.replay(&good).await.expect_err("an unknown check");
    assert!(
        err.contains("no longer makes the check codes.nothing"),
        "{err}"
    );
    wrong.class = "update.gone".into();
    assert!(wrong.replay(&good).await.is_err());
    let _ = std::fs::remove_dir_all(dir);
}
