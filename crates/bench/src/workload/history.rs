//! The synthetic history as a plan: the files of the first commit, then for
//! every later commit who made it, when, which files it edited and how.
//!
//! The plan is a pure function of the shape and the anchor time, so a kept
//! repository can be re-derived (line origins included) without reading it
//! back, and two runs of the bench measure the same repository.

use super::code::{Lang, SourceFile, file_path};
use super::rng::Rng;

/// Seed of every random choice of the plan.
pub(crate) const SEED: u64 = 0x5375_7475_7265; // "Suture"

/// How long the history spans: about a year of commits.
const SPAN_SECONDS: i64 = 365 * 86_400;

/// The newest commit is this long before the anchor, the time of the event.
const NEWEST_BEFORE_ANCHOR: i64 = 3_600;

/// The size of the synthetic repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Source files of the first commit.
    pub(crate) files: usize,
    /// Commits of the history, the first (adding every file) included.
    pub(crate) commits: usize,
}

/// A team of twenty, with their time zones (minutes east of UTC).
const AUTHORS: &[(&str, &str, i32)] = &[
    ("Ana Souza", "ana.souza@example.com", -180),
    ("Ben Okafor", "ben.okafor@example.com", 60),
    ("Chen Wei", "chen.wei@example.com", 480),
    ("Dana Kowalski", "dana.kowalski@example.com", 60),
    ("Elif Demir", "elif.demir@example.com", 180),
    ("Farah Haddad", "farah.haddad@example.com", 120),
    ("Gus Lindqvist", "gus.lindqvist@example.com", 60),
    ("Hiro Tanaka", "hiro.tanaka@example.com", 540),
    ("Ines Moreau", "ines.moreau@example.com", 60),
    ("Jon Park", "jon.park@example.com", -480),
    ("Kavya Rao", "kavya.rao@example.com", 330),
    ("Luca Bianchi", "luca.bianchi@example.com", 60),
    ("Maya Cohen", "maya.cohen@example.com", 120),
    ("Nils Berg", "nils.berg@example.com", 60),
    ("Olu Adeyemi", "olu.adeyemi@example.com", 60),
    ("Priya Nair", "priya.nair@example.com", 330),
    ("Quinn Murphy", "quinn.murphy@example.com", 0),
    ("Rosa Jimenez", "rosa.jimenez@example.com", -360),
    ("Sam Whitaker", "sam.whitaker@example.com", -300),
    ("Tomas Novak", "tomas.novak@example.com", 60),
];

/// Who wrote a commit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Author {
    pub(crate) name: &'static str,
    pub(crate) email: &'static str,
    /// Time zone, minutes east of UTC.
    pub(crate) offset_minutes: i32,
}

/// One commit of the plan.
#[derive(Debug, Clone)]
pub(crate) struct CommitPlan {
    pub(crate) author: Author,
    /// Unix seconds, strictly increasing along the history.
    pub(crate) time: i64,
    pub(crate) message: String,
    /// Indexes into [`Simulation::files`] of the files this commit wrote.
    pub(crate) touched: Vec<usize>,
}

/// The files as the history has left them so far.
pub(crate) struct Simulation {
    pub(crate) shape: Shape,
    /// The time of the event: "now" when the repository was built.
    pub(crate) anchor: i64,
    pub(crate) files: Vec<SourceFile>,
    rng: Rng,
    /// Files by how often commits touch them, hottest first: real histories
    /// keep coming back to the same few files.
    by_heat: Vec<usize>,
}

impl Simulation {
    /// The first commit, which adds every file.
    pub(crate) fn new(shape: Shape, anchor: i64) -> (Simulation, CommitPlan) {
        let mut rng = Rng::new(SEED ^ ((shape.files as u64) << 32) ^ (shape.commits as u64));
        let mut paths = std::collections::HashSet::new();
        let mut files = Vec::with_capacity(shape.files);
        for idx in 0..shape.files {
            let lang = Lang::for_file(idx, shape.files);
            let path = loop {
                let path = file_path(lang, &mut rng);
                if paths.insert(path.clone()) {
                    break path;
                }
            };
            let lines = rng.range(50, 400);
            files.push(SourceFile::generate(path, lang, lines, 0, &mut rng));
        }
        let mut by_heat: Vec<usize> = (0..files.len()).collect();
        for idx in (1..by_heat.len()).rev() {
            by_heat.swap(idx, rng.below(idx + 1));
        }
        let simulation = Simulation {
            shape,
            anchor,
            files,
            rng,
            by_heat,
        };
        let initial = CommitPlan {
            author: author(0),
            time: simulation.commit_time(0),
            message: "initial import\n".to_string(),
            touched: (0..shape.files).collect(),
        };
        (simulation, initial)
    }

    /// Plans commit `step` (1 and up) and applies its edits to the files.
    pub(crate) fn step(&mut self, step: u32) -> CommitPlan {
        let n_files = match self.rng.unit() {
            x if x < 0.55 => 1,
            x if x < 0.85 => 2,
            _ => 3,
        }
        .min(self.files.len());
        let mut touched: Vec<usize> = Vec::with_capacity(n_files);
        while touched.len() < n_files {
            // Squaring a uniform draw favours the head of the heat order.
            let heat = self.rng.unit();
            let file_idx = self.by_heat[(heat * heat * self.files.len() as f64) as usize];
            if !touched.contains(&file_idx) {
                touched.push(file_idx);
            }
        }
        let mut summaries = Vec::with_capacity(touched.len());
        for &file_idx in &touched {
            summaries.push(self.files[file_idx].edit(step, &mut self.rng));
        }
        let first = &summaries[0];
        let mut message = format!(
            "{}: {} {}\n",
            area(&self.files[touched[0]].path),
            first.verb,
            first.function
        );
        if summaries.len() > 1 {
            message.push('\n');
            for (summary, &file_idx) in summaries.iter().zip(&touched).skip(1) {
                message.push_str(&format!(
                    "also {} {} in {}\n",
                    summary.verb, summary.function, self.files[file_idx].path
                ));
            }
        }
        CommitPlan {
            author: author(self.rng.below(AUTHORS.len())),
            time: self.commit_time(step),
            message,
            touched,
        }
    }

    /// Commits spread evenly over the span, each pulled back by up to half
    /// an interval so the spacing looks human but times stay increasing; the
    /// newest lands an hour before the anchor.
    pub(crate) fn commit_time(&self, step: u32) -> i64 {
        let commits = self.shape.commits.max(1) as i64;
        let interval = (SPAN_SECONDS / commits).max(2);
        let newest = self.anchor - NEWEST_BEFORE_ANCHOR;
        let ideal = newest - (commits - 1 - i64::from(step)) * interval;
        let jitter = if i64::from(step) == commits - 1 {
            0
        } else {
            Rng::new(SEED ^ u64::from(step)).below((interval / 2) as usize) as i64
        };
        ideal - jitter
    }
}

fn author(idx: usize) -> Author {
    let (name, email, offset_minutes) = AUTHORS[idx];
    Author {
        name,
        email,
        offset_minutes,
    }
}

/// The part of the repository a path belongs to, as commit subjects name it.
fn area(path: &str) -> &str {
    let mut parts = path.split('/');
    match parts.next() {
        Some("backend") => parts.next().unwrap_or("backend"),
        Some(first) => first,
        None => path,
    }
}
