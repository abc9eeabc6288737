//! OpenAPI 3.0 contracts as test oracles: route matching, request and
//! response checks, and the smallest valid instance of a schema.
//!
//! The GitHub, Sentry and PagerDuty descriptions in `shared/contracts/` are
//! OpenAPI 3.0 documents, already dereferenced (no `$ref`). Their schema
//! objects are JSON Schema draft 4 plus OpenAPI's `nullable`, which is
//! rewritten here into plain JSON Schema (`type: [T, "null"]`) before
//! compiling with the `jsonschema` crate. (The OpenAI contract is OpenAPI
//! 3.1, i.e. JSON Schema 2020-12, and keeps its own checks in `openai.rs`.)
//!
//! Fakes answer with real-shaped objects without hand-writing every field
//! GitHub requires (a pull request has about a hundred, nested): they start
//! from [`minimal`], the smallest instance the schema accepts, and lay the
//! fields the test cares about over it with [`merge`]. Every answer is then
//! checked against the same schema, so a wrong overlay is caught, not sent.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value, json};

/// A loaded, normalised OpenAPI 3.0 document.
pub struct OpenApi {
    /// Where it was read from, for messages.
    path: String,
    /// The document with `nullable` rewritten (used for validation).
    normalised: Value,
    /// The document as published (used for [`minimal`], which reads
    /// `nullable` itself).
    published: Value,
    /// Path templates, e.g. `/repos/{owner}/{repo}/pulls`.
    templates: Vec<String>,
    /// Compiled validators by key.
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

impl std::fmt::Debug for OpenApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenApi").field("path", &self.path).finish()
    }
}

/// A request path matched to one of the contract's path templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Lowercase method, as the document's keys spell it (`get`, `post`).
    pub method: String,
    /// The template, e.g. `/repos/{owner}/{repo}/pulls/{pull_number}`.
    pub template: String,
    /// Path parameters, percent-decoded.
    pub params: BTreeMap<String, String>,
}

impl Route {
    /// A path parameter (empty when absent).
    pub fn param(&self, name: &str) -> &str {
        self.params
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
    }
}

