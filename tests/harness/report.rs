//! The JSON report is a contract (design.md, "JSON report"): CI scripts and
//! dashboards read it. These tests pin its shape on a run that has something to
//! show (an embedded server that drops the period of its messages), and how a
//! baseline turns that run's divergences into exit codes, stale entries included.

use iam_conformance::report::BaselineEntry;
use iam_conformance::{Baseline, Deviation, Report, Run, ServerConfig, exit};
use serde_json::{Map, Value};

/// A run whose `update.key_id.unknown` message diverges (live provenance)
/// and whose `update.user_name.too_long` is left alone by the deviation.
async fn deviating_run(baseline: Baseline) -> Report {
    Run::embedded_with(ServerConfig {
        deviations: vec![Deviation::MessagesWithoutPeriod],
        ..ServerConfig::default()
    })
    .cases(3)
    .seed(9)
    .only(vec![
        "update.key_id.unknown".into(),
        "update.user_name.too_long".into(),
    ])
    .baseline(baseline)
    .execute()
    .await
    .expect("the run starts")
}

fn object<'a>(value: &'a Value, what: &str) -> &'a Map<String, Value> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("{what} must be an object: {value:#}"))
}

fn array<'a>(value: &'a Value, what: &str) -> &'a Vec<Value> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("{what} must be an array: {value:#}"))
}

/// `value` is an object that has every one of `keys`.
fn has_keys(value: &Value, what: &str, keys: &[&str]) {
    let map = object(value, what);
    for key in keys {
        assert!(map.contains_key(*key), "{what} lacks {key:?}: {value:#}");
    }
}

/// The baseline entry for the divergence the deviation causes.
fn the_divergence() -> BaselineEntry {
    BaselineEntry {
        class: "update.key_id.unknown".into(),
        check: "messages.message".into(),
        reason: "the server drops the trailing period".into(),
    }
}

#[tokio::test]
async fn the_json_report_has_the_shape_of_the_design() {
    let report = deviating_run(Baseline::default()).await;
    let json = serde_json::to_value(&report).expect("reports serialise");

    has_keys(
        &json,
        "the report",
        &[
            "target",
            "seed",
            "level",
            "summary",
            "classes",
            "divergences",
        ],
    );
    has_keys(&json["target"], "target", &["endpoint", "kind"]);
    assert!(json["target"]["endpoint"].is_string(), "{json:#}");
    assert_eq!(json["target"]["kind"], "embedded", "{json:#}");
    assert_eq!(json["seed"], 9, "{json:#}");
    assert_eq!(json["level"], "messages", "{json:#}");

    let summary = object(&json["summary"], "summary");
    let mut keys: Vec<&str> = summary.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut want = [
        "classes",
        "cases",
        "checks",
        "passed",
        "failed",
        "unverified",
        "unsupported",
        "errors",
    ];
    want.sort_unstable();
    assert_eq!(keys, want, "summary keys: {json:#}");
    for (key, value) in summary {
        assert!(value.is_u64(), "summary.{key} must be an integer: {value}");
    }
    assert_eq!(json["summary"]["classes"], 2, "{json:#}");
    assert_eq!(json["summary"]["cases"], 6, "{json:#}");
    assert_eq!(json["summary"]["errors"], 0, "{json:#}");

    let classes = array(&json["classes"], "classes");
    assert_eq!(classes.len(), 2, "{json:#}");
    for class in classes {
        has_keys(
            class,
            "a class entry",
            &["id", "operation", "verdict", "cases"],
        );
        assert_eq!(class["operation"], "UpdateSSHPublicKey", "{class:#}");
        assert_eq!(class["cases"], 3, "{class:#}");
    }
    let verdict_of = |id: &str| {
        classes
            .iter()
            .find(|c| c["id"] == id)
            .map(|c| c["verdict"].clone())
            .unwrap_or_else(|| panic!("no class entry {id}: {json:#}"))
    };
    assert_eq!(verdict_of("update.key_id.unknown"), "fail");
    assert_eq!(verdict_of("update.user_name.too_long"), "pass");

    let divergences = array(&json["divergences"], "divergences");
    assert!(!divergences.is_empty(), "{json:#}");
    for d in divergences {
        has_keys(
            d,
            "a divergence",
            &[
                "class",
                "operation",
                "check",
                "level",
                "verdict",
                "provenance",
                "expected",
                "actual",
                "reproducer",
            ],
        );
        assert!(
            d["verdict"] == "fail" || d["verdict"] == "unverified",
            "a divergence is fail or unverified: {d:#}"
        );
        assert!(
            ["live", "doc", "model", "inferred"].contains(&d["provenance"].as_str().unwrap_or("")),
            "{d:#}"
        );
        assert!(
            ["codes", "shape", "messages"].contains(&d["level"].as_str().unwrap_or("")),
            "{d:#}"
        );
        has_keys(&d["reproducer"], "a reproducer", &["request", "curl"]);
        assert!(d["reproducer"]["request"].is_string(), "{d:#}");
        assert!(d["reproducer"]["curl"].is_string(), "{d:#}");
    }

    let unknown: Vec<&Value> = divergences
        .iter()
        .filter(|d| d["class"] == "update.key_id.unknown")
        .collect();
    assert_eq!(unknown.len(), 1, "one divergence for the class: {json:#}");
    let d = unknown[0];
    assert_eq!(d["operation"], "UpdateSSHPublicKey", "{d:#}");
    assert_eq!(d["check"], "messages.message", "{d:#}");
    assert_eq!(d["level"], "messages", "{d:#}");
    assert_eq!(d["verdict"], "fail", "{d:#}");
    assert_eq!(d["provenance"], "live", "{d:#}");
    let expected = d["expected"].as_str().expect("expected is text");
    let actual = d["actual"].as_str().expect("actual is text");
    assert_ne!(expected, actual, "{d:#}");
    let request = d["reproducer"]["request"]
        .as_str()
        .expect("request is text");
    assert!(
        request.contains("Action=UpdateSSHPublicKey"),
        "the request under test: {request}"
    );
    let curl = d["reproducer"]["curl"].as_str().expect("curl is text");
    assert!(curl.contains("--aws-sigv4"), "{curl}");
    assert!(
        curl.contains("$AWS_SECRET_ACCESS_KEY"),
        "the secret is named as a variable: {curl}"
    );
    assert!(
        !curl.contains("Signature=") && !curl.contains("Authorization:"),
        "no signature in a reproducer: {curl}"
    );

    assert_eq!(report.exit_code(), exit::DIVERGENT);
}

