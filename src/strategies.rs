//! Strategies for member values, valid and invalid, each named by what it breaks.
//!
//! AWS's `\w` is ASCII (Java), so every "valid" strategy here is ASCII, and a
//! non-ASCII letter is one of the ways a name is invalid. Character classes are
//! mixed with weights so that letters and digits dominate as in real names;
//! proptest's plain regex generation would pick `_` as often as `a-z`.

use proptest::prelude::*;
use proptest::string::string_regex;

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

#[cfg(test)]
mod tests {
    use super::*;
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
