//! Bisecting a window: the first bad commit, found with the caller's probe.
//!
//! Reproduction knows the deployed revision fails and has a test that shows
//! it; the commit that introduced the failure tells repair what changed. Only
//! the search lives here: the probe (check the commit out, build, run the
//! reproduction test in the sandbox) is the caller's, so the search is tested
//! on synthetic ids without a repository or a sandbox.
//!
//! Commits are indexed as [`Window`](super::Window) lists them, newest first:
//! the search keeps a known-bad index and a known-good one older than it
//! (the base counts as index `commits.len()`), and halves the distance until
//! they are adjacent. The bad one is then the culprit: bad, with a good parent.
//! A probe that cannot judge a commit ([`Verdict::Skip`]) moves the search to
//! the unjudged neighbour closest to the midpoint; when only skipped commits
//! separate good from bad, the culprit is reported as a range, not guessed.
//!
//! **Run bound:** without skips, at most ⌈log2 n⌉ probes for `n` commits when
//! the base is known good, and one more when it is not (the oldest commit is
//! probed first to find a good end). A skip costs its own probe and may push
//! the split off the midpoint: within two probes per skip (checked for every
//! skip pattern of windows up to 10 commits). No commit is probed twice, so
//! never more than `n - 1` probes. The budget is checked before each probe; a
//! probe already running is not cut short here (the sandbox has its own
//! timeouts).

use std::time::{Duration, Instant};

use git2::Oid;
use serde::Serialize;

/// What a probe made of one commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The commit does not fail the way production failed.
    Good,
    /// The commit fails the way production failed.
    Bad,
    /// The probe could not judge this commit: it does not build, or the test
    /// cannot be imported or run there.
    Skip,
}

/// How much probing one bisection may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BisectBudget {
    /// Probes at most.
    pub max_runs: usize,
    /// No probe starts once this much time has passed since the search began.
    pub max_duration: Duration,
}

/// What a bisection found, and every probe it made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BisectResult {
    /// The oldest bad commit whose parent is good: the commit that introduced
    /// the failure. `None` when the search could not pin it down.
    pub culprit: Option<Oid>,
    /// Each probe in the order it ran, with its verdict.
    pub runs: Vec<(Oid, Verdict)>,
    /// Why the search ended without a culprit (budget, skips, the failure
    /// predating the window), naming the range the culprit is known to be in
    /// when there is one. `None` when `culprit` is set.
    pub stopped: Option<String>,
}

/// Finds the first bad commit of a window.
///
/// `commits` is newest first, as [`Window`](super::Window) lists them, and
/// `commits[0]` is known bad (the deployed revision), so it is never probed.
/// `base_is_good` says whether the commit before the window is known good;
/// when it is not, the oldest commit is probed first, and if it is already bad
/// there is no culprit in the window (the failure may predate it). The
/// culprit is the oldest bad commit whose parent (the next-older commit, or
/// the base) is good. Errors from `probe` end the search and are returned
/// as they are.
pub fn bisect<E>(
    commits: &[Oid],
    base_is_good: bool,
    budget: &BisectBudget,
    probe: impl FnMut(Oid) -> Result<Verdict, E>,
) -> Result<BisectResult, E> {
    let mut search = Search {
        commits,
        budget,
        started: Instant::now(),
        runs: Vec::new(),
        probe,
    };
    if commits.is_empty() {
        return Ok(search.stop("the window has no commits".to_owned()));
    }
    // Newest-first indices; `good == commits.len()` stands for the base.
    let bad = 0;
    let good = if base_is_good {
        commits.len()
    } else {
        match search.anchor()? {
            Anchor::Good(good) => good,
            Anchor::Stopped(reason) => return Ok(search.stop(reason)),
        }
    };
    search.narrow(bad, good)
}

/// The search's state: the probes made so far and what limits the next ones.
struct Search<'a, P> {
    commits: &'a [Oid],
    budget: &'a BisectBudget,
    started: Instant,
    runs: Vec<(Oid, Verdict)>,
    probe: P,
}

/// How looking for a good end of the search went.
enum Anchor {
    /// This commit is good.
    Good(usize),
    /// No good end: why.
    Stopped(String),
}

