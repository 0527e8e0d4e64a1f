//! What a run creates, written down as it happens.
//!
//! Every user the harness creates lives under the IAM path
//! `/iam-conformance/<run-id>/` and has a name beginning `iamc-<run-id>-`
//! (see [`RunId`]). Before a CreateUser leaves, its name is appended to the
//! run's ledger (one JSON line, flushed); when a DeleteUser of it is answered,
//! that is appended too. So whatever stops the run (its end, Ctrl-C, a panic,
//! a kill), the file says what may still be on the target, and cleanup (the
//! run's own sweep, or `iam-conformance clean`) removes exactly that.
//!
//! A ledger whose users are all deleted is removed when the run finishes;
//! one that still lists users stays for `clean`.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::oracle;

/// The first segment of the path every harness-created user lives under.
pub const PATH_ROOT: &str = "/iam-conformance/";
/// How every harness-created user name begins.
pub const NAME_PREFIX: &str = "iamc-";

/// A run's identity: six lower-case letters and digits, in its users' path and names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunId(String);

impl RunId {
    /// A fresh, random run id.
    pub fn new() -> RunId {
        RunId(oracle::new_id("", 6).to_lowercase())
    }

    /// A run id read back (from a ledger or the command line), if it is one.
    pub fn parse(text: &str) -> Option<RunId> {
        (text.len() == 6
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
        .then(|| RunId(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `/iam-conformance/<run-id>/`.
    pub fn path(&self) -> String {
        format!("{PATH_ROOT}{}/", self.0)
    }

    /// `iamc-<run-id>`: what every user name of the run begins with (then `-`).
    pub fn prefix(&self) -> String {
        format!("{NAME_PREFIX}{}", self.0)
    }

    /// Whether a user (by its path and name) belongs to this run.
    pub fn owns(&self, path: &str, name: &str) -> bool {
        path == self.path() && name.starts_with(&format!("{}-", self.prefix()))
    }
}

impl Default for RunId {
    fn default() -> RunId {
        RunId::new()
    }
}

/// Whether a user (by its path and name) was made by some run of the harness:
/// the test `clean` applies before it deletes anything.
pub fn harness_made(path: &str, name: &str) -> bool {
    path.strip_prefix(PATH_ROOT)
        .and_then(|rest| rest.strip_suffix('/'))
        .and_then(RunId::parse)
        .is_some_and(|id| id.owns(path, name))
}

/// One line of a ledger file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    /// The first line: which run, against which endpoint.
    Run { run_id: RunId, endpoint: String },
    /// A CreateUser of this name is about to be sent.
    Create { user: String },
    /// This user is gone (DeleteUser answered 200 or NoSuchEntity).
    Delete { user: String },
}

/// The users a run created and has not deleted yet, kept in memory and,
/// when the run has a ledger directory, on disk.
#[derive(Debug)]
pub struct Ledger {
    run_id: RunId,
    file: Option<(PathBuf, Mutex<File>)>,
    /// The users that may still exist (a deleted one is forgotten, so a long
    /// run's memory does not grow with its cases).
    live: Mutex<BTreeSet<String>>,
}

impl Ledger {
    /// A ledger kept in memory only.
    pub fn in_memory(run_id: RunId) -> Ledger {
        Ledger {
            run_id,
            file: None,
            live: Mutex::default(),
        }
    }

    /// A ledger written to `dir/<run-id>.jsonl` as the run goes. The file
    /// appears with its first line whole (written aside, then linked in), so
    /// a reader never finds it empty; an existing ledger is never replaced.
    pub fn on_disk(dir: &Path, run_id: RunId, endpoint: &str) -> io::Result<Ledger> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{}.jsonl", run_id.as_str()));
        let aside = dir.join(format!("{}.jsonl.new", run_id.as_str()));
        let header = Line::Run {
            run_id: run_id.clone(),
            endpoint: endpoint.to_string(),
        };
        let mut first = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&aside)?;
        write_line(&mut first, &header)?;
        drop(first);
        let linked = std::fs::hard_link(&aside, &path);
        let _ = std::fs::remove_file(&aside);
        linked?;
        let file = OpenOptions::new().append(true).open(&path)?;
        Ok(Ledger {
            run_id,
            file: Some((path, Mutex::new(file))),
            live: Mutex::default(),
        })
    }

    pub fn run_id(&self) -> &RunId {
        &self.run_id
    }

    /// The ledger file, if the ledger is on disk.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_ref().map(|(p, _)| p.as_path())
    }

    fn append(&self, line: &Line) -> io::Result<()> {
        let Some((_, file)) = &self.file else {
            return Ok(());
        };
        write_line(&mut file.lock().unwrap_or_else(|e| e.into_inner()), line)
    }

    /// Notes a user about to be created; whether it was not already noted
    /// as live. Fails when the note cannot be written: then the user must not
    /// be created.
    pub fn creating(&self, user: &str) -> io::Result<bool> {
        if self.lock().contains(user) {
            return Ok(false);
        }
        self.append(&Line::Create {
            user: user.to_string(),
        })?;
        Ok(self.lock().insert(user.to_string()))
    }

    /// Notes a user as gone (or as never created: its CreateUser was refused).
    pub fn deleted(&self, user: &str) {
        self.lock().remove(user);
        // The in-memory note is what this run's sweep reads; a lost line
        // only makes a later `clean` look for a user that is gone.
        let _ = self.append(&Line::Delete {
            user: user.to_string(),
        });
    }

    /// Users created and not (yet) known to be deleted.
    pub fn outstanding(&self) -> Vec<String> {
        self.lock().iter().cloned().collect()
    }

