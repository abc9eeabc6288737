//! The fix branch: one commit (base revision + proven patch) built in a
//! scratch repository and pushed to the forge's remote.
//!
//! The scratch repository is a bare temp dir whose object store *borrows*
//! the source repository's objects through `objects/info/alternates`, so
//! nothing is copied and nothing is written to the source. The patch is
//! applied to the base tree in memory (it was already proven on the same
//! revision in the sandbox), the commit is written into the scratch store,
//! and the branch is pushed through an anonymous remote: the URL is never
//! saved in any config. Over HTTP(S) the push goes through forge's own
//! transport ([`crate::transport`]), which gets the token and the timeouts
//! from a [`PushScope`] around the push and sends the token only in an
//! `Authorization` header (user `x-access-token`), never in a URL.
//!
//! A source that is a shallow clone (`git clone --depth N`, as CI
//! checkouts and many deployments are) lacks the history behind its
//! boundary commits, listed in its `shallow` file. The scratch repository
//! gets a copy of that file, so libgit2 reads the boundary commits as
//! parentless and the push packs the history down to the boundary instead
//! of failing on the first missing parent (`object not found`). A remote
//! that holds the history (GitHub) takes that as any push; a local bare
//! remote that does not is told where its history ends first
//! ([`mark_shallow_boundary`]), as git's `receive.shallowUpdate` does.
//!
//! Everything here blocks; async callers use `spawn_blocking`.

use std::collections::BTreeSet;
use std::path::Path;

use git2::{
    ApplyOptions, Diff, ObjectType, Oid, PushOptions, RemoteCallbacks, Repository,
    RepositoryOpenFlags, Signature,
};
use octocrab::secrecy::SecretString;

use crate::codeowners::{CodeOwners, LOCATIONS};
use crate::error::ForgeError;
use crate::transport::{self, PushScope, Timeouts};
use crate::{CommitIdentity, FixProposal};

/// The commit pushed as the head of a fix branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PushedCommit {
    pub(crate) sha: String,
}

/// Builds the fix commit for `proposal` on top of its base revision and
/// pushes it to `refs/heads/<branch>` of `remote_url` (an `https://` URL,
/// or a path / `file://` URL of a bare repository), waiting on a network
/// remote as `timeouts` says. A push that is not a fast-forward is refused,
/// never forced: the caller reads the branch back.
pub(crate) fn push_fix(
    source_repo: &Path,
    proposal: &FixProposal,
    branch: &str,
    identity: &CommitIdentity,
    remote_url: &str,
    token: Option<&SecretString>,
    timeouts: Timeouts,
) -> Result<PushedCommit, ForgeError> {
    let scratch = tempfile::Builder::new()
        .prefix("suture-push-")
        .tempdir()
        .map_err(ForgeError::io("creating a scratch repository"))?;
    let repo = borrowing_repository(source_repo, scratch.path())?;
    let commit = fix_commit(&repo, proposal, identity)?;
    let reference = format!("refs/heads/{branch}");
    repo.reference(&reference, commit, true, "suture: fix branch")
        .map_err(ForgeError::git(format!("creating {reference}")))?;
    push(&repo, remote_url, &reference, token, timeouts)
        .map_err(|error| explain_shallow_refusal(error, repo.is_shallow()))?;
    Ok(PushedCommit {
        sha: commit.to_string(),
    })
}

/// A remote that refuses a push from a shallow clone for missing objects
/// lacks the history behind the clone's boundary: the reason says so, and
/// what mends it (retrying does not).
fn explain_shallow_refusal(error: ForgeError, shallow_source: bool) -> ForgeError {
    match error {
        ForgeError::PushRejected { branch, reason }
            if shallow_source && (reason.contains("missing") || reason.contains("shallow")) =>
        {
            ForgeError::PushRejected {
                branch,
                reason: format!(
                    "{reason} (the repository is a shallow clone and the remote lacks the \
                     history behind its boundary: deepen or unshallow the clone)"
                ),
            }
        }
        other => other,
    }
}