impl<P, E> Search<'_, P>
where
    P: FnMut(Oid) -> Result<Verdict, E>,
{
    /// With no known-good base, the oldest judgeable commit must be good for
    /// a culprit to be inside the window. Skips move one commit newer rather
    /// than to a midpoint: the good end should be as old as possible, so the
    /// whole window stays in the search.
    fn anchor(&mut self) -> Result<Anchor, E> {
        for idx in (1..self.commits.len()).rev() {
            if let Some(reason) = self.exhausted() {
                return Ok(Anchor::Stopped(format!(
                    "{reason} before a good commit was found (the base is not known good)"
                )));
            }
            match self.run(idx)? {
                Verdict::Good => return Ok(Anchor::Good(idx)),
                Verdict::Bad => {
                    return Ok(Anchor::Stopped(format!(
                        "{} is the oldest commit that could be judged and it is already bad; \
                         the base is not known good, so the failure may predate the window",
                        self.commits[idx]
                    )));
                }
                Verdict::Skip => {}
            }
        }
        let skipped = self.commits.len() - 1;
        Ok(Anchor::Stopped(format!(
            "the base is not known good and none of the {skipped} commits older than the \
             known-bad tip could be judged"
        )))
    }

    /// Halves the distance between the known-bad `bad` and the known-good
    /// `good` (older) until they are adjacent or only skipped commits remain.
    fn narrow(mut self, mut bad: usize, mut good: usize) -> Result<BisectResult, E> {
        let mut skipped = vec![false; self.commits.len()];
        while good - bad > 1 {
            let Some(next) = closest_unjudged(bad, good, &skipped) else {
                let reason = format!(
                    "the commits between could not be judged: {}",
                    self.range(bad, good)
                );
                return Ok(self.stop(reason));
            };
            if let Some(reason) = self.exhausted() {
                let reason = format!("{reason}: {}", self.range(bad, good));
                return Ok(self.stop(reason));
            }
            match self.run(next)? {
                Verdict::Good => good = next,
                Verdict::Bad => bad = next,
                Verdict::Skip => skipped[next] = true,
            }
        }
        Ok(BisectResult {
            culprit: Some(self.commits[bad]),
            runs: self.runs,
            stopped: None,
        })
    }

    fn run(&mut self, idx: usize) -> Result<Verdict, E> {
        let commit = self.commits[idx];
        let verdict = (self.probe)(commit)?;
        self.runs.push((commit, verdict));
        Ok(verdict)
    }

    /// Why no further probe may start, if the budget says so.
    fn exhausted(&self) -> Option<String> {
        if self.runs.len() >= self.budget.max_runs {
            return Some(format!("run budget of {} exhausted", self.budget.max_runs));
        }
        if self.started.elapsed() >= self.budget.max_duration {
            return Some(format!(
                "time budget of {:?} exhausted after {} runs",
                self.budget.max_duration,
                self.runs.len()
            ));
        }
        None
    }

    /// Where the culprit is known to be: `commits[bad]` or one of the
    /// unresolved commits older than it and newer than `commits[good]`.
    fn range(&self, bad: usize, good: usize) -> String {
        let count = good - bad;
        let newest = self.commits[bad];
        if count == 1 {
            return format!("the first bad commit is {newest}");
        }
        let oldest = self.commits[good - 1];
        format!(
            "the first bad commit is one of the {count} commits from {oldest} (oldest) to {newest} (newest)"
        )
    }

    fn stop(self, reason: String) -> BisectResult {
        BisectResult {
            culprit: None,
            runs: self.runs,
            stopped: Some(reason),
        }
    }
}

