//! Writing the planned history into a git repository, fast, and finding a
//! kept one again.
//!
//! Objects go to libgit2's in-memory object database (mempack) while the
//! history is built, each commit rewriting only the trees on its changed
//! paths, and every few thousand commits into a pack written by libgit2's
//! pack builder: tens of thousands of commits as loose objects would cost a
//! file per object, and a production repository is packed, so `git blame` is
//! measured against the layout it meets there.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use repo::git2::build::{CheckoutBuilder, TreeUpdateBuilder};
use repo::git2::{FileMode, ObjectType, Oid, Repository, Signature, Sort, Time};
use serde_json::json;

use super::code::SourceFile;
use super::history::{CommitPlan, SEED, Shape, Simulation};
use super::rng::Rng;

/// Bumped whenever the plan changes, so an old kept repository is rebuilt.
const PLAN_VERSION: u64 = 1;

/// Where the shape of a kept repository is recorded, inside `.git` so it is
/// no file of the history.
const MARKER: &str = "suture-bench.json";

/// The branch the history is on.
const BRANCH: &str = "refs/heads/main";

/// Commits held in memory before they are written out as one pack: enough
/// for deltas between versions of a file, few enough that the build stays
/// around a hundred megabytes.
const COMMITS_PER_PACK: usize = 2_500;

/// A built (or found) synthetic repository and what the plan knows about it.
pub(crate) struct Synthetic {
    pub(crate) shape: Shape,
    pub(crate) head: Oid,
    /// The commit of each plan step, oldest first.
    pub(crate) commit_ids: Vec<Oid>,
    /// The commit time of each plan step.
    pub(crate) commit_times: Vec<i64>,
    /// The time of the event, Unix seconds.
    pub(crate) anchor: i64,
    /// The files at `head`, with the step that wrote each body line.
    pub(crate) files: Vec<SourceFile>,
    /// True when a kept repository of this shape was found and used as is.
    pub(crate) reused: bool,
    /// Time to build, or to re-derive the plan of a kept repository.
    pub(crate) elapsed: Duration,
}

/// `--keep` named a directory that holds something else: the caller's
/// mistake, reported as bad input.
#[derive(Debug)]
pub(crate) struct NotABenchRepository(pub(crate) PathBuf);

impl std::fmt::Display for NotABenchRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} exists and is not a bench repository; remove it or pick another directory",
            self.0.display()
        )
    }
}

impl std::error::Error for NotABenchRepository {}

/// Builds the repository in `dir`, or reuses the one a previous run left
/// there with the same shape.
///
/// A directory holding something else is refused rather than replaced: the
/// path came from a flag and may be a typo.
pub(crate) fn prepare(dir: &Path, shape: Shape) -> anyhow::Result<Synthetic> {
    let started = Instant::now();
    let marker_path = dir.join(".git").join(MARKER);
    if let Some(marker) = read_marker(&marker_path) {
        if let Some(synthetic) = reuse(dir, shape, &marker, started)? {
            return Ok(synthetic);
        }
        eprintln!(
            "bench: {} holds a bench repository of another shape, rebuilding it",
            dir.display()
        );
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("removing the old bench repository {}", dir.display()))?;
    } else if dir.exists() && dir.read_dir()?.next().is_some() {
        return Err(NotABenchRepository(dir.to_path_buf()).into());
    }
    build(dir, shape, started)
}

