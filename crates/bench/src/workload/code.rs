//! Plausible source files in the six indexed languages, as a model that
//! commits edit: classes and functions made of statement lines, each line
//! remembering the commit that last wrote it.
//!
//! The bench needs text that tree-sitter parses into real symbols (so index
//! and diagnosis do their full work) and it needs to know, without running
//! blame, which commit wrote each line (so the event can point at lines
//! changed inside or before the window). Keeping the file as a model and
//! rendering it after each edit gives both.

use std::collections::HashSet;

use super::rng::Rng;

/// A language of the index, with the shape its files take in the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    Python,
    JavaScript,
    TypeScript,
    Go,
    Rust,
    Java,
}

impl Lang {
    /// Percentages of the mix: mostly Python, like the services suture is
    /// first aimed at, with a front end and a few services in other languages.
    const MIX: [(Lang, usize); 6] = [
        (Lang::Python, 62),
        (Lang::JavaScript, 10),
        (Lang::TypeScript, 10),
        (Lang::Go, 7),
        (Lang::Rust, 5),
        (Lang::Java, 6),
    ];

    /// The language of file `idx` of `n`: quotas rather than draws, so that
    /// even a tiny repository has Python files to put frames in.
    pub(crate) fn for_file(idx: usize, n: usize) -> Lang {
        let mut bound = 0;
        for (lang, percent) in Lang::MIX {
            bound += percent;
            if idx * 100 < bound * n.max(1) || idx == 0 {
                return lang;
            }
        }
        Lang::Java
    }

    fn extension(self) -> &'static str {
        match self {
            Lang::Python => "py",
            Lang::JavaScript => "js",
            Lang::TypeScript => "ts",
            Lang::Go => "go",
            Lang::Rust => "rs",
            Lang::Java => "java",
        }
    }

    /// How function names are spelled.
    fn function_case(self) -> Case {
        match self {
            Lang::Python | Lang::Rust => Case::Snake,
            Lang::JavaScript | Lang::TypeScript | Lang::Java | Lang::Go => Case::Camel,
        }
    }

    /// How method names are spelled (Go exports its methods).
    fn method_case(self) -> Case {
        match self {
            Lang::Go => Case::Pascal,
            other => other.function_case(),
        }
    }

    fn indent(self) -> &'static str {
        match self {
            Lang::Python | Lang::Rust | Lang::Java => "    ",
            Lang::JavaScript | Lang::TypeScript => "  ",
            Lang::Go => "\t",
        }
    }
}

/// One line of a function body and the commit (simulation step) that wrote it.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub(crate) text: String,
    pub(crate) origin: u32,
}

/// A function or method: its body's last line is always the return.
#[derive(Debug, Clone)]
struct Function {
    name: String,
    params: Vec<String>,
    body: Vec<Line>,
}

#[derive(Debug, Clone)]
struct Class {
    name: String,
    methods: Vec<Function>,
}

#[derive(Debug, Clone)]
enum Item {
    Function(Function),
    Class(Class),
}

/// A source file as the simulation sees it.
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    pub(crate) path: String,
    pub(crate) lang: Lang,
    /// Go package or Java class name, from the path.
    unit_name: String,
    /// Import lines, written once by the first commit.
    imports: Vec<String>,
    items: Vec<Item>,
    /// Names in use in the file, so new functions do not shadow old ones.
    names: HashSet<String>,
    /// Next local variable number: every new statement gets a fresh name.
    next_var: u32,
    /// The step that last edited the file (a removal writes no line).
    last_edit: u32,
}

/// A body line of the rendered file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLine {
    /// 1-based line number in the rendered file.
    pub(crate) line: u32,
    /// Simulation step that wrote it.
    pub(crate) origin: u32,
}

/// Where a function's statements are in the rendered file.
#[derive(Debug, Clone)]
pub(crate) struct FunctionSpan {
    /// The name a stack frame reports.
    pub(crate) name: String,
    /// Every body line, the return included.
    pub(crate) body: Vec<BodyLine>,
}