/// The commit strictly between `bad` and `good` nearest their midpoint that
/// has not been skipped: the one whose verdict leaves the smaller worst-case
/// range (on a tie, the newer).
fn closest_unjudged(bad: usize, good: usize, skipped: &[bool]) -> Option<usize> {
    (bad + 1..good)
        .filter(|&idx| !skipped[idx])
        .min_by_key(|&idx| (idx - bad).max(good - idx))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    /// Synthetic ids: `oid(0)` is the tip, larger counters are older.
    fn oid(counter: usize) -> Oid {
        let mut bytes = [0u8; 20];
        bytes[12..].copy_from_slice(&(counter as u64 + 1).to_be_bytes());
        Oid::from_bytes(&bytes).expect("20 bytes make an id")
    }

    fn window(n: usize) -> Vec<Oid> {
        (0..n).map(oid).collect()
    }

    fn unlimited() -> BisectBudget {
        BisectBudget {
            max_runs: usize::MAX,
            max_duration: Duration::MAX,
        }
    }

    /// ⌈log2 n⌉ for n ≥ 1.
    fn ceil_log2(n: usize) -> usize {
        n.next_power_of_two().trailing_zeros() as usize
    }

    /// A window whose commits `0..=first_bad` (newest first) are bad and the
    /// rest good, except those in `skips`; records every probe and fails the
    /// test if the known-bad tip or any commit is probed twice.
    struct History {
        commits: Vec<Oid>,
        first_bad: Option<usize>,
        skips: HashSet<usize>,
        probed: RefCell<Vec<usize>>,
    }

    impl History {
        fn new(n: usize, first_bad: Option<usize>) -> History {
            History {
                commits: window(n),
                first_bad,
                skips: HashSet::new(),
                probed: RefCell::new(Vec::new()),
            }
        }

        fn skipping(mut self, skips: impl IntoIterator<Item = usize>) -> History {
            self.skips.extend(skips);
            self
        }

        fn probe(&self, commit: Oid) -> Result<Verdict, std::convert::Infallible> {
            let idx = self
                .commits
                .iter()
                .position(|&candidate| candidate == commit)
                .expect("only window commits are probed");
            assert_ne!(idx, 0, "the known-bad tip is never probed");
            let mut probed = self.probed.borrow_mut();
            assert!(!probed.contains(&idx), "commit {idx} probed twice");
            probed.push(idx);
            Ok(if self.skips.contains(&idx) {
                Verdict::Skip
            } else if self.first_bad.is_some_and(|first_bad| idx <= first_bad) {
                Verdict::Bad
            } else {
                Verdict::Good
            })
        }

        fn bisect(&self, base_is_good: bool, budget: &BisectBudget) -> BisectResult {
            let result = bisect(&self.commits, base_is_good, budget, |commit| {
                self.probe(commit)
            });
            let result = result.unwrap_or_else(|never| match never {});
            assert_eq!(result.runs.len(), self.probed.borrow().len());
            assert_eq!(result.culprit.is_none(), result.stopped.is_some());
            result
        }

        fn probes(&self) -> usize {
            self.probed.borrow().len()
        }
    }

    #[test]
    fn middle_of_64_found_in_log2_probes() {
        let history = History::new(64, Some(31));
        let result = history.bisect(true, &unlimited());
        assert_eq!(result.culprit, Some(oid(31)));
        assert!(history.probes() <= 6, "{} probes", history.probes());

        // Without a known-good base the oldest commit is probed first.
        let history = History::new(64, Some(31));
        let result = history.bisect(false, &unlimited());
        assert_eq!(result.culprit, Some(oid(31)));
        assert!(history.probes() <= 7, "{} probes", history.probes());
        assert_eq!(result.runs[0], (oid(63), Verdict::Good));
    }

    #[test]
    fn culprit_at_the_newest_end_is_the_tip() {
        let history = History::new(64, Some(0));
        let result = history.bisect(true, &unlimited());
        assert_eq!(result.culprit, Some(oid(0)));
        assert!(history.probes() <= 6);
    }

    #[test]
    fn culprit_at_the_oldest_end_with_a_good_base() {
        let history = History::new(64, Some(63));
        let result = history.bisect(true, &unlimited());
        assert_eq!(result.culprit, Some(oid(63)));
        assert!(history.probes() <= 6);
    }

    #[test]
    fn single_commit_window_needs_no_probe() {
        let history = History::new(1, Some(0));
        let result = history.bisect(true, &unlimited());
        assert_eq!(result.culprit, Some(oid(0)));
        assert_eq!(history.probes(), 0);

        let result = history.bisect(false, &unlimited());
        assert_eq!(result.culprit, None);
        assert_eq!(history.probes(), 0);
    }

    #[test]
    fn empty_window_has_no_culprit() {
        let history = History::new(0, None);
        let result = history.bisect(true, &unlimited());
        assert_eq!(result.culprit, None);
        assert_eq!(result.stopped.as_deref(), Some("the window has no commits"));
    }

    #[test]
    fn oldest_already_bad_without_a_good_base_may_predate_the_window() {
        let history = History::new(20, Some(19));
        let result = history.bisect(false, &unlimited());
        assert_eq!(result.culprit, None);
        assert_eq!(result.runs, [(oid(19), Verdict::Bad)]);
        let stopped = result.stopped.expect("a reason");
        assert!(stopped.contains("may predate the window"), "{stopped}");
    }

    #[test]
    fn skipped_oldest_without_a_good_base_moves_one_newer() {
        let history = History::new(20, Some(5)).skipping([19, 18]);
        let result = history.bisect(false, &unlimited());
        assert_eq!(result.culprit, Some(oid(5)));
        assert_eq!(
            result.runs[..3],
            [
                (oid(19), Verdict::Skip),
                (oid(18), Verdict::Skip),
                (oid(17), Verdict::Good)
            ]
        );
    }

    #[test]
    fn skipped_midpoint_probes_its_nearest_neighbour() {
        // 16 commits, base good: the first midpoint is 8.
        let history = History::new(16, Some(3)).skipping([8]);
        let result = history.bisect(true, &unlimited());
        assert_eq!(result.culprit, Some(oid(3)));
        assert_eq!(
            result.runs[..2],
            [(oid(8), Verdict::Skip), (oid(7), Verdict::Good)]
        );
    }

    #[test]
    fn skipped_parent_of_the_culprit_leaves_a_range() {
        let history = History::new(16, Some(8)).skipping([9, 10]);
        let result = history.bisect(true, &unlimited());
        assert_eq!(result.culprit, None);
        let judged: Vec<_> = result
            .runs
            .iter()
            .filter(|(_, verdict)| *verdict != Verdict::Skip)
            .collect();
        assert!(judged.contains(&&(oid(8), Verdict::Bad)));
        assert!(judged.contains(&&(oid(11), Verdict::Good)));
        let stopped = result.stopped.expect("a reason");
        assert_eq!(
            stopped,
            format!(
                "the commits between could not be judged: the first bad commit is one of \
                 the 3 commits from {} (oldest) to {} (newest)",
                oid(10),
                oid(8)
            )
        );
    }

    #[test]
    fn skipped_newer_neighbour_does_not_hide_the_culprit() {
        // The culprit's child cannot be judged, but the culprit and its parent can.
        let history = History::new(16, Some(8)).skipping([7]);
        let result = history.bisect(true, &unlimited());
        assert_eq!(result.culprit, Some(oid(8)));
    }

    #[test]
    fn all_skipped_reports_the_whole_window() {
        let history = History::new(10, Some(4)).skipping(1..10);
        let result = history.bisect(true, &unlimited());
        assert_eq!(result.culprit, None);
        assert_eq!(history.probes(), 9);
        let stopped = result.stopped.expect("a reason");
        assert!(stopped.contains("one of the 10 commits"), "{stopped}");

        let history = History::new(10, Some(4)).skipping(1..10);
        let result = history.bisect(false, &unlimited());
        assert_eq!(result.culprit, None);
        let stopped = result.stopped.expect("a reason");
        assert!(stopped.contains("none of the 9 commits"), "{stopped}");
    }

    #[test]
    fn run_budget_stops_with_the_remaining_range() {
        let history = History::new(64, Some(40));
        let budget = BisectBudget {
            max_runs: 2,
            max_duration: Duration::MAX,
        };
        let result = history.bisect(true, &budget);
        assert_eq!(result.culprit, None);
        // 32 is bad, then 48 good: 16 candidates left.
        assert_eq!(
            result.runs,
            [(oid(32), Verdict::Bad), (oid(48), Verdict::Good)]
        );
        assert_eq!(
            result.stopped.expect("a reason"),
            format!(
                "run budget of 2 exhausted: the first bad commit is one of the 16 commits \
                 from {} (oldest) to {} (newest)",
                oid(47),
                oid(32)
            )
        );
    }

    #[test]
    fn spent_time_budget_probes_nothing() {
        let history = History::new(8, Some(3));
        let budget = BisectBudget {
            max_runs: usize::MAX,
            max_duration: Duration::ZERO,
        };
        let result = history.bisect(false, &budget);
        assert_eq!(result.culprit, None);
        assert_eq!(history.probes(), 0);
        let stopped = result.stopped.expect("a reason");
        assert!(
            stopped.starts_with("time budget of 0ns exhausted after 0 runs"),
            "{stopped}"
        );
    }

    #[test]
    fn probe_error_propagates() {
        let commits = window(32);
        let mut calls = 0;
        let result = bisect(&commits, true, &unlimited(), |_| {
            calls += 1;
            match calls {
                1 => Ok(Verdict::Good),
                _ => Err("sandbox unavailable"),
            }
        });
        assert_eq!(result, Err("sandbox unavailable"));
        assert_eq!(calls, 2);
    }

    /// Every culprit position of every window size up to 70, with and
    /// without a known-good base.
    #[test]
    fn every_culprit_position_is_found_within_the_bound() {
        for n in 1..=70 {
            for first_bad in 0..n {
                let history = History::new(n, Some(first_bad));
                let result = history.bisect(true, &unlimited());
                assert_eq!(
                    result.culprit,
                    Some(oid(first_bad)),
                    "n={n} first_bad={first_bad}"
                );
                assert!(
                    history.probes() <= ceil_log2(n),
                    "n={n} first_bad={first_bad}"
                );

                let history = History::new(n, Some(first_bad));
                let result = history.bisect(false, &unlimited());
                // Without a good base, a culprit that is the oldest commit
                // cannot be told from a failure older than the window.
                let expected = (first_bad + 1 < n).then(|| oid(first_bad));
                assert_eq!(
                    result.culprit, expected,
                    "n={n} first_bad={first_bad} base unknown"
                );
                assert!(
                    history.probes() <= ceil_log2(n) + 1,
                    "n={n} first_bad={first_bad}"
                );
            }
        }
    }

    /// Whether the search can name the culprit despite `skips`, and which:
    /// it needs a good commit older than the culprit (the base, or with an
    /// unknown base the oldest commit it can judge) and both the culprit and
    /// its parent judged.
    fn expected_culprit(
        n: usize,
        first_bad: usize,
        skips: &HashSet<usize>,
        base_is_good: bool,
    ) -> Option<Oid> {
        let good_end = match base_is_good {
            true => n,
            false => (1..n).rev().find(|idx| !skips.contains(idx))?,
        };
        let parent = first_bad + 1;
        let judged =
            !skips.contains(&first_bad) && (parent == good_end || !skips.contains(&parent));
        (parent <= good_end && judged).then(|| oid(first_bad))
    }

    /// Every skip pattern of every window up to 10 commits: the culprit is
    /// named exactly when the skips allow it, and each skipped probe costs
    /// at most two more probes than the bound without skips.
    #[test]
    fn every_skip_pattern_of_small_windows() {
        for n in 1..=10usize {
            for mask in 0u32..(1 << n) {
                let skips: HashSet<usize> = (1..n).filter(|idx| mask & (1 << idx) != 0).collect();
                if mask & 1 != 0 {
                    continue; // the tip is never probed
                }
                for first_bad in 0..n {
                    for base_is_good in [true, false] {
                        let history = History::new(n, Some(first_bad)).skipping(skips.clone());
                        let result = history.bisect(base_is_good, &unlimited());
                        let case = format!(
                            "n={n} skips={mask:b} first_bad={first_bad} base_is_good={base_is_good}"
                        );
                        let expected = expected_culprit(n, first_bad, &skips, base_is_good);
                        assert_eq!(result.culprit, expected, "{case}");
                        let skipped = result
                            .runs
                            .iter()
                            .filter(|(_, verdict)| *verdict == Verdict::Skip)
                            .count();
                        let bound = ceil_log2(n) + usize::from(!base_is_good) + 2 * skipped;
                        assert!(
                            history.probes() <= bound,
                            "{case}: {} probes",
                            history.probes()
                        );
                    }
                }
            }
        }
    }

    proptest! {
        /// Windows up to 70 commits with arbitrary skips: the culprit is named
        /// exactly when the skips allow it, and never a wrong one.
        #[test]
        fn skips_never_give_a_wrong_culprit(
            n in 1usize..=70,
            first_bad_seed in any::<usize>(),
            skip_mask in any::<u128>(),
            base_is_good in any::<bool>(),
        ) {
            let first_bad = first_bad_seed % n;
            let skips: HashSet<usize> = (1..n).filter(|idx| skip_mask & (1 << idx) != 0).collect();
            let history = History::new(n, Some(first_bad)).skipping(skips.clone());
            let result = history.bisect(base_is_good, &unlimited());
            prop_assert_eq!(result.culprit, expected_culprit(n, first_bad, &skips, base_is_good));
            prop_assert!(history.probes() < n.max(1));
        }
    }
}
