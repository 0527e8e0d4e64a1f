//! Credentials as the AWS tools find them, end to end through the binary: the
//! keys, token and region of the environment or of a profile really sign every
//! request; a profile the harness cannot use, and real AWS without credentials,
//! are usage errors; and no secret (the secret key, the session token) reaches
//! stdout, stderr or any file a run writes, wherever it came from.

use std::path::{Path, PathBuf};
use std::process::Command;

use iam_conformance::{Deviation, Server, ServerConfig};
use serde_json::Value;

use crate::cli::{self, Ran};
use crate::transport::{NO_FIXTURES, answering, header, update_ok};

const KEY_ID: &str = "AKIAPROFILETESTKEY01";
const SECRET: &str = "s3cr3t-Sh0uld-N3v3r-B3-Sh0wn/Q7xK2vLp";
const TOKEN: &str = "t0k3n-Sh0uld-N3v3r-B3-Sh0wn/IQoJb3JpZ2luX2VjEXAMPLE==";
const REGION: &str = "eu-west-2";
const PROFILE: &str = "conformance-ci";

/// Where the run finds its credentials.
#[derive(Clone, Copy, Debug)]
enum Source {
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION.
    Environment,
    /// Profile PROFILE: keys and token in a credentials file, region in a config file.
    Profile,
}

impl Source {
    /// What the run's start line says about the target and its credentials.
    fn start_line(self) -> String {
        match self {
            Source::Environment => format!("in {REGION} with credentials from the environment"),
            Source::Profile => format!("in {REGION} with credentials of profile {PROFILE}"),
        }
    }
}

/// The hermetic binary signing with the test's secrets, from `from`; profile
/// files go under `dir/aws/`.
fn command(args: &[&str], from: Source, dir: &Path) -> Command {
    let mut cmd = cli::command(args);
    match from {
        Source::Environment => {
            cmd.env("AWS_ACCESS_KEY_ID", KEY_ID)
                .env("AWS_SECRET_ACCESS_KEY", SECRET)
                .env("AWS_SESSION_TOKEN", TOKEN)
                .env("AWS_REGION", REGION);
        }
        Source::Profile => {
            let credentials = format!(
                "[default]\naws_access_key_id = AKIADEFAULTNOTUSED01\n\
                 aws_secret_access_key = default-not-used\n\n\
                 [{PROFILE}]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n\
                 aws_session_token = {TOKEN}\n"
            );
            let config = format!(
                "[default]\nregion = us-west-1\n\n[profile {PROFILE}]\nregion = {REGION}\n"
            );
            profile_files(&mut cmd, dir, &credentials, &config);
            cmd.env("AWS_PROFILE", PROFILE);
        }
    }
    cmd
}

/// Writes `dir/aws/credentials` and `dir/aws/config` and points `cmd` at them.
fn profile_files(cmd: &mut Command, dir: &Path, credentials: &str, config: &str) {
    let aws = dir.join("aws");
    std::fs::create_dir_all(&aws).expect("a profile dir");
    for (name, text) in [("credentials", credentials), ("config", config)] {
        std::fs::write(aws.join(name), text).expect("a profile file");
    }
    cmd.env("AWS_SHARED_CREDENTIALS_FILE", aws.join("credentials"))
        .env("AWS_CONFIG_FILE", aws.join("config"));
}

/// Every file under `dir`, at any depth.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a readable dir") {
        let path = entry.expect("a dir entry").path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in [SECRET, TOKEN] {
        assert!(
            !text.contains(secret),
            "{secret:?} shown in {what}:\n{text}"
        );
    }
}

fn assert_no_secret_in_streams(ran: &Ran) {
    assert_no_secret("stdout", &ran.stdout);
    assert_no_secret("stderr", &ran.stderr);
}