/// What one edit did, for the commit message.
#[derive(Debug, Clone)]
pub(crate) struct EditSummary {
    pub(crate) verb: &'static str,
    pub(crate) function: String,
}

const VERBS: &[&str] = &[
    "get",
    "load",
    "build",
    "compute",
    "validate",
    "parse",
    "render",
    "sync",
    "update",
    "apply",
    "resolve",
    "fetch",
    "normalize",
    "merge",
    "check",
    "handle",
    "process",
    "create",
    "remove",
    "send",
    "refresh",
    "format",
    "collect",
    "filter",
    "split",
    "encode",
    "decode",
    "schedule",
    "retry",
    "publish",
    "reserve",
    "allocate",
];

const NOUNS: &[&str] = &[
    "order",
    "invoice",
    "user",
    "account",
    "cart",
    "item",
    "price",
    "discount",
    "tax",
    "shipment",
    "address",
    "token",
    "session",
    "payload",
    "report",
    "batch",
    "event",
    "record",
    "profile",
    "quota",
    "plan",
    "coupon",
    "refund",
    "payment",
    "ledger",
    "stock",
    "warehouse",
    "message",
    "webhook",
    "cache",
    "config",
    "metric",
    "export",
    "total",
    "currency",
    "rate",
    "limit",
    "window",
    "cursor",
    "page",
    "query",
    "filter",
    "schedule",
    "region",
    "tenant",
    "label",
];

const CLASS_SUFFIXES: &[&str] = &[
    "Service",
    "Manager",
    "Repository",
    "Handler",
    "Client",
    "Serializer",
    "Validator",
    "Builder",
    "Controller",
    "Store",
    "Policy",
    "Calculator",
];

const LOG_WORDS: &[&str] = &[
    "skipping", "retrying", "applied", "missing", "stale", "expired", "rounded", "capped",
    "queued", "resolved", "rejected", "cached",
];

#[derive(Debug, Clone, Copy)]
enum Case {
    Snake,
    Camel,
    Pascal,
}

fn join_words(words: &[&str], case: Case) -> String {
    let mut out = String::new();
    for (idx, word) in words.iter().enumerate() {
        match case {
            Case::Snake => {
                if idx > 0 {
                    out.push('_');
                }
                out.push_str(word);
            }
            Case::Camel | Case::Pascal => {
                if idx == 0 && matches!(case, Case::Camel) {
                    out.push_str(word);
                } else {
                    let mut chars = word.chars();
                    if let Some(first) = chars.next() {
                        out.push(first.to_ascii_uppercase());
                        out.extend(chars);
                    }
                }
            }
        }
    }
    out
}

/// A file path for a new file of `lang`, under the area of the repository
/// that language lives in.
pub(crate) fn file_path(lang: Lang, rng: &mut Rng) -> String {
    const APPS: &[&str] = &[
        "orders",
        "billing",
        "users",
        "auth",
        "catalog",
        "search",
        "notifications",
        "payments",
        "inventory",
        "shipping",
        "reports",
        "common",
        "integrations",
        "pricing",
        "accounts",
        "analytics",
    ];
    const LAYERS: &[&str] = &[
        "models",
        "views",
        "services",
        "handlers",
        "utils",
        "serializers",
        "tasks",
        "validators",
        "api",
    ];
    let stem = if rng.chance(0.5) {
        rng.pick(NOUNS).to_string()
    } else {
        format!("{}_{}", rng.pick(NOUNS), rng.pick(NOUNS))
    };
    match lang {
        Lang::Python if rng.chance(0.08) => {
            format!("backend/{}/tests/test_{stem}.py", rng.pick(APPS))
        }
        Lang::Python if rng.chance(0.15) => format!("backend/{}/{stem}.py", rng.pick(APPS)),
        Lang::Python => format!("backend/{}/{}/{stem}.py", rng.pick(APPS), rng.pick(LAYERS)),
        Lang::JavaScript | Lang::TypeScript => {
            const AREAS: &[&str] = &[
                "components",
                "hooks",
                "pages",
                "store",
                "api",
                "utils",
                "widgets",
                "forms",
            ];
            let words: Vec<&str> = stem.split('_').collect();
            format!(
                "web/src/{}/{}/{}.{}",
                rng.pick(AREAS),
                rng.pick(APPS),
                join_words(&words, Case::Camel),
                lang.extension()
            )
        }
        Lang::Go => {
            const SERVICES: &[&str] = &["gateway", "notifier", "scheduler", "ledger"];
            const PACKAGES: &[&str] = &["handlers", "store", "queue", "config", "metrics"];
            format!(
                "services/{}/internal/{}/{stem}.go",
                rng.pick(SERVICES),
                rng.pick(PACKAGES)
            )
        }
        Lang::Rust => {
            const CRATES: &[&str] = &["pricing-engine", "search-core", "ratelimit"];
            format!("crates/{}/src/{stem}.rs", rng.pick(CRATES))
        }
        Lang::Java => {
            const PACKAGES: &[&str] = &["checkout", "profile", "sync", "push", "offline"];
            let words: Vec<&str> = stem.split('_').collect();
            format!(
                "android/app/src/main/java/com/example/shop/{}/{}.java",
                rng.pick(PACKAGES),
                join_words(&words, Case::Pascal)
            )
        }
    }
}

