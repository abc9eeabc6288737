//! Java: nested classes, interfaces, constructors, enums, records.

use expect_test::expect;

use super::check;
use crate::index::Language;

/// Nested classes qualify through the outer class; constructors are methods
/// named after their class.
#[test]
fn nested_classes_and_constructors() {
    check(
        Language::Java,
        r#"
        public class Outer {
            private final Inner inner;

            public Outer() {
                this.inner = new Inner();
            }

            static class Inner {
                void method() {
                    helper.run(Util.format("x"));
                }
            }
        }
        "#,
        expect![[r#"
            class Outer 1-13
              method Outer.Outer 4-6 calls=[Inner]
              class Outer.Inner 8-12
                method Outer.Inner.method 9-11 calls=[format, run]
        "#]],
    );
}

/// Interface methods without bodies are methods too; annotations start the method.
#[test]
fn interfaces_and_annotations() {
    check(
        Language::Java,
        r#"
        public interface Repository<T> {
            T find(long id);

            @Deprecated
            default T findOrNull(long id) {
                return find(id);
            }
        }
        "#,
        expect![[r#"
            interface Repository 1-8
              method Repository.find 2-2
              method Repository.findOrNull 4-7 calls=[find]
        "#]],
    );
}

/// Enum methods, records, and anonymous classes nested under their method.
#[test]
fn enums_records_and_anonymous_classes() {
    check(
        Language::Java,
        r#"
        class Jobs {
            enum Status {
                OK, FAILED;
                boolean done() { return this != FAILED; }
            }
            record Job(String id) {}
            void start() {
                executor.submit(new Runnable() {
                    public void run() { work(); }
                });
                list.forEach(item -> process(item));
            }
        }
        "#,
        expect![[r#"
            class Jobs 1-13
              enum Jobs.Status 2-5
                method Jobs.Status.done 4-4
              class Jobs.Job 6-6
              method Jobs.start 7-12 calls=[Runnable, forEach, process, submit]
                method Jobs.start.run 9-9 calls=[work]
        "#]],
    );
}

/// A missing semicolon and brace keep the class and earlier methods.
#[test]
fn broken_syntax_keeps_symbols() {
    check(
        Language::Java,
        r#"
        class Broken {
            void a() { call() }
            void b() {
        "#,
        expect![[r#"
            has_errors
            class Broken 1-3
              method Broken.a 2-2 calls=[call]
              method Broken.b 3-3
        "#]],
    );
}