impl OpenApi {
    /// Loads `shared/contracts/<file_name>`, once per test binary.
    ///
    /// # Panics
    ///
    /// When the file cannot be read or parsed: a broken test setup.
    pub fn load(file_name: &str) -> &'static OpenApi {
        static LOADED: OnceLock<Mutex<HashMap<String, &'static OpenApi>>> = OnceLock::new();
        let loaded = LOADED.get_or_init(Default::default);
        let mut loaded = loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(api) = loaded.get(file_name) {
            return api;
        }
        let path = format!(
            "{}/../../../shared/contracts/{file_name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("reading {path}: {error}"));
        let published: Value =
            serde_json::from_str(&text).unwrap_or_else(|error| panic!("parsing {path}: {error}"));
        let mut normalised = published.clone();
        normalise(&mut normalised);
        let templates = published["paths"]
            .as_object()
            .map(|paths| paths.keys().cloned().collect())
            .unwrap_or_default();
        let api: &'static OpenApi = Box::leak(Box::new(OpenApi {
            path,
            normalised,
            published,
            templates,
            validators: Mutex::new(HashMap::new()),
        }));
        loaded.insert(file_name.to_string(), api);
        api
    }

    /// Matches `method` and a request path (no query) to an operation.
    /// Exact segment matches win; otherwise a template ending in `{ref}` or
    /// `{path}` takes the rest of the path, slashes included, as GitHub does
    /// for `git/ref/heads/feature/x`.
    pub fn route(&self, method: &str, path: &str) -> Option<Route> {
        let method = method.to_ascii_lowercase();
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let has_operation = |template: &str| self.published["paths"][template][&method].is_object();
        let trailing_slash = path.ends_with('/') && path != "/";
        let candidates = self
            .templates
            .iter()
            .filter(|template| template.ends_with('/') == trailing_slash)
            .filter(|template| has_operation(template));
        let mut greedy = None;
        for template in candidates {
            let parts: Vec<&str> = template.trim_end_matches('/').split('/').collect();
            if let Some(params) = match_segments(&parts, &segments, false) {
                return Some(Route {
                    method,
                    template: template.clone(),
                    params,
                });
            }
            let last = parts.last().copied().unwrap_or_default();
            if greedy.is_none()
                && (last == "{ref}" || last == "{path}")
                && let Some(params) = match_segments(&parts, &segments, true)
            {
                greedy = Some(Route {
                    method: method.clone(),
                    template: template.clone(),
                    params,
                });
            }
        }
        greedy
    }

    /// The operation object of `route` (as published).
    pub fn operation(&self, route: &Route) -> &Value {
        &self.published["paths"][&route.template][&route.method]
    }

    /// The response schema of `route` for `status` (as published, for
    /// [`minimal`]); `None` when the contract documents no JSON body.
    pub fn response_schema(&self, route: &Route, status: u16) -> Option<&Value> {
        response_schema(&self.published, route, status)
    }

    /// Contract errors of a request: its query parameters and its body
    /// (`None` when the request had none).
    pub fn check_request(
        &self,
        route: &Route,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Vec<String> {
        let mut errors = self.check_query(route, query);
        let operation = &self.normalised["paths"][&route.template][&route.method];
        let request_body = &operation["requestBody"];
        match (body, request_body.is_object()) {
            (None, true) if request_body["required"] == json!(true) => {
                errors.push("the request body is required".to_string());
            }
            (Some(_), false) => errors.push("the operation takes no request body".to_string()),
            (Some(body), true) => {
                let key = format!("{} {} request", route.method, route.template);
                let schema = &request_body["content"]["application/json"]["schema"];
                errors.extend(self.check_with(&key, || schema.clone(), body));
            }
            _ => {}
        }
        errors
    }

    /// Contract errors of a response. A status the operation does not
    /// document, or documents without a JSON body, is not checked, except
    /// that an undocumented 2xx is an error (the fake must answer as the
    /// real service does when it succeeds).
    pub fn check_response(&self, route: &Route, status: u16, body: &Value) -> Vec<String> {
        let operation = &self.normalised["paths"][&route.template][&route.method];
        let documented = operation["responses"][status.to_string()].is_object();
        if !documented {
            if (200..300).contains(&status) {
                return vec![format!(
                    "{status} is not a documented answer of {} {}",
                    route.method, route.template
                )];
            }
            return Vec::new();
        }
        match response_schema(&self.normalised, route, status) {
            Some(schema) => {
                let key = format!("{} {} {status}", route.method, route.template);
                self.check_with(&key, || schema.clone(), body)
            }
            None => Vec::new(),
        }
    }

    /// Contract errors of `instance` against a schema made by `schema` (from
    /// the normalised document, possibly adjusted), compiled once per `key`.
    pub fn check_with(
        &self,
        key: &str,
        schema: impl FnOnce() -> Value,
        instance: &Value,
    ) -> Vec<String> {
        let validator = {
            let mut validators = self
                .validators
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            validators
                .entry(key.to_string())
                .or_insert_with(|| {
                    let schema = schema();
                    let validator = jsonschema::draft4::options()
                        .should_validate_formats(true)
                        .build(&schema)
                        .unwrap_or_else(|error| {
                            panic!("compiling {key} of {}: {error}", self.path)
                        });
                    Arc::new(validator)
                })
                .clone()
        };
        validator
            .iter_errors(instance)
            .take(5)
            .map(|error| {
                format!(
                    "at {:?} (schema {}): {}",
                    error.instance_path().to_string(),
                    error.schema_path(),
                    error.masked()
                )
            })
            .collect()
    }

    /// The normalised request body schema of `route`, for fakes that check
    /// a request with adjustments (see Sentry's `required` quirk).
    pub fn normalised_request_schema(&self, route: &Route) -> Option<&Value> {
        let schema = &self.normalised["paths"][&route.template][&route.method]["requestBody"]["content"]
            ["application/json"]["schema"];
        schema.is_object().then_some(schema)
    }

    fn check_query(&self, route: &Route, query: &[(String, String)]) -> Vec<String> {
        let operation = &self.normalised["paths"][&route.template][&route.method];
        let parameters: Vec<&Value> = operation["parameters"]
            .as_array()
            .map(|parameters| {
                parameters
                    .iter()
                    .filter(|p| p["in"] == json!("query"))
                    .collect()
            })
            .unwrap_or_default();
        let mut errors = Vec::new();
        for (name, value) in query {
            let Some(parameter) = parameters.iter().find(|p| p["name"] == json!(name)) else {
                errors.push(format!("unknown query parameter {name:?}"));
                continue;
            };
            let schema = &parameter["schema"];
            let instance = match schema["type"].as_str() {
                Some("integer") => match value.parse::<i64>() {
                    Ok(number) => json!(number),
                    Err(_) => {
                        errors.push(format!(
                            "query parameter {name}={value:?} is not an integer"
                        ));
                        continue;
                    }
                },
                Some("boolean") => json!(value == "true"),
                _ => json!(value),
            };
            let key = format!("{} {} query {name}", route.method, route.template);
            errors.extend(
                self.check_with(&key, || schema.clone(), &instance)
                    .into_iter()
                    .map(|error| format!("query parameter {name}: {error}")),
            );
        }
        for parameter in parameters {
            let name = parameter["name"].as_str().unwrap_or_default();
            if parameter["required"] == json!(true) && !query.iter().any(|(n, _)| n == name) {
                errors.push(format!("query parameter {name} is required"));
            }
        }
        errors
    }
}