impl SourceFile {
    /// A new file at `path` of about `target_lines` lines, every line written
    /// by step `origin`.
    pub(crate) fn generate(
        path: String,
        lang: Lang,
        target_lines: usize,
        origin: u32,
        rng: &mut Rng,
    ) -> SourceFile {
        let stem = path
            .rsplit('/')
            .next()
            .and_then(|name| name.split('.').next())
            .unwrap_or("module");
        let unit_name = match lang {
            Lang::Go => path.rsplit('/').nth(1).unwrap_or("main").replace('-', ""),
            _ => stem.to_string(),
        };
        let mut file = SourceFile {
            path,
            lang,
            unit_name,
            imports: imports(lang, rng),
            items: Vec::new(),
            names: HashSet::new(),
            next_var: 1,
            last_edit: origin,
        };
        let mut lines = file.imports.len() + 6;
        while lines < target_lines {
            let want_class = rng.chance(0.35);
            if want_class {
                let class = file.new_class(origin, rng);
                lines += class
                    .methods
                    .iter()
                    .map(|m| m.body.len() + 3)
                    .sum::<usize>()
                    + 4;
                file.items.push(Item::Class(class));
            } else {
                let function = file.new_function(false, origin, rng);
                lines += function.body.len() + 3;
                file.items.push(Item::Function(function));
            }
        }
        file
    }

    /// Applies one commit's change to this file: rewrites, inserts or
    /// removes a few statements of one function, or adds a function.
    pub(crate) fn edit(&mut self, origin: u32, rng: &mut Rng) -> EditSummary {
        self.last_edit = origin;
        let roll = rng.unit();
        if roll < 0.06 || self.function_count() == 0 {
            let classes: Vec<usize> = (0..self.items.len())
                .filter(|&idx| matches!(self.items[idx], Item::Class(_)))
                .collect();
            // Half of new functions are methods of an existing class.
            let class_idx = (!classes.is_empty() && rng.chance(0.5)).then(|| *rng.pick(&classes));
            let function = self.new_function(class_idx.is_some(), origin, rng);
            let name = function.name.clone();
            match class_idx.map(|idx| &mut self.items[idx]) {
                Some(Item::Class(class)) => class.methods.push(function),
                _ => self.items.push(Item::Function(function)),
            }
            return EditSummary {
                verb: "add",
                function: name,
            };
        }
        let lang = self.lang;
        let callees = self.free_function_names();
        let target = rng.below(self.function_count());
        let mut next_var = self.next_var;
        let function = self.function_mut(target);
        let statements = function.body.len() - 1; // the return stays last
        let verb = if roll < 0.80 && statements > 0 {
            let n_lines = rng.range(1, 3.min(statements));
            let first = rng.below(statements + 1 - n_lines);
            for line in &mut function.body[first..first + n_lines] {
                *line = Line {
                    text: statement(lang, rng, next_var, &function.params, &callees),
                    origin,
                };
                next_var += 1;
            }
            *rng.pick(&["fix", "adjust", "tweak", "correct", "rework"])
        } else if roll < 0.95 || statements <= 3 {
            let at = rng.below(statements + 1);
            for offset in 0..rng.range(1, 3) {
                let text = statement(lang, rng, next_var, &function.params, &callees);
                function.body.insert(at + offset, Line { text, origin });
                next_var += 1;
            }
            *rng.pick(&["handle", "guard", "extend", "log"])
        } else {
            function.body.remove(rng.below(statements));
            *rng.pick(&["simplify", "clean up", "drop dead code in"])
        };
        let name = function.name.clone();
        self.next_var = next_var;
        EditSummary {
            verb,
            function: name,
        }
    }

