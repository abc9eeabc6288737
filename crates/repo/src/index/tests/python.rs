//! Python: classes, methods, decorators, async and nested functions.

use expect_test::expect;

use super::check;
use crate::index::Language;

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
