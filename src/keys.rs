//! SSH key material: parse what a client uploads, fingerprint it the way IAM
//! does, and convert between the SSH and PEM encodings.
//!
//! IAM's fingerprint is the MD5 of the decoded OpenSSH key blob (the base64
//! field of an `ssh-rsa` line), written as colon-separated lower-case hex pairs:
//! `ssh-keygen -l -E md5` without its `MD5:` prefix. The spec recomputed the
//! documented sample with exactly this rule, and the tests below do it again.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest, Md5};
use rsa::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use ssh_key::public::KeyData;

/// The smallest RSA modulus IAM accepts.
pub const MIN_RSA_BITS: usize = 2048;

/// A key IAM would accept: RSA, at least 2048 bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RsaKey {
    /// The OpenSSH wire-format blob (RFC 4253).
    pub blob: Vec<u8>,
    pub bits: usize,
}

/// Why a key body is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// An `ssh-rsa` line or PEM block that does not parse (`InvalidPublicKey`).
    #[error("malformed public key: {0}")]
    Malformed(String),
    /// RSA below the minimum (`InvalidPublicKey`).
    #[error("RSA key of {0} bits, below {MIN_RSA_BITS}")]
    TooShort(usize),
    /// A well-formed key of another algorithm (ed25519, ECDSA).
    #[error("algorithm {0} is not ssh-rsa")]
    NotRsa(String),
    /// Neither an OpenSSH line nor a PEM public key.
    #[error("unrecognised public key encoding")]
    Unrecognized,
}

impl RsaKey {
    /// Parses an upload body: an `ssh-rsa` OpenSSH line (comment allowed) or
    /// an X.509 SubjectPublicKeyInfo PEM block.
    pub fn parse(body: &str) -> Result<RsaKey, KeyError> {
        let trimmed = body.trim();
        if trimmed.starts_with("-----BEGIN PUBLIC KEY-----") {
            let key = rsa::RsaPublicKey::from_public_key_pem(trimmed)
                .map_err(|e| KeyError::Malformed(format!("PEM: {e}")))?;
            let ssh = ssh_key::public::RsaPublicKey::try_from(&key)
                .map_err(|e| KeyError::Malformed(format!("PEM: {e}")))?;
            return RsaKey::from_key_data(KeyData::Rsa(ssh));
        }
        if !trimmed.starts_with("ssh-") && !trimmed.starts_with("ecdsa-") {
            return Err(KeyError::Unrecognized);
        }
        let key = ssh_key::PublicKey::from_openssh(trimmed)
            .map_err(|e| KeyError::Malformed(format!("OpenSSH: {e}")))?;
        RsaKey::from_key_data(key.key_data().clone())
    }

    fn from_key_data(data: KeyData) -> Result<RsaKey, KeyError> {
        let KeyData::Rsa(rsa) = &data else {
            return Err(KeyError::NotRsa(data.algorithm().to_string()));
        };
        let modulus = rsa.n.as_positive_bytes().unwrap_or_default();
        let bits = match modulus.iter().position(|b| *b != 0) {
            Some(i) => (modulus.len() - i) * 8 - modulus[i].leading_zeros() as usize,
            None => 0,
        };
        if bits < MIN_RSA_BITS {
            return Err(KeyError::TooShort(bits));
        }
        let blob = ssh_key::PublicKey::new(data, "")
            .to_bytes()
            .map_err(|e| KeyError::Malformed(e.to_string()))?;
        Ok(RsaKey { blob, bits })
    }

    /// IAM's fingerprint: MD5 of the blob, colon hex.
    pub fn fingerprint(&self) -> String {
        md5_colon_hex(&self.blob)
    }

    /// The body as GetSSHPublicKey returns it with `Encoding=SSH`: type and
    /// base64 blob, the comment and line breaks stripped.
    pub fn to_ssh(&self) -> String {
        format!("ssh-rsa {}", STANDARD.encode(&self.blob))
    }

    /// The body as GetSSHPublicKey returns it with `Encoding=PEM`.
    pub fn to_pem(&self) -> String {
        let key = ssh_key::PublicKey::from_bytes(&self.blob).expect("a blob this type made parses");
        let KeyData::Rsa(ssh) = key.key_data() else {
            unreachable!("RsaKey holds only RSA blobs")
        };
        rsa::RsaPublicKey::try_from(ssh)
            .and_then(|k| {
                k.to_public_key_pem(LineEnding::LF)
                    .map_err(|_| ssh_key::Error::FormatEncoding)
            })
            .expect("an RSA key IAM accepts encodes as PEM")
    }
}

/// Colon-separated lower-case hex of an MD5 digest.
pub fn md5_colon_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Recomputes a fingerprint from a body a target returned (SSH or PEM).
pub fn fingerprint_of(body: &str) -> Option<String> {
    RsaKey::parse(body).ok().map(|k| k.fingerprint())
}