/// Creates `refs/heads/<branch>` in the bare repository at `remote` at
/// `revision`, which the remote already holds (the fix branch's parent),
/// when it has no such branch. A fresh remote has no base branch for a fix
/// branch to be reviewed against: this gives it the one the fix was built
/// on. An existing branch is never moved, even one created between the
/// check and the write. When the remote's `HEAD` is unborn it is pointed
/// at the new branch, so clones check it out.
pub(crate) fn seed_branch(remote: &Path, branch: &str, revision: &str) -> Result<(), ForgeError> {
    let oid = parse_oid(revision)?;
    let target =
        open_bare(remote).map_err(ForgeError::git(format!("opening {}", remote.display())))?;
    let reference = format!("refs/heads/{branch}");
    let created = match target.reference(&reference, oid, false, "suture: seed the base branch") {
        Ok(_) => true,
        Err(error) if error.code() == git2::ErrorCode::Exists => false,
        Err(error) => {
            return Err(ForgeError::Git {
                context: format!("creating {reference}"),
                source: error,
            });
        }
    };
    let unborn =
        matches!(target.head(), Err(error) if error.code() == git2::ErrorCode::UnbornBranch);
    if created && unborn {
        target
            .set_head(&reference)
            .map_err(ForgeError::git(format!("pointing HEAD at {reference}")))?;
    }
    if created {
        tracing::info!(branch, revision, "seeded the remote's base branch");
    }
    Ok(())
}

/// Records in the bare repository at `remote` the shallow boundary of
/// `source_repo` that a push from it would bring: each boundary commit of
/// the source whose parents the remote lacks is added to the remote's
/// `shallow` file, so the remote reads it as parentless (a valid shallow
/// repository, for libgit2 and git alike) rather than as a commit with
/// missing parents. Done before the push, so a crash in between leaves at
/// worst an entry for a commit the remote does not hold (which git and
/// libgit2 never look up), never a history with missing parents. Nothing happens for a complete
/// source, or a remote that holds the history.
pub(crate) fn mark_shallow_boundary(remote: &Path, source_repo: &Path) -> Result<(), ForgeError> {
    let source = Repository::open(source_repo).map_err(ForgeError::git(format!(
        "opening {}",
        source_repo.display()
    )))?;
    let boundary = shallow_commits(source.commondir())?;
    if boundary.is_empty() {
        return Ok(());
    }
    let target =
        open_bare(remote).map_err(ForgeError::git(format!("opening {}", remote.display())))?;
    let (source_odb, target_odb) = (
        source
            .odb()
            .map_err(ForgeError::git("reading the source's objects"))?,
        target
            .odb()
            .map_err(ForgeError::git("reading the remote's objects"))?,
    );
    let mut marked = shallow_commits(target.commondir())?;
    let before = marked.len();
    for commit in boundary {
        // The source's own reading grafts the commit to no parents: its
        // parents are read from the object itself.
        let object = source_odb.read(commit).map_err(ForgeError::git(format!(
            "reading the shallow boundary commit {commit}"
        )))?;
        if recorded_parents(object.data())
            .iter()
            .any(|parent| !target_odb.exists(*parent))
        {
            marked.insert(commit);
        }
    }
    if marked.len() == before {
        return Ok(());
    }
    let text: String = marked.iter().map(|oid| format!("{oid}\n")).collect();
    let path = target.commondir().join("shallow");
    let temporary = target.commondir().join("shallow.suture-new");
    std::fs::write(&temporary, text)
        .and_then(|()| std::fs::rename(&temporary, &path))
        .map_err(ForgeError::io(format!("writing {}", path.display())))?;
    tracing::info!(
        remote = %remote.display(),
        boundary = marked.len(),
        "the remote's history ends at the source's shallow boundary"
    );
    Ok(())
}

/// The commits listed in `<git_dir>/shallow`; none when there is no such
/// file (a complete repository).
fn shallow_commits(git_dir: &Path) -> Result<BTreeSet<Oid>, ForgeError> {
    let path = git_dir.join("shallow");
    match std::fs::read_to_string(&path) {
        // libgit2 refuses to open a repository whose `shallow` holds
        // anything but ids: only blank lines are dropped here.
        Ok(text) => Ok(text
            .lines()
            .filter_map(|line| Oid::from_str(line.trim()).ok())
            .collect()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(error) => Err(ForgeError::Io {
            context: format!("reading {}", path.display()),
            source: error,
        }),
    }
}

/// The `parent` ids in a raw commit object's header.
fn recorded_parents(commit: &[u8]) -> Vec<Oid> {
    commit
        .split(|&byte| byte == b'\n')
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.strip_prefix(b"parent "))
        .filter_map(|id| std::str::from_utf8(id).ok())
        .filter_map(|id| Oid::from_str(id.trim()).ok())
        .collect()
}