    /// Ends the ledger: with nothing outstanding its file is removed; else it
    /// stays for `clean`. Returns the users outstanding.
    pub fn finish(&self) -> Vec<String> {
        let outstanding = self.outstanding();
        if outstanding.is_empty()
            && let Some((path, _)) = &self.file
        {
            let _ = std::fs::remove_file(path);
        }
        outstanding
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Writes one line, whole, and flushes it.
fn write_line(file: &mut File, line: &Line) -> io::Result<()> {
    let mut text = serde_json::to_string(line).map_err(io::Error::other)?;
    text.push('\n');
    file.write_all(text.as_bytes())?;
    file.flush()
}

/// A ledger file read back: its run, its endpoint and the users it leaves outstanding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerFile {
    pub path: PathBuf,
    pub run_id: RunId,
    pub endpoint: String,
    pub outstanding: Vec<String>,
}

impl LedgerFile {
    /// Reads a ledger; a last line cut by a crash is ignored.
    pub fn read(path: &Path) -> io::Result<LedgerFile> {
        let bad = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
        let mut lines = io::BufReader::new(File::open(path)?).lines();
        let first = lines
            .next()
            .ok_or_else(|| bad(format!("{} is empty", path.display())))??;
        let Ok(Line::Run { run_id, endpoint }) = serde_json::from_str(&first) else {
            return Err(bad(format!("{} is not a ledger", path.display())));
        };
        let mut live = BTreeSet::new();
        for line in lines {
            match serde_json::from_str(&line?) {
                Ok(Line::Create { user }) => {
                    live.insert(user);
                }
                Ok(Line::Delete { user }) => {
                    live.remove(&user);
                }
                Ok(Line::Run { .. }) | Err(_) => {}
            }
        }
        Ok(LedgerFile {
            path: path.to_path_buf(),
            run_id,
            endpoint,
            outstanding: live.into_iter().collect(),
        })
    }

    /// Every ledger in a directory (none when the directory does not exist).
    pub fn all(dir: &Path) -> io::Result<Vec<LedgerFile>> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut files = Vec::new();
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "jsonl") {
                files.push(LedgerFile::read(&path)?);
            }
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }
}

/// Where ledgers go by default: `$XDG_STATE_HOME/iam-conformance/ledgers`,
/// else `~/.local/state/iam-conformance/ledgers`, else `.iam-conformance/ledgers`.
pub fn default_dir() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/state"))
        });
    match base {
        Some(base) => base.join("iam-conformance/ledgers"),
        None => PathBuf::from(".iam-conformance/ledgers"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_runs_own_path_and_prefix_are_harness_made() {
        let id = RunId::parse("ab12cd").unwrap();
        assert!(id.owns("/iam-conformance/ab12cd/", "iamc-ab12cd-3-0"));
        assert!(harness_made("/iam-conformance/ab12cd/", "iamc-ab12cd-3-0"));
        for (path, name) in [
            ("/", "iamc-ab12cd-3-0"),
            ("/iam-conformance/", "iamc-ab12cd-3-0"),
            ("/iam-conformance/ab12cd/", "alice"),
            ("/iam-conformance/ab12cd/", "iamc-zz99zz-1-0"),
            ("/iam-conformance/ab12cd/x/", "iamc-ab12cd-3-0"),
            ("/iam-conformance/AB12CD/", "iamc-AB12CD-3-0"),
            ("/other/ab12cd/", "iamc-ab12cd-3-0"),
        ] {
            assert!(!harness_made(path, name), "{path} {name}");
        }
        assert!(RunId::parse("ab12c").is_none());
        assert!(RunId::parse("../../").is_none());
    }

    #[test]
    fn a_user_deleted_and_created_again_is_outstanding_again() {
        let ledger = Ledger::in_memory(RunId::new());
        let user = format!("{}-1-0", ledger.run_id().prefix());
        assert!(ledger.creating(&user).unwrap());
        assert!(!ledger.creating(&user).unwrap(), "already live");
        ledger.deleted(&user);
        assert!(ledger.outstanding().is_empty());
        assert!(
            ledger.creating(&user).unwrap(),
            "a sequence may re-create it"
        );
        assert_eq!(ledger.outstanding(), vec![user]);
    }

    #[test]
    fn a_ledger_on_disk_reads_back_what_is_outstanding() {
        let dir = std::env::temp_dir().join(format!("iamc-ledger-{}", RunId::new().as_str()));
        let id = RunId::new();
        let ledger = Ledger::on_disk(&dir, id.clone(), "http://127.0.0.1:1/").unwrap();
        assert!(
            Ledger::on_disk(&dir, id.clone(), "http://127.0.0.1:2/").is_err(),
            "another run's ledger is never replaced"
        );
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [format!("{}.jsonl", id.as_str())], "nothing aside");
        let user = |n: u32| format!("{}-{n}-0", id.prefix());
        for n in 0..3 {
            ledger.creating(&user(n)).unwrap();
        }
        ledger.deleted(&user(1));
        // A crash mid-line leaves a cut last line, which is ignored.
        let path = ledger.file().unwrap().to_path_buf();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"create\":{\"us")
            .unwrap();
        let read = LedgerFile::read(&path).unwrap();
        assert_eq!(read.run_id, id);
        assert_eq!(read.endpoint, "http://127.0.0.1:1/");
        assert_eq!(read.outstanding, vec![user(0), user(2)]);
        assert_eq!(ledger.finish(), vec![user(0), user(2)]);
        assert!(path.exists(), "a ledger with users outstanding stays");
        ledger.deleted(&user(0));
        ledger.deleted(&user(2));
        assert!(ledger.finish().is_empty());
        assert!(!path.exists(), "a ledger with nothing outstanding goes");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
