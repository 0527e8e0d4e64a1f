//! Strategies for member values, valid and invalid, each named by what it breaks.
//!
//! AWS's `\w` is ASCII (Java), so every "valid" strategy here is ASCII, and a
//! non-ASCII letter is one of the ways a name is invalid. Character classes are
//! mixed with weights so that letters and digits dominate as in real names;
//! proptest's plain regex generation would pick `_` as often as `a-z`.

use base64::Engine;
use proptest::prelude::*;
use proptest::string::string_regex;

use crate::keys;

/// The punctuation the user-name pattern allows.
pub const USER_NAME_PUNCTUATION: &str = "+=,.@_-";

fn regex(re: &str) -> BoxedStrategy<String> {
    string_regex(re).expect("a valid generator regex").boxed()
}

/// One character allowed in a user name, mostly letters and digits.
fn user_name_char() -> impl Strategy<Value = char> {
    prop_oneof![
        8 => proptest::char::range('a', 'z'),
        4 => proptest::char::range('A', 'Z'),
        3 => proptest::char::range('0', '9'),
        2 => proptest::sample::select(USER_NAME_PUNCTUATION.chars().collect::<Vec<_>>()),
    ]
}

/// A user name that satisfies the model, of a length in `len`.
pub fn user_name(len: std::ops::RangeInclusive<usize>) -> BoxedStrategy<String> {
    proptest::collection::vec(user_name_char(), len)
        .prop_map(|chars| chars.into_iter().collect())
        .boxed()
}

/// The classes of characters a user name may not contain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forbidden {
    Space,
    Slash,
    NonAsciiLetter,
    Control,
    Punctuation,
}

/// One character of a forbidden class.
pub fn forbidden_char(class: Forbidden) -> BoxedStrategy<char> {
    match class {
        Forbidden::Space => Just(' ').boxed(),
        Forbidden::Slash => prop_oneof![Just('/'), Just('\\')].boxed(),
        Forbidden::NonAsciiLetter => proptest::sample::select(vec![
            'é', 'ü', 'ß', 'ñ', 'Ж', 'я', 'λ', 'Ω', '日', '本', 'ا', 'ก',
        ])
        .boxed(),
        Forbidden::Control => proptest::sample::select(vec![
            '\t', '\n', '\r', '\u{1}', '\u{7}', '\u{1b}', '\u{7f}', '\u{85}',
        ])
        .boxed(),
        Forbidden::Punctuation => {
            proptest::sample::select("!\"#$%&'()*:;<>?[]^`{|}~".chars().collect::<Vec<_>>()).boxed()
        }
    }
}

/// A name of at most 64 characters with one forbidden character somewhere.
pub fn user_name_with(class: Forbidden) -> BoxedStrategy<String> {
    (user_name(0..=31), forbidden_char(class), user_name(0..=32))
        .prop_map(|(a, c, b)| format!("{a}{c}{b}"))
        .boxed()
}

/// A key id of the form AWS issues: `APKA` and 16 upper-case base32 characters.
pub fn aws_key_id() -> BoxedStrategy<String> {
    regex("APKA[A-Z2-7]{16}")
}

/// A key id that satisfies the model (`[\w]+`, 20 to 128 characters).
pub fn key_id_of_len(len: std::ops::RangeInclusive<usize>) -> BoxedStrategy<String> {
    let (lo, hi) = (*len.start(), *len.end());
    regex(&format!("(?-u:[A-Z0-9]{{{lo},{hi}}})"))
}

/// A key id of valid length with one character outside `[\w]`.
pub fn key_id_with_forbidden_char() -> BoxedStrategy<String> {
    (
        regex("APKA[A-Z0-9]{8,12}"),
        proptest::sample::select(vec!['-', '.', ' ', '+', '/', '=', '@', ':', 'é', '!']),
        regex("[A-Z0-9]{8,12}"),
    )
        .prop_map(|(a, c, b)| format!("{a}{c}{b}"))
        .boxed()
}

