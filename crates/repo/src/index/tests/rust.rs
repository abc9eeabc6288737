//! Rust: impl blocks, traits, modules, attributes.

use expect_test::expect;

use super::check;
use crate::index::Language;

/// Inherent methods qualify by type; calls through paths, fields and turbofish count.
#[test]
fn inherent_impl() {
    check(
        Language::Rust,
        r#"
        struct Session {
            headers: Vec<String>,
        }

        impl Session {
            pub fn update_headers(&mut self) {
                self.headers.push(String::new());
                validate::<u8>(&self.headers);
            }
        }
        "#,
        expect![[r#"
            struct Session 1-3
            impl Session 5-10
              method Session.update_headers 6-9 calls=[new, push, validate]
        "#]],
    );
}

/// Trait impls qualify by the self type, generics and paths stripped.
#[test]
fn trait_impl_for_generic_type() {
    check(
        Language::Rust,
        r#"
        impl<T: Debug> fmt::Display for crate::wrap::Wrapper<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.inner.fmt(f)
            }
        }
        "#,
        expect![[r#"
            impl Wrapper 1-5
              method Wrapper.fmt 2-4 calls=[fmt]
        "#]],
    );
}

/// Default methods are methods with bodies; required ones are signatures.
#[test]
fn trait_default_methods() {
    check(
        Language::Rust,
        r#"
        pub trait Store {
            fn get(&self, key: &str) -> Option<String>;
            fn contains(&self, key: &str) -> bool {
                self.get(key).is_some()
            }
        }
        "#,
        expect![[r#"
            trait Store 1-6
              method Store.get 2-2
              method Store.contains 3-5 calls=[get, is_some]
        "#]],
    );
}

/// Functions in an impl in a nested module qualify through every module.
#[test]
fn nested_modules() {
    check(
        Language::Rust,
        r#"
        mod net {
            pub mod http {
                pub struct Client;
                impl Client {
                    pub fn send(&self) {
                        retry(|| connect());
                    }
                }
                pub fn helper() {}
            }
        }
        "#,
        expect![[r#"
            module net 1-11
              module net.http 2-10
                struct net.http.Client 3-3
                impl net.http.Client 4-8
                  method net.http.Client.send 5-7 calls=[connect, retry]
                function net.http.helper 9-9
        "#]],
    );
}

/// Outer attributes start the item; closures' calls count for the function, a
/// nested `fn` keeps its own.
#[test]
fn attributes_closures_and_nested_fns() {
    check(
        Language::Rust,
        r#"
        #[tracing::instrument(
            skip(self),
        )]
        async fn handle(&self) {
            fn local() { deep(); }
            items.iter().map(|item| convert(item)).collect::<Vec<_>>();
            println!("{}", hidden());
        }
        "#,
        expect![[r#"
            function handle 1-8 calls=[collect, convert, iter, map]
              function handle.local 5-5 calls=[deep]
        "#]],
    );
}

/// Enums, constants and statics are symbols too.
#[test]
fn enums_and_constants() {
    check(
        Language::Rust,
        r#"
        const LIMIT: usize = 10;
        static NAME: &str = "x";
        enum State { Open, Closed }
        union Bits { a: u32 }
        "#,
        expect![[r#"
            constant LIMIT 1-1
            constant NAME 2-2
            enum State 3-3
            struct Bits 4-4
        "#]],
    );
}

/// A missing closing brace keeps what came before it.
#[test]
fn broken_syntax_keeps_symbols() {
    check(
        Language::Rust,
        r#"
        fn first() {}
        fn second( {
            let x = ;
        }
        fn third() {}
        "#,
        expect![[r#"
            has_errors
            function first 1-1
            function second 2-4
            function third 5-5
        "#]],
    );
}