fn response_schema<'a>(document: &'a Value, route: &Route, status: u16) -> Option<&'a Value> {
    let content = &document["paths"][&route.template][&route.method]["responses"]
        [status.to_string()]["content"];
    let schema = &content["application/json"]["schema"];
    schema.is_object().then_some(schema)
}

fn match_segments(
    template: &[&str],
    path: &[&str],
    greedy_last: bool,
) -> Option<BTreeMap<String, String>> {
    let fits = if greedy_last {
        path.len() > template.len()
    } else {
        path.len() == template.len()
    };
    if !fits {
        return None;
    }
    let mut params = BTreeMap::new();
    for (index, part) in template.iter().enumerate() {
        let is_last = index + 1 == template.len();
        let value = if greedy_last && is_last {
            path[index..].join("/")
        } else {
            path[index].to_string()
        };
        if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            if value.is_empty() {
                return None;
            }
            params.insert(name.to_string(), percent_decode(&value));
        } else if *part != value {
            return None;
        }
    }
    Some(params)
}

/// Decodes `%XX` escapes and `+` (as in query strings, spaces).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(byte) => {
                        out.push(byte);
                        index += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        index += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                index += 1;
            }
            byte => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits a query string into decoded `(name, value)` pairs.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

/// Rewrites OpenAPI 3.0's `nullable: true` into JSON Schema: a typed schema
/// gets `null` added to its `type` (and `enum`), an untyped one (`allOf`
/// and friends) is wrapped in `anyOf: [schema, {type: null}]`.
pub fn normalise(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                // Examples are data, not schemas.
                if key != "example" && key != "examples" {
                    normalise(child);
                }
            }
            if map.get("nullable") == Some(&json!(true)) {
                map.remove("nullable");
                match map.get("type").cloned() {
                    Some(Value::String(kind)) => {
                        map.insert("type".to_string(), json!([kind, "null"]));
                        if let Some(Value::Array(values)) = map.get_mut("enum")
                            && !values.contains(&Value::Null)
                        {
                            values.push(Value::Null);
                        }
                    }
                    _ => {
                        let inner = Value::Object(std::mem::take(map));
                        map.insert("anyOf".to_string(), json!([inner, { "type": "null" }]));
                    }
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalise),
        _ => {}
    }
}

/// Removes `required` from a schema and from the schemas of its
/// properties, one level down (`allOf` members included): for request
/// bodies whose contract lists every field as required although the
/// operation accepts any subset (Sentry's issue `PUT`).
pub fn without_required(schema: &Value, depth: usize) -> Value {
    let mut schema = schema.clone();
    strip_required(&mut schema, depth);
    schema
}