impl Synthetic {
    /// Commits one more edit to one Python file on top of `head`, dated
    /// between the newest commit and the event, without moving the branch
    /// or the model: the event is still built at `head`, and a kept
    /// repository stays the shape its marker records.
    ///
    /// Returns the new commit and the path it changed.
    pub(crate) fn commit_one_file(&self, repo: &Repository) -> anyhow::Result<(Oid, String)> {
        let mut rng = Rng::new(SEED ^ 0x1f11e);
        let production_python = |idx: &usize| {
            let file = &self.files[*idx];
            file.path.ends_with(".py") && !file.is_test()
        };
        let mut candidates: Vec<usize> = (0..self.files.len()).filter(production_python).collect();
        if candidates.is_empty() {
            candidates = (0..self.files.len()).collect();
        }
        let file_idx = *rng.pick(&candidates);
        let step = self.commit_ids.len() as u32;
        let mut file = self.files[file_idx].clone();
        let summary = file.edit(step, &mut rng);
        let blob = repo.blob(file.render().as_bytes())?;
        let head = repo.find_commit(self.head)?;
        let tree_id = TreeUpdateBuilder::new()
            .upsert(file.path.as_str(), blob, FileMode::Blob)
            .create_updated(repo, &head.tree()?)?;
        let time = self.anchor - 1_800;
        let signature = Signature::new("Ana Souza", "ana.souza@example.com", &Time::new(time, 0))?;
        let message = format!("hotfix: {} {}\n", summary.verb, summary.function);
        let commit = repo.commit(
            None,
            &signature,
            &signature,
            &message,
            &repo.find_tree(tree_id)?,
            &[&head],
        )?;
        Ok((commit, file.path.clone()))
    }
}

