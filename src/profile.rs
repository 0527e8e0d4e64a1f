//! Credentials, region and endpoint, found where the AWS CLI and SDKs find them.
//!
//! A run against real AWS should sign as the identity `aws` would use, without
//! asking for secrets in a new place: the environment first, then a profile of
//! the shared credentials and config files. Only static keys are read. A
//! profile that gets its credentials another way (SSO, an assumed role, web
//! identity, an external process) is refused with a hint to export them:
//! signing with some other key than the one `aws` would use is worse than not
//! running at all. When nothing is found (the `default` profile of such a
//! kind counts as nothing, unless AWS_PROFILE names it), dummy credentials sign
//! for local emulators; real AWS refuses them, and [`Target::guard`] refuses
//! before anything is sent.
//!
//! Everything reads an [`Env`] (the variables and the home directory), never
//! the process environment directly, so tests need not change their own.
//! Errors name variables, profiles, files and keys, never a value.
//!
//! [`Target::guard`]: crate::Target::guard

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::RunError;
use crate::wire::{CredentialSource, Credentials};

/// The region when nothing names one.
pub const DEFAULT_REGION: &str = "us-east-1";

/// The variables the resolver reads.
const VARIABLES: [&str; 10] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL_IAM",
    "AWS_ENDPOINT_URL",
];

/// Profile keys that name a credential source other than static keys. The
/// first four come before static keys in the AWS tools' own order.
const OTHER_SOURCES: [&str; 5] = [
    "role_arn",
    "web_identity_token_file",
    "sso_session",
    "sso_start_url",
    "credential_process",
];

/// What the resolver reads: the AWS variables and the home directory. Not
/// `Debug`, since it holds secrets.
#[derive(Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
    home: Option<PathBuf>,
}

impl Env {
    /// The process's own variables and home directory.
    pub fn process() -> Env {
        Env {
            vars: VARIABLES
                .iter()
                .filter_map(|name| Some((name.to_string(), std::env::var(name).ok()?)))
                .collect(),
            home: std::env::home_dir(),
        }
    }

    /// Given variables and home directory.
    /// ```
    /// use iam_conformance::profile::{Env, resolve};
    /// let env = Env::new([("AWS_REGION", "eu-west-1")], None);
    /// assert_eq!(resolve(&env, None).unwrap().region, "eu-west-1");
    /// ```
    pub fn new<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
        home: Option<PathBuf>,
    ) -> Env {
        Env {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            home,
        }
    }

    /// A variable, unless it is unset or empty (the AWS tools ignore empty ones).
    fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The file a variable names (`~/` expanded), else `default` under the home.
    fn file(&self, variable: &str, default: &str) -> Option<PathBuf> {
        match self.var(variable) {
            Some(path) => match (path.strip_prefix("~/"), &self.home) {
                (Some(rest), Some(home)) => Some(home.join(rest)),
                _ => Some(PathBuf::from(path)),
            },
            None => self.home.as_ref().map(|h| h.join(".aws").join(default)),
        }
    }
}

/// How a run signs: with these credentials (they know their source), in this region.
#[derive(Clone, Debug)]
pub struct Signing {
    pub credentials: Credentials,
    pub region: String,
}

/// Credentials and region as the AWS tools find them. Credentials: the
/// environment's, else the profile's (`AWS_PROFILE`, else `default`), else
/// dummy ones. Region: `flag` (`--region`), `AWS_REGION`, `AWS_DEFAULT_REGION`,
/// the profile's `region`, else [`DEFAULT_REGION`]. The files are read only
/// when the environment leaves something open.
pub fn resolve(env: &Env, flag: Option<&str>) -> Result<Signing, RunError> {
    let from_env = environment_credentials(env)?;
    let named_region = [flag, env.var("AWS_REGION"), env.var("AWS_DEFAULT_REGION")]
        .into_iter()
        .flatten()
        .find(|r| !r.is_empty());
    let (credentials, profile) = match from_env {
        Some(c) if named_region.is_some() => (c, None),
        Some(c) => (c, Some(Profile::load(env)?)),
        None => {
            let p = Profile::load(env)?;
            (p.credentials()?.unwrap_or_else(Credentials::dummy), Some(p))
        }
    };
    let region = named_region
        .or_else(|| profile.as_ref().and_then(Profile::region))
        .unwrap_or(DEFAULT_REGION)
        .to_string();
    Ok(Signing {
        credentials,
        region,
    })
}