    /// The file's text.
    pub(crate) fn render(&self) -> String {
        self.render_with_spans().0
    }

    /// Every function and method with where its body lines are.
    pub(crate) fn spans(&self) -> Vec<FunctionSpan> {
        self.render_with_spans().1
    }

    /// Whether frames in this file would be test frames, which diagnosis
    /// discounts: the bench's trace is production code.
    pub(crate) fn is_test(&self) -> bool {
        self.path.contains("/tests/")
    }

    /// The step that last edited the file.
    pub(crate) fn last_edit(&self) -> u32 {
        self.last_edit
    }

    fn functions(&self) -> impl Iterator<Item = &Function> {
        self.items.iter().flat_map(|item| match item {
            Item::Function(function) => std::slice::from_ref(function).iter(),
            Item::Class(class) => class.methods.iter(),
        })
    }

    fn function_count(&self) -> usize {
        self.functions().count()
    }

    fn function_mut(&mut self, mut idx: usize) -> &mut Function {
        // Find the item first: returning a borrow from inside the loop
        // would keep `self.items` borrowed for the rest of it.
        let mut found = None;
        for (item_idx, item) in self.items.iter().enumerate() {
            let len = match item {
                Item::Function(_) => 1,
                Item::Class(class) => class.methods.len(),
            };
            if idx < len {
                found = Some((item_idx, idx));
                break;
            }
            idx -= len;
        }
        let (item_idx, method_idx) = found.expect("function index in range");
        match &mut self.items[item_idx] {
            Item::Function(function) => function,
            Item::Class(class) => &mut class.methods[method_idx],
        }
    }

    fn free_function_names(&self) -> Vec<String> {
        self.items
            .iter()
            .filter_map(|item| match item {
                Item::Function(function) => Some(function.name.clone()),
                Item::Class(_) => None,
            })
            .collect()
    }

    fn fresh_name(&mut self, case: Case, rng: &mut Rng) -> String {
        loop {
            let mut words = vec![*rng.pick(VERBS), *rng.pick(NOUNS)];
            if rng.chance(0.4) {
                words.push(*rng.pick(NOUNS));
            }
            let name = join_words(&words, case);
            if self.names.insert(name.clone()) {
                return name;
            }
        }
    }

    fn new_function(&mut self, method: bool, origin: u32, rng: &mut Rng) -> Function {
        let case = if method {
            self.lang.method_case()
        } else {
            self.lang.function_case()
        };
        let name = self.fresh_name(case, rng);
        let n_params = rng.range(1, 3);
        let mut params: Vec<String> = Vec::new();
        while params.len() < n_params {
            let param = join_words(&[*rng.pick(NOUNS)], self.lang.function_case());
            if !params.contains(&param) && param != name {
                params.push(param);
            }
        }
        let callees = self.free_function_names();
        let n_statements = rng.range(3, 18);
        let mut body = Vec::with_capacity(n_statements + 1);
        for _ in 0..n_statements {
            let text = statement(self.lang, rng, self.next_var, &params, &callees);
            self.next_var += 1;
            body.push(Line { text, origin });
        }
        body.push(Line {
            text: return_line(self.lang, &params[0]),
            origin,
        });
        Function { name, params, body }
    }

