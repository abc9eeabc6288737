//! The merge button: a merge commit of the base branch's tip and the pull
//! request's head, written into the fake's bare repository, with the base
//! branch moved to it, as GitHub's default merge method does.

use git2::{Oid, Repository, Signature};

use super::Pull;

/// Merges `pull` in `repo`; returns the merge commit.
///
/// # Panics
///
/// When a commit or branch is missing or the merge conflicts: GitHub would
/// not offer the button, so a test asking for it is broken.
pub(super) fn merge_commit(
    repo: &Repository,
    owner: &str,
    number: u64,
    title: &str,
    pull: &Pull,
) -> String {
    let base_ref = format!("refs/heads/{}", pull.base_ref);
    let head_oid = Oid::from_str(&pull.head_sha).expect("a 40-hex head");
    let head = repo
        .find_commit(head_oid)
        .unwrap_or_else(|error| panic!("the head {} of #{number}: {error}", pull.head_sha));
    let base = repo
        .find_reference(&base_ref)
        .and_then(|reference| reference.peel_to_commit())
        .unwrap_or_else(|error| panic!("the base {base_ref} of #{number}: {error}"));
    let mut index = repo
        .merge_commits(&base, &head, None)
        .unwrap_or_else(|error| panic!("merging #{number}: {error}"));
    assert!(
        !index.has_conflicts(),
        "pull request #{number} conflicts with {}",
        pull.base_ref
    );
    let tree_oid = index
        .write_tree_to(repo)
        .unwrap_or_else(|error| panic!("writing the merged tree of #{number}: {error}"));
    let tree = repo.find_tree(tree_oid).expect("the tree just written");
    let signature = Signature::now("GitHub", "noreply@github.com").expect("a valid signature");
    let message = format!(
        "Merge pull request #{number} from {owner}/{}\n\n{title}",
        pull.head_ref
    );
    let commit = repo
        .commit(
            None,
            &signature,
            &signature,
            &message,
            &tree,
            &[&base, &head],
        )
        .unwrap_or_else(|error| panic!("committing the merge of #{number}: {error}"));
    repo.reference_matching(&base_ref, commit, true, base.id(), &message)
        .unwrap_or_else(|error| panic!("moving {base_ref}: {error}"));
    commit.to_string()
}
