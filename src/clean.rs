//! `iam-conformance clean`: remove what runs left behind, and nothing else.
//!
//! A user is removed only if it is the harness's by both marks a run gives
//! it: it lives under `/iam-conformance/<run-id>/` and its name begins
//! `iamc-<run-id>-` ([`ledger::harness_made`]). Candidates come from two
//! places: ListUsers under `/iam-conformance/` (what any run left, even one
//! whose ledger is lost), and the ledgers on this machine for this endpoint
//! (each looked up with GetUser, for a target whose ListUsers ignores the
//! path or is missing). A ledger whose users are all gone is removed.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use crate::ledger::{self, LedgerFile, RunId};
use crate::runner::{delete_user, text_at};
use crate::spec::{API_VERSION, Operation};
use crate::wire::{Client, Request, TransportError, TransportErrorKind, Wire};

/// What `clean` found and did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Cleaned {
    /// Harness users deleted (or, with `dry_run`, that would be).
    pub removed: Vec<String>,
    /// Harness users that are still there (the target refused to delete them).
    pub failed: Vec<String>,
    /// Ledgers removed because nothing they list is left.
    pub ledgers_removed: usize,
    /// Why ListUsers could not be used, if it could not (then only ledgers were read).
    pub listing: Option<String>,
}

/// Removes harness users from the client's target: those of run `only` if
/// given, else of every run. Reads (and tidies) the ledgers in `ledgers`.
pub async fn clean(
    client: &Client,
    ledgers: Option<&Path>,
    only: Option<&RunId>,
    dry_run: bool,
) -> Result<Cleaned, TransportError> {
    let mut cleaned = Cleaned::default();
    let prefix = only.map_or(ledger::PATH_ROOT.to_string(), RunId::path);
    let mut candidates = BTreeSet::new();
    match list_users(client, &prefix).await? {
        Ok(users) => candidates.extend(
            users
                .into_iter()
                .filter(|(path, name)| owned(only, path, name))
                .map(|(_, name)| name),
        ),
        Err(why) => cleaned.listing = Some(why),
    }
    let endpoint = client.target().endpoint.as_str();
    let files: Vec<LedgerFile> = match ledgers {
        Some(dir) => LedgerFile::all(dir)
            .map_err(|e| {
                TransportError::new(
                    TransportErrorKind::Ledger,
                    format!("read the ledgers in {}: {e}", dir.display()),
                )
            })?
            .into_iter()
            .filter(|f| f.endpoint == endpoint && only.is_none_or(|id| *id == f.run_id))
            .collect(),
        None => Vec::new(),
    };
    for user in files.iter().flat_map(|f| &f.outstanding) {
        if candidates.contains(user) {
            continue;
        }
        let get = Request::new(Operation::GetUser).with("UserName", user);
        let response = client.send_cleanup(&get).await?;
        let path = text_at(&response, "GetUserResult/User/Path");
        if response.status == 200 && owned(only, &path, user) {
            candidates.insert(user.clone());
        }
    }
    for user in &candidates {
        if dry_run || delete_user(client, user, &[]).await {
            cleaned.removed.push(user.clone());
        } else {
            cleaned.failed.push(user.clone());
        }
    }
    if !dry_run {
        for file in &files {
            if file.outstanding.iter().all(|u| !cleaned.failed.contains(u)) {
                if std::fs::remove_file(&file.path).is_ok() {
                    cleaned.ledgers_removed += 1;
                }
            } else {
                note_deleted(file, &cleaned.removed);
            }
        }
    }
    Ok(cleaned)
}

/// Whether a user is the harness's (and of run `only`, when given).
fn owned(only: Option<&RunId>, path: &str, name: &str) -> bool {
    match only {
        Some(id) => id.owns(path, name),
        None => ledger::harness_made(path, name),
    }
}

/// Appends the users deleted to a ledger that keeps others.
fn note_deleted(file: &LedgerFile, removed: &[String]) {
    let Ok(mut out) = OpenOptions::new().append(true).open(&file.path) else {
        return;
    };
    for user in file.outstanding.iter().filter(|u| removed.contains(u)) {
        let line = serde_json::json!({ "delete": { "user": user } });
        let _ = writeln!(out, "{line}");
    }
}

/// Every user under `prefix`, page by page, as (path, name); or why the
/// target cannot list them.
async fn list_users(
    client: &Client,
    prefix: &str,
) -> Result<Result<Vec<(String, String)>, String>, TransportError> {
    let mut users = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut request = Request {
            params: vec![
                ("Action".into(), "ListUsers".into()),
                ("Version".into(), API_VERSION.into()),
                ("PathPrefix".into(), prefix.into()),
                ("MaxItems".into(), "100".into()),
            ],
            wire: Wire::Post,
        };
        if let Some(m) = &marker {
            request = request.with("Marker", m);
        }
        let response = client.send_cleanup(&request).await?;
        let Some(list) = response
            .xml()
            .and_then(|x| x.at("ListUsersResult/Users"))
            .filter(|_| response.status == 200)
        else {
            return Ok(Err(format!(
                "ListUsers answered HTTP {} {}",
                response.status,
                response.error_code().unwrap_or("")
            )));
        };
        users.extend(list.children.iter().map(|m| {
            (
                m.text_at("Path").unwrap_or("").to_string(),
                m.text_at("UserName").unwrap_or("").to_string(),
            )
        }));
        marker = Some(text_at(&response, "ListUsersResult/Marker")).filter(|m| !m.is_empty());
        if text_at(&response, "ListUsersResult/IsTruncated") != "true" || marker.is_none() {
            return Ok(Ok(users));
        }
    }
}