    fn new_class(&mut self, origin: u32, rng: &mut Rng) -> Class {
        let name = loop {
            let name = join_words(&[*rng.pick(NOUNS), *rng.pick(CLASS_SUFFIXES)], Case::Pascal);
            if self.names.insert(name.clone()) {
                break name;
            }
        };
        let n_methods = rng.range(2, 6);
        let methods = (0..n_methods)
            .map(|_| self.new_function(true, origin, rng))
            .collect();
        Class { name, methods }
    }

    fn render_with_spans(&self) -> (String, Vec<FunctionSpan>) {
        let mut out = Writer::default();
        let lang = self.lang;
        match lang {
            Lang::Python => {
                out.line(format!("\"\"\"{} module.\"\"\"", self.unit_name));
                for import in &self.imports {
                    out.line(import.clone());
                }
                out.blank();
                out.line("logger = logging.getLogger(__name__)".to_string());
            }
            Lang::JavaScript | Lang::TypeScript => {
                out.line(format!(
                    "// {}: generated for the suture bench",
                    self.unit_name
                ));
                for import in &self.imports {
                    out.line(import.clone());
                }
            }
            Lang::Go => {
                out.line(format!(
                    "// Package {} is generated for the suture bench.",
                    self.unit_name
                ));
                out.line(format!("package {}", self.unit_name));
                out.blank();
                out.line("import (".to_string());
                for import in &self.imports {
                    out.line(format!("\t{import}"));
                }
                out.line(")".to_string());
            }
            Lang::Rust => {
                out.line(format!(
                    "//! {}: generated for the suture bench.",
                    self.unit_name
                ));
                for import in &self.imports {
                    out.line(import.clone());
                }
            }
            Lang::Java => {
                let package = self
                    .path
                    .split_once("/java/")
                    .map(|(_, rest)| rest.rsplit_once('/').map_or("", |(dir, _)| dir))
                    .unwrap_or("")
                    .replace('/', ".");
                out.line(format!("package {package};"));
                out.blank();
                for import in &self.imports {
                    out.line(import.clone());
                }
                out.blank();
                out.line(format!("public class {} {{", self.unit_name));
                out.line(format!(
                    "    private static final Logger LOG = LoggerFactory.getLogger({}.class);",
                    self.unit_name
                ));
            }
        }
        for item in &self.items {
            out.blank();
            if lang == Lang::Python {
                out.blank();
            }
            match item {
                Item::Function(function) => {
                    let depth = usize::from(lang == Lang::Java);
                    render_function(&mut out, lang, function, None, depth);
                }
                Item::Class(class) => render_class(&mut out, lang, class),
            }
        }
        if lang == Lang::Java {
            out.line("}".to_string());
        }
        (out.text, out.spans)
    }
}

#[derive(Default)]
struct Writer {
    text: String,
    /// Lines written so far.
    lines: u32,
    spans: Vec<FunctionSpan>,
}

impl Writer {
    fn line(&mut self, text: String) {
        self.text.push_str(&text);
        self.text.push('\n');
        self.lines += 1;
    }

    fn indented(&mut self, lang: Lang, depth: usize, text: &str) {
        for _ in 0..depth {
            self.text.push_str(lang.indent());
        }
        self.text.push_str(text);
        self.text.push('\n');
        self.lines += 1;
    }

    fn blank(&mut self) {
        self.text.push('\n');
        self.lines += 1;
    }
}