/// Key material kept in `corpus/keys/`, made once with ssh-keygen and openssl,
/// by file name.
const MATERIAL: &[(&str, &str)] = &[
    ("rsa3072.pub", include_str!("../corpus/keys/rsa3072.pub")),
    ("rsa4096.pub", include_str!("../corpus/keys/rsa4096.pub")),
    ("rsa1024.pub", include_str!("../corpus/keys/rsa1024.pub")),
    ("ed25519.pub", include_str!("../corpus/keys/ed25519.pub")),
    ("ecdsa256.pub", include_str!("../corpus/keys/ecdsa256.pub")),
    (
        "rsa2048-1.pkcs8.pem",
        include_str!("../corpus/keys/rsa2048-1.pkcs8.pem"),
    ),
    (
        "rsa2048-1.pkcs1.pem",
        include_str!("../corpus/keys/rsa2048-1.pkcs1.pem"),
    ),
    (
        "rsa2048-1.rfc4716",
        include_str!("../corpus/keys/rsa2048-1.rfc4716"),
    ),
    (
        "x509-rsa2048.crt",
        include_str!("../corpus/keys/x509-rsa2048.crt"),
    ),
];

/// A file of `corpus/keys/` by name.
///
/// # Panics
/// On a name that is not in the corpus (a programming error in the suite).
pub fn material(name: &str) -> &'static str {
    MATERIAL
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, body)| *body)
        .unwrap_or_else(|| panic!("corpus/keys/{name} is not in the key corpus"))
}

/// The RSA-2048 public keys kept in `corpus/keys/`, made once with ssh-keygen.
pub fn corpus_keys() -> &'static [&'static str] {
    static KEYS: OnceLock<Vec<&'static str>> = OnceLock::new();
    KEYS.get_or_init(|| {
        [
            include_str!("../corpus/keys/rsa2048-1.pub"),
            include_str!("../corpus/keys/rsa2048-2.pub"),
            include_str!("../corpus/keys/rsa2048-3.pub"),
            include_str!("../corpus/keys/rsa2048-4.pub"),
            include_str!("../corpus/keys/rsa2048-5.pub"),
            include_str!("../corpus/keys/rsa2048-6.pub"),
            include_str!("../corpus/keys/rsa2048-7.pub"),
            include_str!("../corpus/keys/rsa2048-8.pub"),
        ]
        .into_iter()
        .map(str::trim_end)
        .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fingerprint and PEM as `ssh-keygen -l -E md5` and `ssh-keygen -e -m PKCS8` give them.
    const KEYGEN_MD5: &str = "a6:79:88:72:82:28:40:88:ff:11:1b:9e:a9:62:fe:65";
    const KEYGEN_PEM: &str = include_str!("../corpus/keys/rsa2048-1.pkcs8.pem");

    #[test]
    fn fingerprint_matches_ssh_keygen() {
        let key = RsaKey::parse(corpus_keys()[0]).unwrap();
        assert_eq!(key.fingerprint(), KEYGEN_MD5);
        assert_eq!(key.bits, 2048);
        assert_eq!(key.fingerprint().len(), 47);
        assert_eq!(fingerprint_of(KEYGEN_PEM).as_deref(), Some(KEYGEN_MD5));
    }

    #[test]
    fn ssh_and_pem_round_trip_with_the_same_fingerprint() {
        let key = RsaKey::parse(corpus_keys()[0]).unwrap();
        assert_eq!(key.to_pem(), KEYGEN_PEM);
        assert_eq!(RsaKey::parse(&key.to_pem()).unwrap(), key);
        assert_eq!(RsaKey::parse(&key.to_ssh()).unwrap(), key);
        assert!(corpus_keys()[0].starts_with(&key.to_ssh()));
        assert!(!key.to_ssh().contains("iam-conformance"));
    }

    #[test]
    fn refusals_name_their_class() {
        let parse = |name| RsaKey::parse(material(name));
        assert_eq!(RsaKey::parse("hello"), Err(KeyError::Unrecognized));
        assert!(matches!(
            RsaKey::parse("ssh-rsa AAAA!!"),
            Err(KeyError::Malformed(_))
        ));
        assert_eq!(parse("rsa1024.pub"), Err(KeyError::TooShort(1024)));
        assert_eq!(
            parse("ed25519.pub"),
            Err(KeyError::NotRsa("ssh-ed25519".into()))
        );
        assert!(matches!(parse("ecdsa256.pub"), Err(KeyError::NotRsa(_))));
        for unrecognized in [
            "rsa2048-1.pkcs1.pem",
            "rsa2048-1.rfc4716",
            "x509-rsa2048.crt",
        ] {
            assert_eq!(
                parse(unrecognized),
                Err(KeyError::Unrecognized),
                "{unrecognized}"
            );
        }
        assert_eq!(parse("rsa3072.pub").unwrap().bits, 3072);
        assert_eq!(parse("rsa4096.pub").unwrap().bits, 4096);
        let relabelled = corpus_keys()[0].replacen("ssh-rsa", "ssh-ed25519", 1);
        assert!(matches!(
            RsaKey::parse(&relabelled),
            Err(KeyError::Malformed(_))
        ));
    }

    #[test]
    fn corpus_keys_are_distinct_rsa_2048() {
        let keys = corpus_keys();
        assert_eq!(keys.len(), 8);
        let mut prints: Vec<_> = keys
            .iter()
            .map(|k| RsaKey::parse(k).unwrap().fingerprint())
            .collect();
        prints.sort();
        prints.dedup();
        assert_eq!(prints.len(), 8);
    }
}
