//! The suite as `cargo test` runs it, one test per case class:
//!
//! - `conformance::<class>` runs the class against the embedded reference
//!   server, or against `IAM_CONFORMANCE_ENDPOINT` when it is set (a vendor's
//!   CI; `IAM_CONFORMANCE_TARGET_KIND` and `IAM_CONFORMANCE_BASELINE` go with
//!   it), and fails on any divergence the baseline does not know.
//! - `snapshot::<class>` checks the embedded server's answer to the class's
//!   simplest case against its golden snapshot in `snapshots/`, and the
//!   class's declared provenance against the oracle's. A class recorded from
//!   AWS (`corpus/recordings/<class>.json`, made by `iam-conformance record`)
//!   snapshots the recording instead, provenance `live`, and fails when the
//!   oracle answers otherwise than the recording.
//! - `regression::<target>/<class>--<check>` replays the shrunk case of a
//!   divergence once found on an emulator (`corpus/regressions/`) against the
//!   embedded server, which must pass every check of it.
//!
//! `IAM_CONFORMANCE_CASES` (default 100) and `IAM_CONFORMANCE_SEED` (default
//! fixed) tune the run. Accept new snapshots with `cargo insta review` (or
//! `INSTA_UPDATE=always cargo test`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use iam_conformance::runner::{CaseOutcome, SNAPSHOT_SEED, minimal_case, run_case};
use iam_conformance::snapshot::{expected, golden};
use iam_conformance::wire::Client;
use iam_conformance::{
    Baseline, CaseClass, Level, Regression, Run, Server, ServerConfig, Target, TargetKind, Verdict,
    catalogue, record, regression,
};
use libtest_mimic::{Arguments, Failed, Trial};
use tokio::runtime::Runtime;

fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn main() {
    let args = Arguments::from_args();
    let runtime = Arc::new(Runtime::new().expect("a tokio runtime"));
    let server = runtime
        .block_on(Server::start(0, ServerConfig::default()))
        .expect("the embedded server starts on 127.0.0.1");
    let embedded = Target::new(server.url(), TargetKind::Embedded);
    let target = match std::env::var("IAM_CONFORMANCE_ENDPOINT") {
        Ok(endpoint) => {
            let kind = std::env::var("IAM_CONFORMANCE_TARGET_KIND")
                .ok()
                .map(|k| {
                    clap::ValueEnum::from_str(&k, true)
                        .expect("IAM_CONFORMANCE_TARGET_KIND is a target kind")
                })
                .unwrap_or(TargetKind::Generic);
            Target::new(
                endpoint.parse().expect("IAM_CONFORMANCE_ENDPOINT is a URL"),
                kind,
            )
        }
        Err(_) => embedded.clone(),
    };
    let baseline = Arc::new(match std::env::var("IAM_CONFORMANCE_BASELINE") {
        Ok(path) => Baseline::load(&PathBuf::from(path)).expect("IAM_CONFORMANCE_BASELINE loads"),
        Err(_) => Baseline::default(),
    });
    let cases: u32 = env("IAM_CONFORMANCE_CASES").unwrap_or(100);
    let seed: u64 = env("IAM_CONFORMANCE_SEED").unwrap_or(SNAPSHOT_SEED);

    let mut trials = Vec::new();
    for class in catalogue() {
        let (rt, target, baseline) = (runtime.clone(), target.clone(), baseline.clone());
        trials.push(Trial::test(
            format!("conformance::{}", class.id),
            move || conformance(&rt, class, target, &baseline, cases, seed),
        ));
        let (rt, target) = (runtime.clone(), embedded.clone());
        trials.push(Trial::test(format!("snapshot::{}", class.id), move || {
            snapshot(&rt, class, target, seed)
        }));
    }
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/regressions");
    for path in regression::files(&corpus).expect("corpus/regressions is readable") {
        let name = path
            .strip_prefix(&corpus)
            .expect("under the corpus")
            .with_extension("")
            .display()
            .to_string();
        let (rt, target) = (runtime.clone(), embedded.clone());
        trials.push(Trial::test(format!("regression::{name}"), move || {
            replay(&rt, &path, target)
        }));
    }
    let conclusion = libtest_mimic::run(&args, trials);
    drop(server);
    conclusion.exit();
}

fn conformance(
    rt: &Runtime,
    class: &CaseClass,
    target: Target,
    baseline: &Baseline,
    cases: u32,
    seed: u64,
) -> Result<(), Failed> {
    let report = rt
        .block_on(
            Run::against(target)
                .only(vec![class.id.to_string()])
                .cases(cases)
                .seed(seed)
                .baseline(baseline.clone())
                .execute(),
        )
        .map_err(|e| e.to_string())?;
    let entry = &report.classes[0];
    let new = report.new_divergences().count();
    if new > 0 || entry.verdict == Verdict::Error || report.summary.cases != u64::from(cases) {
        return Err(format!(
            "{:?} with {new} new divergence(s)\n{}",
            entry.verdict,
            report.render_console()
        )
        .into());
    }
    Ok(())
}

fn snapshot(
    rt: &Runtime,
    class: &'static CaseClass,
    target: Target,
    seed: u64,
) -> Result<(), Failed> {
    let recordings = Path::new(env!("CARGO_MANIFEST_DIR")).join(record::DIR);
    let recording = record::load(&recordings, class.id)?;
    // A recording's case is shrunk from the seed it was recorded with.
    let seed = recording
        .as_ref()
        .and_then(|r| r.recorded.as_ref())
        .map_or(seed, |r| r.seed);
    let client = Client::new(target, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    let case = minimal_case(class, seed);
    let run = rt.block_on(run_case(&client, &case, Level::Messages));
    match &run.outcome {
        CaseOutcome::Checked(checks) => {
            if let Some(c) = checks.iter().find(|c| c.mismatch.is_some()) {
                return Err(format!(
                    "the embedded server diverges on {}: {:?}",
                    c.check, c.mismatch
                )
                .into());
            }
        }
        other => return Err(format!("{other:?}").into()),
    }
    let observed = run
        .observed
        .as_ref()
        .ok_or("no request under test was sent")?;
    let declared = (class.codes, class.message);
    let predicted = (observed.prediction.codes, observed.prediction.message);
    // A sequence's steps have provenances of their own; its class declares the
    // recorded core. A live recording does not change what the class and the
    // oracle declare: it shows one case of the class, the oracle's rule covers
    // them all, so raising the rule to `live` is a decision for its author.
    if declared != predicted && case.sequence.is_empty() {
        return Err(format!(
            "{} declares provenance {declared:?}, the oracle says {predicted:?}",
            class.id
        )
        .into());
    }
    let view = expected(golden(class, &case, observed), recording)
        .map_err(|e| format!("{}: {e}", record::path(&recordings, class.id).display()))?;
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_yaml_snapshot!(class.id, view));
    Ok(())
}

fn replay(rt: &Runtime, path: &Path, target: Target) -> Result<(), Failed> {
    let regression = Regression::load(path)?;
    let client = Client::new(target, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    rt.block_on(regression.replay(&client)).map_err(|e| {
        format!(
            "{} (found on {}): the embedded server diverges\n{e}",
            path.display(),
            regression.found_on
        )
        .into()
    })
}