fn render_class(out: &mut Writer, lang: Lang, class: &Class) {
    let name = &class.name;
    let method_depth = match lang {
        Lang::Python => {
            out.line(format!("class {name}(BaseComponent):"));
            out.indented(lang, 1, &format!("\"\"\"The {name} of this module.\"\"\""));
            1
        }
        Lang::JavaScript | Lang::TypeScript => {
            out.line(format!("export class {name} {{"));
            1
        }
        Lang::Go => {
            out.line(format!("type {name} struct {{"));
            out.line("\tid    int".to_string());
            out.line("\tlimit int".to_string());
            out.line("}".to_string());
            0
        }
        Lang::Rust => {
            out.line(format!("pub struct {name} {{"));
            out.line("    id: i64,".to_string());
            out.line("}".to_string());
            out.blank();
            out.line(format!("impl {name} {{"));
            1
        }
        Lang::Java => {
            out.indented(lang, 1, &format!("static class {name} {{"));
            2
        }
    };
    for (idx, method) in class.methods.iter().enumerate() {
        if idx > 0 || matches!(lang, Lang::Python | Lang::Go) {
            out.blank();
        }
        render_function(out, lang, method, Some(name), method_depth);
    }
    match lang {
        Lang::JavaScript | Lang::TypeScript | Lang::Rust => out.line("}".to_string()),
        Lang::Java => out.indented(lang, 1, "}"),
        Lang::Python | Lang::Go => {}
    }
}