fn strip_required(schema: &mut Value, depth: usize) {
    let Value::Object(map) = schema else {
        return;
    };
    map.remove("required");
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(members)) = map.get_mut(key) {
            members
                .iter_mut()
                .for_each(|member| strip_required(member, depth));
        }
    }
    if depth > 0
        && let Some(Value::Object(properties)) = map.get_mut("properties")
    {
        properties
            .values_mut()
            .for_each(|property| strip_required(property, depth - 1));
    }
}

/// The smallest instance `schema` (an OpenAPI 3.0 schema object, as
/// published) accepts: required properties only, nullable ones `null`,
/// first enum values, empty arrays, fixed dates and URLs.
pub fn minimal(schema: &Value) -> Value {
    let schema = flatten(schema);
    if let Some(values) = schema["enum"].as_array()
        && let Some(first) = values.iter().find(|v| !v.is_null()).or(values.first())
    {
        return first.clone();
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(first) = schema[key]
            .as_array()
            .and_then(|alternatives| alternatives.first())
        {
            return minimal(first);
        }
    }
    let kind = match &schema["type"] {
        Value::String(kind) => kind.as_str(),
        Value::Array(kinds) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|kind| *kind != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() || schema.get("required").is_some() => "object",
        _ if schema.get("items").is_some() => "array",
        _ => "null",
    };
    match kind {
        "object" => {
            let mut object = Map::new();
            for name in schema["required"].as_array().into_iter().flatten() {
                let Some(name) = name.as_str() else { continue };
                let property = &schema["properties"][name];
                let value = if property["nullable"] == json!(true) {
                    Value::Null
                } else {
                    minimal(property)
                };
                object.insert(name.to_string(), value);
            }
            Value::Object(object)
        }
        "array" => {
            let count = schema["minItems"].as_u64().unwrap_or(0);
            Value::Array((0..count).map(|_| minimal(&schema["items"])).collect())
        }
        "string" => {
            let text = match schema["format"].as_str() {
                Some("date-time") => "2026-01-01T00:00:00Z",
                Some("date") => "2026-01-01",
                Some("uri" | "url") => "https://example.com/",
                Some("email") => "user@example.com",
                Some("uuid") => "00000000-0000-0000-0000-000000000000",
                _ => "",
            };
            let min_length = schema["minLength"].as_u64().unwrap_or(0) as usize;
            let mut text = text.to_string();
            while text.chars().count() < min_length {
                text.push('x');
            }
            json!(text)
        }
        "integer" | "number" => {
            let minimum = schema["minimum"].as_i64().unwrap_or(0).max(0);
            let exclusive = schema["exclusiveMinimum"] == json!(true);
            json!(minimum + i64::from(exclusive))
        }
        "boolean" => json!(false),
        _ => Value::Null,
    }
}

/// Folds `allOf` into one schema: properties merged (a property in several
/// members becomes the `allOf` of its schemas), `required` united, other
/// keywords from the last member that has them. Lets a fake find the schema
/// of a property whatever the composition.
pub fn flatten(schema: &Value) -> Value {
    let Some(members) = schema["allOf"].as_array() else {
        return schema.clone();
    };
    let mut merged = schema.clone();
    if let Value::Object(map) = &mut merged {
        map.remove("allOf");
    }
    for member in members {
        let member = flatten(member);
        let Value::Object(member) = member else {
            continue;
        };
        for (key, value) in member {
            match key.as_str() {
                "properties" => {
                    let properties = merged
                        .as_object_mut()
                        .expect("a schema is an object")
                        .entry("properties")
                        .or_insert_with(|| json!({}));
                    for (name, property) in value.as_object().into_iter().flatten() {
                        match properties.get_mut(name) {
                            Some(existing) => {
                                *existing = json!({ "allOf": [existing.clone(), property] });
                            }
                            None => {
                                properties[name] = property.clone();
                            }
                        }
                    }
                }
                "required" => {
                    let required = merged
                        .as_object_mut()
                        .expect("a schema is an object")
                        .entry("required")
                        .or_insert_with(|| json!([]));
                    for name in value.as_array().into_iter().flatten() {
                        if let Some(list) = required.as_array_mut()
                            && !list.contains(name)
                        {
                            list.push(name.clone());
                        }
                    }
                }
                _ => {
                    merged[key.as_str()] = value;
                }
            }
        }
    }
    merged
}