#[tokio::test]
async fn a_baseline_that_knows_the_divergence_makes_the_run_conformant() {
    let baseline = Baseline {
        target: "embedded, periods dropped".into(),
        entries: vec![the_divergence()],
    };
    let report = deviating_run(baseline).await;
    assert!(
        report.new_divergences().next().is_none(),
        "{}",
        report.render_console()
    );
    assert!(
        report
            .divergences
            .iter()
            .any(|d| d.divergence.class == "update.key_id.unknown" && d.baselined.is_some()),
        "the divergence is still reported, marked as known: {}",
        report.render_console()
    );
    assert!(
        report.stale_baseline.is_empty(),
        "{:?}",
        report.stale_baseline
    );
    assert_eq!(
        report.exit_code(),
        exit::CONFORMANT,
        "{}",
        report.render_console()
    );
}

#[tokio::test]
async fn a_baselined_check_that_passes_is_stale_and_fails_the_run() {
    let stale = BaselineEntry {
        class: "update.user_name.too_long".into(),
        check: "codes.status".into(),
        reason: "no longer true".into(),
    };
    let baseline = Baseline {
        target: "embedded, periods dropped".into(),
        entries: vec![the_divergence(), stale.clone()],
    };
    let report = deviating_run(baseline).await;
    assert!(
        report.new_divergences().next().is_none(),
        "{}",
        report.render_console()
    );
    assert_eq!(
        report.stale_baseline,
        vec![stale],
        "{}",
        report.render_console()
    );
    assert_eq!(
        report.exit_code(),
        exit::DIVERGENT,
        "{}",
        report.render_console()
    );
    let json = serde_json::to_value(&report).expect("reports serialise");
    let stale_json = array(&json["stale_baseline"], "stale_baseline");
    assert_eq!(stale_json.len(), 1, "{json:#}");
    assert_eq!(stale_json[0]["class"], "update.user_name.too_long");
    assert_eq!(stale_json[0]["check"], "codes.status");
}