/// The CODEOWNERS file at `revision` of `source_repo`, parsed; `None` when
/// the revision has none. Unparsable lines are logged and skipped.
pub(crate) fn codeowners_at(
    source_repo: &Path,
    revision: &str,
) -> Result<Option<CodeOwners>, ForgeError> {
    let repo = Repository::open(source_repo).map_err(ForgeError::git(format!(
        "opening {}",
        source_repo.display()
    )))?;
    let oid = parse_oid(revision)?;
    let tree = repo
        .find_commit(oid)
        .and_then(|commit| commit.tree())
        .map_err(ForgeError::git(format!("reading the tree of {revision}")))?;
    for location in LOCATIONS {
        let Ok(entry) = tree.get_path(Path::new(location)) else {
            continue;
        };
        if entry.kind() != Some(ObjectType::Blob) {
            continue;
        }
        let blob = repo
            .find_blob(entry.id())
            .map_err(ForgeError::git(format!("reading {location}")))?;
        let text = String::from_utf8_lossy(blob.content());
        let (codeowners, problems) = CodeOwners::parse(&text);
        for problem in problems {
            tracing::warn!(file = location, problem = %problem, "codeowners line skipped");
        }
        return Ok(Some(codeowners));
    }
    Ok(None)
}

/// The commit `refs/heads/<branch>` points at in the bare repository at
/// `git_dir`, if the branch exists.
pub(crate) fn branch_head(git_dir: &Path, branch: &str) -> Result<Option<String>, ForgeError> {
    let repo =
        open_bare(git_dir).map_err(ForgeError::git(format!("opening {}", git_dir.display())))?;
    match repo.find_reference(&format!("refs/heads/{branch}")) {
        Ok(reference) => Ok(reference
            .peel_to_commit()
            .ok()
            .map(|commit| commit.id().to_string())),
        Err(error) if error.code() == git2::ErrorCode::NotFound => Ok(None),
        Err(error) => Err(ForgeError::Git {
            context: format!("reading refs/heads/{branch}"),
            source: error,
        }),
    }
}

/// Opens the bare repository at `path` as git reads it: with its shallow
/// boundary. (libgit2's `git_repository_open_bare` skips the `shallow`
/// file, so a walk would go past the boundary into parents the repository
/// does not hold: `object not found`.)
pub(crate) fn open_bare(path: &Path) -> Result<Repository, git2::Error> {
    Repository::open_ext(
        path,
        RepositoryOpenFlags::NO_SEARCH | RepositoryOpenFlags::BARE,
        std::iter::empty::<&std::ffi::OsStr>(),
    )
}

pub(crate) fn parse_oid(revision: &str) -> Result<Oid, ForgeError> {
    let is_hex = revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_hex {
        return Err(ForgeError::invalid(
            "revision",
            format!("{revision:?} is not a 40-hex commit id"),
        ));
    }
    Oid::from_str(revision).map_err(ForgeError::git(format!("parsing {revision}")))
}

/// A bare repository at `dir` that reads `source`'s objects, and ends its
/// history where `source` does when it is a shallow clone.
fn borrowing_repository(source: &Path, dir: &Path) -> Result<Repository, ForgeError> {
    let source_repo = Repository::open(source)
        .map_err(ForgeError::git(format!("opening {}", source.display())))?;
    // The common directory: a linked work tree's own git dir holds neither.
    let common = source_repo.commondir();
    let objects = common.join("objects");
    let objects = objects.canonicalize().unwrap_or(objects);
    Repository::init_bare(dir).map_err(ForgeError::git("creating a scratch repository"))?;
    let alternates = dir.join("objects/info/alternates");
    std::fs::create_dir_all(dir.join("objects/info"))
        .and_then(|()| std::fs::write(&alternates, format!("{}\n", objects.display())))
        .map_err(ForgeError::io(
            "writing the scratch repository's alternates",
        ))?;
    match std::fs::copy(common.join("shallow"), dir.join("shallow")) {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            return Err(ForgeError::Io {
                context: "copying the source's shallow boundary".to_string(),
                source: error,
            });
        }
    }
    // Reopen so the object database sees the alternates, and the walk the
    // shallow boundary.
    open_bare(dir).map_err(ForgeError::git("opening the scratch repository"))
}

