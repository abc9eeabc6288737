//! suture's forges: where a proven fix becomes a branch, a pull request and a
//! tracking issue for a human to review.
