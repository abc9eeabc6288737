//! Python: classes, methods, decorators, async and nested functions.

use expect_test::expect;

use super::{check, check_signatures};
use crate::index::{Language, ParamKind, parse_symbols};

/// A decorator's arguments may span lines; the symbol starts at the `@`.
#[test]
fn multi_line_decorator_starts_the_function() {
    check(
        Language::Python,
        r#"
        @app.route(
            "/login",
            methods=["POST"],
        )
        def login(request):
            return authenticate(request.form)
        "#,
        expect![[r#"
            function login 1-6 calls=[authenticate]
        "#]],
    );
}

/// Methods qualify by class, nested classes by their outer class.
#[test]
fn nested_classes_and_methods() {
    check(
        Language::Python,
        r#"
        class Session:
            def update_headers(self, headers):
                self.headers.update(headers)
                return self.merge()

            class Adapter:
                def send(self):
                    pass
        "#,
        expect![[r#"
            class Session 1-8
              method Session.update_headers 2-4 calls=[merge, update]
              class Session.Adapter 6-8
                method Session.Adapter.send 7-8
        "#]],
    );
}

/// `@property` and `@staticmethod` methods keep their decorator lines.
#[test]
fn decorated_methods() {
    check(
        Language::Python,
        r#"
        class User:
            @property
            def name(self):
                return self.first.title()

            @staticmethod
            @cache
            def load(key):
                return db.get(key)
        "#,
        expect![[r#"
            class User 1-9
              method User.name 2-4 calls=[title]
              method User.load 6-9 calls=[get]
        "#]],
    );
}

/// `async def` is a function like any other.
#[test]
fn async_functions() {
    check(
        Language::Python,
        r#"
        async def fetch(url):
            async with client() as session:
                return await session.get(url)
        "#,
        expect![[r#"
            function fetch 1-3 calls=[client, get]
        "#]],
    );
}

/// A function nested in a method is a function, qualified through the method,
/// and its calls are its own.
#[test]
fn nested_function_inside_method() {
    check(
        Language::Python,
        r#"
        class Worker:
            def run(self):
                def step(item):
                    return transform(item)
                return [step(item) for item in self.items()]
        "#,
        expect![[r#"
            class Worker 1-5
              method Worker.run 2-5 calls=[items, step]
                function Worker.run.step 3-4 calls=[transform]
        "#]],
    );
}

/// Lambdas are not symbols; their calls count for the enclosing function.
#[test]
fn lambda_calls_belong_to_the_enclosing_function() {
    check(
        Language::Python,
        r#"
        def sort_users(users):
            return sorted(users, key=lambda user: user.name.lower())
        "#,
        expect![[r#"
            function sort_users 1-2 calls=[lower, sorted]
        "#]],
    );
}

/// Decorator calls run in the enclosing scope, not in the decorated function.
#[test]
fn decorator_calls_belong_to_the_enclosing_scope() {
    check(
        Language::Python,
        r#"
        def make_app():
            @router.get("/health")
            def health():
                return ok()
            return router
        "#,
        expect![[r#"
            function make_app 1-5 calls=[get]
              function make_app.health 2-4 calls=[ok]
        "#]],
    );
}

/// A class body's calls are not recorded: only functions rank callees.
#[test]
fn class_bodies_have_no_calls() {
    check(
        Language::Python,
        r#"
        class Config:
            timeout = env("TIMEOUT")
        "#,
        expect![[r#"
            class Config 1-2
        "#]],
    );
}

/// An unterminated call still leaves the functions around it.
#[test]
fn broken_syntax_keeps_symbols() {
    check(
        Language::Python,
        r#"
        def good():
            return 1

        def broken(:
            call(

        def after():
            return 2
        "#,
        expect![[r#"
            has_errors
            function good 1-2
            function broken 4-5
            function after 7-8
        "#]],
    );
}

/// Every parameter kind, in declaration order: `/` re-marks what precedes it,
/// `*args` makes what follows keyword-only, `**kw` collects the rest.
#[test]
fn parameter_kinds() {
    check_signatures(
        Language::Python,
        r#"
        def f(a, /, b, *args, c, d=1, **kw):
            pass
        "#,
        expect![[r#"
            function f (a:positional_only, b:positional, args:var_positional, c:keyword_only, d:keyword_only=, kw:var_keyword)
        "#]],
    );
}

/// A bare `*` is a marker, not a parameter; `self` is listed as written.
#[test]
fn bare_star_is_a_marker() {
    check_signatures(
        Language::Python,
        r#"
        class Client:
            def get(self, url, *, timeout=None, retries):
                pass

            def put(self, /, key, value=None, /):
                pass
        "#,
        expect![[r#"
            class Client
            method Client.get (self:positional, url:positional, timeout:keyword_only=, retries:keyword_only)
            method Client.put (self:positional_only, key:positional_only, value:positional_only=)
        "#]],
    );
}

/// Annotations and defaults together; annotated splats keep their kind.
#[test]
fn typed_parameters() {
    check_signatures(
        Language::Python,
        r#"
        def typed(a: int = 3, b: "Forward" = None, *args: str, flag: bool, **kw: Any) -> None:
            pass

        def plain(x: list[int], /, y: int, *, z: dict[str, int] = {}):
            pass
        "#,
        expect![[r#"
            function typed (a:positional=, b:positional=, args:var_positional, flag:keyword_only, kw:var_keyword)
            function plain (x:positional_only, y:positional, z:keyword_only=)
        "#]],
    );
}

/// Decorators by dotted name without arguments, on methods and classes;
/// `staticmethod` and `classmethod` are told by decorator, not `is_static`.
#[test]
fn decorators_by_dotted_name() {
    check_signatures(
        Language::Python,
        r#"
        @dataclass(frozen=True)
        @registry . register
        class Point:
            @staticmethod
            def origin():
                pass

            @classmethod
            def parse(cls, text):
                pass

            @app.route("/x", methods=["GET"])
            @a.b(1)(2).c
            @handlers[0].bind
            def view(self, request):
                pass
        "#,
        expect![[r#"
            class Point @dataclass @registry.register
            method Point.origin () @staticmethod
            method Point.parse (cls:positional, text:positional) @classmethod
            method Point.view (self:positional, request:positional) @app.route @a.b.c @handlers[0].bind
        "#]],
    );
}

/// `async def`, free and as a method; a plain `def` is not async.
#[test]
fn async_definitions() {
    check_signatures(
        Language::Python,
        r#"
        async def fetch(url, *, session=None):
            pass

        class Poller:
            async def poll(self):
                def sync_helper(item):
                    pass
        "#,
        expect![[r#"
            function fetch async (url:positional, session:keyword_only=)
            class Poller
            method Poller.poll async (self:positional)
            function Poller.poll.sync_helper (item:positional)
        "#]],
    );
}

/// Bases as written, keyword arguments (`metaclass=`) and `**kw` left out.
#[test]
fn class_bases() {
    check_signatures(
        Language::Python,
        r#"
        class Plain:
            pass

        class Empty():
            pass

        class Model(Base, mixins.Timestamped, Generic[T], *extra, metaclass=ModelMeta, **options):
            pass
        "#,
        expect![[r#"
            class Plain
            class Empty
            class Model bases=[Base, mixins.Timestamped, Generic[T], *extra]
        "#]],
    );
}

/// Defaults holding lambdas and nested calls add no parameters of their own.
#[test]
fn lambda_defaults_are_not_parameters() {
    check_signatures(
        Language::Python,
        r#"
        def sort(items, key=lambda item, other=1: item.name, *, reverse=(lambda: False)()):
            pass
        "#,
        expect![[r#"
            function sort (items:positional, key:positional=, reverse:keyword_only=)
        "#]],
    );
}

/// Broken parameter lists keep what tree-sitter recovered and never panic.
#[test]
fn broken_parameter_lists() {
    check_signatures(
        Language::Python,
        r#"
        def broken(a, b=, *, **):
            pass

        def tuple_param((a, b), c=1):
            pass

        def unclosed(a, b
            pass

        def after(x, /):
            pass
        "#,
        expect![[r#"
            has_errors
            function broken (a:positional, b:positional)
            function tuple_param ((a, b):pattern, c:positional=)
            function unclosed (a:positional_only)
        "#]],
    );
}

/// Non-ASCII identifiers come through as written.
#[test]
fn unicode_parameter_names() {
    check_signatures(
        Language::Python,
        r#"
        class Größe:
            def grüße(self, straße, /, *, 名前="x", **κwargs):
                pass
        "#,
        expect![[r#"
            class Größe
            method Größe.grüße (self:positional_only, straße:positional_only, 名前:keyword_only=, κwargs:var_keyword)
        "#]],
    );
}

/// A generated function with thousands of parameters keeps them all, in order.
#[test]
fn huge_parameter_list() {
    let names: Vec<String> = (0..5000).map(|idx| format!("p{idx}")).collect();
    let source = format!("def wide({}, *rest, **kw):\n    pass\n", names.join(", "));
    let file = parse_symbols(Language::Python, source.as_bytes());
    let wide = file
        .by_name("wide")
        .next()
        .expect("the function is indexed");
    assert_eq!(wide.params.len(), 5002);
    assert!(
        wide.params[..5000]
            .iter()
            .zip(&names)
            .all(|(param, name)| &param.name == name && param.kind == ParamKind::Positional)
    );
    assert_eq!(wide.params[5000].kind, ParamKind::VarPositional);
    assert_eq!(wide.params[5001].kind, ParamKind::VarKeyword);
}
