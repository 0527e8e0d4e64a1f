//! Every check earns its place: the embedded server is made to differ from AWS
//! in one way at a time, and the check that guards that difference must catch
//! it, with the right verdict, and shrink it.

use iam_conformance::{Deviation, Level, Report, Run, ServerConfig, Verdict};

async fn run_deviating(deviation: Deviation, class: &str, level: Level) -> Report {
    Run::embedded_with(ServerConfig {
        deviations: vec![deviation],
        ..ServerConfig::default()
    })
    .only(vec![class.to_string()])
    .cases(20)
    .seed(11)
    .level(level)
    .execute()
    .await
    .expect("the run starts")
}

/// Runs `class` against a server with `deviation` and asserts that `check`
/// diverges with `verdict`, and that the run exits 1.
async fn caught(deviation: Deviation, class: &str, check: &str, verdict: Verdict) -> Report {
    let report = run_deviating(deviation, class, Level::Messages).await;
    let found: Vec<_> = report
        .divergences
        .iter()
        .map(|d| (d.divergence.check, d.divergence.verdict))
        .collect();
    assert!(
        found.contains(&(check, verdict)),
        "{deviation:?} on {class}: expected {check} {verdict:?}, found {found:?}"
    );
    assert_eq!(report.exit_code(), 1);
    report
}

#[tokio::test]
async fn not_found_as_400_fails_the_status_check() {
    caught(
        Deviation::NotFoundAs400,
        "update.key_id.unknown",
        "codes.status",
        Verdict::Fail,
    )
    .await;
}

#[tokio::test]
async fn exception_suffix_fails_the_code_check() {
    caught(
        Deviation::ExceptionSuffixOnCodes,
        "update.key_id.unknown",
        "codes.code",
        Verdict::Fail,
    )
    .await;
}

#[tokio::test]
async fn receiver_type_fails_the_type_check() {
    caught(
        Deviation::ReceiverType,
        "update.key_id.unknown",
        "codes.type",
        Verdict::Fail,
    )
    .await;
}

#[tokio::test]
async fn a_missing_period_fails_the_recorded_message() {
    let report = caught(
        Deviation::MessagesWithoutPeriod,
        "update.key_id.unknown",
        "messages.message",
        Verdict::Fail,
    )
    .await;
    let d = &report.divergences[0].divergence;
    assert!(d.expected.ends_with("cannot be found."), "{}", d.expected);
    assert!(d.actual.ends_with("cannot be found"), "{}", d.actual);
}

#[tokio::test]
async fn an_inferred_message_diverges_as_unverified() {
    // The unknown-user message is inferred for the SSH operations.
    caught(
        Deviation::MessagesWithoutPeriod,
        "update.user_name.unknown",
        "messages.message",
        Verdict::Unverified,
    )
    .await;
}

#[tokio::test]
async fn dropping_validation_items_fails_the_set_comparison() {
    caught(
        Deviation::FirstValidationItemOnly,
        "update.multi.all_invalid",
        "messages.message",
        Verdict::Unverified,
    )
    .await;
}

#[tokio::test]
async fn a_missing_request_id_header_fails_the_request_id_check() {
    caught(
        Deviation::NoRequestIdHeader,
        "update.ok.deactivate",
        "shape.request_id",
        Verdict::Fail,
    )
    .await;
}

#[tokio::test]
async fn a_json_content_type_fails_the_content_type_check() {
    caught(
        Deviation::JsonContentType,
        "update.key_id.missing",
        "shape.content_type",
        Verdict::Fail,
    )
    .await;
}

#[tokio::test]
async fn a_wrong_namespace_fails_the_envelope_check() {
    caught(
        Deviation::WrongNamespace,
        "update.key_id.unknown",
        "shape.envelope",
        Verdict::Fail,
    )
    .await;
}

#[tokio::test]
async fn an_ignored_update_fails_the_state_check() {
    caught(
        Deviation::UpdateIgnored,
        "update.ok.deactivate",
        "shape.state",
        Verdict::Fail,
    )
    .await;
}

#[tokio::test]
async fn an_update_of_sibling_keys_fails_the_state_check() {
    let report = caught(
        Deviation::UpdateAllKeys,
        "update.ok.deactivate",
        "shape.state",
        Verdict::Fail,
    )
    .await;
    // Shrinking keeps what the divergence needs: a sibling key that was Active.
    let d = &report.divergences[0].divergence;
    assert!(
        d.reproducer.curl.matches("UploadSSHPublicKey").count() >= 2,
        "{}",
        d.reproducer.curl
    );
}

#[tokio::test]
async fn accepting_lower_case_status_fails_the_status_check() {
    caught(
        Deviation::CaseInsensitiveStatus,
        "update.status.wrong_case",
        "codes.status",
        Verdict::Fail,
    )
    .await;
}

#[tokio::test]
async fn a_missing_length_check_is_caught_and_shrunk_to_65_characters() {
    let report = caught(
        Deviation::NoUserNameLengthCheck,
        "update.user_name.too_long",
        "codes.status",
        Verdict::Fail,
    )
    .await;
    let d = report
        .divergences
        .iter()
        .find(|d| d.divergence.check == "codes.status")
        .unwrap();
    let form: Vec<(String, String)> =
        form_urlencoded::parse(d.divergence.reproducer.request.as_bytes())
            .into_owned()
            .collect();
    let name = &form.iter().find(|(k, _)| k == "UserName").unwrap().1;
    assert_eq!(
        name.chars().count(),
        65,
        "shrunk to the shortest invalid length: {name}"
    );
    assert!(d.divergence.shrink_runs > 0);
}

#[tokio::test]
async fn checks_below_the_run_level_do_not_run() {
    let report = run_deviating(
        Deviation::MessagesWithoutPeriod,
        "update.key_id.unknown",
        Level::Shape,
    )
    .await;
    assert!(report.divergences.is_empty(), "{:?}", report.divergences);
    assert_eq!(report.exit_code(), 0);
    let report = run_deviating(
        Deviation::JsonContentType,
        "update.key_id.unknown",
        Level::Codes,
    )
    .await;
    assert!(report.divergences.is_empty());
}

#[tokio::test]
async fn a_key_id_not_of_the_form_aws_issues_fails_the_id_form_check() {
    caught(
        Deviation::LowerCaseKeyIds,
        "upload.ok.rsa",
        "shape.id_form",
        Verdict::Fail,
    )
    .await;
}

/// The account in an ARN is the target's own, but the path is the user's:
/// an ARN without it is a field divergence.
#[tokio::test]
async fn an_arn_without_the_users_path_fails_the_fields_check() {
    let report = caught(
        Deviation::ArnWithoutPath,
        "user.get.ok",
        "shape.fields",
        Verdict::Fail,
    )
    .await;
    let d = &report.divergences[0].divergence;
    assert!(d.actual.contains(":user/iam-conformance/"), "{}", d.actual);
}

#[tokio::test]
async fn the_faithful_server_passes_every_class() {
    let report = Run::embedded()
        .cases(10)
        .seed(3)
        .jobs(16)
        .execute()
        .await
        .unwrap();
    assert!(report.summary.classes >= 25);
    assert_eq!(
        report.summary.failed + report.summary.unverified + report.summary.errors,
        0
    );
    assert!(report.classes.iter().all(|c| c.verdict == Verdict::Pass));
    assert_eq!(report.exit_code(), 0);
}
