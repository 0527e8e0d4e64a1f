//! The JUnit XML report, for CI systems that show test results.
//!
//! One `<testsuite>` per target and one `<testcase>` per case class. A class
//! fails when it has divergences its baseline does not know, or baseline
//! entries that no longer occur: the same judgement as the exit code. Known
//! divergences are listed in the test's output, not as failures. A class that
//! could not be judged is an `<error>` (transport) or `<skipped>` (unsupported).
//!
//! Written by hand with quick-xml's writer: the format is small, and the
//! JUnit crates pull in a second XML library and a date library.

use std::fmt::Write as _;
use std::io;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use crate::check::Verdict;
use crate::matrix::{Matrix, TargetRun};
use crate::report::{BaselineEntry, ClassEntry, DivergenceEntry, printable};

/// What one test case came to.
enum Outcome {
    Passed,
    Failed { message: String, body: String },
    Error(String),
    Skipped(String),
}

/// One `<testcase>`: a class of one target.
struct TestCase {
    name: String,
    outcome: Outcome,
    /// Known divergences, for `<system-out>`.
    known: String,
}

/// Renders the matrix as JUnit XML.
pub fn render(matrix: &Matrix) -> String {
    let suites: Vec<(&TargetRun, Vec<TestCase>)> =
        matrix.targets.iter().map(|t| (t, test_cases(t))).collect();
    let count = |pick: fn(&Outcome) -> bool| {
        suites
            .iter()
            .flat_map(|(_, cases)| cases)
            .filter(|c| pick(&c.outcome))
            .count()
            .to_string()
    };
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    let written: io::Result<()> = (|| {
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        let tests = suites.iter().map(|(_, c)| c.len()).sum::<usize>();
        let seconds: f64 = matrix.targets.iter().map(|t| t.seconds).sum();
        w.create_element("testsuites")
            .with_attribute(("name", "iam-conformance"))
            .with_attribute(("tests", tests.to_string().as_str()))
            .with_attribute((
                "failures",
                count(|o| matches!(o, Outcome::Failed { .. })).as_str(),
            ))
            .with_attribute(("errors", count(|o| matches!(o, Outcome::Error(_))).as_str()))
            .with_attribute((
                "skipped",
                count(|o| matches!(o, Outcome::Skipped(_))).as_str(),
            ))
            .with_attribute(("time", format!("{seconds:.3}").as_str()))
            .write_inner_content(|w| {
                for (target, cases) in &suites {
                    suite(w, matrix, target, cases)?;
                }
                Ok(())
            })?;
        Ok(())
    })();
    written.expect("writing to a Vec does not fail");
    let mut xml = String::from_utf8(w.into_inner()).expect("the writer writes UTF-8");
    xml.push('\n');
    xml
}

fn suite(
    w: &mut Writer<Vec<u8>>,
    matrix: &Matrix,
    target: &TargetRun,
    cases: &[TestCase],
) -> io::Result<()> {
    let n = |pick: fn(&Outcome) -> bool| cases.iter().filter(|c| pick(&c.outcome)).count();
    let properties = [
        ("endpoint", target.report.target.endpoint.clone()),
        ("kind", target.report.target.kind.name()),
        ("seed", matrix.seed.to_string()),
        ("cases-per-class", matrix.cases.to_string()),
        ("level", matrix.level.as_str().to_string()),
    ];
    w.create_element("testsuite")
        .with_attribute(("name", target.label().as_str()))
        .with_attribute(("tests", cases.len().to_string().as_str()))
        .with_attribute((
            "failures",
            n(|o| matches!(o, Outcome::Failed { .. }))
                .to_string()
                .as_str(),
        ))
        .with_attribute((
            "errors",
            n(|o| matches!(o, Outcome::Error(_))).to_string().as_str(),
        ))
        .with_attribute((
            "skipped",
            n(|o| matches!(o, Outcome::Skipped(_))).to_string().as_str(),
        ))
        .with_attribute(("time", format!("{:.3}", target.seconds).as_str()))
        .write_inner_content(|w| {
            w.create_element("properties").write_inner_content(|w| {
                for (name, value) in &properties {
                    w.create_element("property")
                        .with_attribute(("name", *name))
                        .with_attribute(("value", value.as_str()))
                        .write_empty()?;
                }
                Ok(())
            })?;
            for case in cases {
                test_case(w, &target.name, case)?;
            }
            Ok(())
        })?;
    Ok(())
}