fn render_function(
    out: &mut Writer,
    lang: Lang,
    function: &Function,
    class: Option<&str>,
    depth: usize,
) {
    let name = &function.name;
    let params = &function.params;
    let typed = |ty: &str, sep: &str| {
        params
            .iter()
            .map(|p| format!("{p}{sep}{ty}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let signature = match (lang, class) {
        (Lang::Python, Some(_)) => format!("def {name}(self, {}):", params.join(", ")),
        (Lang::Python, None) => format!("def {name}({}):", params.join(", ")),
        (Lang::JavaScript, Some(_)) => format!("{name}({}) {{", params.join(", ")),
        (Lang::JavaScript, None) => format!("export function {name}({}) {{", params.join(", ")),
        (Lang::TypeScript, Some(_)) => format!("{name}({}): number {{", typed("number", ": ")),
        (Lang::TypeScript, None) => {
            format!(
                "export function {name}({}): number {{",
                typed("number", ": ")
            )
        }
        (Lang::Go, Some(class)) => {
            format!("func (r *{class}) {name}({}) int {{", typed("int", " "))
        }
        (Lang::Go, None) => format!("func {name}({}) int {{", typed("int", " ")),
        (Lang::Rust, Some(_)) => format!("pub fn {name}(&self, {}) -> i64 {{", typed("i64", ": ")),
        (Lang::Rust, None) => format!("pub fn {name}({}) -> i64 {{", typed("i64", ": ")),
        (Lang::Java, Some(_)) => {
            let params = params
                .iter()
                .map(|p| format!("int {p}"))
                .collect::<Vec<_>>()
                .join(", ");
            format!("int {name}({params}) {{")
        }
        (Lang::Java, None) => {
            let params = params
                .iter()
                .map(|p| format!("int {p}"))
                .collect::<Vec<_>>()
                .join(", ");
            format!("static int {name}({params}) {{")
        }
    };
    out.indented(lang, depth, &signature);
    if lang == Lang::Python {
        out.indented(
            lang,
            depth + 1,
            &format!("\"\"\"{}.\"\"\"", name.replace('_', " ")),
        );
    }
    let mut body = Vec::with_capacity(function.body.len());
    for line in &function.body {
        out.indented(lang, depth + 1, &line.text);
        body.push(BodyLine {
            line: out.lines,
            origin: line.origin,
        });
    }
    if lang != Lang::Python {
        out.indented(lang, depth, "}");
    }
    out.spans.push(FunctionSpan {
        name: name.clone(),
        body,
    });
}

fn imports(lang: Lang, rng: &mut Rng) -> Vec<String> {
    let pool: &[&str] = match lang {
        Lang::Python => &[
            "import logging",
            "import datetime",
            "from decimal import Decimal",
            "from typing import Any, Optional",
            "from backend.common.base import BaseComponent",
            "from backend.common import metrics",
        ],
        Lang::JavaScript => &[
            "import { logger } from \"../../utils/logger.js\";",
            "import { api } from \"../../api/client.js\";",
            "import { formatMoney } from \"../../utils/money.js\";",
        ],
        Lang::TypeScript => &[
            "import { logger } from \"../../utils/logger\";",
            "import type { Order } from \"../../api/types\";",
            "import { formatMoney } from \"../../utils/money\";",
        ],
        Lang::Go => &["\"context\"", "\"fmt\"", "\"log\"", "\"time\""],
        Lang::Rust => &[
            "use std::collections::HashMap;",
            "use std::time::Duration;",
            "use tracing::debug;",
        ],
        Lang::Java => &[
            "import java.util.List;",
            "import java.util.Map;",
            "import org.slf4j.Logger;",
            "import org.slf4j.LoggerFactory;",
        ],
    };
    let keep = rng.range(pool.len().div_ceil(2), pool.len());
    pool[..keep].iter().map(|s| s.to_string()).collect()
}

fn return_line(lang: Lang, value: &str) -> String {
    match lang {
        Lang::Python | Lang::Go => format!("return {value}"),
        Lang::Rust => value.to_string(),
        Lang::JavaScript | Lang::TypeScript | Lang::Java => format!("return {value};"),
    }
}

/// One plausible single-line statement declaring local `v{var}`: a call to a
/// function of the file (so the index records callees), arithmetic, a log
/// call or a guard.
fn statement(lang: Lang, rng: &mut Rng, var: u32, params: &[String], callees: &[String]) -> String {
    let param = rng.pick(params).clone();
    let number = rng.range(2, 500);
    let local = format!("v{var}");
    let callee = if callees.is_empty() || rng.chance(0.3) {
        join_words(&[*rng.pick(VERBS), *rng.pick(NOUNS)], lang.function_case())
    } else {
        rng.pick(callees).clone()
    };
    let words = format!("{} {}", rng.pick(NOUNS), rng.pick(LOG_WORDS));
    match (lang, rng.below(5)) {
        (Lang::Python, 0 | 1) => format!("{local} = {callee}({param}, {number})"),
        (Lang::Python, 2) => format!("{local} = {param} * {number} + {}", rng.range(1, 99)),
        (Lang::Python, 3) => format!("logger.debug(\"{words} %s\", {param})"),
        (Lang::Python, _) => format!("if {param} is None: return {number}"),
        (Lang::JavaScript | Lang::TypeScript, 0 | 1) => {
            format!("const {local} = {callee}({param}, {number});")
        }
        (Lang::JavaScript | Lang::TypeScript, 2) => {
            format!("let {local} = {param} * {number} + {};", rng.range(1, 99))
        }
        (Lang::JavaScript | Lang::TypeScript, 3) => {
            format!("logger.debug(\"{words}\", {param});")
        }
        (Lang::JavaScript | Lang::TypeScript, _) => {
            format!("if ({param} == null) return {number};")
        }
        (Lang::Go, 0 | 1) => format!("{local} := {callee}({param}, {number})"),
        (Lang::Go, 2) => format!("{local} := {param}*{number} + {}", rng.range(1, 99)),
        (Lang::Go, 3) => format!("log.Printf(\"{words} %v\", {param})"),
        (Lang::Go, _) => format!("if {param} == 0 {{ return {number} }}"),
        (Lang::Rust, 0 | 1) => format!("let {local} = {callee}({param}, {number});"),
        (Lang::Rust, 2) => format!("let {local} = {param} * {number} + {};", rng.range(1, 99)),
        (Lang::Rust, 3) => format!("debug!(\"{words} {{}}\", {param});"),
        (Lang::Rust, _) => format!("if {param} == 0 {{ return {number}; }}"),
        (Lang::Java, 0 | 1) => format!("int {local} = {callee}({param}, {number});"),
        (Lang::Java, 2) => format!("int {local} = {param} * {number} + {};", rng.range(1, 99)),
        (Lang::Java, 3) => format!("LOG.debug(\"{words} {{}}\", {param});"),
        (Lang::Java, _) => format!("if ({param} == 0) return {number};"),
    }
}