/// The IAM endpoint: `flag` (`--endpoint`), `AWS_ENDPOINT_URL_IAM`, then
/// `AWS_ENDPOINT_URL`; empty values do not count. `None`: the embedded server.
pub fn endpoint(env: &Env, flag: Option<&str>) -> Option<String> {
    [
        flag,
        env.var("AWS_ENDPOINT_URL_IAM"),
        env.var("AWS_ENDPOINT_URL"),
    ]
    .into_iter()
    .flatten()
    .find(|e| !e.is_empty())
    .map(str::to_string)
}

/// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), if set;
/// one without the other is an error.
pub(crate) fn environment_credentials(env: &Env) -> Result<Option<Credentials>, RunError> {
    let pair = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY");
    match (env.var(pair.0), env.var(pair.1)) {
        (Some(id), Some(secret)) => Ok(Some(Credentials::new(
            id,
            secret,
            env.var("AWS_SESSION_TOKEN"),
            CredentialSource::Environment,
        ))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(half_set(pair.0, pair.1)),
        (None, Some(_)) => Err(half_set(pair.1, pair.0)),
    }
}

fn half_set(set: &str, unset: &str) -> RunError {
    RunError::Usage(format!("{set} is set but {unset} is not"))
}

/// One INI section: lower-case keys, trimmed non-empty values.
type Section = HashMap<String, String>;

/// The profile the environment names, as the two files hold it.
struct Profile {
    name: String,
    /// Whether AWS_PROFILE named it (a missing `default` is no error).
    named: bool,
    credentials_file: Option<PathBuf>,
    config_file: Option<PathBuf>,
    /// `[name]` of the credentials file.
    in_credentials: Option<Section>,
    /// `[profile name]` of the config file (`[default]` for `default`).
    in_config: Option<Section>,
}

impl Profile {
    fn load(env: &Env) -> Result<Profile, RunError> {
        let named = env.var("AWS_PROFILE");
        let name = named.unwrap_or("default").to_string();
        let credentials_file = env.file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
        let config_file = env.file("AWS_CONFIG_FILE", "config");
        let mut in_credentials = read(credentials_file.as_deref())?;
        let mut in_config = read(config_file.as_deref())?;
        let config_names = if name == "default" {
            vec!["profile default".to_string(), "default".to_string()]
        } else {
            vec![format!("profile {name}")]
        };
        Ok(Profile {
            in_credentials: in_credentials.remove(&name),
            in_config: config_names.iter().find_map(|n| in_config.remove(n)),
            name,
            named: named.is_some(),
            credentials_file,
            config_file,
        })
    }

    /// The profile's sections: the credentials file's first.
    fn sections(&self) -> impl Iterator<Item = &Section> {
        [&self.in_credentials, &self.in_config]
            .into_iter()
            .flatten()
    }

    /// The profile's static keys, all from the first section that has one
    /// (as the AWS tools take them); `None` when the profile is `default`, not
    /// named, and holds none.
    fn credentials(&self) -> Result<Option<Credentials>, RunError> {
        let name = &self.name;
        if self.in_credentials.is_none() && self.in_config.is_none() {
            return if self.named {
                Err(RunError::Usage(format!(
                    "AWS_PROFILE names profile {name}, which is in neither {} nor {}",
                    shown(self.credentials_file.as_deref()),
                    shown(self.config_file.as_deref())
                )))
            } else {
                Ok(None)
            };
        }
        let (id, secret) = ("aws_access_key_id", "aws_secret_access_key");
        let other = OTHER_SOURCES
            .iter()
            .find(|k| self.sections().any(|s| s.contains_key(**k)));
        let keys = self
            .sections()
            .find(|s| s.contains_key(id) || s.contains_key(secret));
        match (other, keys) {
            (Some(key), _) if *key != "credential_process" => self.unsupported(key),
            (_, Some(keys)) => match (keys.get(id), keys.get(secret)) {
                (Some(key_id), Some(secret_key)) => Ok(Some(Credentials::new(
                    key_id,
                    secret_key,
                    keys.get("aws_session_token").map(String::as_str),
                    CredentialSource::Profile(name.clone()),
                ))),
                (Some(_), None) => Err(self.incomplete(id, secret)),
                (None, _) => Err(self.incomplete(secret, id)),
            },
            (Some(key), None) => self.unsupported(key),
            (None, None) if self.named => Err(RunError::Usage(format!(
                "profile {name} has neither {id} nor {secret} (in {} or {})",
                shown(self.credentials_file.as_deref()),
                shown(self.config_file.as_deref())
            ))),
            (None, None) => Ok(None),
        }
    }

    /// A profile AWS_PROFILE names is an error; the `default` one, when the
    /// user named none, is as good as no profile: a run against an emulator
    /// needs no real credentials, and one against AWS is refused without them.
    fn unsupported(&self, key: &str) -> Result<Option<Credentials>, RunError> {
        let name = &self.name;
        if !self.named {
            return Ok(None);
        }
        Err(RunError::Usage(format!(
            "profile {name} gets its credentials from {key}, which iam-conformance does not \
             support: export them first, e.g. \
             eval \"$(aws configure export-credentials --profile {name} --format env)\""
        )))
    }

    fn incomplete(&self, has: &str, lacks: &str) -> RunError {
        RunError::Usage(format!("profile {} has {has} but no {lacks}", self.name))
    }

    /// The profile's region: the config file's only, as the AWS tools read it.
    fn region(&self) -> Option<&str> {
        self.in_config
            .as_ref()
            .and_then(|s| s.get("region"))
            .map(String::as_str)
    }
}

fn shown(path: Option<&Path>) -> String {
    path.map_or_else(
        || "(no home directory)".to_string(),
        |p| p.display().to_string(),
    )
}

/// The sections of an INI file; a file that does not exist has none.
fn read(path: Option<&Path>) -> Result<HashMap<String, Section>, RunError> {
    let Some(path) = path else {
        return Ok(HashMap::new());
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => {
            return Err(RunError::Usage(format!(
                "failed to read {}: {e}",
                path.display()
            )));
        }
    };
    parse(&text).map_err(|line| {
        RunError::Usage(format!(
            "{} line {line}: expected [section] or key = value",
            path.display()
        ))
    })
}

/// Parses the INI dialect of the AWS files: `[section]` headers (inner blanks
/// collapsed, so `[profile  dev]` is `profile dev`), `key = value` or
/// `key: value` (keys lower-cased, values trimmed, empty values dropped), whole-line
/// comments (`#`, `;`). Indented lines continue the key above (nested settings such
/// as `s3 =`), which no key read here uses: they are skipped. A later section
/// or key of the same name wins. The error is the 1-based line that is none of
/// these; it never quotes the line, which may hold a secret.
fn parse(text: &str) -> Result<HashMap<String, Section>, usize> {
    let mut sections: HashMap<String, Section> = HashMap::new();
    let mut current: Option<String> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = header.split_whitespace().collect::<Vec<_>>().join(" ");
            sections.entry(name.clone()).or_default();
            current = Some(name);
            continue;
        }
        if raw.starts_with(char::is_whitespace) && current.is_some() {
            continue;
        }
        let split = line.find(['=', ':']).ok_or(n + 1)?;
        let section = current.as_ref().ok_or(n + 1)?;
        let key = line[..split].trim().to_ascii_lowercase();
        let value = line[split + 1..].trim();
        if key.is_empty() {
            return Err(n + 1);
        }
        let entries = sections.get_mut(section).expect("its header made it");
        if value.is_empty() {
            entries.remove(&key);
        } else {
            entries.insert(key, value.to_string());
        }
    }
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzz-SECRET";
    const TOKEN: &str = "FwoGZXIvYXdzEXAMPLE-TOKEN==";

    /// A home directory of this test's own, with these files under `.aws/`.
    struct Home(PathBuf);

    impl Home {
        fn new(test: &str, files: &[(&str, &str)]) -> Home {
            let dir = std::env::temp_dir().join(format!(
                "iam-conformance-profile-{}-{test}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join(".aws")).expect("a scratch home");
            for (name, text) in files {
                std::fs::write(dir.join(".aws").join(name), text).expect("a profile file");
            }
            Home(dir)
        }

        fn env(&self, vars: &[(&str, &str)]) -> Env {
            Env::new(vars.iter().copied(), Some(self.0.clone()))
        }
    }

    impl Drop for Home {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn usage(result: Result<Signing, RunError>) -> String {
        match result {
            Err(RunError::Usage(message)) => {
                assert!(!message.contains(SECRET) && !message.contains(TOKEN));
                message
            }
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn the_parser_reads_the_aws_dialect() {
        let text = "# top comment\n\
                    [default]\n\
                    aws_access_key_id=AKIDDEFAULT\n\
                    \n\
                    [ profile   dev ]\n\
                    ; a comment\n\
                    AWS_Secret_Access_Key :  a/b+c=  \n\
                    region = eu-west-1\n\
                    s3 =\n    max_concurrent_requests = 20\n\
                    role_arn = arn:aws:iam::123456789012:role/x\n\
                    empty =\n";
        let sections = parse(text).expect("it parses");
        assert_eq!(sections["default"]["aws_access_key_id"], "AKIDDEFAULT");
        let dev = &sections["profile dev"];
        assert_eq!(dev["aws_secret_access_key"], "a/b+c=");
        assert_eq!(dev["region"], "eu-west-1");
        assert_eq!(dev["role_arn"], "arn:aws:iam::123456789012:role/x");
        assert!(!dev.contains_key("max_concurrent_requests"));
        assert!(!dev.contains_key("s3") && !dev.contains_key("empty"));
        assert_eq!(parse("[a]\nnot a pair\n"), Err(2));
        assert_eq!(parse("key = before any section\n"), Err(1));
        assert_eq!(parse("[a]\n= value\n"), Err(2));
    }

    #[test]
    fn the_environment_comes_first_and_is_redacted() {
        let home = Home::new(
            "env_first",
            &[(
                "credentials",
                "[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = filesecret\n",
            )],
        );
        let signing = resolve(
            &home.env(&[
                ("AWS_ACCESS_KEY_ID", "AKIDENV"),
                ("AWS_SECRET_ACCESS_KEY", SECRET),
                ("AWS_SESSION_TOKEN", TOKEN),
            ]),
            None,
        )
        .expect("it resolves");
        let c = &signing.credentials;
        assert_eq!(c.source(), &CredentialSource::Environment);
        assert_eq!(c.secrets(), [SECRET, TOKEN]);
        let shown = format!("{signing:?}");
        assert!(!shown.contains(SECRET) && !shown.contains(TOKEN), "{shown}");
        assert_eq!(signing.region, DEFAULT_REGION);
    }

    #[test]
    fn half_of_the_environment_pair_is_an_error() {
        let home = Home::new("half_env", &[]);
        let message = usage(resolve(
            &home.env(&[("AWS_SECRET_ACCESS_KEY", SECRET)]),
            None,
        ));
        assert!(message.contains("AWS_ACCESS_KEY_ID is not"), "{message}");
        let message = usage(resolve(&home.env(&[("AWS_ACCESS_KEY_ID", "AKID")]), None));
        assert!(
            message.contains("AWS_SECRET_ACCESS_KEY is not"),
            "{message}"
        );
    }

    #[test]
    fn a_named_profile_comes_from_the_credentials_file_then_the_config_file() {
        let home = Home::new(
            "named",
            &[
                (
                    "credentials",
                    &format!(
                        "[dev]\naws_access_key_id = AKIDDEV\naws_secret_access_key = {SECRET}\n\
                         aws_session_token = {TOKEN}\n\
                         [split]\naws_access_key_id = AKIDSPLIT\naws_secret_access_key = {SECRET}\n"
                    ),
                ),
                (
                    "config",
                    &format!(
                        "[profile dev]\nregion = eu-central-1\n\
                         [default]\nregion = ap-south-1\n\
                         [profile cfg]\naws_access_key_id = AKIDCFG\naws_secret_access_key = {SECRET}\n\
                         aws_session_token = {TOKEN}\n\
                         [profile split]\naws_session_token = {TOKEN}\n"
                    ),
                ),
            ],
        );
        let profile = |name: &str| {
            let signing = resolve(&home.env(&[("AWS_PROFILE", name)]), None)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                signing.credentials.source(),
                &CredentialSource::Profile(name.into())
            );
            signing
        };
        let dev = profile("dev");
        assert_eq!(dev.credentials.secrets(), [SECRET, TOKEN]);
        assert_eq!(dev.region, "eu-central-1");
        assert_eq!(profile("cfg").credentials.secrets(), [SECRET, TOKEN]);
        // The keys and their token come from one file, as in the AWS tools.
        assert_eq!(profile("split").credentials.secrets(), [SECRET]);
        // The default profile has a region and no keys: dummy credentials.
        let default = resolve(&home.env(&[]), None).expect("default resolves");
        assert_eq!(default.credentials.source(), &CredentialSource::Dummy);
        assert_eq!(default.region, "ap-south-1");
    }

    #[test]
    fn the_region_is_the_flag_then_the_variables_then_the_profile() {
        let home = Home::new("region", &[("config", "[default]\nregion = ap-south-1\n")]);
        let region = |vars: &[(&str, &str)], flag| resolve(&home.env(vars), flag).unwrap().region;
        let both = [
            ("AWS_REGION", "eu-west-3"),
            ("AWS_DEFAULT_REGION", "eu-north-1"),
        ];
        assert_eq!(region(&both, Some("sa-east-1")), "sa-east-1");
        assert_eq!(region(&both, None), "eu-west-3");
        assert_eq!(region(&both[1..], None), "eu-north-1");
        assert_eq!(region(&[("AWS_REGION", "")], Some("")), "ap-south-1");
        let bare = Home::new("region_bare", &[]);
        assert_eq!(
            resolve(&bare.env(&[]), None).unwrap().region,
            DEFAULT_REGION
        );
        assert_eq!(
            resolve(&Env::default(), None).unwrap().region,
            DEFAULT_REGION
        );
    }

    #[test]
    fn the_file_variables_name_the_files() {
        let home = Home::new("file_vars", &[]);
        let elsewhere = home.0.join("elsewhere");
        std::fs::write(
            &elsewhere,
            format!("[ci]\naws_access_key_id = AKIDCI\naws_secret_access_key = {SECRET}\n"),
        )
        .unwrap();
        std::fs::write(home.0.join("conf"), "[profile ci]\nregion = us-west-2\n").unwrap();
        let signing = resolve(
            &home.env(&[
                ("AWS_PROFILE", "ci"),
                ("AWS_SHARED_CREDENTIALS_FILE", elsewhere.to_str().unwrap()),
                ("AWS_CONFIG_FILE", "~/conf"),
            ]),
            None,
        )
        .expect("ci resolves");
        assert_eq!(
            signing.credentials.source(),
            &CredentialSource::Profile("ci".into())
        );
        assert_eq!(signing.region, "us-west-2");
    }

    #[test]
    fn a_missing_profile_names_itself_and_the_files() {
        let home = Home::new("missing", &[("credentials", "[other]\n")]);
        let message = usage(resolve(&home.env(&[("AWS_PROFILE", "nope")]), None));
        assert!(message.contains("profile nope"), "{message}");
        assert!(message.contains(".aws/credentials"), "{message}");
        assert!(message.contains(".aws/config"), "{message}");
        // With credentials in the environment the profile is not needed.
        let env = home.env(&[
            ("AWS_PROFILE", "nope"),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
            ("AWS_REGION", "eu-west-1"),
        ]);
        assert!(resolve(&env, None).is_ok());
    }

    #[test]
    fn a_profile_without_a_secret_is_an_error_without_values() {
        let home = Home::new(
            "no_secret",
            &[(
                "credentials",
                &format!(
                    "[half]\naws_access_key_id = AKIDHALF\naws_session_token = {TOKEN}\n[keyless]\nregion = x\n"
                ),
            )],
        );
        let message = usage(resolve(&home.env(&[("AWS_PROFILE", "half")]), None));
        assert!(
            message.contains("profile half has aws_access_key_id but no aws_secret_access_key"),
            "{message}"
        );
        assert!(!message.contains("AKIDHALF"), "{message}");
        let message = usage(resolve(&home.env(&[("AWS_PROFILE", "keyless")]), None));
        assert!(
            message.contains("profile keyless has neither aws_access_key_id"),
            "{message}"
        );
    }

    #[test]
    fn other_credential_sources_are_refused_with_the_export_hint() {
        let config = format!(
            "[profile sso]\nsso_session = corp\nsso_account_id = 1\n\
             [profile role]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = default\n\
             aws_access_key_id = AKID\naws_secret_access_key = {SECRET}\n\
             [profile web]\nweb_identity_token_file = /t\n\
             [profile proc]\ncredential_process = /bin/creds\n\
             [profile both]\ncredential_process = /bin/creds\n\
             aws_access_key_id = AKIDBOTH\naws_secret_access_key = {SECRET}\n"
        );
        let home = Home::new("other_sources", &[("config", &config)]);
        for (name, key) in [
            ("sso", "sso_session"),
            ("role", "role_arn"),
            ("web", "web_identity_token_file"),
            ("proc", "credential_process"),
        ] {
            let message = usage(resolve(&home.env(&[("AWS_PROFILE", name)]), None));
            assert!(
                message.contains(&format!("profile {name} gets its credentials from {key}")),
                "{message}"
            );
            assert!(
                message.contains(&format!(
                    "aws configure export-credentials --profile {name} --format env"
                )),
                "{message}"
            );
        }
        // The default profile of such a kind is no profile, unless named.
        let sso = Home::new(
            "default_sso",
            &[("config", "[default]\nsso_session = corp\n")],
        );
        let implicit = resolve(&sso.env(&[]), None).expect("an implicit default resolves");
        assert_eq!(implicit.credentials.source(), &CredentialSource::Dummy);
        let message = usage(resolve(&sso.env(&[("AWS_PROFILE", "default")]), None));
        assert!(message.contains("--profile default"), "{message}");
        // Static keys come before a credential process, as in the AWS tools.
        let both = resolve(&home.env(&[("AWS_PROFILE", "both")]), None).expect("both resolves");
        assert_eq!(
            both.credentials.source(),
            &CredentialSource::Profile("both".into())
        );
    }

    #[test]
    fn a_profile_file_that_does_not_parse_is_named_without_its_text() {
        let home = Home::new(
            "unparsable",
            &[("credentials", &format!("[default]\n{SECRET}\n"))],
        );
        let message = usage(resolve(&home.env(&[]), None));
        assert!(message.contains("credentials line 2"), "{message}");
    }

    #[test]
    fn the_endpoint_is_the_flag_then_the_iam_variable_then_the_general_one() {
        let env = Env::new(
            [
                ("AWS_ENDPOINT_URL_IAM", "http://iam:1/"),
                ("AWS_ENDPOINT_URL", "http://all:2/"),
            ],
            None,
        );
        assert_eq!(
            endpoint(&env, Some("http://flag:3/")).as_deref(),
            Some("http://flag:3/")
        );
        assert_eq!(endpoint(&env, None).as_deref(), Some("http://iam:1/"));
        assert_eq!(endpoint(&env, Some("")).as_deref(), Some("http://iam:1/"));
        let general = Env::new(
            [
                ("AWS_ENDPOINT_URL_IAM", ""),
                ("AWS_ENDPOINT_URL", "http://all:2/"),
            ],
            None,
        );
        assert_eq!(endpoint(&general, None).as_deref(), Some("http://all:2/"));
        assert_eq!(endpoint(&Env::default(), None), None);
    }
}