fn build(dir: &Path, shape: Shape, started: Instant) -> anyhow::Result<Synthetic> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let repo = Repository::init(dir).context("initialising the bench repository")?;
    let anchor = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64);
    let (mut simulation, initial) = Simulation::new(shape, anchor);
    eprintln!(
        "bench: building {} files, {} commits in {}",
        shape.files,
        shape.commits,
        dir.display()
    );

    let odb = repo.odb()?;
    // Above the loose and pack backends, so every write lands in memory.
    let mempack = odb.add_new_mempack_backend(1_000)?;
    let mut commit_ids = Vec::with_capacity(shape.commits);
    let mut commit_times = Vec::with_capacity(shape.commits);
    let mut packed: Option<Oid> = None;

    let empty_tree = repo.treebuilder(None)?.write()?;
    let mut tree = write_commit_tree(&repo, empty_tree, &simulation.files, &initial)?;
    let mut parent = commit(&repo, &initial, tree, None)?;
    commit_ids.push(parent);
    commit_times.push(initial.time);
    for step in 1..shape.commits {
        let plan = simulation.step(step as u32);
        tree = write_commit_tree(&repo, tree, &simulation.files, &plan)?;
        parent = commit(&repo, &plan, tree, Some(parent))?;
        commit_ids.push(parent);
        commit_times.push(plan.time);
        if step % COMMITS_PER_PACK == 0 {
            write_pack(&repo, parent, packed)?;
            mempack.reset()?;
            packed = Some(parent);
            eprintln!(
                "bench:   {step}/{} commits ({:.1} s)",
                shape.commits,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let head = parent;
    if packed != Some(head) {
        write_pack(&repo, head, packed)?;
        mempack.reset()?;
    }
    drop(odb);
    drop(repo);

    // A fresh handle: the old one's object cache and mempack are gone.
    let repo = Repository::open(dir)?;
    repo.reference(BRANCH, head, true, "suture bench")?;
    repo.set_head(BRANCH)?;
    eprintln!(
        "bench:   {} commits packed ({:.1} s), checking out",
        shape.commits,
        started.elapsed().as_secs_f64()
    );
    repo.checkout_head(Some(CheckoutBuilder::new().force()))?;
    write_marker(&repo.path().join(MARKER), shape, anchor, head)?;
    Ok(Synthetic {
        shape,
        head,
        commit_ids,
        commit_times,
        anchor,
        files: simulation.files,
        reused: false,
        elapsed: started.elapsed(),
    })
}

/// The kept repository at `dir`, when its marker and history match `shape`.
fn reuse(
    dir: &Path,
    shape: Shape,
    marker: &serde_json::Value,
    started: Instant,
) -> anyhow::Result<Option<Synthetic>> {
    let number = |key: &str| marker.get(key).and_then(serde_json::Value::as_u64);
    let same_plan = number("version") == Some(PLAN_VERSION)
        && number("seed") == Some(SEED)
        && number("files") == Some(shape.files as u64)
        && number("commits") == Some(shape.commits as u64);
    let (Some(anchor), Some(head)) = (
        marker.get("anchor").and_then(serde_json::Value::as_i64),
        marker
            .get("head")
            .and_then(serde_json::Value::as_str)
            .and_then(|sha| Oid::from_str(sha).ok()),
    ) else {
        return Ok(None);
    };
    if !same_plan {
        return Ok(None);
    }
    let repo = Repository::open(dir).context("opening the kept bench repository")?;
    if repo.head().ok().and_then(|h| h.target()) != Some(head) {
        return Ok(None);
    }
    let mut walk = repo.revwalk()?;
    walk.push(head)?;
    walk.simplify_first_parent()?;
    walk.set_sorting(Sort::NONE)?;
    let mut commit_ids = walk.collect::<Result<Vec<Oid>, _>>()?;
    commit_ids.reverse();
    if commit_ids.len() != shape.commits {
        return Ok(None);
    }
    let (mut simulation, initial) = Simulation::new(shape, anchor);
    let mut commit_times = Vec::with_capacity(shape.commits);
    commit_times.push(initial.time);
    for step in 1..shape.commits {
        commit_times.push(simulation.step(step as u32).time);
    }
    // The plan must still produce this head, file for file: a changed
    // generator without a bumped PLAN_VERSION would otherwise put frames on
    // the wrong lines.
    let tree = repo.find_commit(head)?.tree()?;
    for file in &simulation.files {
        let blob = Oid::hash_object(ObjectType::Blob, file.render().as_bytes())?;
        if tree
            .get_path(Path::new(&file.path))
            .map(|entry| entry.id())
            .ok()
            != Some(blob)
        {
            return Ok(None);
        }
    }
    eprintln!("bench: reusing the repository in {}", dir.display());
    Ok(Some(Synthetic {
        shape,
        head,
        commit_ids,
        commit_times,
        anchor,
        files: simulation.files,
        reused: true,
        elapsed: started.elapsed(),
    }))
}

/// Writes the blobs of the files `plan` touched and the trees on their
/// paths; every other subtree is shared with `base`.
fn write_commit_tree(
    repo: &Repository,
    base: Oid,
    files: &[SourceFile],
    plan: &CommitPlan,
) -> anyhow::Result<Oid> {
    let mut update = TreeUpdateBuilder::new();
    for &file_idx in &plan.touched {
        let file = &files[file_idx];
        let blob = repo.blob(file.render().as_bytes())?;
        update.upsert(file.path.as_str(), blob, FileMode::Blob);
    }
    Ok(update.create_updated(repo, &repo.find_tree(base)?)?)
}

/// Packs the commits after `since` up to `head` with their trees and blobs
/// (all of them in the mempack now), deltas included.
fn write_pack(repo: &Repository, head: Oid, since: Option<Oid>) -> anyhow::Result<()> {
    let mut packer = repo.packbuilder()?;
    packer.set_threads(0); // one per core
    let mut walk = repo.revwalk()?;
    walk.push(head)?;
    if let Some(since) = since {
        // Marks the previous pack's objects as already written.
        walk.hide(since)?;
    }
    packer.insert_walk(&mut walk)?;
    packer
        .write(&repo.path().join("objects").join("pack"), 0)
        .context("writing a bench pack")?;
    Ok(())
}

fn commit(
    repo: &Repository,
    plan: &CommitPlan,
    tree: Oid,
    parent: Option<Oid>,
) -> anyhow::Result<Oid> {
    let when = Time::new(plan.time, plan.author.offset_minutes);
    let signature = Signature::new(plan.author.name, plan.author.email, &when)?;
    let parent = parent.map(|id| repo.find_commit(id)).transpose()?;
    let parents: Vec<_> = parent.iter().collect();
    Ok(repo.commit(
        None,
        &signature,
        &signature,
        &plan.message,
        &repo.find_tree(tree)?,
        &parents,
    )?)
}

fn read_marker(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn write_marker(path: &Path, shape: Shape, anchor: i64, head: Oid) -> anyhow::Result<()> {
    let marker = json!({
        "version": PLAN_VERSION,
        "seed": SEED,
        "files": shape.files,
        "commits": shape.commits,
        "anchor": anchor,
        "head": head.to_string(),
    });
    std::fs::write(path, serde_json::to_vec_pretty(&marker)?)
        .with_context(|| format!("writing {}", path.display()))
}