/// Base revision + patch, committed (not on any branch yet).
fn fix_commit(
    repo: &Repository,
    proposal: &FixProposal,
    identity: &CommitIdentity,
) -> Result<Oid, ForgeError> {
    let base_oid = parse_oid(&proposal.base_revision)?;
    let base = repo.find_commit(base_oid).map_err(ForgeError::git(format!(
        "finding the base revision {}",
        proposal.base_revision
    )))?;
    let base_tree = base
        .tree()
        .map_err(ForgeError::git("reading the base tree"))?;
    let diff = Diff::from_buffer(proposal.patch.as_bytes()).map_err(|source| {
        ForgeError::PatchDoesNotApply {
            base: proposal.base_revision.clone(),
            source,
        }
    })?;
    let mut index = repo
        .apply_to_tree(&base_tree, &diff, Some(&mut ApplyOptions::new()))
        .map_err(|source| ForgeError::PatchDoesNotApply {
            base: proposal.base_revision.clone(),
            source,
        })?;
    let tree_oid = index
        .write_tree_to(repo)
        .map_err(ForgeError::git("writing the fixed tree"))?;
    if tree_oid == base_tree.id() {
        return Err(ForgeError::EmptyPatch {
            base: proposal.base_revision.clone(),
        });
    }
    let tree = repo
        .find_tree(tree_oid)
        .map_err(ForgeError::git("reading the fixed tree"))?;
    let signature = Signature::now(&identity.name, &identity.email)
        .map_err(ForgeError::git("making the commit signature"))?;
    let message = commit_message(proposal);
    repo.commit(None, &signature, &signature, &message, &tree, &[&base])
        .map_err(ForgeError::git("committing the fix"))
}

fn commit_message(proposal: &FixProposal) -> String {
    format!(
        "suture: {title}\n\n\
         Proposed fix for incident {incident} (strategy: {strategy}), proven\n\
         by the test suite on {base}.\n\n\
         Suture-Incident: {incident}\n\
         Suture-Strategy: {strategy}\n",
        title = proposal.title.lines().next().unwrap_or_default(),
        incident = proposal.incident_id,
        strategy = proposal.strategy,
        base = proposal.base_revision,
    )
}

fn push(
    repo: &Repository,
    remote_url: &str,
    reference: &str,
    token: Option<&SecretString>,
    timeouts: Timeouts,
) -> Result<(), ForgeError> {
    push_refspec(
        repo,
        remote_url,
        &format!("{reference}:{reference}"),
        token,
        timeouts,
    )
}

/// Pushes `refspec` (`[+]src:dst`); a rejected update is
/// [`ForgeError::PushRejected`] naming the destination branch, an HTTP
/// refusal [`ForgeError::Status`], an untrusted certificate
/// [`ForgeError::Invalid`], a network failure [`ForgeError::Git`].
fn push_refspec(
    repo: &Repository,
    remote_url: &str,
    refspec: &str,
    token: Option<&SecretString>,
    timeouts: Timeouts,
) -> Result<(), ForgeError> {
    // Before libgit2 looks up any transport, local paths included: see
    // `transport::register`.
    transport::register()?;
    let reference = refspec.rsplit(':').next().unwrap_or(refspec);
    let branch = reference.trim_start_matches("refs/heads/").to_string();
    let mut remote = repo
        .remote_anonymous(remote_url)
        .map_err(ForgeError::git("setting up the push"))?;
    let mut rejection: Option<String> = None;
    let scope = PushScope::enter(token, timeouts);
    let pushed = {
        let mut callbacks = RemoteCallbacks::new();
        callbacks.push_update_reference(|name, status| {
            if let Some(status) = status {
                rejection = Some(format!("{name}: {status}"));
            }
            Ok(())
        });
        let mut options = PushOptions::new();
        options.remote_callbacks(callbacks);
        remote.push(&[refspec], Some(&mut options))
    };
    let failure = scope.failure();
    drop(scope);
    if let Err(source) = pushed {
        return Err(match failure {
            Some(failure) => failure.into_error(&branch),
            // libgit2 refuses a non-fast-forward itself when it can tell
            // (an error, over any transport); a remote that refuses one
            // answers a status instead (`rejection`).
            None if source.code() == git2::ErrorCode::NotFastForward => ForgeError::PushRejected {
                branch,
                reason: source.message().to_string(),
            },
            None => ForgeError::Git {
                context: format!("pushing {branch}"),
                source,
            },
        });
    }
    match rejection {
        Some(reason) => Err(ForgeError::PushRejected { branch, reason }),
        None => Ok(()),
    }
}