/// A Status value outside the enum: another letter case of a valid one.
pub fn status_wrong_case() -> BoxedStrategy<String> {
    (
        proptest::sample::select(vec!["Active", "Inactive", "Expired"]),
        proptest::collection::vec(any::<bool>(), 8),
    )
        .prop_map(|(word, flips)| {
            word.chars()
                .zip(flips.iter().cycle())
                .enumerate()
                .map(|(i, (c, flip))| {
                    // Always flip the first letter so the result differs from the enum.
                    if i == 0 || *flip {
                        if c.is_uppercase() {
                            c.to_ascii_lowercase()
                        } else {
                            c.to_ascii_uppercase()
                        }
                    } else {
                        c
                    }
                })
                .collect()
        })
        .boxed()
}

/// A Status value that is another word altogether.
pub fn status_other_word() -> BoxedStrategy<String> {
    prop_oneof![
        proptest::sample::select(vec![
            "Enabled",
            "Disabled",
            "true",
            "false",
            "1",
            "0",
            "Active ",
            " Inactive",
            "Activ",
            "Deleted",
            "Pending",
        ])
        .prop_map(str::to_string),
        regex("[A-Za-z]{1,12}"),
    ]
    .prop_filter("not a valid status", |s| {
        !["Active", "Inactive", "Expired"].contains(&s.as_str())
    })
    .boxed()
}

/// A comment for an `ssh-rsa` line: none, a plain one, a user@host, or Latin-1.
pub fn comment() -> BoxedStrategy<String> {
    prop_oneof![
        Just(String::new()),
        regex("[a-z]{1,12}").prop_map(|c| format!(" {c}")),
        regex("[a-z]{1,8}@[a-z]{1,8}\\.example").prop_map(|c| format!(" {c}")),
        proptest::sample::select(vec![" clé", " Jürgen's key", " ñandú ©"])
            .prop_map(str::to_string),
    ]
    .boxed()
}

/// An `ssh-rsa` line IAM accepts: one of the corpus keys (2048, 3072, 4096 bits) with a comment.
pub fn rsa_line() -> BoxedStrategy<String> {
    let mut bodies: Vec<String> = keys::corpus_keys().iter().map(|k| blob_of(k)).collect();
    bodies.push(blob_of(keys::material("rsa3072.pub")));
    bodies.push(blob_of(keys::material("rsa4096.pub")));
    (proptest::sample::select(bodies), comment())
        .prop_map(|(blob, comment)| format!("ssh-rsa {blob}{comment}"))
        .boxed()
}