fn test_case(w: &mut Writer<Vec<u8>>, classname: &str, case: &TestCase) -> io::Result<()> {
    let element = w
        .create_element("testcase")
        .with_attribute(("classname", classname))
        .with_attribute(("name", case.name.as_str()));
    if matches!(case.outcome, Outcome::Passed) && case.known.is_empty() {
        element.write_empty()?;
        return Ok(());
    }
    element.write_inner_content(|w| {
        match &case.outcome {
            Outcome::Passed => {}
            Outcome::Failed { message, body } => {
                w.create_element("failure")
                    .with_attribute(("message", printable(message).as_str()))
                    .with_attribute(("type", "divergence"))
                    .write_text_content(BytesText::new(&printable(body)))?;
            }
            Outcome::Error(note) => {
                w.create_element("error")
                    .with_attribute(("message", printable(note).as_str()))
                    .with_attribute(("type", "transport"))
                    .write_empty()?;
            }
            Outcome::Skipped(note) => {
                w.create_element("skipped")
                    .with_attribute(("message", printable(note).as_str()))
                    .write_empty()?;
            }
        }
        if !case.known.is_empty() {
            w.create_element("system-out")
                .write_text_content(BytesText::new(&printable(&case.known)))?;
        }
        Ok(())
    })?;
    Ok(())
}

/// The test cases of one target: its classes in report order, then stale
/// baseline entries for classes it did not run.
fn test_cases(target: &TargetRun) -> Vec<TestCase> {
    let r = &target.report;
    let mut cases: Vec<TestCase> = r
        .classes
        .iter()
        .map(|class| {
            let of_class = |d: &&DivergenceEntry| d.divergence.class == class.id;
            let new: Vec<&DivergenceEntry> = r.new_divergences().filter(of_class).collect();
            let stale: Vec<&BaselineEntry> = r
                .stale_baseline
                .iter()
                .filter(|e| e.class == class.id)
                .collect();
            let mut known = String::new();
            for d in r.divergences.iter().filter(of_class) {
                if let Some(reason) = &d.baselined {
                    let _ = writeln!(
                        known,
                        "known divergence {} ({}): {reason}",
                        d.divergence.check,
                        d.divergence.verdict.as_str()
                    );
                }
            }
            TestCase {
                name: class.id.to_string(),
                outcome: outcome(class, &new, &stale),
                known,
            }
        })
        .collect();
    for e in &r.stale_baseline {
        if !r.classes.iter().any(|c| c.id == e.class) {
            cases.push(TestCase {
                name: e.class.clone(),
                outcome: outcome_of_stale(&[e]),
                known: String::new(),
            });
        }
    }
    cases
}

fn outcome(class: &ClassEntry, new: &[&DivergenceEntry], stale: &[&BaselineEntry]) -> Outcome {
    if !new.is_empty() {
        let checks: Vec<&str> = new.iter().map(|d| d.divergence.check).collect();
        let mut body = String::new();
        for d in new {
            let _ = writeln!(body, "{}\n", d.divergence.describe(""));
        }
        for e in stale {
            let _ = writeln!(body, "{}", stale_line(e));
        }
        return Outcome::Failed {
            message: format!("{} new divergence(s): {}", new.len(), checks.join(", ")),
            body,
        };
    }
    if !stale.is_empty() {
        return outcome_of_stale(stale);
    }
    let note = class.note.clone().unwrap_or_default();
    match class.verdict {
        Verdict::Error => Outcome::Error(note),
        Verdict::Unsupported => Outcome::Skipped(format!("unsupported: {note}")),
        _ => Outcome::Passed,
    }
}

fn outcome_of_stale(stale: &[&BaselineEntry]) -> Outcome {
    Outcome::Failed {
        message: format!("{} stale baseline entr(ies)", stale.len()),
        body: stale.iter().map(|e| stale_line(e) + "\n").collect(),
    }
}

fn stale_line(e: &BaselineEntry) -> String {
    format!(
        "STALE baseline entry {} {}: it no longer diverges; remove it.",
        e.class, e.check
    )
}