/// A run with divergences, shrinking and every sink on, signed from `from`:
/// the secrets are nowhere in what it prints or writes.
fn run_writing_everything(server: &Server, from: Source, test: &str) {
    let dir = cli::scratch(test);
    let out = dir.join("out");
    std::fs::create_dir_all(&out).expect("an output dir");
    let path = |name: &str| out.join(name).to_str().expect("UTF-8").to_string();
    let url = server.url().to_string();
    let ran = cli::output(command(
        &[
            "run",
            "--endpoint",
            &url,
            "--cases",
            "3",
            "--seed",
            "5",
            "--only",
            "update.key_id.*",
            "--json",
            &path("report.json"),
            "--junit",
            &path("junit.xml"),
            "--markdown",
            &path("report.md"),
            "--regressions",
            &path("regressions"),
            "--write-baseline",
            &path("baseline.toml"),
        ],
        from,
        &dir,
    ));
    assert_eq!(
        ran.code,
        Some(1),
        "the deviation must diverge\n{}",
        ran.dump()
    );
    assert!(ran.stderr.contains(&from.start_line()), "{}", ran.dump());

    // There was something to leak: divergences with reproducers that need
    // the token, and files for every sink.
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).expect("a report"))
            .expect("a JSON report");
    let divergences = report["divergences"].as_array().expect("divergences");
    assert!(!divergences.is_empty(), "{}", ran.dump());
    for d in divergences {
        let curl = d["reproducer"]["curl"].as_str().expect("a curl reproducer");
        assert!(curl.contains("$AWS_SECRET_ACCESS_KEY"), "{curl}");
        assert!(curl.contains("$AWS_SESSION_TOKEN"), "{curl}");
    }
    let files = files_under(&out);
    let regressions = files
        .iter()
        .filter(|f| f.starts_with(out.join("regressions")))
        .count();
    assert!(regressions > 0, "no regression written: {files:?}");
    assert_eq!(files.len(), 4 + regressions, "{files:?}");

    assert_no_secret_in_streams(&ran);
    for file in &files {
        let text = std::fs::read_to_string(file).expect("a written file is text");
        assert_no_secret(&file.display().to_string(), &text);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_output_reports_reproducers_or_baselines() {
    let server = Server::start(
        0,
        ServerConfig {
            deviations: vec![Deviation::MessagesWithoutPeriod],
        },
    )
    .await
    .expect("a server");
    run_writing_everything(&server, Source::Environment, "secrets_env");
    run_writing_everything(&server, Source::Profile, "secrets_profile");
}

/// Every request the run sends is signed with the key id, region and token of
/// its source: the profile's (not the default profile's) or the environment's.
#[tokio::test(flavor = "multi_thread")]
async fn the_key_region_and_token_found_sign_every_request() {
    for from in [Source::Profile, Source::Environment] {
        let mock = answering(update_ok()).await;
        let dir = cli::scratch(&format!("signs_{from:?}"));
        let ran = cli::output(command(
            &[
                "run",
                "--endpoint",
                &mock.uri(),
                "--cases",
                "2",
                "--seed",
                "3",
                "--only",
                NO_FIXTURES,
            ],
            from,
            &dir,
        ));
        // A 200 to a name that is too long diverges; it was judged, not refused.
        assert_eq!(ran.code, Some(1), "{from:?}\n{}", ran.dump());
        assert!(ran.stderr.contains(&from.start_line()), "{}", ran.dump());
        assert_no_secret_in_streams(&ran);
        let requests = mock.received_requests().await.expect("recording is on");
        assert!(requests.len() >= 2, "{from:?}: {} requests", requests.len());
        let today = time::OffsetDateTime::now_utc().date();
        for request in &requests {
            let date = &header(request, "x-amz-date")[..8];
            let scope = format!("Credential={KEY_ID}/{date}/{REGION}/iam/aws4_request,");
            let authorization = header(request, "authorization");
            assert!(authorization.contains(&scope), "{from:?}: {authorization}");
            assert_eq!(header(request, "x-amz-security-token"), TOKEN, "{from:?}");
            let signed_on = time::Date::parse(
                date,
                time::macros::format_description!("[year][month][day]"),
            )
            .expect("a SigV4 date");
            assert!(
                signed_on == today || signed_on.next_day() == Some(today),
                "{from:?}: signed on {signed_on}, today is {today}"
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A profile the harness cannot sign with stops the run before anything is
/// sent, exit 2, with a message that names the profile and no value.
#[test]
fn a_profile_it_cannot_use_is_a_usage_error_that_shows_no_value() {
    let dir = cli::scratch("unusable_profiles");
    let credentials = format!(
        "[half]\naws_access_key_id = {KEY_ID}\naws_session_token = {TOKEN}\n\
         [secret-only]\naws_secret_access_key = {SECRET}\n"
    );
    let config = "[profile sso]\nsso_session = corp\nsso_account_id = 123456789012\n\
                  sso_role_name = ReadOnly\nregion = eu-west-1\n\
                  [profile assumed]\nrole_arn = arn:aws:iam::123456789012:role/ci\n\
                  source_profile = half\n";
    for (profile, mentions) in [
        ("missing", "profile missing, which is in neither"),
        (
            "half",
            "profile half has aws_access_key_id but no aws_secret_access_key",
        ),
        (
            "secret-only",
            "has aws_secret_access_key but no aws_access_key_id",
        ),
        (
            "sso",
            "eval \"$(aws configure export-credentials --profile sso --format env)\"",
        ),
        (
            "assumed",
            "profile assumed gets its credentials from role_arn",
        ),
    ] {
        let mut cmd = cli::command(&[
            "run",
            "--endpoint",
            "http://127.0.0.1:9/",
            "--cases",
            "1",
            "--only",
            NO_FIXTURES,
        ]);
        profile_files(&mut cmd, &dir, &credentials, config);
        cmd.env("AWS_PROFILE", profile);
        let ran = cli::assert_usage(cmd, mentions);
        assert_no_secret_in_streams(&ran);
        assert!(!ran.stderr.contains(KEY_ID), "{}", ran.dump());
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Dummy credentials are for emulators: with `--allow-aws` and no credentials
/// anywhere, real AWS is refused before anything is sent, by `run` and `matrix`.
#[test]
fn real_aws_without_credentials_is_refused_before_anything_is_sent() {
    let dir = cli::scratch("aws_without_credentials");
    let baselines = dir.to_str().expect("UTF-8");
    for args in [
        &["run", "--endpoint", "https://iam.amazonaws.com/"][..],
        &[
            "matrix",
            "--target",
            "aws=https://iam.amazonaws.com/",
            "--baseline-dir",
            baselines,
        ][..],
    ] {
        let args = [
            args,
            &["--allow-aws", "--cases", "1", "--only", NO_FIXTURES],
        ]
        .concat();
        let ran = cli::assert_usage(cli::command(&args), "no AWS credentials found");
        assert!(
            !ran.stdout.contains(" checks: "),
            "no case may run\n{}",
            ran.dump()
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A `default` profile the harness cannot sign with, when AWS_PROFILE names
/// none, is no profile: an emulator is run with dummy credentials, and real
/// AWS is refused with the hint to export the credentials.
#[tokio::test(flavor = "multi_thread")]
async fn an_unusable_default_profile_leaves_dummy_credentials_for_emulators_only() {
    let server = Server::start(0, ServerConfig::default())
        .await
        .expect("a server");
    let dir = cli::scratch("unusable_default");
    let config = "[default]\nsso_session = corp\nregion = eu-west-1\n";
    let url = server.url().to_string();
    let with_default = |endpoint: &str, allow_aws: &[&str]| {
        let args = [
            &[
                "run",
                "--endpoint",
                endpoint,
                "--cases",
                "1",
                "--only",
                NO_FIXTURES,
            ][..],
            allow_aws,
        ]
        .concat();
        let mut cmd = cli::command(&args);
        profile_files(&mut cmd, &dir, "", config);
        cmd
    };
    let ran = cli::output(with_default(&url, &[]));
    assert_eq!(ran.code, Some(0), "{}", ran.dump());
    assert!(
        ran.stderr.contains("in eu-west-1 with dummy credentials"),
        "{}",
        ran.dump()
    );
    cli::assert_usage(
        with_default("https://iam.amazonaws.com/", &["--allow-aws"]),
        "aws configure export-credentials",
    );
    let _ = std::fs::remove_dir_all(dir);
}
