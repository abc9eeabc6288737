//! The fake GitHub's answers: each object (pull request, issue, comment,
//! label, user) is the smallest instance of the operation's response schema
//! with the fake's state laid over it, so every field GitHub requires is
//! there and the answer can be checked against the same schema.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::{Comment, GitHubApi, Item};
use crate::contract::{Route, flatten, instance};
use crate::server::Api;

impl GitHubApi {
    /// The response schema of an operation, as published.
    pub(super) fn schema(&self, method: &str, template: &str, status: u16) -> &'static Value {
        let route = Route {
            method: method.to_string(),
            template: template.to_string(),
            params: BTreeMap::new(),
        };
        self.contract()
            .response_schema(&route, status)
            .unwrap_or_else(|| panic!("the contract documents {method} {template} {status}"))
    }

    pub(super) fn user_json(&self, schema: &Value, login: &str) -> Value {
        let (kind, html_url) = match login.strip_suffix("[bot]") {
            Some(app) => ("Bot", format!("https://github.com/apps/{app}")),
            None => ("User", format!("https://github.com/{login}")),
        };
        let id = login.bytes().map(u64::from).sum::<u64>();
        let escaped = login.replace('[', "%5B").replace(']', "%5D");
        instance(
            schema,
            json!({
                "login": login,
                "id": id,
                "node_id": format!("U_{login}"),
                "type": kind,
                "html_url": html_url,
                "url": format!("{}/users/{escaped}", self.base_url()),
            }),
        )
    }

    pub(super) fn label_json(&self, schema: &Value, name: &str) -> Value {
        let id = name.bytes().map(u64::from).sum::<u64>();
        instance(
            schema,
            json!({
                "id": id,
                "node_id": format!("LA_{name}"),
                "url": format!("{}/labels/{name}", self.repo_api_url()),
                "name": name,
                "color": "ededed",
                "default": false,
            }),
        )
    }

    pub(super) fn pull_json(
        &self,
        item: &Item,
        template: &str,
        method: &str,
        status: u16,
    ) -> Value {
        let schema = self.schema(method, template, status);
        // List operations answer arrays of the object.
        let schema = &flatten(schema.get("items").unwrap_or(schema));
        let pull = item.pull.as_ref().expect("a pull request");
        let user_schema = schema.pointer("/properties/user").unwrap_or(&Value::Null);
        let label_schema = schema
            .pointer("/properties/labels/items")
            .unwrap_or(&Value::Null);
        let team_schema = schema
            .pointer("/properties/requested_teams/items")
            .unwrap_or(&Value::Null);
        let number = item.number;
        let api_url = format!("{}/pulls/{number}", self.repo_api_url());
        let html_url = format!("{}/pull/{number}", self.repo_html_url());
        let side = |reference: &str, sha: &str| {
            json!({
                "label": format!("{}:{reference}", self.config.owner),
                "ref": reference,
                "sha": sha,
                "user": self.user_json(user_schema, &self.config.owner),
            })
        };
        let mut overlay = json!({
            "id": item.id,
            "node_id": format!("PR_{}", item.id),
            "number": number,
            "title": item.title,
            "body": item.body,
            "state": item.state,
            "locked": false,
            "url": api_url,
            "html_url": html_url,
            "diff_url": format!("{html_url}.diff"),
            "patch_url": format!("{html_url}.patch"),
            "issue_url": format!("{}/issues/{number}", self.repo_api_url()),
            "user": self.user_json(user_schema, &item.author),
            "labels": item.labels.iter().map(|name| self.label_json(label_schema, name)).collect::<Vec<_>>(),
            "head": side(&pull.head_ref, &pull.head_sha),
            "base": side(&pull.base_ref, &pull.base_sha),
            "draft": pull.draft,
            "created_at": timestamp(item.created_at),
            "updated_at": timestamp(item.updated_at),
            "closed_at": item.closed_at.map(timestamp),
            "merged_at": pull.merged_at.map(timestamp),
            "merge_commit_sha": pull.merge_commit_sha,
            "requested_reviewers": pull
                .requested_reviewers
                .iter()
                .map(|login| self.user_json(user_schema, login))
                .collect::<Vec<_>>(),
            "requested_teams": pull
                .requested_teams
                .iter()
                .map(|slug| instance(team_schema, json!({ "slug": slug, "name": slug })))
                .collect::<Vec<_>>(),
        });
        if schema.pointer("/properties/merged").is_some() {
            overlay["merged"] = json!(pull.merged_at.is_some());
            overlay["comments"] = json!(item.comments.len());
        }
        instance(schema, overlay)
    }

    pub(super) fn issue_json(
        &self,
        item: &Item,
        template: &str,
        method: &str,
        status: u16,
    ) -> Value {
        let schema = self.schema(method, template, status);
        let schema = &flatten(schema.get("items").unwrap_or(schema));
        let user_schema = schema.pointer("/properties/user").unwrap_or(&Value::Null);
        let label_schema = schema
            .pointer("/properties/labels/items/oneOf/1")
            .unwrap_or(&Value::Null);
        let number = item.number;
        let kind = if item.pull.is_some() {
            "pull"
        } else {
            "issues"
        };
        let html_url = format!("{}/{kind}/{number}", self.repo_html_url());
        let mut overlay = json!({
            "id": item.id,
            "node_id": format!("I_{}", item.id),
            "number": number,
            "title": item.title,
            "body": item.body,
            "state": item.state,
            "state_reason": item.state_reason,
            "locked": false,
            "url": format!("{}/issues/{number}", self.repo_api_url()),
            "repository_url": self.repo_api_url(),
            "html_url": html_url,
            "user": self.user_json(user_schema, &item.author),
            "labels": item.labels.iter().map(|name| self.label_json(label_schema, name)).collect::<Vec<_>>(),
            "comments": item.comments.len(),
            "created_at": timestamp(item.created_at),
            "updated_at": timestamp(item.updated_at),
            "closed_at": item.closed_at.map(timestamp),
        });
        if let Some(pull) = &item.pull {
            overlay["pull_request"] = json!({
                "url": format!("{}/pulls/{number}", self.repo_api_url()),
                "html_url": html_url,
                "diff_url": format!("{html_url}.diff"),
                "patch_url": format!("{html_url}.patch"),
                "merged_at": pull.merged_at.map(timestamp),
            });
        }
        instance(schema, overlay)
    }

    pub(super) fn comment_json(
        &self,
        item: &Item,
        comment: &Comment,
        template: &str,
        method: &str,
        status: u16,
    ) -> Value {
        let schema = self.schema(method, template, status);
        let schema = &flatten(schema.get("items").unwrap_or(schema));
        let user_schema = schema.pointer("/properties/user").unwrap_or(&Value::Null);
        let kind = if item.pull.is_some() {
            "pull"
        } else {
            "issues"
        };
        instance(
            schema,
            json!({
                "id": comment.id,
                "node_id": format!("IC_{}", comment.id),
                "url": format!("{}/issues/comments/{}", self.repo_api_url(), comment.id),
                "html_url": format!("{}/{kind}/{}#issuecomment-{}", self.repo_html_url(), item.number, comment.id),
                "issue_url": format!("{}/issues/{}", self.repo_api_url(), item.number),
                "body": comment.body,
                "user": self.user_json(user_schema, &comment.author),
                "created_at": timestamp(comment.created_at),
                "updated_at": timestamp(comment.created_at),
                "author_association": "NONE",
            }),
        )
    }
}

pub(super) fn timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}