/// The base64 blob field of an OpenSSH line.
fn blob_of(line: &str) -> String {
    line.split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

fn corpus_blob() -> BoxedStrategy<Vec<u8>> {
    let blobs: Vec<Vec<u8>> = keys::corpus_keys()
        .iter()
        .map(|k| {
            base64::engine::general_purpose::STANDARD
                .decode(blob_of(k))
                .expect("corpus keys are base64")
        })
        .collect();
    proptest::sample::select(blobs).boxed()
}

/// A real RSA blob cut short, so the key no longer parses.
pub fn truncated_key() -> BoxedStrategy<String> {
    (corpus_blob(), 0.05f64..0.95)
        .prop_map(|(blob, keep)| {
            let cut = ((blob.len() as f64) * keep) as usize;
            format!(
                "ssh-rsa {}",
                base64::engine::general_purpose::STANDARD.encode(&blob[..cut])
            )
        })
        .boxed()
}

/// A real RSA blob under another algorithm's label.
pub fn relabelled_key() -> BoxedStrategy<String> {
    (
        proptest::sample::select(vec!["ssh-dss", "ssh-ed25519", "ecdsa-sha2-nistp256"]),
        proptest::sample::select(keys::corpus_keys().to_vec()),
    )
        .prop_map(|(label, line)| format!("{label} {}", blob_of(line)))
        .boxed()
}

/// An `ssh-rsa` line whose base64 has characters outside the alphabet.
pub fn bad_base64_key() -> BoxedStrategy<String> {
    (
        regex("[A-Za-z0-9+/]{8,60}"),
        regex("[!*#$%&?~]{1,3}"),
        regex("[A-Za-z0-9+/]{0,20}"),
    )
        .prop_map(|(a, bad, b)| format!("ssh-rsa AAAAB3NzaC1yc2E{a}{bad}{b}"))
        .boxed()
}

/// An authorized_keys line with an options prefix before the key type.
pub fn options_prefixed_key() -> BoxedStrategy<String> {
    (
        proptest::sample::select(vec![
            "no-pty",
            "command=\"/bin/true\"",
            "from=\"192.0.2.1\"",
            "restrict",
        ]),
        proptest::sample::select(keys::corpus_keys().to_vec()),
    )
        .prop_map(|(options, line)| format!("{options} {line}"))
        .boxed()
}

/// Text that is no key encoding at all.
pub fn garbage_key() -> BoxedStrategy<String> {
    regex("[A-Za-z0-9 .,:;=+/]{1,120}")
        .prop_filter("not a key prefix", |s| {
            let t = s.trim_start();
            !t.starts_with("ssh-") && !t.starts_with("ecdsa-") && !t.trim().is_empty()
        })
        .boxed()
}

/// A valid key line padded with a comment to more than 16384 characters.
pub fn oversized_key() -> BoxedStrategy<String> {
    (
        proptest::sample::select(keys::corpus_keys().to_vec()),
        16385usize..=17000,
    )
        .prop_map(|(line, len)| {
            let mut body = format!("{line} ");
            while body.chars().count() < len {
                body.push('x');
            }
            body
        })
        .boxed()
}

/// A valid key line with a character outside `[\t\n\r\u0020-\u00FF]` in its comment.
pub fn key_with_forbidden_char() -> BoxedStrategy<String> {
    (
        proptest::sample::select(keys::corpus_keys().to_vec()),
        proptest::sample::select(vec!['\u{1}', '\u{8}', '\u{1b}', '\u{100}', 'Ж', '€', '😀']),
    )
        .prop_map(|(line, c)| format!("{line} key{c}"))
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyError, RsaKey};
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    fn samples(s: BoxedStrategy<String>) -> Vec<String> {
        let mut runner = TestRunner::deterministic();
        (0..200)
            .map(|_| s.new_tree(&mut runner).unwrap().current())
            .collect()
    }

    #[test]
    fn valid_names_are_ascii_and_within_bounds() {
        let re = regex::Regex::new(r"^[A-Za-z0-9_+=,.@-]{1,64}$").unwrap();
        for s in samples(user_name(1..=64)) {
            assert!(re.is_match(&s), "{s:?}");
        }
    }

    #[test]
    fn forbidden_names_contain_their_class() {
        let re = regex::Regex::new(r"^[A-Za-z0-9_+=,.@-]+$").unwrap();
        for class in [
            Forbidden::Space,
            Forbidden::Slash,
            Forbidden::NonAsciiLetter,
            Forbidden::Control,
            Forbidden::Punctuation,
        ] {
            for s in samples(user_name_with(class)) {
                assert!(
                    !re.is_match(&s) && s.chars().count() <= 64,
                    "{class:?} {s:?}"
                );
            }
        }
    }

    #[test]
    fn statuses_are_never_valid() {
        for s in samples(status_wrong_case())
            .into_iter()
            .chain(samples(status_other_word()))
        {
            assert!(
                !["Active", "Inactive", "Expired"].contains(&s.as_str()),
                "{s}"
            );
        }
    }

    #[test]
    fn key_bodies_are_what_they_claim() {
        for s in samples(rsa_line()) {
            assert!(RsaKey::parse(&s).is_ok(), "{s}");
        }
        for s in samples(truncated_key())
            .into_iter()
            .chain(samples(relabelled_key()))
            .chain(samples(bad_base64_key()))
        {
            assert!(
                matches!(RsaKey::parse(&s), Err(KeyError::Malformed(_))),
                "{s}"
            );
        }
        for s in samples(garbage_key())
            .into_iter()
            .chain(samples(options_prefixed_key()))
        {
            assert_eq!(RsaKey::parse(&s), Err(KeyError::Unrecognized), "{s}");
        }
        for s in samples(oversized_key()) {
            assert!(s.chars().count() > 16384);
        }
        let re = regex::Regex::new("^[\t\n\r\u{20}-\u{ff}]+$").unwrap();
        for s in samples(key_with_forbidden_char()) {
            assert!(!re.is_match(&s), "{s:?}");
        }
    }

    #[test]
    fn key_ids_have_their_shape() {
        for s in samples(aws_key_id()) {
            assert!(s.len() == 20 && s.starts_with("APKA"), "{s}");
        }
        for s in samples(key_id_with_forbidden_char()) {
            assert!((20..=128).contains(&s.chars().count()), "{s}");
            assert!(!s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        }
    }
}