/// Lays `overlay` over `base`: objects merge key by key (recursively), any
/// other value replaces.
pub fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        merge(existing, value);
                    }
                    _ => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// The minimal instance of `schema` with `overlay` laid over it.
pub fn instance(schema: &Value, overlay: Value) -> Value {
    let mut value = minimal(schema);
    merge(&mut value, overlay);
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every minimal instance of a documented JSON response of the three
    /// contracts conforms to its own schema: the fakes build every answer
    /// from these, so a generator gap would show up here first.
    #[test]
    fn minimal_instances_conform() {
        for file in [
            "github-rest-subset.json",
            "sentry-api-subset.json",
            "pagerduty-api-subset.json",
        ] {
            let api = OpenApi::load(file);
            let mut failures = Vec::new();
            for template in &api.templates {
                for (method, operation) in api.published["paths"][template].as_object().unwrap() {
                    let Some(responses) = operation["responses"].as_object() else {
                        continue;
                    };
                    for status in responses.keys() {
                        let Ok(status) = status.parse::<u16>() else {
                            continue;
                        };
                        let route = Route {
                            method: method.clone(),
                            template: template.clone(),
                            params: BTreeMap::new(),
                        };
                        let Some(schema) = api.response_schema(&route, status) else {
                            continue;
                        };
                        let errors = api.check_response(&route, status, &minimal(schema));
                        if !errors.is_empty() {
                            failures
                                .push(format!("{file} {method} {template} {status}: {errors:?}"));
                        }
                    }
                }
            }
            assert_eq!(failures, Vec::<String>::new());
        }
    }

    /// Paths match their templates, with GitHub's slash-carrying `{ref}`
    /// taking the rest of the path only when no template fits exactly.
    #[test]
    fn routes_match_templates() {
        let api = OpenApi::load("github-rest-subset.json");
        let route = api
            .route("GET", "/repos/acme/shop/git/ref/heads/suture/inc-1-fix")
            .unwrap();
        assert_eq!(route.template, "/repos/{owner}/{repo}/git/ref/{ref}");
        assert_eq!(route.param("ref"), "heads/suture/inc-1-fix");
        let route = api
            .route("POST", "/repos/acme/shop/pulls/7/requested_reviewers")
            .unwrap();
        assert_eq!(
            route.template,
            "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers"
        );
        assert_eq!(route.param("pull_number"), "7");
        assert_eq!(api.route("DELETE", "/repos/acme/shop/pulls/7"), None);
        let sentry = OpenApi::load("sentry-api-subset.json");
        let route = sentry
            .route("PUT", "/api/0/organizations/acme/issues/42/")
            .unwrap();
        assert_eq!(route.param("issue_id"), "42");
    }

    /// `nullable` becomes JSON Schema: null is accepted where the contract
    /// allows it and refused elsewhere.
    #[test]
    fn nullable_is_rewritten() {
        let mut schema = json!({
            "type": "object",
            "properties": {
                "a": { "type": "string", "nullable": true },
                "b": { "type": "string", "enum": ["x"], "nullable": true },
                "c": { "allOf": [{ "type": "object" }], "nullable": true },
                "d": { "type": "string" },
            },
        });
        normalise(&mut schema);
        let validator = jsonschema::draft4::new(&schema).unwrap();
        assert!(validator.is_valid(&json!({ "a": null, "b": null, "c": null })));
        assert!(!validator.is_valid(&json!({ "d": null })));
    }

    /// Query strings decode `%XX` and `+`.
    #[test]
    fn query_strings_decode() {
        assert_eq!(
            parse_query("head=acme%3Asuture%2Fx&labels=a+b&state=all"),
            vec![
                ("head".to_string(), "acme:suture/x".to_string()),
                ("labels".to_string(), "a b".to_string()),
                ("state".to_string(), "all".to_string()),
            ]
        );
    }
}
